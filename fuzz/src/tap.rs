//! TAP side: fuzzed bytes become the body of one TAP endpoint, served by an
//! in-memory transport to `tap_component::sync`, the same entry point the
//! wasm component exports. Everything is decided by the input, so a crash
//! reproduces from the saved artifact alone.
//!
//! Properties checked on every input (a failed check panics):
//! * no panic anywhere in decoding or mapping;
//! * determinism: the same input and settings give an identical
//!   `Result<SyncResult, SyncError>` twice in one process (each run has
//!   fresh hash maps with their own random seeds, so an order that leaked
//!   from a `HashMap` would show up);
//! * accounting: every element of the four SIEM arrays is counted in its
//!   counter and ends either mapped (its key in `record_keys`), skipped as
//!   already sent (`already_sent_skipped`), or rejected with a non-empty key
//!   and reason, in input order;
//! * a well-formed result: no blank object value, relations between two
//!   distinct existing objects, stored `a < b`, none twice;
//! * for the enrichment bodies: exactly the expected requests were made,
//!   and every evidence element of a readable forensics answer is counted
//!   as used or dropped.

use std::collections::{HashMap, HashSet};

use tap_component::tap::campaign::parse_campaign;
use tap_component::tap::endpoints;
use tap_component::tap::forensics::parse_forensics;
use tap_component::tap::siem::{decode_click, decode_message, parse_envelope};
use tap_component::{
    CampaignRef, HostServices, LogLevel, ObjectKind, Settings, SyncError, SyncResult, TapResponse,
    Transport, Window,
};

/// The campaign the fixed SIEM body names (the id of the tap-sim fixture).
pub const CAMPAIGN_ID: &str = "46e01b8a-c899-404d-bcd9-189bb393d1a7";
/// A URL threat of the fixed SIEM body that has no campaign, so `sync`
/// asks forensics for it by threat id.
pub const LONE_THREAT_ID: &str = "3ba97fc852c66a7ba761450edfdfb9f4ffab74715b591294f78b5e37a76481aa";

/// Our own fixtures (sim/tap-sim/fixtures), used as the fixed answers of
/// the endpoints a target does not fuzz.
pub const FIXTURE_CAMPAIGN: &str = include_str!("../../sim/tap-sim/fixtures/campaign.json");
pub const FIXTURE_THREAT_FORENSICS: &str =
    include_str!("../../sim/tap-sim/fixtures/forensics-threat.json");

/// A SIEM window naming [`CAMPAIGN_ID`] (by a message threat and a click)
/// and the campaign-less URL threat [`LONE_THREAT_ID`], so `sync` fetches
/// `/v2/campaign/{id}`, `/v2/forensics?campaignId=` and
/// `/v2/forensics?threatId=` once each.
pub const FIXED_SIEM_BODY: &str = r#"{
  "queryEndTime": "2024-03-25T20:25:00Z",
  "messagesDelivered": [{
    "GUID": "c26dbea0-80d5-463b-b93c-4e8b708219ce",
    "id": "b614fa76-5b4f-6a7c-7bb3-0b452881de25",
    "messageTime": "2024-03-25T20:10:11.000Z",
    "subject": "Please find a totally safe invoice attached.",
    "sender": "e99d7ed5580193f36a51f597bc2c0210@evil.zz",
    "senderIP": "192.0.2.255",
    "recipient": ["clark.kent@pharmtech.example.com"],
    "fromAddress": ["badguy@evil.zz"],
    "messageParts": [{
      "contentType": "application/pdf", "disposition": "attached",
      "filename": "Invoice for Pharmtech.pdf", "md5": "5873c7d37608e0d49bcaa6f32b6c731f",
      "sha256": "2fab740f143fc1aa4c1cd0146d334c5593b1428f6d062b2c406e5efe8abe95ca",
      "sandboxStatus": "threat"
    }],
    "threatsInfoMap": [
      {
        "campaignId": "46e01b8a-c899-404d-bcd9-189bb393d1a7", "classification": "MALWARE",
        "threat": "2fab740f143fc1aa4c1cd0146d334c5593b1428f6d062b2c406e5efe8abe95ca",
        "threatId": "2fab740f143fc1aa4c1cd0146d334c5593b1428f6d062b2c406e5efe8abe95ca",
        "threatStatus": "active", "threatTime": "2024-03-25T20:10:15.000Z", "threatType": "ATTACHMENT"
      },
      {
        "campaignId": null, "classification": "PHISH", "threat": "http://badguy.zz/login",
        "threatId": "3ba97fc852c66a7ba761450edfdfb9f4ffab74715b591294f78b5e37a76481aa",
        "threatStatus": "active", "threatTime": "2024-03-25T20:09:59.000Z", "threatType": "URL"
      }
    ]
  }],
  "clicksPermitted": [{
    "id": "8c8b4895-a277-449f-9797-547e3c89b25a",
    "GUID": "c26dbea0-80d5-463b-b93c-4e8b708219ce",
    "campaignId": "46e01b8a-c899-404d-bcd9-189bb393d1a7", "classification": "MALWARE",
    "clickIP": "192.0.2.1", "clickTime": "2024-03-25T20:17:44.000Z",
    "recipient": "clark.kent@pharmtech.example.com",
    "threatID": "61f7622167144dba5e3ae4480eeee78b23d66f7dfed970cfc3d086cc0dabdf50",
    "threatStatus": "active", "threatTime": "2024-03-25T20:17:46.000Z",
    "url": "http://badguy.zz/"
  }]
}"#;

