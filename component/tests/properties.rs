//! Properties of whole `sync` calls over generated TAP answers, bounded so
//! the suite stays fast in debug builds (the open-ended search is the
//! cargo-fuzz targets in fuzz/, which check the same properties):
//!
//! * determinism: the same answers and settings give an identical
//!   `SyncResult` (and the same requests) twice;
//! * accounting: every SIEM record is counted in its array's counter and
//!   ends exactly one way: mapped (its key in `record_keys`), skipped as
//!   already sent, or rejected with a non-empty reason. Checked
//!   compositionally: each record is also synced alone, and the window's
//!   rejections and record keys must be exactly the per-record outcomes,
//!   in order, so no record is lost, counted twice, or changes how another
//!   one is read;
//! * enrichment: every evidence element of a readable forensics answer is
//!   counted as used or dropped;
//! * replay: `map_records` over a window's records (their JSON text and
//!   section, sections interleaved) gives exactly what `sync` gave for the
//!   window, and the same requests but the SIEM one.

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tap_component::tap::forensics::parse_forensics;
use tap_component::{QuarantinedRecord, RecordKey, Rejection, Settings, SyncResult};

const ARRAYS: [&str; 4] = [
    "messagesDelivered",
    "messagesBlocked",
    "clicksPermitted",
    "clicksBlocked",
];
const SECOND_GUID: &str = "g-2";
const MESSAGE_IDS: [&str; 2] = ["id-1", "id-2"];
const CLICK_IDS: [&str; 2] = ["click-1", "click-2"];

/// Keys the generated records can have, for `already_sent`.
fn key_pool() -> Vec<String> {
    let mut keys = Vec::new();
    for guid in [GUID, SECOND_GUID] {
        for id in MESSAGE_IDS {
            keys.push(format!("m:{guid}:{id}"));
        }
    }
    for id in CLICK_IDS {
        keys.push(format!("c:{id}"));
    }
    keys.push("m:not-in-this-window:x".to_string());
    keys
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    arbitrary::tap_json(arbitrary::SMALL)
}

/// A realistic message with its identity drawn from a small pool (so keys
/// repeat and meet `already_sent`) and one field possibly broken.
fn message_record() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![GUID, SECOND_GUID, ""]),
        prop::option::of(prop::sample::select(MESSAGE_IDS.to_vec())),
        prop::option::of(arbitrary_json()),
    )
        .prop_map(|(guid, id, change)| {
            let mut m = with(message(), json!({ "GUID": guid }));
            m = match id {
                Some(id) => with(m, json!({ "id": id })),
                None => without(m, &["id"]),
            };
            match change {
                Some(change) => with(m, change),
                None => m,
            }
        })
}

fn click_record() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop::sample::select(CLICK_IDS.to_vec())),
        prop::option::of(arbitrary_json()),
    )
        .prop_map(|(id, change)| {
            let c = match id {
                Some(id) => with(click(), json!({ "id": id })),
                None => without(click(), &["id"]),
            };
            match change {
                Some(change) => with(c, change),
                None => c,
            }
        })
}

fn records(message: bool) -> impl Strategy<Value = Vec<Value>> {
    let one = if message {
        prop_oneof![3 => message_record(), 1 => arbitrary_json()].boxed()
    } else {
        prop_oneof![3 => click_record(), 1 => arbitrary_json()].boxed()
    };
    prop::collection::vec(one, 0..4)
}

/// A SIEM body with the four arrays, plus the settings to sync it with.
fn window_and_settings() -> impl Strategy<Value = ([Vec<Value>; 4], Settings)> {
    (
        records(true),
        records(true),
        records(false),
        records(false),
        prop::collection::vec(prop::sample::select(key_pool()), 0..4),
        any::<bool>(),
        0u32..3,
        0u32..3,
    )
        .prop_map(
            |(delivered, blocked, permitted, clicks_blocked, already_sent, incidents, c, t)| {
                let s = Settings {
                    create_incidents: incidents,
                    already_sent,
                    campaign_allowance: c,
                    threat_forensics_allowance: t,
                    ..settings()
                };
                ([delivered, blocked, permitted, clicks_blocked], s)
            },
        )
}

