//! End to end: the context no other TAP integration gives (docs/mapping.md,
//! "Threat summaries" and "People"; docs/sync.md, "People lists"): a
//! campaign-less threat's indicator related to what TAP's Threat API names,
//! each threat summarised once per refresh period within an allowance, and
//! the events of Very Attacked People and top clickers marked.

use std::io::Write;
use std::sync::{Arc, Mutex};

use e2e_tests::records::{message, threat_id, ts, url};
use e2e_tests::{World, completed, now};
use serde_json::{Value, json};
use tap_sim::{ClickKind, MessageKind, Person, TapSimConfig};
use threatq_sim::{Snapshot, StoredObject, ThreatqSimConfig};
use time::{Duration, OffsetDateTime};
use tq_conn::report::PeopleNote;

fn summary(actor: &str, malware: &str, technique: &str) -> Value {
    json!({
        "id": "ignored", "identifiedAt": "2026-12-01T15:30:10.000Z", "name": "x",
        "type": "url", "category": "phish", "status": "active",
        "severityScore": 740, "attackSpread": "12", "notable": true,
        "actors": [{"id": "a", "name": actor}],
        "families": [{"id": "f", "name": "Credential Phishing"}],
        "malware": [{"id": "m", "name": malware}],
        "techniques": [{"id": "t", "name": technique}],
        "brands": [{"id": "b", "name": "DocuSign"}],
        "verticallyTargeted": false
    })
}

fn find<'s>(snapshot: &'s Snapshot, collection: &str, value: &str) -> &'s StoredObject {
    snapshot
        .find(collection, value)
        .unwrap_or_else(|| panic!("ThreatQ holds no {collection} {value}"))
}

fn related(a: &StoredObject, b: &StoredObject) -> bool {
    a.relations
        .iter()
        .any(|(collection, id)| *collection == b.collection && *id == b.id)
}

fn events_titled<'s>(snapshot: &'s Snapshot, prefix: &str) -> Vec<&'s StoredObject> {
    snapshot
        .objects
        .iter()
        .filter(|o| o.collection == "events" && o.value.starts_with(prefix))
        .collect()
}

/// The summary requests the TAP simulator answered, by threat id.
fn summary_requests(world: &World) -> Vec<String> {
    world
        .tap
        .requests()
        .into_iter()
        .filter_map(|r| {
            r.path
                .strip_prefix("/v2/threat/summary/")
                .map(str::to_string)
        })
        .collect()
}

fn people_requests(world: &World, list: &str) -> usize {
    world
        .tap
        .requests()
        .iter()
        .filter(|r| r.path == format!("/v2/people/{list}"))
        .count()
}

#[tokio::test]
async fn a_campaignless_threats_indicator_is_related_to_what_its_summary_names() {
    let world = World::start_with(
        TapSimConfig::default(),
        ThreatqSimConfig::default(),
        "history_hours = 2\n",
    )
    .await;
    let base = now() - Duration::hours(3);
    world
        .tap
        .add_message(
            MessageKind::Delivered,
            message(
                "SummaryGuid00000000000000000001",
                base + Duration::hours(2),
                "lonely",
                "active",
            ),
        )
        .unwrap();
    world
        .tap
        .add_threat_summary(
            &threat_id("lonely"),
            summary("TA4557", "DarkGate", "HTML smuggling"),
        )
        .unwrap();

    let run = completed(world.run_at(base + Duration::hours(3)).await);
    assert_eq!(
        (run.threat_summaries, run.threat_summaries_deferred),
        (1, 0)
    );
    assert!(
        run.to_string()
            .contains("threat summaries 1 fetched, 0 deferred"),
        "{run}"
    );

    let held = world.threatq.snapshot();
    let indicator = find(&held, "indicators", &url("lonely"));
    let event = events_titled(&held, "TAP Message Delivered")[0];
    for (collection, name) in [
        ("adversaries", "TA4557"),
        ("malware", "DarkGate"),
        ("attack_pattern", "HTML smuggling"),
    ] {
        let object = find(&held, collection, name);
        assert!(
            related(indicator, object),
            "the indicator is related to {name}"
        );
        assert!(related(event, object), "the event is related to {name}");
    }
    for (name, value) in [
        ("Malware Family", "Credential Phishing"),
        ("Targeted Brand", "DocuSign"),
        ("TAP Severity", "740"),
        ("Attack Spread", "12"),
        ("Notable", "true"),
        ("Threat Category", "phish"),
        ("Identified At", "2026-12-01 15:30:10"),
    ] {
        assert_eq!(indicator.attribute_values(name), [value], "{name}");
    }
    assert_eq!(summary_requests(&world), [threat_id("lonely")]);
}

