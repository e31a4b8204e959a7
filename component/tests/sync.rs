//! The behaviour of one `sync` call against a fake TAP: statuses, bodies,
//! rejections, skipping, allowances and enrichment failures.

mod common;

use common::*;
use serde_json::json;
use tap_component::{CampaignRef, LogLevel, Settings, SyncError, TapFailure, Window};

fn siem_failure(status: u16, body: &[u8]) -> SyncError {
    let mut tap = FakeTap::siem_raw(status, body);
    run_with(&mut tap, &settings()).0.unwrap_err()
}

#[test]
fn the_request_asks_siem_all_for_json_and_every_threat_status_with_the_window_as_interval() {
    let mut tap = FakeTap::siem_json(json!({}));
    run_with(&mut tap, &settings()).0.unwrap();
    assert_eq!(
        tap.requests,
        [
            "/v2/siem/all?format=json&interval=2026-11-28T10%3A00%3A00Z%2F2026-11-28T11%3A00%3A00Z\
          &threatStatus=active&threatStatus=cleared&threatStatus=falsePositive"
        ]
    );
}

#[test]
fn empty_200_is_an_empty_window_ending_at_tap_query_end_time() {
    let r = map_siem(
        json!({"queryEndTime": "2026-11-28T10:59:59Z", "messagesDelivered": [], "clicksPermitted": []}),
    );
    assert_eq!(r.query_end_time, "2026-11-28T10:59:59Z");
    assert!(r.objects.is_empty() && r.relations.is_empty() && r.record_keys.is_empty());
    assert_eq!(r.counters.siem_requests, 1);
}

#[test]
fn no_content_204_is_an_empty_window_ending_at_the_window_end() {
    let mut tap = FakeTap::siem_raw(204, b"");
    let r = run_with(&mut tap, &settings()).0.unwrap();
    assert_eq!(r.query_end_time, window().end);
    assert!(r.objects.is_empty());
}

#[test]
fn missing_query_end_time_falls_back_to_the_window_end() {
    let r = map_siem(json!({"messagesDelivered": []}));
    assert_eq!(r.query_end_time, window().end);
}

#[test]
fn unreadable_query_end_time_falls_back_to_the_window_end_with_a_warning() {
    let mut tap = FakeTap::siem_json(json!({"queryEndTime": "soon"}));
    let (r, host) = run_with(&mut tap, &settings());
    assert_eq!(r.unwrap().query_end_time, window().end);
    assert!(host.logged(LogLevel::Warn, "queryEndTime"));
}

#[test]
fn bad_request_400_carries_tap_text_trimmed() {
    assert_eq!(
        siem_failure(400, b"The requested interval is still current.\n"),
        SyncError::BadRequest(TapFailure {
            endpoint: "/v2/siem/all".into(),
            status: 400,
            message: "The requested interval is still current.".into(),
        })
    );
}

#[test]
fn unauthorized_401_forbidden_403_and_rate_limited_429_are_their_own_errors() {
    assert!(matches!(siem_failure(401, b""), SyncError::Unauthorized(f) if f.status == 401));
    assert!(
        matches!(siem_failure(403, b"not entitled"), SyncError::Forbidden(f) if f.message == "not entitled")
    );
    assert!(
        matches!(siem_failure(429, b""), SyncError::RateLimited(f) if f.endpoint == "/v2/siem/all")
    );
}

#[test]
fn server_error_500_and_unexpected_statuses_are_server_errors() {
    assert!(
        matches!(siem_failure(500, b"oops"), SyncError::ServerError(f) if f.status == 500 && f.message == "oops")
    );
    assert!(matches!(siem_failure(502, b""), SyncError::ServerError(_)));
    assert!(matches!(siem_failure(404, b""), SyncError::ServerError(_)));
}

