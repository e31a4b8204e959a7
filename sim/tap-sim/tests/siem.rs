//! The SIEM endpoints behave like TAP's: auth, window rules with TAP's
//! exact texts, selection by creation time, arrays per endpoint, filters
//! and pools.

mod common;

use common::*;
use serde_json::{Value, json};
use tap_sim::{
    ClickKind, Credentials, MessageKind, Pool, PoolLimits, STILL_CURRENT, THROTTLED_TEXT,
    TOO_FAR_IN_THE_PAST, TOO_LONG, TOO_SHORT, TapSimConfig,
};
use time::{Duration, OffsetDateTime};

fn ts(t: OffsetDateTime) -> String {
    tap_sim::times::format_event_time(t)
}

fn message(
    guid: &str,
    at: OffsetDateTime,
    threat_at: OffsetDateTime,
    status: &str,
    kind: &str,
) -> Value {
    json!({
        "GUID": guid, "id": format!("{guid}-1"), "messageTime": ts(at),
        "recipient": ["clark.kent@example.com"], "sender": "x@evil.zz", "senderIP": "192.0.2.1",
        "threatsInfoMap": [{"threatID": format!("t-{guid}"), "threatStatus": status, "threatType": kind,
                            "threatTime": ts(threat_at), "classification": "phish", "threat": "http://evil.zz/"}]
    })
}

fn click(id: &str, at: OffsetDateTime, status: &str) -> Value {
    json!({"id": id, "GUID": "g", "clickTime": ts(at), "threatTime": ts(at - Duration::minutes(1)),
           "threatID": "t", "threatStatus": status, "url": "http://evil.zz/", "threatURL": "u"})
}

fn last_hour_query() -> String {
    format!(
        "/v2/siem/all?format=json&{}",
        interval(minutes_ago(62), minutes_ago(2))
    )
}

#[tokio::test]
async fn missing_or_wrong_credentials_get_401_and_unentitled_ones_403() {
    let sim = start_with(TapSimConfig {
        not_entitled: Some(Credentials {
            principal: "other-customer".into(),
            secret: "s".into(),
        }),
        ..TapSimConfig::default()
    })
    .await;
    let q = last_hour_query();
    let none = get_as(&sim, None, &q).await;
    assert_eq!(none.status, 401);
    assert!(!none.text.is_empty());
    assert_eq!(
        get_as(&sim, Some(("sim-principal", "wrong")), &q)
            .await
            .status,
        401
    );
    assert_eq!(
        get_as(&sim, Some(("nobody", "sim-secret")), &q)
            .await
            .status,
        401
    );
    assert_eq!(
        get_as(&sim, Some(("other-customer", "s")), &q).await.status,
        403
    );
    assert_eq!(get(&sim, &q).await.status, 200);
    // Every endpoint checks credentials, not only SIEM.
    assert_eq!(get_as(&sim, None, "/v2/campaign/x").await.status, 401);
    assert_eq!(
        get_as(&sim, None, "/v2/forensics?threatId=x").await.status,
        401
    );
}

#[tokio::test]
async fn window_rules_answer_400_with_taps_exact_texts() {
    let sim = start().await;
    let now = minutes_ago(0);
    let cases = [
        (
            interval(
                now - Duration::minutes(10),
                now - Duration::minutes(10) + Duration::seconds(29),
            ),
            TOO_SHORT,
        ),
        (
            interval(
                now - Duration::hours(3),
                now - Duration::hours(1) - Duration::seconds(59),
            ),
            TOO_LONG,
        ),
        (
            interval(
                now - Duration::days(7) - Duration::minutes(5),
                now - Duration::days(7) + Duration::minutes(5),
            ),
            TOO_FAR_IN_THE_PAST,
        ),
        (
            interval(now - Duration::minutes(10), now + Duration::minutes(5)),
            STILL_CURRENT,
        ),
        ("sinceSeconds=10".to_owned(), TOO_SHORT),
        ("sinceSeconds=3601".to_owned(), TOO_LONG),
        (
            format!("sinceTime={}", iso(now - Duration::hours(2))),
            TOO_LONG,
        ),
    ];
    for (query, text) in cases {
        let answer = get(&sim, &format!("/v2/siem/all?format=json&{query}")).await;
        assert_eq!(
            (answer.status, answer.text.as_str()),
            (400, text),
            "{query}"
        );
    }
    assert_eq!(
        TOO_SHORT,
        "The requested interval is too short. Requests must be for at least 30.00s of data"
    );
}

#[tokio::test]
async fn a_reversed_window_gets_400_with_an_empty_body() {
    let sim = start().await;
    let q = format!(
        "/v2/siem/all?format=json&{}",
        interval(minutes_ago(10), minutes_ago(20))
    );
    let answer = get(&sim, &q).await;
    assert_eq!((answer.status, answer.text.as_str()), (400, ""));
}

