//! End to end across windows and runs (docs/sync.md, "Across windows and
//! runs"; docs/mapping.md, "Verdict changes"): a click days after its
//! message, threats that recur all day, and verdicts TAP changes later.

use e2e_tests::records::{message, threat_id, ts, url};
use e2e_tests::{World, completed, failed, now};
use serde_json::{Value, json};
use tap_runtime::RequestCounts;
use tap_sim::{ClickKind, ForensicsScope, MessageKind, TapSimConfig, ThreatStatus};
use threatq_sim::{StoredObject, ThreatqSimConfig};
use time::{Duration, OffsetDateTime};
use tq_conn::run::FailureKind;
use tq_conn::state::Store;

/// A permitted click on message `guid`'s threat at `at`.
fn click(id: &str, guid: &str, at: OffsetDateTime, threat: &str) -> Value {
    json!({
        "id": id,
        "GUID": guid,
        "classification": "phish",
        "clickIP": "10.1.2.3",
        "clickTime": ts(at),
        "messageID": format!("<{guid}@mail.example.com>"),
        "recipient": "victim@example.com",
        "sender": "e99d7ed5580193f36a51f597bc2c0210@evil.zz",
        "senderIP": "192.0.2.10",
        "threatID": threat_id(threat),
        "threatStatus": "active",
        "threatTime": ts(at - Duration::minutes(1)),
        "threatURL": "https://threatinsight.proofpoint.com/x/threat/u/1",
        "url": url(threat),
        "userAgent": "Mozilla/5.0"
    })
}

fn event_titled<'s>(objects: &'s [StoredObject], prefix: &str) -> Vec<&'s StoredObject> {
    objects
        .iter()
        .filter(|o| o.collection == "events" && o.value.starts_with(prefix))
        .collect()
}

fn related(a: &StoredObject, b: &StoredObject) -> bool {
    a.relations
        .iter()
        .any(|(collection, id)| *collection == b.collection && *id == b.id)
}

#[tokio::test]
async fn a_click_two_runs_after_its_message_is_related_to_it() {
    let world = World::start_with(
        TapSimConfig::default(),
        ThreatqSimConfig::default(),
        "history_hours = 2\ncreate_incidents = true\n",
    )
    .await;
    let base = now() - Duration::hours(5);
    let guid = "LateClickGuid0000000000000000001";
    world
        .tap
        .add_message(
            MessageKind::Delivered,
            message(guid, base + Duration::minutes(10), "late", "active"),
        )
        .unwrap();
    let first = completed(world.run_at(base + Duration::hours(1)).await);
    assert_eq!(first.clicks, 0);
    completed(world.run_at(base + Duration::hours(2)).await);
    let before = world.threatq.snapshot();
    let message_before = event_titled(&before.objects, "TAP Message Delivered")[0].clone();
    world
        .tap
        .add_click(
            ClickKind::Permitted,
            click("late-click-1", guid, base + Duration::minutes(150), "late"),
        )
        .unwrap();
    // And a click whose message the connector never saw.
    world
        .tap
        .add_click(
            ClickKind::Permitted,
            click(
                "orphan-click",
                "NeverSeenGuid",
                base + Duration::minutes(155),
                "late",
            ),
        )
        .unwrap();
    let third = completed(world.run_at(base + Duration::hours(3)).await);
    assert_eq!(third.clicks, 2);

    let snapshot = world.threatq.snapshot();
    let messages = event_titled(&snapshot.objects, "TAP Message Delivered");
    assert_eq!(messages.len(), 1, "the message event is not made twice");
    let message_event = messages[0];
    assert!(
        message_event
            .attribute_values("Message GUID")
            .contains(&guid),
        "{message_event:?}"
    );
    let clicks = event_titled(&snapshot.objects, "TAP Click Permitted");
    let incidents = event_titled(&snapshot.objects, "TAP Incident");
    let late = clicks
        .iter()
        .find(|c| c.value.contains("late-click-1"))
        .unwrap();
    let late_incident = incidents
        .iter()
        .find(|c| c.value.contains("late-click-1"))
        .unwrap();
    assert!(
        related(late, message_event),
        "the click relates to its message"
    );
    assert!(
        related(late_incident, message_event),
        "and so does its incident"
    );
    assert_eq!(third.clicks_linked_to_earlier_messages, 2, "{third}");
    let orphan = clicks
        .iter()
        .find(|c| c.value.contains("orphan-click"))
        .unwrap();
    assert_eq!(orphan.attribute_values("Message GUID"), ["NeverSeenGuid"]);
    assert!(
        !orphan
            .relations
            .iter()
            .any(|(collection, id)| { collection == "events" && *id == message_event.id }),
        "a GUID not in the index relates to nothing"
    );
    // The bare identity sent to carry the relation changed nothing else.
    assert_eq!(message_event.attributes, message_before.attributes);
    assert_eq!(message_event.description, message_before.description);
    assert_eq!(message_event.happened_at, message_before.happened_at);
}