/// An in-memory TAP: the SIEM body for `/v2/siem/all?...`, exact routes
/// for the rest, and optional catch-all answers for any campaign or
/// forensics request (so a fuzzed SIEM body's campaigns get enriched too).
#[derive(Clone)]
pub struct FuzzTap {
    pub siem: TapResponse,
    pub routes: HashMap<String, TapResponse>,
    pub any_campaign: Option<TapResponse>,
    pub any_forensics: Option<TapResponse>,
    pub requests: Vec<String>,
}

fn ok(body: &[u8]) -> TapResponse {
    TapResponse {
        status: 200,
        body: body.to_vec(),
    }
}

impl FuzzTap {
    pub fn new(siem_body: &[u8]) -> FuzzTap {
        FuzzTap {
            siem: ok(siem_body),
            routes: HashMap::new(),
            any_campaign: None,
            any_forensics: None,
            requests: Vec::new(),
        }
    }

    pub fn route(mut self, path: String, body: &[u8]) -> FuzzTap {
        self.routes.insert(path, ok(body));
        self
    }
}

impl Transport for FuzzTap {
    fn get(&mut self, path_and_query: &str) -> Result<TapResponse, String> {
        self.requests.push(path_and_query.to_string());
        if path_and_query.starts_with("/v2/siem/all?") {
            return Ok(self.siem.clone());
        }
        if let Some(answer) = self.routes.get(path_and_query) {
            return Ok(answer.clone());
        }
        let fallback = if path_and_query.starts_with("/v2/campaign/") {
            self.any_campaign.clone()
        } else if path_and_query.starts_with("/v2/forensics?") {
            self.any_forensics.clone()
        } else {
            None
        };
        Ok(fallback.unwrap_or(TapResponse {
            status: 404,
            body: b"The campaign ID or threat ID does not exist.".to_vec(),
        }))
    }
}

/// A host with a clock that advances 5 ms per reading and a log that only
/// checks it is given sensible lines.
#[derive(Default)]
pub struct QuietHost {
    clock: i64,
}

impl HostServices for QuietHost {
    fn log(&mut self, _level: LogLevel, message: &str, fields: &[(&str, String)]) {
        assert!(!message.is_empty(), "a log line without a message");
        for (name, _) in fields {
            assert!(!name.is_empty(), "a log field without a name: {message}");
        }
    }

    fn now_ms(&mut self) -> i64 {
        self.clock += 5;
        self.clock
    }
}