#[test]
fn a_body_that_is_not_json_is_a_bad_response_naming_endpoint_and_position() {
    let SyncError::BadResponse(message) = siem_failure(200, b"<html>gateway</html>") else {
        panic!("expected bad-response");
    };
    assert!(message.contains("/v2/siem/all"), "{message}");
    assert!(message.contains("line 1 column 1"), "{message}");
}

#[test]
fn a_body_of_the_wrong_shape_is_a_bad_response() {
    for body in [
        r#"[1,2]"#,
        r#"{"messagesDelivered": "none"}"#,
        r#"{"clicksPermitted": {"a": 1}}"#,
    ] {
        assert!(
            matches!(
                siem_failure(200, body.as_bytes()),
                SyncError::BadResponse(_)
            ),
            "{body}"
        );
    }
}

#[test]
fn no_answer_at_all_is_a_transport_error_naming_the_endpoint() {
    let mut tap =
        FakeTap::siem_unreachable("the host denied the request (HttpRequestDenied): not allowed");
    let SyncError::Transport(message) = run_with(&mut tap, &settings()).0.unwrap_err() else {
        panic!("expected transport");
    };
    assert!(
        message.contains("/v2/siem/all") && message.contains("HttpRequestDenied"),
        "{message}"
    );
}

#[test]
fn an_unreadable_or_backwards_window_is_invalid_input_naming_the_field() {
    let mut host = RecordingHost::default();
    let mut tap = FakeTap::siem_json(json!({}));
    let cases = [
        (
            Window {
                start: "yesterday".into(),
                end: window().end,
            },
            "window.start",
        ),
        (
            Window {
                start: window().start,
                end: "2026-13-01T00:00:00Z".into(),
            },
            "window.end",
        ),
        (
            Window {
                start: window().end,
                end: window().start,
            },
            "must be before",
        ),
    ];
    for (w, expected) in cases {
        let err = tap_component::sync(&settings(), &w, |_| &mut tap, &mut host).unwrap_err();
        assert!(
            matches!(&err, SyncError::InvalidInput(m) if m.contains(expected)),
            "{err:?}"
        );
    }
    assert!(tap.requests.is_empty(), "nothing is fetched for bad input");
}

#[test]
fn a_base_url_with_a_path_is_invalid_input() {
    let s = Settings {
        tap_base_url: "https://tap-api-v2.proofpoint.com/v2".into(),
        ..settings()
    };
    let mut tap = FakeTap::siem_json(json!({}));
    let err = run_with(&mut tap, &s).0.unwrap_err();
    assert!(matches!(err, SyncError::InvalidInput(m) if m.contains("tap-base-url")));
}

#[test]
fn one_unmappable_record_is_rejected_and_the_rest_of_the_window_maps() {
    let bad_time = with(
        message(),
        json!({"GUID": "bad-guid", "id": "x1", "messageTime": "not a time"}),
    );
    let no_guid = without(message(), &["GUID"]);
    let wrong_type = with(
        message(),
        json!({"GUID": "typed", "id": "x2", "threatsInfoMap": "nope"}),
    );
    let body = json!({
        "messagesDelivered": [bad_time, message(), no_guid, 42, wrong_type],
        "clicksPermitted": [without(click(), &["url"]), click()]
    });
    let mut tap = FakeTap::siem_json(body);
    let (r, host) = run_with(&mut tap, &settings());
    let r = r.unwrap();
    let keys: Vec<&str> = r.rejections.iter().map(|x| x.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "message GUID=bad-guid id=x1",
            "messagesDelivered[2]",
            "messagesDelivered[3]",
            "message GUID=typed id=x2",
            "click id=8c8b4895-a277-449f-9797-547e3c89b25a",
        ]
    );
    assert!(
        r.rejections[0].reason.contains("messageTime"),
        "{:?}",
        r.rejections[0]
    );
    assert!(r.rejections[1].reason.contains("GUID"));
    assert!(
        r.rejections[3].reason.contains("threatsInfoMap"),
        "{:?}",
        r.rejections[3]
    );
    assert!(r.rejections[4].reason.contains("url"));
    assert!(event_titled(&r, "TAP Message Delivered").is_some());
    assert!(event_titled(&r, "TAP Click Permitted").is_some());
    assert_eq!(
        r.counters.messages_delivered, 5,
        "every record read is counted"
    );
    assert_eq!(r.counters.clicks_permitted, 2);
    assert!(host.logged(LogLevel::Warn, "rejected"));
}