/// Issue #27 item 2: a message event ThreatQ refused in its window is kept
/// as a dead letter; once a later run delivers it, it enters the message
/// index, so a click on that message is related to it.
#[tokio::test]
async fn a_message_event_delivered_from_the_dead_letters_is_indexed_for_later_clicks() {
    let world = World::start_with(
        TapSimConfig::default(),
        ThreatqSimConfig::default(),
        "history_hours = 2\n",
    )
    .await;
    let base = now() - Duration::hours(5);
    let guid = "RefusedThenDeliveredGuid00000001";
    world
        .tap
        .add_message(
            MessageKind::Delivered,
            message(
                guid,
                base + Duration::minutes(10),
                "refused-first",
                "active",
            ),
        )
        .unwrap();
    world.threatq.faults().refuse_bodies_containing(guid, 403);
    let first = failed(world.run_at(base + Duration::hours(1)).await);
    assert_eq!(first.kind, FailureKind::Undelivered, "{:#}", first.error);
    assert!(event_titled(&world.threatq.snapshot().objects, "TAP Message").is_empty());

    world.threatq.faults().clear();
    let second = completed(world.run_at(base + Duration::hours(2)).await);
    assert!(second.redelivered >= 1, "{second}");
    world
        .tap
        .add_click(
            ClickKind::Permitted,
            click(
                "click-on-redelivered",
                guid,
                base + Duration::minutes(150),
                "refused-first",
            ),
        )
        .unwrap();
    let third = completed(world.run_at(base + Duration::hours(3)).await);
    assert_eq!(third.clicks_linked_to_earlier_messages, 1, "{third}");

    let snapshot = world.threatq.snapshot();
    let messages = event_titled(&snapshot.objects, "TAP Message Delivered");
    assert_eq!(messages.len(), 1);
    let clicks = event_titled(&snapshot.objects, "TAP Click Permitted");
    assert_eq!(clicks.len(), 1);
    assert!(
        related(clicks[0], messages[0]),
        "the click relates to its message"
    );
}

fn forensics_report(threat: &str) -> Value {
    json!({
        "scope": "THREAT",
        "id": threat_id(threat),
        "name": url(threat),
        "threatStatus": "active",
        "forensics": [{
            "type": "url",
            "display": format!("Callback to c2-{threat}.evil.zz"),
            "malicious": true,
            "what": {"url": format!("http://c2-{threat}.evil.zz/gate.php")},
            "platforms": [{"name": "Win10", "os": "win", "version": "10"}]
        }]
    })
}

fn threat_forensics_requests(world: &World) -> Vec<String> {
    let mut asked: Vec<String> = world
        .tap
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v2/forensics" && r.query.contains("threatId="))
        .map(|r| r.query)
        .collect();
    asked.sort();
    asked
}

