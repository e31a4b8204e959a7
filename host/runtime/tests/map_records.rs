//! `Runtime::map_records` through the real sandbox, against the TAP
//! simulator: the records of a SIEM window, replayed as their exact raw
//! text, map as `sync` mapped them, with the same enrichment requests and
//! no SIEM request; records that still cannot be mapped come back as
//! rejections with their section and raw text.

use std::time::Duration as StdDuration;

use serde_json::value::RawValue;
use tap_runtime::{
    ComponentSource, Limits, OutboundPolicy, QuarantinedRecord, RequestCounts, Runtime,
    RuntimeConfig, Settings, SyncResult, TapOrigin, Window,
};
use tap_sim::{TapSim, TapSimConfig, TenantSpec};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

const SECTIONS: [&str; 4] = [
    "messagesDelivered",
    "messagesBlocked",
    "clicksPermitted",
    "clicksBlocked",
];

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("formats")
}

fn policy(tap: &TapSim) -> OutboundPolicy {
    OutboundPolicy {
        origin: TapOrigin::parse(&tap.base_url()).expect("sim URL"),
        principal: tap.principal().to_owned(),
        secret: tap.secret().into(),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        request_timeout: StdDuration::from_secs(60),
        max_response_bytes: OutboundPolicy::DEFAULT_MAX_RESPONSE_BYTES,
    }
}

/// The SIEM body of `window` as the simulator serves it, each record as its
/// exact JSON text with its section.
async fn siem_records(tap: &TapSim, window: &Window) -> Vec<QuarantinedRecord> {
    let body = reqwest::Client::new()
        .get(format!("{}/v2/siem/all", tap.base_url()))
        .query(&[
            ("format", "json"),
            ("interval", &format!("{}/{}", window.start, window.end)),
            // As the component asks: every threat status.
            ("threatStatus", "active"),
            ("threatStatus", "cleared"),
            ("threatStatus", "falsePositive"),
        ])
        .basic_auth(tap.principal(), Some(tap.secret()))
        .send()
        .await
        .expect("the simulator answers")
        .error_for_status()
        .expect("a 200")
        .text()
        .await
        .expect("a body");
    let envelope: std::collections::HashMap<String, &RawValue> =
        serde_json::from_str(&body).expect("a JSON object");
    let mut records = Vec::new();
    for section in SECTIONS {
        let Some(array) = envelope.get(section) else {
            continue;
        };
        let elements: Vec<&RawValue> = serde_json::from_str(array.get()).expect("an array");
        records.extend(elements.into_iter().map(|raw| QuarantinedRecord {
            section: section.to_owned(),
            raw: raw.get().to_owned(),
        }));
    }
    records
}

/// `sync`'s answer with what only its SIEM request gives taken out.
fn without_the_siem_request(mut r: SyncResult) -> SyncResult {
    r.query_end_time = String::new();
    r.counters.siem_requests = 0;
    r
}