#[tokio::test]
async fn each_threat_is_summarised_once_per_refresh_period_and_what_the_allowance_leaves_waits() {
    let world = World::start_with(
        TapSimConfig::default(),
        ThreatqSimConfig::default(),
        "history_hours = 2\nthreat_summaries_per_day = 2\nthreat_refresh_days = 1\n",
    )
    .await;
    let base = now() - Duration::hours(60);
    for (i, threat) in ["one", "two", "three"].into_iter().enumerate() {
        let guid = format!("OnceGuid{i:0>24}");
        world
            .tap
            .add_message(
                MessageKind::Delivered,
                message(
                    &guid,
                    base + Duration::minutes(10 + i as i64),
                    threat,
                    "active",
                ),
            )
            .unwrap();
        world
            .tap
            .add_threat_summary(
                &threat_id(threat),
                summary("TA577", threat, "QR code phishing"),
            )
            .unwrap();
    }

    // Two a day: the third waits in the queue.
    let first = completed(world.run_at(base + Duration::hours(1)).await);
    assert_eq!(
        (first.threat_summaries, first.threat_summaries_deferred),
        (2, 1)
    );
    assert_eq!(summary_requests(&world).len(), 2);
    let waiting = world.state().enrichment_queue;
    assert_eq!(waiting, 1);

    // The same threat again an hour later: not asked again, and the queue
    // waits for the budget.
    world
        .tap
        .add_message(
            MessageKind::Delivered,
            message(
                "OnceGuidAgain000000000000000001",
                base + Duration::minutes(70),
                "one",
                "active",
            ),
        )
        .unwrap();
    let second = completed(world.run_at(base + Duration::hours(2)).await);
    assert_eq!(second.threat_summaries, 0);
    assert_eq!(summary_requests(&world).len(), 2);
    let held = world.threatq.snapshot();
    let again = held
        .objects
        .iter()
        .find(|o| o.collection == "events" && o.value.contains("OnceGuidAgain"))
        .expect("the second message is held");
    assert!(
        related(again, find(&held, "malware", "one")),
        "a later event of a summarised threat is related to what its summary named"
    );

    // A day on, the budget is free again: the queued one is served first.
    let third = completed(world.run_at(base + Duration::hours(26)).await);
    assert_eq!(third.threat_summaries, 1);
    let asked = summary_requests(&world);
    assert_eq!(asked.len(), 3);
    assert_eq!(
        {
            let mut asked = asked.clone();
            asked.sort();
            asked.dedup();
            asked.len()
        },
        3,
        "each threat asked once: {asked:?}"
    );
    assert_eq!(world.state().enrichment_queue, 0);
    let held = world.threatq.snapshot();
    let three = find(&held, "indicators", &url("three"));
    let malware_three = find(&held, "malware", "three");
    assert!(related(three, malware_three));
    // The event that carried it a day ago is related too, through the
    // mentions kept while its summary waited.
    let first_event = held
        .objects
        .iter()
        .find(|o| o.collection == "events" && o.value.contains(&format!("OnceGuid{:0>24}", 2)))
        .expect("the first run's event of threat three");
    assert!(related(first_event, malware_three));
    assert!(
        third.to_string().contains("earlier objects related"),
        "{third}"
    );

    // Past the refresh period, a threat seen again is asked again.
    world
        .tap
        .add_message(
            MessageKind::Delivered,
            message(
                "OnceGuidLater000000000000000001",
                base + Duration::hours(50),
                "one",
                "active",
            ),
        )
        .unwrap();
    let fourth = completed(world.run_at(base + Duration::hours(51)).await);
    assert_eq!(fourth.threat_summaries, 1);
    let asked = summary_requests(&world);
    assert_eq!(
        asked.iter().filter(|id| **id == threat_id("one")).count(),
        2
    );
}