#[tokio::test]
async fn recurring_threats_cost_one_forensics_request_each_per_refresh_period() {
    let world = World::start_with(
        TapSimConfig::default(),
        ThreatqSimConfig::default(),
        "history_hours = 3\ncreate_incidents = false\n",
    )
    .await;
    let base = now() - Duration::hours(6);
    let threats = ["r1", "r2", "r3", "r4", "r5", "r6"];
    for threat in threats {
        world
            .tap
            .add_forensics(
                ForensicsScope::Threat(threat_id(threat)),
                forensics_report(threat),
            )
            .unwrap();
    }
    // Each of six campaign-less threats recurs in every hour for five hours.
    for hour in 0..5 {
        for threat in threats {
            let guid = format!("Recurring{threat}Hour{hour}");
            let at = base + Duration::hours(hour) + Duration::minutes(20);
            world
                .tap
                .add_message(MessageKind::Delivered, message(&guid, at, threat, "active"))
                .unwrap();
        }
    }
    let first = completed(world.run_at(base + Duration::hours(3)).await);
    assert!(first.windows_done >= 3, "{first}");
    assert_eq!(
        threat_forensics_requests(&world).len(),
        6,
        "three windows with the same six threats: one request each, not 18"
    );
    let second = completed(world.run_at(base + Duration::hours(5)).await);
    assert!(second.windows_done >= 2);
    assert_eq!(
        threat_forensics_requests(&world).len(),
        6,
        "fresh for the refresh period (7 days): no request in the next run"
    );
    assert_eq!(second.enrichment_queue, 0);
    // The forensic evidence landed once, related to each threat's indicator.
    let snapshot = world.threatq.snapshot();
    for threat in threats {
        let indicator = snapshot.find("indicators", &url(threat)).unwrap();
        let evidence = snapshot
            .find(
                "indicators",
                &format!("http://c2-{threat}.evil.zz/gate.php"),
            )
            .unwrap_or_else(|| panic!("evidence of {threat}"));
        assert!(related(indicator, evidence));
    }
}

#[tokio::test]
async fn a_threat_deferred_for_want_of_budget_is_served_first_by_a_later_run() {
    let world = World::start_with(
        TapSimConfig::default(),
        ThreatqSimConfig::default(),
        "history_hours = 2\ncreate_incidents = false\n",
    )
    .await;
    let first_run = now() - Duration::hours(30);
    let threats = ["d1", "d2", "d3", "d4", "d5"];
    for threat in threats {
        world
            .tap
            .add_forensics(
                ForensicsScope::Threat(threat_id(threat)),
                forensics_report(threat),
            )
            .unwrap();
        let guid = format!("Deferred{threat}");
        world
            .tap
            .add_message(
                MessageKind::Delivered,
                message(&guid, first_run - Duration::minutes(50), threat, "active"),
            )
            .unwrap();
    }
    // Earlier runs spent all but two of the 50 daily forensics-by-threat requests.
    Store::open(world.config_dir())
        .unwrap()
        .spend(
            &RequestCounts {
                threat_forensics: 48,
                ..RequestCounts::default()
            },
            first_run - Duration::hours(1),
        )
        .unwrap();
    let first = completed(world.run_at(first_run).await);
    assert_eq!(threat_forensics_requests(&world).len(), 2);
    assert_eq!(first.enrichment_queue, 3, "{first}");
    assert!(first.to_string().contains("enrichment queue 3"), "{first}");

    // A day later the budget has freed: the queue goes first, whatever the
    // new windows hold.
    let second = completed(world.run_at(now()).await);
    let asked = threat_forensics_requests(&world);
    assert_eq!(asked.len(), 5, "each threat once: {asked:?}");
    for threat in threats {
        assert!(
            asked.iter().any(|q| q.contains(&threat_id(threat))),
            "{threat} was served"
        );
    }
    assert_eq!(second.enrichment_queue, 0, "{second}");
    let snapshot = world.threatq.snapshot();
    for threat in threats {
        assert!(
            snapshot
                .find(
                    "indicators",
                    &format!("http://c2-{threat}.evil.zz/gate.php")
                )
                .is_some(),
            "the evidence of deferred threat {threat} reached ThreatQ"
        );
    }
}