#[tokio::test]
async fn exactly_one_window_parameter_is_required() {
    let sim = start().await;
    let none = get(&sim, "/v2/siem/all?format=json").await;
    assert_eq!(none.status, 400);
    assert!(none.text.contains("interval"), "{}", none.text);
    let two = get(
        &sim,
        &format!(
            "/v2/siem/all?format=json&sinceSeconds=300&{}",
            interval(minutes_ago(20), minutes_ago(10))
        ),
    )
    .await;
    assert_eq!(two.status, 400);
    let repeated = get(
        &sim,
        "/v2/siem/all?format=json&sinceSeconds=300&sinceSeconds=60",
    )
    .await;
    assert_eq!(repeated.status, 400);
}

#[tokio::test]
async fn every_interval_form_is_accepted_and_the_end_is_echoed() {
    let sim = start().await;
    let end = minutes_ago(5);
    let start = end - Duration::minutes(30);
    let end_text = tap_sim::times::format_query_end(end);
    let offset_start = start.to_offset(time::UtcOffset::from_hms(-7, 0, 0).unwrap());
    let compact_offset = format!("{}-0700", &iso(offset_start)[..19]);
    let forms = [
        interval(start, end),
        format!("interval=PT30M/{}", iso(end)),
        format!("interval={compact_offset}/PT30M"),
        format!(
            "interval={}/{}",
            iso(start).replace('Z', ".250000%2B00:00"),
            iso(end).replace('Z', "%2B00:00")
        ),
        format!("interval={}/PT1H", iso(end - Duration::hours(1))),
        format!("interval=PT1800S/{}", iso(end)),
    ];
    for form in forms {
        let answer = get(&sim, &format!("/v2/siem/all?format=json&{form}")).await;
        assert_eq!(answer.status, 200, "{form}: {}", answer.text);
        assert_eq!(answer.json()["queryEndTime"], end_text.as_str(), "{form}");
    }
    let unencoded_plus = get(
        &sim,
        &format!(
            "/v2/siem/all?format=json&interval={}/{}",
            iso(start).replace('Z', "+00:00"),
            iso(end)
        ),
    )
    .await;
    assert_eq!(unencoded_plus.status, 400);
    assert!(
        unencoded_plus.text.contains("%2B"),
        "{}",
        unencoded_plus.text
    );
}

#[tokio::test]
async fn since_seconds_query_end_is_now_rounded_to_the_minute() {
    let sim = start().await;
    let answer = get(&sim, "/v2/siem/all?format=json&sinceSeconds=300").await;
    assert_eq!(answer.status, 200);
    let end = answer.json()["queryEndTime"].as_str().unwrap().to_owned();
    assert!(end.ends_with(":00Z"), "{end}");
}