#[test]
fn records_already_sent_are_skipped_and_counted() {
    let second = with(
        message(),
        json!({"id": "copy-2", "recipient": ["robin@pharmtech.zz"]}),
    );
    let s = Settings {
        already_sent: vec![
            format!("m:{GUID}:copy-2"),
            "c:8c8b4895-a277-449f-9797-547e3c89b25a".into(),
        ],
        ..settings()
    };
    let r = map_siem_with(
        json!({"messagesDelivered": [message(), second], "clicksPermitted": [click()]}),
        &s,
    );
    assert_eq!(r.counters.already_sent_skipped, 2);
    let keys: Vec<&str> = r.record_keys.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(
        keys,
        [format!("m:{GUID}:b614fa76-5b4f-6a7c-7bb3-0b452881de25")]
    );
    let event = event_titled(&r, "TAP Message Delivered").unwrap();
    assert_eq!(attr(&r, event, "Recipient"), ["bruce.wayne@pharmtech.zz"]);
    assert!(event_titled(&r, "TAP Click").is_none());
}

#[test]
fn record_keys_use_sorted_recipients_without_an_id_and_the_later_of_event_and_threat_time() {
    let m = with(
        without(message(), &["id"]),
        json!({"recipient": ["zed@x.zz", "amy@x.zz"]}),
    );
    let r = map_siem(delivered(vec![m, click()]));
    assert_eq!(r.record_keys[0].key, format!("m:{GUID}:amy@x.zz,zed@x.zz"));
    // threatTime 10:20:00 is later than messageTime 10:15:30.
    assert_eq!(r.record_keys[0].created_ms, 1_795_861_200_000);
}

#[test]
fn click_record_key_is_the_click_id_created_at_the_later_time() {
    let r = map_siem(json!({"clicksPermitted": [click()]}));
    assert_eq!(r.record_keys.len(), 1);
    assert_eq!(
        r.record_keys[0].key,
        "c:8c8b4895-a277-449f-9797-547e3c89b25a"
    );
    // clickTime 10:30:00 is later than threatTime 10:20:00.
    assert_eq!(r.record_keys[0].created_ms, 1_795_861_800_000);
}

fn message_in_campaign(n: usize) -> serde_json::Value {
    with(
        message(),
        json!({"GUID": format!("guid-{n}"), "threatsInfoMap": [{
            "threatID": format!("{n:064}"), "campaignID": format!("campaign-{n}"), "threat": format!("http://c{n}.zz/"),
            "threatType": "url", "threatStatus": "active"
        }]}),
    )
}

fn message_without_campaign(n: usize) -> serde_json::Value {
    with(
        message(),
        json!({"GUID": format!("lone-{n}"), "threatsInfoMap": [{
            "threatID": format!("t{n:063}"), "threat": format!("http://lone{n}.zz/"),
            "threatType": "url", "threatStatus": "active"
        }]}),
    )
}