#[tokio::test]
async fn a_failed_summary_is_deferred_and_never_fails_the_window() {
    let world = World::start_with(
        TapSimConfig::default(),
        ThreatqSimConfig::default(),
        "history_hours = 2\n",
    )
    .await;
    let base = now() - Duration::hours(4);
    world
        .tap
        .add_message(
            MessageKind::Delivered,
            message(
                "FailGuid000000000000000000000001",
                base + Duration::minutes(30),
                "flaky",
                "active",
            ),
        )
        .unwrap();
    world
        .tap
        .add_threat_summary(
            &threat_id("flaky"),
            summary("TA542", "Emotet", "OneNote attachment"),
        )
        .unwrap();
    world.tap.faults().fail_next_threat_summaries(1, 500);
    let first = completed(world.run_at(base + Duration::hours(1)).await);
    assert_eq!(
        (first.threat_summaries, first.threat_summaries_deferred),
        (0, 1)
    );
    assert_eq!(first.windows_done, first.windows_planned);
    assert!(world.threatq.snapshot().find("malware", "Emotet").is_none());

    let second = completed(world.run_at(base + Duration::hours(2)).await);
    assert_eq!(
        (second.threat_summaries, second.threat_summaries_deferred),
        (1, 0)
    );
    let held = world.threatq.snapshot();
    assert!(related(
        find(&held, "indicators", &url("flaky")),
        find(&held, "malware", "Emotet")
    ));
}

fn person(email: &str, attack_index: u32, click_count: u32, vip: bool) -> Person {
    Person {
        guid: format!("guid-{email}"),
        emails: vec![email.to_string()],
        name: "Someone".into(),
        vip,
        attack_index,
        click_count,
        ..Person::default()
    }
}

/// A permitted click by `victim@example.com` on message `guid`'s threat.
fn click(guid: &str, at: OffsetDateTime, threat: &str) -> Value {
    json!({
        "id": format!("{guid}-click"),
        "GUID": guid,
        "classification": "phish",
        "clickIP": "10.1.2.3",
        "clickTime": ts(at),
        "recipient": "victim@example.com",
        "sender": "e99d7ed5580193f36a51f597bc2c0210@evil.zz",
        "threatID": threat_id(threat),
        "threatStatus": "active",
        "threatTime": ts(at - Duration::minutes(1)),
        "url": url(threat),
        "userAgent": "Mozilla/5.0"
    })
}