#[tokio::test]
async fn records_are_selected_by_creation_time_so_a_late_verdict_lands_in_the_later_window() {
    let sim = start().await;
    let base = minutes_ago(120);
    // Sent in the first window, condemned 40 minutes later, in the second.
    sim.add_message(
        MessageKind::Delivered,
        message(
            "late",
            base + Duration::minutes(10),
            base + Duration::minutes(70),
            "active",
            "url",
        ),
    )
    .unwrap();
    sim.add_message(
        MessageKind::Delivered,
        message(
            "prompt",
            base + Duration::minutes(10),
            base + Duration::minutes(10),
            "active",
            "url",
        ),
    )
    .unwrap();
    // On the boundary: belongs to the window that starts there.
    sim.add_message(
        MessageKind::Delivered,
        message("edge", base + Duration::minutes(60), base, "active", "url"),
    )
    .unwrap();
    let first = get(
        &sim,
        &format!(
            "/v2/siem/messages/delivered?format=json&{}",
            interval(base, base + Duration::hours(1))
        ),
    )
    .await
    .json();
    let second = get(
        &sim,
        &format!(
            "/v2/siem/messages/delivered?format=json&{}",
            interval(base + Duration::hours(1), base + Duration::hours(2))
        ),
    )
    .await
    .json();
    let guids = |body: &Value| -> Vec<String> {
        body["messagesDelivered"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["GUID"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(guids(&first), ["prompt"]);
    let mut later = guids(&second);
    later.sort();
    assert_eq!(later, ["edge", "late"]);
}

#[tokio::test]
async fn each_endpoint_returns_only_its_own_arrays() {
    let sim = start().await;
    let at = minutes_ago(30);
    sim.add_message(
        MessageKind::Delivered,
        message("d", at, at, "active", "url"),
    )
    .unwrap();
    sim.add_message(
        MessageKind::Blocked,
        message("b", at, at, "active", "attachment"),
    )
    .unwrap();
    sim.add_click(ClickKind::Permitted, click("p", at, "active"))
        .unwrap();
    sim.add_click(ClickKind::Blocked, click("k", at, "active"))
        .unwrap();
    let window = interval(minutes_ago(60), minutes_ago(1));
    let expected: [(&str, &[&str]); 6] = [
        (
            "all",
            &[
                "clicksBlocked",
                "clicksPermitted",
                "messagesBlocked",
                "messagesDelivered",
            ],
        ),
        ("issues", &["clicksPermitted", "messagesDelivered"]),
        ("clicks/blocked", &["clicksBlocked"]),
        ("clicks/permitted", &["clicksPermitted"]),
        ("messages/blocked", &["messagesBlocked"]),
        ("messages/delivered", &["messagesDelivered"]),
    ];
    for (endpoint, arrays) in expected {
        let body = get(&sim, &format!("/v2/siem/{endpoint}?format=json&{window}"))
            .await
            .json();
        let mut keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        let mut want = arrays.to_vec();
        want.push("queryEndTime");
        want.sort();
        assert_eq!(keys, want, "{endpoint}");
        for array in arrays {
            assert_eq!(array_len(&body, array), 1, "{endpoint} {array}");
        }
    }
}

#[tokio::test]
async fn false_positives_are_hidden_unless_asked_for_and_filters_repeat() {
    let sim = start().await;
    let at = minutes_ago(30);
    sim.add_message(
        MessageKind::Delivered,
        message("fp", at, at, "falsePositive", "url"),
    )
    .unwrap();
    sim.add_message(
        MessageKind::Delivered,
        message("url", at, at, "active", "url"),
    )
    .unwrap();
    sim.add_message(
        MessageKind::Delivered,
        message("att", at, at, "cleared", "attachment"),
    )
    .unwrap();
    sim.add_message(
        MessageKind::Delivered,
        message("text", at, at, "active", "messageText"),
    )
    .unwrap();
    let base = format!(
        "/v2/siem/messages/delivered?format=json&{}",
        interval(minutes_ago(60), minutes_ago(1))
    );
    let count = |body: Value| array_len(&body, "messagesDelivered");
    assert_eq!(count(get(&sim, &base).await.json()), 3);
    assert_eq!(
        count(
            get(&sim, &format!("{base}&threatStatus=falsePositive"))
                .await
                .json()
        ),
        1
    );
    assert_eq!(
        count(
            get(
                &sim,
                &format!("{base}&threatStatus=active&threatStatus=falsePositive")
            )
            .await
            .json()
        ),
        3
    );
    assert_eq!(
        count(get(&sim, &format!("{base}&threatType=url")).await.json()),
        1
    );
    assert_eq!(
        count(
            get(
                &sim,
                &format!("{base}&threatType=url&threatType=attachment")
            )
            .await
            .json()
        ),
        2
    );
    assert_eq!(
        get(&sim, &format!("{base}&threatType=pdf")).await.status,
        400
    );
}

#[tokio::test]
async fn a_spent_pool_answers_429_with_taps_text_and_clicks_permitted_has_its_own() {
    let sim = start_with(TapSimConfig {
        limits: PoolLimits {
            siem: 2,
            clicks_permitted: 1,
            ..PoolLimits::default()
        },
        ..TapSimConfig::default()
    })
    .await;
    let window = interval(minutes_ago(30), minutes_ago(1));
    for _ in 0..2 {
        assert_eq!(
            get(
                &sim,
                &format!("/v2/siem/messages/delivered?format=json&{window}")
            )
            .await
            .status,
            200
        );
    }
    // /all, /issues and the other endpoints share one pool.
    let spent = get(&sim, &format!("/v2/siem/all?format=json&{window}")).await;
    assert_eq!((spent.status, spent.text.as_str()), (429, THROTTLED_TEXT));
    assert_eq!(
        get(
            &sim,
            &format!("/v2/siem/clicks/permitted?format=json&{window}")
        )
        .await
        .status,
        200
    );
    assert_eq!(
        get(
            &sim,
            &format!("/v2/siem/clicks/permitted?format=json&{window}")
        )
        .await
        .status,
        429
    );
    assert_eq!(sim.pool_used(Pool::Siem), 2);
}

#[tokio::test]
async fn spend_pool_lets_a_test_reach_429_without_1800_requests() {
    let sim = start().await;
    sim.spend_pool(Pool::Siem, 1800);
    let answer = get(
        &sim,
        &format!(
            "/v2/siem/all?format=json&{}",
            interval(minutes_ago(30), minutes_ago(1))
        ),
    )
    .await;
    assert_eq!(answer.status, 429);
}

#[tokio::test]
async fn a_missing_format_means_syslog_which_is_not_json() {
    let sim = start().await;
    let window = interval(minutes_ago(60), minutes_ago(1));
    assert_eq!(
        get(&sim, &format!("/v2/siem/all?{window}")).await.status,
        204
    );
    let at = minutes_ago(30);
    sim.add_message(
        MessageKind::Delivered,
        message("d", at, at, "active", "url"),
    )
    .unwrap();
    let answer = get(&sim, &format!("/v2/siem/all?format=syslog&{window}")).await;
    assert_eq!(answer.status, 200);
    assert!(serde_json::from_str::<Value>(&answer.text).is_err());
    assert!(answer.text.contains("GUID=\"d\""), "{}", answer.text);
}

#[tokio::test]
async fn unknown_paths_are_404_and_other_methods_405() {
    let sim = start().await;
    assert_eq!(
        get(&sim, "/v2/siem/everything?format=json&sinceSeconds=60")
            .await
            .status,
        404
    );
    assert_eq!(get(&sim, "/v1/siem/all").await.status, 404);
    let post = client()
        .post(format!("{}/v2/siem/all", sim.base_url()))
        .basic_auth("sim-principal", Some("sim-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 405);
}

#[tokio::test]
async fn requests_are_recorded_with_their_credentials_and_status() {
    let sim = start().await;
    get(&sim, "/v2/siem/all?format=json&sinceSeconds=300").await;
    get_as(&sim, None, "/v2/campaign/abc").await;
    let recorded = sim.requests();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].path, "/v2/siem/all");
    assert_eq!(recorded[0].query, "format=json&sinceSeconds=300");
    assert_eq!(recorded[0].status, 200);
    assert_eq!(recorded[0].principal.as_deref(), Some("sim-principal"));
    assert!(
        recorded[0]
            .authorization
            .as_deref()
            .unwrap()
            .starts_with("Basic ")
    );
    assert_eq!(
        (recorded[1].status, recorded[1].authorization.clone()),
        (401, None)
    );
}

#[tokio::test]
async fn indexing_lag_hides_a_record_until_it_has_passed() {
    let sim = start_with(TapSimConfig {
        indexing_lag: Duration::minutes(30),
        ..TapSimConfig::default()
    })
    .await;
    let window = interval(minutes_ago(60), minutes_ago(1));
    sim.add_message(
        MessageKind::Delivered,
        message("fresh", minutes_ago(10), minutes_ago(10), "active", "url"),
    )
    .unwrap();
    sim.add_message(
        MessageKind::Delivered,
        message("indexed", minutes_ago(45), minutes_ago(45), "active", "url"),
    )
    .unwrap();
    let body = get(
        &sim,
        &format!("/v2/siem/messages/delivered?format=json&{window}"),
    )
    .await
    .json();
    assert_eq!(body["messagesDelivered"][0]["GUID"], "indexed");
    assert_eq!(array_len(&body, "messagesDelivered"), 1);
    // Later, the same window returns both.
    sim.faults().set_clock_offset(Duration::minutes(25));
    let body = get(
        &sim,
        &format!("/v2/siem/messages/delivered?format=json&{window}"),
    )
    .await
    .json();
    assert_eq!(array_len(&body, "messagesDelivered"), 2);
}

#[tokio::test]
async fn hand_written_records_without_a_time_are_refused_with_the_reason() {
    let sim = start().await;
    let err = sim
        .add_message(MessageKind::Delivered, json!({"GUID": "x"}))
        .unwrap_err();
    assert!(format!("{err:#}").contains("messageTime"), "{err:#}");
    let err = sim
        .add_click(
            ClickKind::Permitted,
            json!({"id": "c", "clickTime": "yesterday"}),
        )
        .unwrap_err();
    assert!(format!("{err:#}").contains("clickTime"), "{err:#}");
}

#[tokio::test]
async fn with_gzip_on_bodies_are_compressed_for_clients_that_accept_it() {
    use std::io::Read as _;
    let sim = start_with(TapSimConfig {
        gzip: true,
        ..TapSimConfig::default()
    })
    .await;
    let at = minutes_ago(30);
    sim.add_message(
        MessageKind::Delivered,
        message("z", at, at, "active", "url"),
    )
    .unwrap();
    let url = format!(
        "{}/v2/siem/all?format=json&{}",
        sim.base_url(),
        interval(minutes_ago(60), minutes_ago(1))
    );
    let raw_client = reqwest::Client::builder().no_gzip().build().unwrap();
    let response = raw_client
        .get(&url)
        .basic_auth("sim-principal", Some("sim-secret"))
        .header("accept-encoding", "gzip, deflate")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let compressed = response.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut text)
        .unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["messagesDelivered"][0]["GUID"], "z");
    // Without Accept-Encoding the body is sent as is.
    let plain = raw_client
        .get(&url)
        .basic_auth("sim-principal", Some("sim-secret"))
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(
        serde_json::from_slice::<Value>(&plain.bytes().await.unwrap()).unwrap()["messagesDelivered"]
            [0]["GUID"],
        "z"
    );
}