#[test]
fn campaign_allowance_is_spent_exactly_in_sorted_order() {
    let body = delivered((0..5).rev().map(message_in_campaign).collect());
    let s = Settings {
        campaign_allowance: 3,
        ..settings()
    };
    let mut tap = FakeTap::siem_json(body);
    for n in 0..5 {
        tap = tap.campaign(
            &format!("campaign-{n}"),
            json!({"id": format!("campaign-{n}"), "name": format!("Campaign {n}")}),
        );
    }
    let (r, _) = run_with(&mut tap, &s);
    let r = r.unwrap();
    assert_eq!(
        tap.requests_starting("/v2/campaign/"),
        [
            "/v2/campaign/campaign-0",
            "/v2/campaign/campaign-1",
            "/v2/campaign/campaign-2"
        ]
    );
    assert_eq!(tap.requests_starting("/v2/forensics?campaignId=").len(), 3);
    assert_eq!(
        (
            r.counters.campaign_requests,
            r.counters.campaign_forensics_requests
        ),
        (3, 3)
    );
    let fetched: Vec<&str> = r
        .campaigns_fetched
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(fetched, ["Campaign 0", "Campaign 1", "Campaign 2"]);
    let unfetched = event_titled(&r, "TAP Message Delivered: Invoice overdue [guid-4]").unwrap();
    assert_eq!(
        attr(&r, unfetched, "Campaign ID"),
        ["campaign-4"],
        "the id is kept without a fetch"
    );
}

#[test]
fn threat_forensics_allowance_is_spent_exactly_and_the_rest_deferred() {
    let mut records: Vec<_> = (0..4).rev().map(message_without_campaign).collect();
    records.push(message_without_campaign(1)); // the same threat again is asked once
    let s = Settings {
        threat_forensics_allowance: 2,
        ..settings()
    };
    let mut tap = FakeTap::siem_json(delivered(records));
    let (r, _) = run_with(&mut tap, &s);
    let r = r.unwrap();
    assert_eq!(
        tap.requests_starting("/v2/forensics?threatId="),
        [
            format!("/v2/forensics?threatId=t{:063}", 0),
            format!("/v2/forensics?threatId=t{:063}", 1)
        ]
    );
    assert_eq!(r.counters.threat_forensics_requests, 2);
    assert_eq!(r.counters.threat_forensics_deferred, 2);
}

#[test]
fn threats_with_a_campaign_or_false_positive_status_are_not_asked_by_threat_id() {
    let fp = with(
        message_without_campaign(7),
        json!({"threatsInfoMap": [{
            "threatID": "f".repeat(64), "threat": "http://fp.zz/", "threatType": "url", "threatStatus": "falsePositive"
        }]}),
    );
    let mut tap = FakeTap::siem_json(delivered(vec![message(), fp]));
    let (r, _) = run_with(&mut tap, &settings());
    assert!(tap.requests_starting("/v2/forensics?threatId=").is_empty());
    assert_eq!(r.unwrap().counters.threat_forensics_deferred, 0);
}

#[test]
fn known_campaigns_are_related_by_name_and_not_fetched_again() {
    let s = Settings {
        known_campaigns: vec![CampaignRef {
            id: CAMPAIGN_ID.into(),
            name: "Known Campaign".into(),
        }],
        ..settings()
    };
    let mut tap = FakeTap::siem_json(delivered(vec![message()]));
    let (r, _) = run_with(&mut tap, &s);
    let r = r.unwrap();
    assert!(tap.requests_starting("/v2/campaign/").is_empty());
    assert!(tap.requests_starting("/v2/forensics").is_empty());
    assert!(r.campaigns_fetched.is_empty());
    let c = find(
        &r,
        tap_component::ObjectKind::Campaign,
        None,
        "Known Campaign",
    )
    .unwrap();
    assert!(related(
        &r,
        c,
        event_titled(&r, "TAP Message Delivered").unwrap()
    ));
    assert_eq!(r.counters.campaign_requests, 0);
}

