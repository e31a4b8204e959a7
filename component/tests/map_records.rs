//! Quarantine and replay: a rejection carries the record's section and its
//! JSON text exactly as TAP sent it, and `map_records` maps such records as
//! `sync` would have, without a SIEM request.

mod common;

use common::*;
use serde_json::{Value, json};
use tap_component::{QuarantinedRecord, Settings, SyncError, SyncResult};

/// A TAP that answers the campaign and forensics look-ups of `message()`
/// and `click()`, with the SIEM answer `body` (if any).
fn enriching_tap(body: Option<Value>) -> FakeTap {
    let tap = match body {
        Some(body) => FakeTap::siem_json(body),
        None => FakeTap::default(),
    };
    tap.campaign(CAMPAIGN_ID, campaign_body())
        .campaign_forensics(
            CAMPAIGN_ID,
            json!({"reports": [{"scope": "CAMPAIGN", "id": CAMPAIGN_ID, "name": "c", "forensics": [
                {"type": "url", "display": "GET http://stage2.zz/payload", "malicious": true,
                 "what": {"url": "http://stage2.zz/payload"}, "platforms": [{"name": "win10"}]},
                {"type": "dns", "display": "DNS c2.zz", "malicious": true,
                 "what": {"host": "c2.zz"}, "platforms": [{"name": "win10"}]}
            ]}]}),
        )
}

fn siem_requests(tap: &FakeTap) -> usize {
    tap.requests_starting("/v2/siem/").len()
}

/// `sync`'s answer with what only a SIEM request gives taken out.
fn without_the_siem_request(mut r: SyncResult) -> SyncResult {
    r.query_end_time = String::new();
    r.counters.siem_requests = 0;
    r
}

#[test]
fn a_malformed_record_is_rejected_with_its_exact_raw_text_and_section() {
    // Spacing, key order, escapes and an odd number spelling as TAP might
    // send them: the raw text is the record's bytes, not a re-serialisation.
    let bad_message = r#"{ "GUID" : "g-1",  "messageTime":"2026-11-28T10:00:00Z", "subject":"caf\u00e9 \"x\"", "spamScore" : "high" }"#;
    let bad_blocked = r#"[1, 2.50, "three"]"#;
    let bad_click = "{\"id\":\"c-9\",\n  \"url\":\"http://x.zz/\",\"clickTime\":null}";
    let bad_blocked_click = r#"{"GUID":"g-2","url":"http://y.zz/","clickTime":"yesterday"}"#;
    let body = format!(
        r#"{{"queryEndTime":"2026-11-28T11:00:00Z",
            "messagesDelivered":[ {message} , {bad_message} ],
            "messagesBlocked":[{bad_blocked}],
            "clicksPermitted":[{bad_click}],
            "clicksBlocked":[ {bad_blocked_click}]}}"#,
        message = message(),
    );
    let mut tap = FakeTap::siem_raw(200, body.as_bytes());
    let r = run_with(&mut tap, &settings()).0.expect("the window maps");

    let got: Vec<(&str, &str, &str)> = r
        .rejections
        .iter()
        .map(|j| (j.section.as_str(), j.key.as_str(), j.raw.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("messagesDelivered", "message GUID=g-1", bad_message),
            ("messagesBlocked", "messagesBlocked[0]", bad_blocked),
            ("clicksPermitted", "click id=c-9", bad_click),
            ("clicksBlocked", "click GUID=g-2", bad_blocked_click),
        ]
    );
    assert!(
        r.rejections[0].reason.contains("spamScore"),
        "{:?}",
        r.rejections[0]
    );
    assert_eq!(r.record_keys.len(), 1, "the good message still maps");
}

#[test]
fn map_records_of_a_record_that_maps_gives_what_sync_gives_for_a_window_of_it_alone() {
    for (section, record) in [
        ("messagesDelivered", message()),
        ("messagesBlocked", message()),
        ("clicksPermitted", click()),
        ("clicksBlocked", click()),
    ] {
        let s = Settings {
            create_incidents: true,
            ..settings()
        };
        let body = json!({"queryEndTime": "2026-11-28T11:00:00Z", section: [record.clone()]});
        let mut synced_tap = enriching_tap(Some(body));
        let synced = run_with(&mut synced_tap, &s).0.expect("the window maps");
        assert!(synced.rejections.is_empty() && !synced.objects.is_empty());

        let mut tap = enriching_tap(None);
        let (mapped, host) = map_records_with(&mut tap, &s, &[quarantined(section, &record)]);
        let mapped = mapped.expect("the record maps");

        assert_eq!(mapped.query_end_time, "", "{section}: not a checkpoint");
        assert_eq!(mapped.counters.siem_requests, 0, "{section}");
        assert_eq!(
            siem_requests(&tap),
            0,
            "{section}: no SIEM request was made"
        );
        assert_eq!(mapped.objects, synced.objects, "{section}");
        assert_eq!(mapped.relations, synced.relations, "{section}");
        assert_eq!(mapped.record_keys, synced.record_keys, "{section}");
        assert_eq!(mapped, without_the_siem_request(synced), "{section}");
        assert_eq!(
            tap.requests,
            synced_tap.requests[1..],
            "{section}: the same enrichment requests, without the SIEM one"
        );
        assert!(mapped.counters.campaign_requests == 1 && mapped.counters.evidence_used > 0);
        assert!(host.logged(
            tap_component::LogLevel::Info,
            "TAP quarantined records mapped"
        ));
    }
}