fn enrichment(r: &RequestCounts) -> (u32, u32, u32) {
    (r.campaign, r.campaign_forensics, r.threat_forensics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_records_maps_a_windows_raw_records_as_sync_did_without_a_siem_request() {
    let tap = TapSim::start(TapSimConfig::default())
        .await
        .expect("TAP simulator starts");
    let end = tap.now().replace_nanosecond(0).expect("whole second") - Duration::minutes(10);
    let start = end - Duration::hours(1);
    let mut spec = TenantSpec::new(7, start, end);
    spec.messages_per_hour = 20;
    spec.clicks_per_hour = 10;
    tap.load_tenant(&tap_sim::generator::generate(&spec));
    let window = Window {
        start: rfc3339(start),
        end: rfc3339(end),
    };
    let settings = Settings {
        tap_base_url: tap.base_url(),
        create_incidents: true,
        known_campaigns: Vec::new(),
        already_sent: Vec::new(),
        fresh_threats: Vec::new(),
        queued_campaigns: Vec::new(),
        queued_threats: Vec::new(),
        campaign_allowance: 10,
        threat_forensics_allowance: 3,
        credentials: None,
        summarised_threats: Vec::new(),
        queued_summaries: Vec::new(),
        threat_summary_allowance: 0,
        people: Vec::new(),
    };
    let runtime = Runtime::new(RuntimeConfig {
        component: ComponentSource::Embedded,
        cache_dir: None,
        limits: Limits::default(),
    })
    .expect("the embedded component loads");
    let policy = policy(&tap);

    let synced = runtime.sync(&policy, &settings, &window).await;
    let synced_answer = synced
        .answer
        .expect("the component ran")
        .expect("the window maps");
    assert_eq!(synced.requests.siem, 1);
    assert!(
        synced_answer.objects.len() > 20,
        "a real window: {} objects",
        synced_answer.objects.len()
    );

    let records = siem_records(&tap, &window).await;
    assert!(records.len() > 20, "{} records", records.len());
    tap.clear_requests();
    let mapped = runtime.map_records(&policy, &settings, &records).await;
    let answer = mapped
        .answer
        .expect("the component ran")
        .expect("the records map");

    assert_eq!(
        mapped.requests.siem, 0,
        "no SIEM request: {:?}",
        mapped.requests
    );
    assert!(
        tap.requests()
            .iter()
            .all(|r| !r.path.starts_with("/v2/siem")),
        "the simulator saw no SIEM request"
    );
    assert_eq!(enrichment(&mapped.requests), enrichment(&synced.requests));
    assert!(mapped.requests.campaign > 0, "{:?}", mapped.requests);
    assert_eq!(answer.query_end_time, "", "not a checkpoint");
    assert_eq!(answer.counters.siem_requests, 0);
    // The generated types derive Debug but not PartialEq.
    let same =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") == format!("{b:?}");
    assert!(same(&answer.objects, &synced_answer.objects), "objects");
    assert!(
        same(&answer.relations, &synced_answer.relations),
        "relations"
    );
    assert!(
        same(&answer.record_keys, &synced_answer.record_keys),
        "record keys"
    );
    assert_eq!(
        format!("{answer:#?}"),
        format!("{:#?}", without_the_siem_request(synced_answer)),
        "the whole result, counters included"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_still_cannot_be_mapped_come_back_with_their_section_and_raw() {
    let tap = TapSim::start(TapSimConfig::default())
        .await
        .expect("TAP simulator starts");
    let runtime = Runtime::new(RuntimeConfig {
        component: ComponentSource::Embedded,
        cache_dir: None,
        limits: Limits::default(),
    })
    .expect("the embedded component loads");
    let settings = Settings {
        tap_base_url: tap.base_url(),
        create_incidents: false,
        known_campaigns: Vec::new(),
        already_sent: Vec::new(),
        fresh_threats: Vec::new(),
        queued_campaigns: Vec::new(),
        queued_threats: Vec::new(),
        campaign_allowance: 0,
        threat_forensics_allowance: 0,
        credentials: None,
        summarised_threats: Vec::new(),
        queued_summaries: Vec::new(),
        threat_summary_allowance: 0,
        people: Vec::new(),
    };
    let records = [
        QuarantinedRecord {
            section: "messagesBlocked".into(),
            raw: r#"{"GUID": "g-1", "messageTime": "soon"}"#.into(),
        },
        QuarantinedRecord {
            section: "messagesQuarantined".into(),
            raw: r#"{"id": "c-1"}"#.into(),
        },
    ];
    let outcome = runtime
        .map_records(&policy(&tap), &settings, &records)
        .await;
    let answer = outcome
        .answer
        .expect("the component ran")
        .expect("rejections do not fail the call");
    assert_eq!(outcome.requests.sent(), 0, "{:?}", outcome.requests);
    assert!(tap.requests().is_empty());
    let got: Vec<(&str, &str, &str)> = answer
        .rejections
        .iter()
        .map(|r| (r.section.as_str(), r.raw.as_str(), r.key.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "messagesBlocked",
                records[0].raw.as_str(),
                "message GUID=g-1"
            ),
            ("messagesQuarantined", records[1].raw.as_str(), "records[1]"),
        ]
    );
    assert!(answer.rejections[0].reason.contains("messageTime"));
    assert!(answer.objects.is_empty() && answer.record_keys.is_empty());
}