pub fn window() -> Window {
    Window {
        start: "2024-03-25T20:00:00Z".to_string(),
        end: "2024-03-25T20:25:00Z".to_string(),
    }
}

pub fn settings() -> Settings {
    Settings {
        tap_base_url: "https://tap.fuzz.invalid".to_string(),
        create_incidents: false,
        known_campaigns: Vec::new(),
        already_sent: Vec::new(),
        fresh_threats: Vec::new(),
        queued_campaigns: Vec::new(),
        queued_threats: Vec::new(),
        campaign_allowance: 10,
        threat_forensics_allowance: 10,
        credentials: None,
    }
}

/// One `sync` call over a copy of `tap`; returns the result and the
/// requests made.
pub fn run(tap: &FuzzTap, settings: &Settings) -> (Result<SyncResult, SyncError>, Vec<String>) {
    let mut transport = tap.clone();
    let mut host = QuietHost::default();
    let result = tap_component::sync(settings, &window(), |_| &mut transport, &mut host);
    (result, transport.requests)
}

/// Runs twice and asserts both runs agree, byte for byte.
pub fn run_twice(
    tap: &FuzzTap,
    settings: &Settings,
) -> (Result<SyncResult, SyncError>, Vec<String>) {
    let first = run(tap, settings);
    let second = run(tap, settings);
    assert_eq!(first, second, "the same input gave two different results");
    first
}

/// The result is something ThreatQ can take: no blank values, relations
/// between distinct existing objects, each once.
pub fn check_well_formed(result: &SyncResult) {
    for object in &result.objects {
        assert!(
            !object.value.trim().is_empty(),
            "blank object value: {object:?}"
        );
        if object.kind == ObjectKind::Indicator || object.kind == ObjectKind::Event {
            assert!(
                object
                    .type_name
                    .as_deref()
                    .is_some_and(|t| !t.trim().is_empty()),
                "an indicator or event without a type: {object:?}"
            );
        }
        for attribute in &object.attributes {
            assert!(
                !attribute.name.trim().is_empty(),
                "unnamed attribute: {object:?}"
            );
            assert!(
                !attribute.value.trim().is_empty(),
                "blank attribute value: {object:?}"
            );
        }
    }
    let mut seen = HashSet::new();
    for relation in &result.relations {
        assert!(
            relation.a < relation.b,
            "relation not stored as a < b: {relation:?}"
        );
        assert!(
            (relation.b as usize) < result.objects.len(),
            "relation beyond the objects: {relation:?} with {} objects",
            result.objects.len()
        );
        assert!(seen.insert(*relation), "relation twice: {relation:?}");
    }
    assert!(
        !result.query_end_time.trim().is_empty(),
        "empty query_end_time"
    );
}