#[test]
fn map_records_takes_each_section_in_the_order_given_and_sections_in_body_order() {
    let second = with(message(), json!({"GUID": "g-2"}));
    let no_identity = without(click(), &["id", "GUID"]);
    let body = json!({
        "queryEndTime": "2026-11-28T11:00:00Z",
        "messagesDelivered": [message(), second.clone()],
        "clicksPermitted": [click(), no_identity.clone()],
    });
    let mut synced_tap = enriching_tap(Some(body));
    let synced = run_with(&mut synced_tap, &settings()).0.expect("maps");
    assert_eq!(synced.rejections[0].key, "clicksPermitted[1]");

    // Interleaved, clicks first: the result is still the body's.
    let records = [
        quarantined("clicksPermitted", &click()),
        quarantined("messagesDelivered", &message()),
        quarantined("clicksPermitted", &no_identity),
        quarantined("messagesDelivered", &second),
    ];
    let mut tap = enriching_tap(None);
    let mapped = map_records_with(&mut tap, &settings(), &records)
        .0
        .expect("maps");
    assert_eq!(mapped, without_the_siem_request(synced));
    assert_eq!(tap.requests, synced_tap.requests[1..]);
}

#[test]
fn a_record_of_an_unknown_section_is_a_rejection_not_an_error_of_the_call() {
    let odd = QuarantinedRecord {
        section: "messagesQuarantined".into(),
        raw: message().to_string(),
    };
    let records = [odd.clone(), quarantined("clicksPermitted", &click())];
    let mut tap = FakeTap::default();
    let r = map_records_with(&mut tap, &settings(), &records)
        .0
        .expect("an unknown section does not fail the call");
    assert_eq!(r.rejections.len(), 1, "{:?}", r.rejections);
    let rejection = &r.rejections[0];
    assert_eq!(rejection.section, odd.section);
    assert_eq!(rejection.raw, odd.raw);
    assert_eq!(rejection.key, "records[0]");
    assert!(
        rejection.reason.contains("messagesQuarantined")
            && rejection.reason.contains("clicksBlocked"),
        "{}",
        rejection.reason
    );
    assert_eq!(r.record_keys.len(), 1, "the click still maps");
    let c = r.counters;
    assert_eq!(
        (
            c.messages_delivered,
            c.messages_blocked,
            c.clicks_permitted,
            c.clicks_blocked
        ),
        (0, 0, 1, 0),
        "an unknown section counts in no array"
    );
    assert_eq!(siem_requests(&tap), 0);
}

#[test]
fn a_rejection_handed_back_is_rejected_again_the_same_way_with_its_raw() {
    let broken = with(message(), json!({"messageTime": "12/01/2026"}));
    let not_json = QuarantinedRecord {
        section: "messagesBlocked".into(),
        raw: "{\"GUID\": \"g\", truncated".into(),
    };
    let trailing = QuarantinedRecord {
        section: "clicksBlocked".into(),
        raw: format!("{} {{}}", click()),
    };
    let first = map_siem(delivered(vec![broken]));
    assert_eq!(first.rejections.len(), 1);
    let records: Vec<QuarantinedRecord> = first
        .rejections
        .iter()
        .cloned()
        .map(QuarantinedRecord::from)
        .chain([not_json.clone(), trailing.clone()])
        .collect();
    let mut tap = FakeTap::default();
    let again = map_records_with(&mut tap, &settings(), &records)
        .0
        .expect("maps");
    assert_eq!(again.rejections[0], first.rejections[0]);
    assert_eq!(again.rejections[1].raw, not_json.raw, "kept unchanged");
    assert_eq!(again.rejections[1].section, "messagesBlocked");
    assert_eq!(again.rejections[2].raw, trailing.raw);
    assert!(
        again.rejections[2].reason.contains("trailing"),
        "text after the record is not ignored: {}",
        again.rejections[2].reason
    );
    assert!(again.objects.is_empty() && again.record_keys.is_empty());
}

#[test]
fn map_records_skips_records_already_sent_like_sync() {
    let s = Settings {
        already_sent: vec![format!("c:{}", click()["id"].as_str().unwrap())],
        ..settings()
    };
    let mut tap = FakeTap::default();
    let r = map_records_with(&mut tap, &s, &[quarantined("clicksBlocked", &click())])
        .0
        .expect("maps");
    assert_eq!(r.counters.already_sent_skipped, 1);
    assert!(r.objects.is_empty() && r.record_keys.is_empty() && tap.requests.is_empty());
}

#[test]
fn map_records_checks_the_settings_like_sync_before_any_request() {
    let s = Settings {
        tap_base_url: "ftp://tap.zz".into(),
        ..settings()
    };
    let mut tap = FakeTap::default();
    let (r, _) = map_records_with(
        &mut tap,
        &s,
        &[quarantined("messagesDelivered", &message())],
    );
    assert!(matches!(r, Err(SyncError::InvalidInput(_))), "{r:?}");
    assert!(tap.requests.is_empty());
}

#[test]
fn map_records_of_nothing_is_an_empty_result() {
    let mut tap = FakeTap::default();
    let r = map_records_with(&mut tap, &settings(), &[])
        .0
        .expect("maps");
    assert!(r.objects.is_empty() && r.rejections.is_empty() && tap.requests.is_empty());
    assert_eq!(r.query_end_time, "");
}