fn body_of(arrays: &[Vec<Value>; 4]) -> Value {
    let mut body = Map::new();
    body.insert("queryEndTime".into(), json!("2026-11-28T11:00:00Z"));
    for (name, records) in ARRAYS.iter().zip(arrays) {
        body.insert((*name).into(), Value::Array(records.clone()));
    }
    Value::Object(body)
}

fn sync_ok(body: &Value, settings: &Settings) -> (SyncResult, Vec<String>) {
    let mut tap = FakeTap::siem_json(body.clone());
    let (result, _) = run_with(&mut tap, settings);
    let result = result.expect("a SIEM body that is a JSON object always maps");
    (result, tap.requests)
}

/// How one record ends when synced alone.
enum Alone {
    Mapped(RecordKey),
    Rejected(Rejection),
}

fn alone(array: &str, record: &Value, settings: &Settings) -> Alone {
    let body = json!({ "queryEndTime": "2026-11-28T11:00:00Z", array: [record] });
    let solo = Settings {
        already_sent: Vec::new(),
        fresh_threats: Vec::new(),
        queued_campaigns: Vec::new(),
        queued_threats: Vec::new(),
        ..settings.clone()
    };
    let (r, _) = sync_ok(&body, &solo);
    match (r.record_keys.as_slice(), r.rejections.as_slice()) {
        ([key], []) => Alone::Mapped(key.clone()),
        ([], [rejection]) => Alone::Rejected(rejection.clone()),
        (keys, rejections) => panic!(
            "one {array} record ended as {} keys and {} rejections: {record}",
            keys.len(),
            rejections.len()
        ),
    }
}