#[tokio::test]
async fn a_threat_that_turns_false_positive_leaves_its_indicator_whitelisted_unless_an_analyst_chose()
 {
    let world = World::start_with(
        TapSimConfig::default(),
        ThreatqSimConfig::default(),
        "history_hours = 2\ncreate_incidents = false\n",
    )
    .await;
    let base = now() - Duration::hours(5);
    let at = base + Duration::minutes(10);
    for (guid, threat, status) in [
        ("TurnsFalsePositive", "turns", "active"),
        ("AnalystsOwn", "analyst", "active"),
        ("TurnsCleared", "cleared", "active"),
        ("NeverActive", "never", "falsePositive"),
    ] {
        world
            .tap
            .add_message(MessageKind::Delivered, message(guid, at, threat, status))
            .unwrap();
    }
    completed(world.run_at(base + Duration::hours(1)).await);
    let snapshot = world.threatq.snapshot();
    let status_of = |snapshot: &threatq_sim::Snapshot, threat: &str| {
        snapshot.find("indicators", &url(threat)).map(|i| {
            (
                i.status.clone(),
                i.attribute_values("Threat Status").join(","),
            )
        })
    };
    assert_eq!(
        status_of(&snapshot, "turns"),
        Some((Some("Review".into()), "active".into()))
    );
    assert_eq!(
        status_of(&snapshot, "never"),
        None,
        "a false positive never becomes an indicator"
    );
    // An analyst decides about one indicator in ThreatQ's UI.
    world
        .threatq
        .set_status("indicators", &url("analyst"), "Active");

    // TAP changes its verdicts; the records surface again at the new threat time.
    let changed = base + Duration::minutes(80);
    for (threat, status) in [
        ("turns", ThreatStatus::FalsePositive),
        ("analyst", ThreatStatus::FalsePositive),
        ("cleared", ThreatStatus::Cleared),
        ("never", ThreatStatus::FalsePositive),
    ] {
        assert_eq!(
            world
                .tap
                .change_verdict(&threat_id(threat), status, changed),
            1
        );
    }
    let second = completed(world.run_at(base + Duration::hours(2)).await);
    let snapshot = world.threatq.snapshot();
    assert_eq!(
        status_of(&snapshot, "turns"),
        Some((Some("Whitelisted".into()), "falsePositive".into())),
        "the connector's own status moves to the configured one; the attribute shows the verdict"
    );
    assert_eq!(
        status_of(&snapshot, "analyst"),
        Some((Some("Active".into()), "falsePositive".into())),
        "an analyst's status is never overwritten"
    );
    assert_eq!(
        status_of(&snapshot, "cleared"),
        Some((Some("Review".into()), "cleared".into())),
        "cleared updates the attribute only"
    );
    assert_eq!(status_of(&snapshot, "never"), None);
    assert_eq!(second.statuses_changed, 1, "{second}");
    assert_eq!(second.statuses_left_alone, 1, "{second}");
    assert_eq!(second.verdicts_applied, 3, "{second}");

    // A verdict applied once is not looked up again when a later record
    // repeats it.
    world
        .tap
        .add_message(
            MessageKind::Delivered,
            message(
                "RepeatsTheVerdict",
                base + Duration::minutes(130),
                "turns",
                "falsePositive",
            ),
        )
        .unwrap();
    world.threatq.clear_requests();
    let updates_before = world.threatq.updates().len();
    let third = completed(world.run_at(base + Duration::hours(3)).await);
    assert_eq!(third.messages, 1, "the repeating record was read: {third}");
    let lookups = world
        .threatq
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/api/indicators")
        .count();
    assert_eq!(lookups, 0, "the verdict ledger knows it is applied");
    assert_eq!(world.threatq.updates().len(), updates_before);
}