#[test]
fn campaign_404_keeps_the_campaign_id_skips_the_relation_and_does_not_fail_the_window() {
    let mut tap = FakeTap::siem_json(delivered(vec![message()]));
    let (r, host) = run_with(&mut tap, &settings());
    let r = r.unwrap();
    assert!(r.campaigns_fetched.is_empty());
    assert!(
        r.objects
            .iter()
            .all(|o| o.kind != tap_component::ObjectKind::Campaign)
    );
    let event = event_titled(&r, "TAP Message Delivered").unwrap();
    assert_eq!(attr(&r, event, "Campaign ID"), [CAMPAIGN_ID]);
    assert_eq!(r.counters.campaign_requests, 1);
    assert_eq!(
        r.counters.campaign_forensics_requests, 1,
        "forensics by campaign are still worth asking"
    );
    assert!(host.logged(LogLevel::Warn, "enrichment request failed"));
}

#[test]
fn rate_limit_on_enrichment_stops_further_enrichment_but_the_siem_data_maps() {
    let body = delivered(vec![
        message_in_campaign(1),
        message_in_campaign(2),
        message_without_campaign(3),
    ]);
    let mut tap = FakeTap::siem_json(body).route("/v2/campaign/campaign-1", 429, json!(null));
    let (r, host) = run_with(&mut tap, &settings());
    let r = r.unwrap();
    assert_eq!(
        tap.requests.len(),
        2,
        "SIEM, then the one campaign request that hit 429: {:?}",
        tap.requests
    );
    assert_eq!(r.counters.threat_forensics_deferred, 1);
    assert!(event_titled(&r, "TAP Message Delivered: Invoice overdue [guid-2]").is_some());
    assert!(host.logged(LogLevel::Warn, "enrichment stopped"));
}

#[test]
fn unknown_and_unreadable_evidence_is_counted_and_never_fatal() {
    let evidence = json!([
        {"type": "quantum_entanglement", "malicious": true, "what": {"x": 1}},
        {"type": "cookie", "malicious": true, "what": {"domain": "x.zz"}},
        "not an object",
        {"type": "url", "malicious": "true", "what": {"url": "http://next.zz/"}}
    ]);
    let mut tap = FakeTap::siem_json(delivered(vec![message_without_campaign(1)])).threat_forensics(
        &format!("t{:063}", 1),
        json!({"reports": [{"scope": "THREAT", "id": format!("t{:063}", 1), "forensics": evidence}]}),
    );
    let (r, host) = run_with(&mut tap, &settings());
    let r = r.unwrap();
    assert_eq!(
        (r.counters.evidence_used, r.counters.evidence_dropped),
        (1, 3)
    );
    assert!(indicator(&r, "URL", "http://next.zz/").is_some());
    assert!(host.logged(LogLevel::Debug, "not mapped"));
}

#[test]
fn one_info_line_per_call_and_a_debug_line_per_request() {
    let mut tap = FakeTap::siem_json(delivered(vec![message()]));
    let (_, host) = run_with(&mut tap, &settings());
    let infos: Vec<_> = host
        .lines
        .iter()
        .filter(|(l, _, _)| *l == LogLevel::Info)
        .collect();
    assert_eq!(infos.len(), 1);
    let fields = &infos[0].2;
    assert!(
        fields
            .iter()
            .any(|(k, v)| k == "messages_delivered" && v == "1")
    );
    assert!(fields.iter().any(|(k, _)| k == "elapsed_ms"));
    let requests = host
        .lines
        .iter()
        .filter(|(l, m, _)| *l == LogLevel::Debug && m == "TAP request")
        .count();
    assert_eq!(requests, tap.requests.len());
}

#[test]
fn a_known_campaign_without_a_name_is_fetched_like_a_new_one() {
    let s = Settings {
        known_campaigns: vec![CampaignRef {
            id: CAMPAIGN_ID.into(),
            name: " ".into(),
        }],
        ..settings()
    };
    let mut tap =
        FakeTap::siem_json(delivered(vec![message()])).campaign(CAMPAIGN_ID, campaign_body());
    let (r, _) = run_with(&mut tap, &s);
    assert_eq!(tap.requests_starting("/v2/campaign/").len(), 1);
    assert_eq!(r.unwrap().campaigns_fetched.len(), 1);
}