/// Every SIEM element of `siem_body` is counted and ends mapped, skipped
/// as already sent, or rejected with a reason; checked against the crate's
/// public per-record decoders.
pub fn check_accounting(siem_body: &[u8], settings: &Settings, result: &SyncResult) {
    let envelope =
        parse_envelope(siem_body).expect("sync mapped the window, so its envelope parses");
    let already_sent: HashSet<&str> = settings.already_sent.iter().map(String::as_str).collect();
    let mut expected_rejections = Vec::new();
    // (key, created_ms) of every record that decoded, in sync's order.
    let mut decoded: Vec<(String, i64)> = Vec::new();
    let arrays = [
        (
            "messagesDelivered",
            &envelope.messages_delivered,
            result.counters.messages_delivered,
        ),
        (
            "messagesBlocked",
            &envelope.messages_blocked,
            result.counters.messages_blocked,
        ),
        (
            "clicksPermitted",
            &envelope.clicks_permitted,
            result.counters.clicks_permitted,
        ),
        (
            "clicksBlocked",
            &envelope.clicks_blocked,
            result.counters.clicks_blocked,
        ),
    ];
    let mut total = 0usize;
    for (name, values, counted) in arrays {
        let values = values.as_deref().unwrap_or_default();
        assert_eq!(counted as usize, values.len(), "counter of {name} is off");
        total += values.len();
        for (index, value) in values.iter().enumerate() {
            let outcome = if name.starts_with("messages") {
                decode_message(name, index, value).map(|m| (m.key, m.created_ms))
            } else {
                decode_click(name, index, value).map(|c| (c.key, c.created_ms))
            };
            match outcome {
                Ok(record) => decoded.push(record),
                Err(rejection) => expected_rejections.push(rejection),
            }
        }
    }
    assert_eq!(
        result.rejections, expected_rejections,
        "rejections differ from the records that fail to decode"
    );
    for rejection in &result.rejections {
        assert!(
            !rejection.key.trim().is_empty(),
            "rejection without a key: {rejection:?}"
        );
        assert!(
            !rejection.reason.trim().is_empty(),
            "rejection without a reason: {rejection:?}"
        );
    }
    assert_eq!(total, result.rejections.len() + decoded.len());

    let skipped = decoded
        .iter()
        .filter(|(key, _)| already_sent.contains(key.as_str()))
        .count();
    assert_eq!(
        result.counters.already_sent_skipped as usize, skipped,
        "already_sent_skipped is off"
    );
    // The keys of the mapped records, each once, first occurrence first.
    let mut expected_keys = Vec::new();
    let mut emitted = HashSet::new();
    for (key, created_ms) in &decoded {
        if !already_sent.contains(key.as_str()) && emitted.insert(key.clone()) {
            expected_keys.push((key.clone(), *created_ms));
        }
    }
    let got: Vec<(String, i64)> = result
        .record_keys
        .iter()
        .map(|k| (k.key.clone(), k.created_ms))
        .collect();
    assert_eq!(
        got, expected_keys,
        "record_keys do not match the mapped records"
    );
    for key in &result.record_keys {
        assert!(!key.key.trim().is_empty(), "blank record key");
    }
}

/// `tap_siem`: `data` is the `/v2/siem/all` body; campaign and forensics
/// requests it causes get the tap-sim fixtures.
pub fn fuzz_siem(data: &[u8]) {
    let mut tap = FuzzTap::new(data);
    tap.any_campaign = Some(ok(FIXTURE_CAMPAIGN.as_bytes()));
    tap.any_forensics = Some(ok(FIXTURE_THREAT_FORENSICS.as_bytes()));

    // Run A: defaults, twice (determinism).
    let plain = settings();
    let (result, _) = run_twice(&tap, &plain);
    let result = match result {
        Ok(result) => result,
        Err(error) => {
            // Only a body that is not TAP's JSON may fail the window, and
            // then with a message saying so.
            assert!(
                matches!(error, SyncError::BadResponse(_)),
                "unexpected error for a 200 SIEM body: {error:?}"
            );
            assert!(
                parse_envelope(data).is_err(),
                "{error} for a body that parses"
            );
            assert!(!error.to_string().trim().is_empty());
            return;
        }
    };
    check_well_formed(&result);
    check_accounting(data, &plain, &result);

    // Run B: every other mapped key already sent, incidents on, a known
    // campaign and tight allowances: the skip and allowance paths.
    let mut varied = settings();
    varied.create_incidents = true;
    varied.campaign_allowance = 1;
    varied.threat_forensics_allowance = 1;
    varied.known_campaigns = vec![CampaignRef {
        id: CAMPAIGN_ID.to_string(),
        name: "Known campaign".to_string(),
    }];
    varied.already_sent = result
        .record_keys
        .iter()
        .step_by(2)
        .map(|k| k.key.clone())
        .collect();
    let (again, _) = run_twice(&tap, &varied);
    let again = again.expect("the window mapped once, so it maps with other settings");
    check_well_formed(&again);
    check_accounting(data, &varied, &again);
    assert!(again.counters.campaign_requests <= 1);
    assert!(again.counters.threat_forensics_requests <= 1);
}

fn fixed_tap() -> FuzzTap {
    FuzzTap::new(FIXED_SIEM_BODY.as_bytes())
}