#[tokio::test]
async fn a_very_attacked_persons_permitted_click_gives_a_marked_incident_and_click_event() {
    let world = World::start_with(
        TapSimConfig::default(),
        ThreatqSimConfig::default(),
        "history_hours = 2\ncreate_incidents = true\n",
    )
    .await;
    // The address as TAP lists it differs in case from the records'.
    world.tap.set_very_attacked_people(vec![
        person("Victim@Example.com", 2410, 0, true),
        person("someone.else@example.com", 3000, 0, false),
    ]);
    world
        .tap
        .set_top_clickers(vec![person("victim@example.com", 0, 7, false)]);
    let base = now() - Duration::hours(5);
    let guid = "VapGuid0000000000000000000000001";
    world
        .tap
        .add_message(
            MessageKind::Delivered,
            message(guid, base + Duration::hours(2), "vap", "active"),
        )
        .unwrap();
    world
        .tap
        .add_click(
            ClickKind::Permitted,
            click(guid, base + Duration::minutes(130), "vap"),
        )
        .unwrap();

    let run = completed(world.run_at(base + Duration::hours(3)).await);
    assert_eq!(run.people_marked_events, 3, "message, click and incident");
    assert_eq!(
        run.people,
        PeopleNote::Used {
            very_attacked: 2,
            top_clickers: 1,
            age: Duration::ZERO
        }
    );
    assert!(
        run.to_string()
            .contains("people lists 2 very attacked, 1 top clickers (0 h old), 3 events marked"),
        "{run}"
    );
    let held = world.threatq.snapshot();
    let incident = events_titled(&held, "TAP Incident")[0];
    let click_event = events_titled(&held, "TAP Click Permitted")[0];
    let message_event = events_titled(&held, "TAP Message Delivered")[0];
    for event in [incident, click_event, message_event] {
        assert_eq!(
            event.attribute_values("Very Attacked Person"),
            ["victim@example.com"],
            "{}",
            event.value
        );
        assert_eq!(
            event.attribute_values("Attack Index"),
            ["2410"],
            "{}",
            event.value
        );
        assert_eq!(
            event.attribute_values("Top Clicker"),
            ["victim@example.com"]
        );
        assert_eq!(event.attribute_values("VIP"), ["victim@example.com"]);
    }
    assert!(
        find(&held, "indicators", &url("vap"))
            .attribute_values("Very Attacked Person")
            .is_empty(),
        "only events are marked"
    );
    assert_eq!(people_requests(&world, "vap"), 1);
    assert_eq!(people_requests(&world, "top-clickers"), 1);

    // Within the refresh period the lists are not read again, but a new
    // event of the same person is still marked.
    world
        .tap
        .add_message(
            MessageKind::Delivered,
            message(
                "VapGuid0000000000000000000000002",
                base + Duration::minutes(190),
                "vap2",
                "active",
            ),
        )
        .unwrap();
    let second = completed(world.run_at(base + Duration::hours(4)).await);
    assert_eq!(second.people_marked_events, 1);
    assert_eq!(people_requests(&world, "vap"), 1);
    assert_eq!(people_requests(&world, "top-clickers"), 1);
}

/// Collects what the connector logs while it is alive.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn count(&self, needle: &str) -> usize {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .matches(needle)
            .count()
    }
}

#[tokio::test]
async fn a_tenant_without_the_people_api_runs_on_with_one_warning_a_day_and_no_retry_storm() {
    let log = Log::default();
    let sink = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_max_level(tracing::Level::WARN)
        .finish();
    // This test's runtime polls everything on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    let world = World::start_with(
        TapSimConfig {
            people_api: false,
            ..TapSimConfig::default()
        },
        ThreatqSimConfig::default(),
        "history_hours = 2\ncreate_incidents = true\npeople_refresh_hours = 6\n",
    )
    .await;
    let base = now() - Duration::hours(40);
    world
        .tap
        .add_message(
            MessageKind::Delivered,
            message(
                "NoPeopleGuid00000000000000000001",
                base + Duration::minutes(30),
                "np",
                "active",
            ),
        )
        .unwrap();
    let warning = "TAP's people lists are not fully available";

    let first = completed(world.run_at(base + Duration::hours(1)).await);
    assert_eq!(first.people_marked_events, 0);
    match &first.people {
        PeopleNote::Unavailable(why) => assert!(why.contains("403"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(log.count(warning), 1);
    assert_eq!(people_requests(&world, "vap"), 1);
    assert_eq!(people_requests(&world, "top-clickers"), 1);

    // Hourly runs: asked again once per refresh period (6 h), warned once
    // a day; every run completes.
    for hour in 2..=25 {
        completed(world.run_at(base + Duration::hours(hour)).await);
    }
    assert_eq!(
        people_requests(&world, "vap"),
        5,
        "at 1, 7, 13, 19 and 25 h"
    );
    assert_eq!(log.count(warning), 2, "at 1 h and again at 25 h");
    assert!(
        world
            .threatq
            .snapshot()
            .find("indicators", &url("np"))
            .is_some()
    );
}