fn check_well_formed(r: &SyncResult) -> Result<(), TestCaseError> {
    for object in &r.objects {
        prop_assert!(!object.value.trim().is_empty(), "blank value: {:?}", object);
    }
    let mut seen = std::collections::HashSet::new();
    for relation in &r.relations {
        prop_assert!(relation.a < relation.b, "{:?}", relation);
        prop_assert!((relation.b as usize) < r.objects.len(), "{:?}", relation);
        prop_assert!(seen.insert(*relation), "relation twice: {:?}", relation);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_same_window_maps_the_same_way_twice((arrays, settings) in window_and_settings()) {
        let body = body_of(&arrays);
        let first = sync_ok(&body, &settings);
        let second = sync_ok(&body, &settings);
        prop_assert_eq!(&first, &second);
        check_well_formed(&first.0)?;
    }

    #[test]
    fn every_record_is_mapped_skipped_or_rejected_with_a_reason(
        (arrays, settings) in window_and_settings()
    ) {
        let body = body_of(&arrays);
        let (r, _) = sync_ok(&body, &settings);
        let c = r.counters;
        let counted = [c.messages_delivered, c.messages_blocked, c.clicks_permitted, c.clicks_blocked];
        let mut expected_rejections = Vec::new();
        let mut expected_keys: Vec<RecordKey> = Vec::new();
        let mut skipped = 0u32;
        for ((array, records), counted) in ARRAYS.iter().zip(&arrays).zip(counted) {
            prop_assert_eq!(counted as usize, records.len(), "counter of {}", array);
            for (index, record) in records.iter().enumerate() {
                match alone(array, record, &settings) {
                    Alone::Rejected(mut rejection) => {
                        prop_assert!(!rejection.reason.trim().is_empty(), "no reason: {:?}", rejection);
                        prop_assert!(!rejection.key.trim().is_empty(), "no key: {:?}", rejection);
                        // A record TAP gives no identity is named by its
                        // place in the array.
                        if rejection.key == format!("{array}[0]") {
                            rejection.key = format!("{array}[{index}]");
                        }
                        expected_rejections.push(rejection);
                    }
                    Alone::Mapped(key) => {
                        if settings.already_sent.contains(&key.key) {
                            skipped += 1;
                        } else if !expected_keys.iter().any(|k| k.key == key.key) {
                            expected_keys.push(key);
                        }
                    }
                }
            }
        }
        prop_assert_eq!(&r.rejections, &expected_rejections);
        prop_assert_eq!(&r.record_keys, &expected_keys);
        prop_assert_eq!(c.already_sent_skipped, skipped);
        check_well_formed(&r)?;
    }

    #[test]
    fn map_records_of_a_windows_records_gives_what_sync_gave_without_a_siem_request(
        (arrays, settings) in window_and_settings()
    ) {
        let body = body_of(&arrays);
        let (mut synced, synced_requests) = sync_ok(&body, &settings);
        // Round-robin over the sections: each keeps its own order.
        let longest = arrays.iter().map(Vec::len).max().unwrap_or(0);
        let mut records = Vec::new();
        for i in 0..longest {
            for (array, values) in ARRAYS.iter().zip(&arrays).rev() {
                if let Some(value) = values.get(i) {
                    records.push(QuarantinedRecord { section: (*array).into(), raw: value.to_string() });
                }
            }
        }
        let mut tap = FakeTap::default();
        let (mapped, _) = map_records_with(&mut tap, &settings, &records);
        let mapped = mapped.expect("the settings are valid");
        synced.query_end_time = String::new();
        synced.counters.siem_requests = 0;
        prop_assert_eq!(&mapped, &synced);
        prop_assert_eq!(&tap.requests[..], &synced_requests[1..]);
    }

    #[test]
    fn enrichment_answers_map_deterministically_and_all_evidence_is_counted(
        campaign in arbitrary_json(),
        forensics in prop_oneof![
            arbitrary_json(),
            prop::collection::vec(arbitrary_json(), 0..4)
                .prop_map(|evidence| json!({"reports": [{"scope": "THREAT", "id": "t1", "name": "http://l.zz/", "forensics": evidence}]})),
        ],
    ) {
        let lone = with(
            message(),
            json!({"GUID": "lone", "threatsInfoMap": [{"threatID": "t1", "threat": "http://l.zz/", "threatType": "url"}]}),
        );
        let make = || {
            FakeTap::siem_json(delivered(vec![message(), lone.clone()]))
                .campaign(CAMPAIGN_ID, campaign.clone())
                .campaign_forensics(CAMPAIGN_ID, forensics.clone())
                .threat_forensics("t1", forensics.clone())
        };
        let (mut first_tap, mut second_tap) = (make(), make());
        let first = run_with(&mut first_tap, &settings()).0.expect("the SIEM window maps");
        let second = run_with(&mut second_tap, &settings()).0.expect("the SIEM window maps");
        prop_assert_eq!(&first, &second);
        prop_assert_eq!(&first_tap.requests, &second_tap.requests);
        check_well_formed(&first)?;
        let c = first.counters;
        prop_assert_eq!(
            (c.campaign_requests, c.campaign_forensics_requests, c.threat_forensics_requests),
            (1, 1, 1)
        );
        let accounted = u64::from(c.evidence_used) + u64::from(c.evidence_dropped);
        // The fake TAP sends a JSON null as an empty body.
        let body = if forensics.is_null() { String::new() } else { forensics.to_string() };
        match parse_forensics(body.as_bytes()) {
            Ok(answer) => {
                let elements: u64 = answer.reports.iter().map(|r| r.forensics.len() as u64).sum();
                prop_assert_eq!(accounted, 2 * elements, "evidence lost or counted twice");
            }
            Err(_) => prop_assert_eq!(accounted, 0),
        }
    }
}