/// Checks shared by the campaign and forensics targets, whose SIEM body is
/// fixed: the window maps, deterministically, with the usual accounting,
/// and each enrichment endpoint was asked exactly once.
fn check_fixed_window(tap: &FuzzTap) -> SyncResult {
    let plain = settings();
    let (result, requests) = run_twice(tap, &plain);
    let result = result.expect("the fixed SIEM window maps whatever the enrichment answers");
    check_well_formed(&result);
    check_accounting(FIXED_SIEM_BODY.as_bytes(), &plain, &result);
    assert_eq!(result.rejections, [], "the fixed SIEM records all decode");
    let expected = [
        endpoints::campaign(CAMPAIGN_ID),
        endpoints::campaign_forensics(CAMPAIGN_ID),
        endpoints::threat_forensics(LONE_THREAT_ID),
    ];
    for path in &expected {
        assert_eq!(
            requests.iter().filter(|r| *r == path).count(),
            1,
            "{path} not requested exactly once: {requests:?}"
        );
    }
    assert_eq!(
        requests.len(),
        1 + expected.len(),
        "unexpected requests: {requests:?}"
    );
    let c = result.counters;
    assert_eq!(
        (
            c.campaign_requests,
            c.campaign_forensics_requests,
            c.threat_forensics_requests
        ),
        (1, 1, 1)
    );
    result
}

/// `tap_campaign`: `data` is the `/v2/campaign/{id}` body for the
/// campaign the fixed SIEM window names.
pub fn fuzz_campaign(data: &[u8]) {
    let tap = fixed_tap()
        .route(endpoints::campaign(CAMPAIGN_ID), data)
        .route(
            endpoints::campaign_forensics(CAMPAIGN_ID),
            br#"{"reports": []}"#,
        )
        .route(
            endpoints::threat_forensics(LONE_THREAT_ID),
            FIXTURE_THREAT_FORENSICS.as_bytes(),
        );
    let result = check_fixed_window(&tap);
    match parse_campaign(data) {
        Ok(_) => {
            assert_eq!(
                result.campaigns_fetched.len(),
                1,
                "a readable campaign not fetched"
            );
            let fetched = &result.campaigns_fetched[0];
            assert_eq!(fetched.id, CAMPAIGN_ID);
            assert!(
                !fetched.name.trim().is_empty(),
                "a fetched campaign without a name"
            );
            assert!(
                result
                    .objects
                    .iter()
                    .any(|o| o.kind == ObjectKind::Campaign && o.value == fetched.name),
                "the fetched campaign {fetched:?} has no object"
            );
        }
        Err(_) => assert_eq!(
            result.campaigns_fetched,
            [],
            "an unreadable campaign was used"
        ),
    }
}

/// `tap_forensics`: `data` is the answer to both forensics requests of the
/// fixed SIEM window (by campaign id and by threat id).
pub fn fuzz_forensics(data: &[u8]) {
    let tap = fixed_tap()
        .route(
            endpoints::campaign(CAMPAIGN_ID),
            FIXTURE_CAMPAIGN.as_bytes(),
        )
        .route(endpoints::campaign_forensics(CAMPAIGN_ID), data)
        .route(endpoints::threat_forensics(LONE_THREAT_ID), data);
    let result = check_fixed_window(&tap);
    assert_eq!(
        result.campaigns_fetched.len(),
        1,
        "the fixture campaign is fetched"
    );
    let c = result.counters;
    let accounted = u64::from(c.evidence_used) + u64::from(c.evidence_dropped);
    match parse_forensics(data) {
        Ok(answer) => {
            let elements: u64 = answer
                .reports
                .iter()
                .map(|r| r.forensics.len() as u64)
                .sum();
            // Both requests got the same answer; each element of each
            // answer is used or dropped, never lost or counted twice.
            assert_eq!(accounted, 2 * elements, "evidence not all accounted for");
        }
        Err(_) => assert_eq!(accounted, 0, "evidence counted from an unreadable answer"),
    }
}
