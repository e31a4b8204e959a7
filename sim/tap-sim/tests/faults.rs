//! Faults switched at run time change what the SIEM endpoints answer.

mod common;

use std::time::{Duration as StdDuration, Instant};

use common::*;
use serde_json::{Value, json};
use tap_sim::{Drift, MessageKind, STILL_CURRENT, SiemFault};
use time::Duration;

fn drifting_message() -> Value {
    let at = tap_sim::times::format_event_time(minutes_ago(30));
    json!({
        "GUID": "g1", "id": "i1", "messageTime": at, "cluster": "example_hosted",
        "completelyRewritten": true, "fromAddress": ["a@evil.zz"], "recipient": ["b@example.com"],
        "replyToAddress": ["c@evil.zz"], "toAddresses": ["b@example.com"],
        "threatsInfoMap": [{"threatID": "t1", "campaignID": "c1", "threatUrl": "https://threatinsight.proofpoint.com/x",
                            "threatStatus": "active", "threatType": "url", "classification": "phish", "threatTime": at}],
        "messageParts": [{"disposition": "attached", "sandboxStatus": "threat"}]
    })
}

fn window_query() -> String {
    format!(
        "/v2/siem/messages/delivered?format=json&{}",
        interval(minutes_ago(60), minutes_ago(1))
    )
}

#[tokio::test]
async fn drift_mode_serves_the_other_spelling_of_every_drifting_field() {
    let sim = start().await;
    sim.add_message(MessageKind::Delivered, drifting_message())
        .unwrap();
    sim.faults().set_drift(Drift::all());
    let body = get(&sim, &window_query()).await.json();
    let m = &body["messagesDelivered"][0];
    assert_eq!(m["clusterId"], "example_hosted");
    assert!(m.get("cluster").is_none());
    assert_eq!(m["completelyRewritten"], "true");
    for key in ["fromAddress", "recipient", "replyToAddress", "toAddresses"] {
        assert!(m[key].is_string(), "{key}: {}", m[key]);
    }
    let t = &m["threatsInfoMap"][0];
    assert_eq!(
        (t["threatId"].as_str(), t["campaignId"].as_str()),
        (Some("t1"), Some("c1"))
    );
    assert!(t.get("threatURL").is_some());
    assert_eq!(
        (t["threatType"].as_str(), t["threatStatus"].as_str()),
        (Some("URL"), Some("ACTIVE"))
    );
    assert_eq!(m["messageParts"][0]["sandboxStatus"], "THREAT");

    sim.faults().set_drift(Drift::default());
    let body = get(&sim, &window_query()).await.json();
    assert_eq!(
        body["messagesDelivered"][0]["threatsInfoMap"][0]["threatID"],
        "t1"
    );
}

#[tokio::test]
async fn empty_results_can_come_as_204_with_no_body() {
    let sim = start().await;
    sim.faults().set_empty_as_no_content(true);
    let answer = get(&sim, &window_query()).await;
    assert_eq!((answer.status, answer.text.as_str()), (204, ""));
    sim.add_message(MessageKind::Delivered, drifting_message())
        .unwrap();
    assert_eq!(get(&sim, &window_query()).await.status, 200);
    sim.faults().set_empty_as_no_content(false);
    let empty = get(
        &sim,
        &format!(
            "/v2/siem/clicks/blocked?format=json&{}",
            interval(minutes_ago(60), minutes_ago(1))
        ),
    )
    .await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json()["clicksBlocked"], json!([]));
}

#[tokio::test]
async fn the_next_n_siem_requests_answer_the_given_status_then_recover() {
    let sim = start().await;
    sim.faults().fail_next_siem(2, 503, "Service Unavailable");
    for _ in 0..2 {
        let answer = get(&sim, &window_query()).await;
        assert_eq!(
            (answer.status, answer.text.as_str()),
            (503, "Service Unavailable")
        );
    }
    assert_eq!(get(&sim, &window_query()).await.status, 200);
    // Injected failures are not charged to the pool.
    assert_eq!(sim.pool_used(tap_sim::Pool::Siem), 1);
    // Only SIEM requests are affected.
    sim.faults().fail_next_siem(1, 500, "boom");
    assert_eq!(get(&sim, "/v2/campaign/unknown").await.status, 404);
    assert_eq!(get(&sim, &window_query()).await.status, 500);
}

#[tokio::test]
async fn a_not_json_body_is_labelled_json_but_does_not_parse() {
    let sim = start().await;
    sim.faults().next_siem(1, SiemFault::NotJson);
    let answer = get(&sim, &window_query()).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    assert!(serde_json::from_str::<Value>(&answer.text).is_err());
}

#[tokio::test]
async fn an_oversized_body_has_exactly_the_requested_size_and_is_valid_json() {
    let sim = start().await;
    let bytes = 3 * 1024 * 1024 + 17;
    sim.faults().next_siem(1, SiemFault::Oversized { bytes });
    let answer = get(&sim, &window_query()).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text.len() as u64, bytes);
    assert_eq!(answer.json()["messagesDelivered"], json!([]));
}

#[tokio::test]
async fn slow_headers_delay_the_response() {
    let sim = start().await;
    sim.faults()
        .next_siem(1, SiemFault::SlowHeaders(StdDuration::from_millis(400)));
    let started = Instant::now();
    let answer = get(&sim, &window_query()).await;
    assert_eq!(answer.status, 200);
    assert!(started.elapsed() >= StdDuration::from_millis(400));
}

#[tokio::test]
async fn a_stalled_body_sends_headers_then_stops_mid_body() {
    let sim = start().await;
    sim.add_message(MessageKind::Delivered, drifting_message())
        .unwrap();
    sim.faults()
        .set_persistent_siem(Some(SiemFault::StalledBody(StdDuration::from_secs(30))));
    let response = client()
        .get(format!("{}{}", sim.base_url(), window_query()))
        .basic_auth("sim-principal", Some("sim-secret"))
        .timeout(StdDuration::from_millis(500))
        .send()
        .await
        .expect("headers arrive before the stall");
    assert_eq!(response.status().as_u16(), 200);
    let err = response
        .text()
        .await
        .expect_err("the body stalls past the timeout");
    assert!(err.is_timeout() || err.is_body(), "{err}");
    sim.faults().clear();
    assert_eq!(get(&sim, &window_query()).await.status, 200);
}

#[tokio::test]
async fn a_clock_offset_moves_the_servers_now() {
    let sim = start().await;
    // A window ending three minutes ago is "still current" for a server
    // whose clock runs five minutes behind.
    let query = format!(
        "/v2/siem/all?format=json&{}",
        interval(minutes_ago(20), minutes_ago(3))
    );
    assert_eq!(get(&sim, &query).await.status, 200);
    sim.faults().set_clock_offset(-Duration::minutes(5));
    let answer = get(&sim, &query).await;
    assert_eq!((answer.status, answer.text.as_str()), (400, STILL_CURRENT));
    assert!(sim.now() < time::OffsetDateTime::now_utc() - Duration::minutes(4));
}