/// Issue #27 item 2: objects naming a campaign TAP could not give when
/// they were sent are related to it once a later run fetches it, through
/// the campaign mentions the store keeps.
#[tokio::test]
async fn objects_naming_a_campaign_fetched_in_a_later_run_are_related_to_it() {
    let world = World::start_with(
        TapSimConfig::default(),
        ThreatqSimConfig::default(),
        "history_hours = 2\n",
    )
    .await;
    let base = now() - Duration::hours(5);
    let campaign_id = "5d1e8d4a-0000-4000-8000-00000000c1a7";
    let naming = |guid: &str, at: OffsetDateTime, threat: &str| {
        let mut record = message(guid, at, threat, "active");
        record["threatsInfoMap"][0]["campaignID"] = json!(campaign_id);
        record
    };
    world
        .tap
        .add_message(
            MessageKind::Delivered,
            naming(
                "EarlyMentionGuid0000000000000001",
                base + Duration::minutes(10),
                "early",
            ),
        )
        .unwrap();
    // TAP does not know the campaign yet: the objects keep its id.
    let first = completed(world.run_at(base + Duration::hours(1)).await);
    assert_eq!(first.linked_to_late_campaigns, 0);
    assert_eq!(world.threatq.snapshot().count("campaign"), 0);

    world
        .tap
        .add_campaign(json!({
            "id": campaign_id,
            "name": "Late Campaign",
            "description": "Known to TAP from now on.",
            "startDate": ts(base),
            "notable": false,
            "actors": [], "malware": [], "techniques": [], "families": [], "brands": [],
            "campaignMembers": []
        }))
        .unwrap();
    world
        .tap
        .add_message(
            MessageKind::Delivered,
            naming(
                "LateMentionGuid00000000000000001",
                base + Duration::minutes(70),
                "late",
            ),
        )
        .unwrap();
    let second = completed(world.run_at(base + Duration::hours(2)).await);
    assert!(second.linked_to_late_campaigns >= 1, "{second}");

    let snapshot = world.threatq.snapshot();
    let campaign = snapshot
        .objects
        .iter()
        .find(|o| o.collection == "campaign" && o.value == "Late Campaign")
        .expect("the campaign is in ThreatQ");
    let early = snapshot
        .objects
        .iter()
        .find(|o| o.collection == "events" && o.value.contains("EarlyMentionGuid"))
        .expect("the early message event");
    assert!(related(early, campaign), "{early:?}");
    let early_url = snapshot
        .objects
        .iter()
        .find(|o| o.collection == "indicators" && o.value == url("early"))
        .expect("the early URL");
    assert!(related(early_url, campaign), "{early_url:?}");
    // Related once, and nothing else changed on the early event.
    assert_eq!(early.attribute_values("Campaign ID"), [campaign_id]);

    // The mentions are settled: a third run relates nothing again.
    let third = completed(world.run_at(base + Duration::hours(3)).await);
    assert_eq!(third.linked_to_late_campaigns, 0, "{third}");
}

fn campaign_lookups(world: &World) -> Vec<String> {
    world
        .tap
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/v2/campaign/"))
        .map(|r| r.path)
        .collect()
}

#[tokio::test]
async fn a_campaign_is_looked_up_once_per_refresh_period_not_once_per_run() {
    let world = World::start_with(
        TapSimConfig::default(),
        ThreatqSimConfig::default(),
        "history_hours = 6\ncreate_incidents = false\ncampaign_refresh_hours = 24\n",
    )
    .await;
    let now = now();
    // Six hours of a tenant whose four campaigns recur every hour.
    world.load(&e2e_tests::tenant(21, 6, now));
    completed(world.run_at(now - Duration::hours(3)).await);
    let first = campaign_lookups(&world);
    assert!(!first.is_empty(), "the campaigns were looked up");
    let mut distinct = first.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        first.len(),
        distinct.len(),
        "each campaign once in a run: {first:?}"
    );

    world.tap.clear_requests();
    completed(world.run_at(now).await);
    // The second run's windows name campaigns too (the tenant's recur every
    // hour), so a lookup was possible.
    let since = (now - Duration::hours(3))
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap();
    let recent_mentions = world
        .threatq
        .snapshot()
        .objects
        .iter()
        .filter(|o| {
            o.collection == "events"
                && o.happened_at
                    .as_deref()
                    .is_some_and(|h| h >= since.as_str())
                && !o.attribute_values("Campaign ID").is_empty()
        })
        .count();
    assert!(recent_mentions > 0, "the second run's data names campaigns");
    let again: Vec<String> = campaign_lookups(&world)
        .into_iter()
        .filter(|path| first.contains(path))
        .collect();
    assert!(
        again.is_empty(),
        "campaigns fetched by the earlier run are fresh for 24 hours: {again:?}"
    );
    let snapshot = world.threatq.snapshot();
    assert!(snapshot.count("campaign") >= distinct.len());
}
