//! End to end, TAP's verdicts over time (docs/mapping.md, "Verdict
//! changes"; docs/sync.md, "Verdicts and the deadline"): a verdict changes
//! only what the connector owns, TAP's latest word wins however often it
//! flips, a verdict waits for a dead-lettered indicator, and the run's
//! deadline cuts verdict work off without losing it.

use std::time::Duration as StdDuration;

use e2e_tests::records::{message, threat_id, url};
use e2e_tests::{World, completed, failed, now};
use serde_json::json;
use tap_sim::{MessageKind, TapSimConfig, ThreatStatus};
use threatq_sim::{Snapshot, ThreatqSimConfig};
use time::{Duration, OffsetDateTime};
use tq_conn::run::FailureKind;

const OTHER_FEED: &str = "Other Feed";

/// A world whose first run covers two hours, with active messages for
/// `threats` ten minutes after `base`.
async fn world_with(base: OffsetDateTime, threats: &[&str]) -> World {
    let world = World::start_with(
        TapSimConfig::default(),
        ThreatqSimConfig::default(),
        "history_hours = 2\ncreate_incidents = false\n",
    )
    .await;
    for threat in threats {
        world
            .tap
            .add_message(
                MessageKind::Delivered,
                message(
                    &format!("G-{threat}"),
                    base + Duration::minutes(10),
                    threat,
                    "active",
                ),
            )
            .unwrap();
    }
    world
}

/// (status, Threat Status values) of `threat`'s URL indicator.
fn held(snapshot: &Snapshot, threat: &str) -> Option<(Option<String>, Vec<String>)> {
    snapshot.find("indicators", &url(threat)).map(|indicator| {
        (
            indicator.status.clone(),
            indicator
                .attribute_values("Threat Status")
                .into_iter()
                .map(str::to_owned)
                .collect(),
        )
    })
}

fn status(status: &str, threat_statuses: &[&str]) -> Option<(Option<String>, Vec<String>)> {
    Some((
        Some(status.to_owned()),
        threat_statuses.iter().map(|s| (*s).to_owned()).collect(),
    ))
}

/// TAP changes `threat`'s verdict at `at`; its record surfaces again.
fn flip(world: &World, threat: &str, to: ThreatStatus, at: OffsetDateTime) {
    assert_eq!(world.tap.change_verdict(&threat_id(threat), to, at), 1);
}

/// Another feed stores `value` as a URL indicator with its own Threat
/// Status, as its consume would.
fn other_feed_reports(world: &World, value: &str, threat_status: &str) {
    world
        .threatq
        .consume(
            "indicators",
            &json!([{
                "value": value,
                "type": { "name": "URL" },
                "status": { "name": "Review" },
                "attributes": [{ "name": "Threat Status", "value": threat_status,
                                 "sources": [{ "name": OTHER_FEED }] }],
                "sources": [{ "name": OTHER_FEED }],
            }]),
        )
        .expect("the other feed's indicator");
}

/// Issue case: an indicator another feed created (status `Review`, the
/// connector's own) was whitelisted when TAP called a false positive, and
/// the other feed's Threat Status was deleted. Now only our own value
/// changes and the status stays; an indicator we created keeps moving even
/// after another feed reported it too.
#[tokio::test]
async fn a_foreign_indicator_tap_calls_a_false_positive_keeps_its_status_and_the_other_sources_threat_status()
 {
    let base = now() - Duration::hours(5);
    let world = world_with(base, &["foreign", "ours"]).await;
    other_feed_reports(&world, &url("foreign"), "malicious");
    completed(world.run_at(base + Duration::hours(1)).await);
    let snapshot = world.threatq.snapshot();
    assert_eq!(
        held(&snapshot, "foreign"),
        status("Review", &["malicious", "active"])
    );
    // The other feed reports our indicator too, later.
    other_feed_reports(&world, &url("ours"), "suspicious");

    for threat in ["foreign", "ours"] {
        flip(
            &world,
            threat,
            ThreatStatus::FalsePositive,
            base + Duration::minutes(80),
        );
    }
    let second = completed(world.run_at(base + Duration::hours(2)).await);
    let snapshot = world.threatq.snapshot();
    assert_eq!(
        held(&snapshot, "foreign"),
        status("Review", &["malicious", "falsePositive"]),
        "another feed's indicator keeps its status and that feed's Threat Status"
    );
    assert_eq!(
        held(&snapshot, "ours"),
        status("Whitelisted", &["falsePositive", "suspicious"]),
        "the indicator we created moves; the other feed's Threat Status stays"
    );
    let other_value = snapshot
        .find("indicators", &url("foreign"))
        .unwrap()
        .attributes
        .iter()
        .find(|a| a.value == "malicious")
        .unwrap()
        .sources
        .clone();
    assert_eq!(other_value, [OTHER_FEED]);
    assert_eq!(second.verdicts_applied, 2, "{second}");
    assert_eq!(second.statuses_changed, 1, "{second}");
    assert_eq!(second.statuses_left_alone, 1, "{second}");
}

/// Issue case: active -> falsePositive -> active -> falsePositive left the
/// indicator with Threat Status `falsePositive` and `active`, the second
/// false positive skipped as already applied. Now each run follows TAP's
/// latest word: whitelisted, back to the configured status, whitelisted
/// again with `falsePositive` only. An indicator an analyst moved while it
/// was whitelisted keeps the analyst's status.
#[tokio::test]
async fn active_false_positive_active_false_positive_ends_whitelisted_with_threat_status_false_positive_only()
 {
    let base = now() - Duration::hours(6);
    let world = world_with(base, &["flips", "analyst"]).await;
    completed(world.run_at(base + Duration::hours(1)).await);
    assert_eq!(
        held(&world.threatq.snapshot(), "flips"),
        status("Review", &["active"])
    );

    let steps = [
        (
            80,
            ThreatStatus::FalsePositive,
            "Whitelisted",
            "falsePositive",
        ),
        (140, ThreatStatus::Active, "Review", "active"),
        (
            200,
            ThreatStatus::FalsePositive,
            "Whitelisted",
            "falsePositive",
        ),
    ];
    for (run, (minutes, to, expected_status, threat_status)) in steps.into_iter().enumerate() {
        for threat in ["flips", "analyst"] {
            flip(&world, threat, to, base + Duration::minutes(minutes));
        }
        let summary = completed(world.run_at(base + Duration::hours(2 + run as i64)).await);
        let snapshot = world.threatq.snapshot();
        assert_eq!(
            held(&snapshot, "flips"),
            status(expected_status, &[threat_status]),
            "after the change at +{minutes} min: {summary}"
        );
        if run == 0 {
            // An analyst decides about the whitelisted one in ThreatQ's UI.
            assert_eq!(
                held(&snapshot, "analyst"),
                status("Whitelisted", &["falsePositive"])
            );
            world
                .threatq
                .set_status("indicators", &url("analyst"), "Active");
        } else {
            assert_eq!(
                held(&snapshot, "analyst"),
                status("Active", &[threat_status]),
                "an analyst's status is never overwritten: {summary}"
            );
        }
    }
    assert_eq!(world.state().pending_verdicts, 0);
}

/// Before: a verdict whose indicator ThreatQ had refused (a dead letter)
/// found no indicator and was never applied once the letter was
/// delivered. Now it waits, and lands right after the letter does.
#[tokio::test]
async fn a_verdict_on_a_dead_lettered_indicator_is_applied_once_the_letter_is_delivered() {
    let base = now() - Duration::hours(5);
    let world = world_with(base, &["refused"]).await;
    // A web firewall refuses every body holding the URL.
    world
        .threatq
        .faults()
        .refuse_bodies_containing(&url("refused"), 403);
    let first = failed(world.run_at(base + Duration::hours(1)).await);
    assert_eq!(first.kind, FailureKind::Undelivered);
    assert_eq!(held(&world.threatq.snapshot(), "refused"), None);

    flip(
        &world,
        "refused",
        ThreatStatus::FalsePositive,
        base + Duration::minutes(80),
    );
    let second = failed(world.run_at(base + Duration::hours(2)).await);
    assert_eq!(second.kind, FailureKind::Undelivered);
    assert_eq!(
        world.state().pending_verdicts,
        1,
        "the verdict waits for its indicator: {}",
        second.summary
    );

    // The firewall lets it through: the letter lands, then the verdict.
    world.threatq.faults().clear();
    let third = completed(world.run_at(base + Duration::hours(2)).await);
    assert_eq!(
        held(&world.threatq.snapshot(), "refused"),
        status("Whitelisted", &["falsePositive"]),
        "{third}"
    );
    assert_eq!(world.state().pending_verdicts, 0);
    assert_eq!(world.state().dead_letters, 0);
}

/// Before: applying verdicts was not bounded by the run deadline. Now the
/// deadline stops the verdict step; the window, whose objects ThreatQ
/// holds, is still committed with the verdicts not applied waiting in it,
/// and the next run applies them first: nothing lost, nothing sent twice.
#[tokio::test]
async fn a_deadline_hit_while_applying_verdicts_commits_the_window_and_the_next_run_resumes() {
    let base = now() - Duration::hours(5);
    let world = world_with(base, &["slow", "slower"]).await;
    completed(world.run_at(base + Duration::hours(1)).await);
    let before = world.state().checkpoint;
    for threat in ["slow", "slower"] {
        flip(
            &world,
            threat,
            ThreatStatus::FalsePositive,
            base + Duration::minutes(80),
        );
    }

    // ThreatQ takes data fine but is slow to search it.
    world
        .threatq
        .faults()
        .set_lookup_delay(Some(StdDuration::from_secs(3600)));
    let mut options = world.options(base + Duration::hours(2));
    options.deadline = StdDuration::from_secs(3);
    let started = std::time::Instant::now();
    let failure = failed(tq_conn::run::run(&options).await);
    assert!(started.elapsed() < StdDuration::from_secs(60));
    assert_eq!(failure.kind, FailureKind::Deadline);
    let text = format!("{:#}", failure.error);
    assert!(
        text.contains("verdicts") && text.contains("was committed") && text.contains("next run"),
        "{text}"
    );
    let state = world.state();
    assert!(state.checkpoint > before, "the window was committed");
    assert_eq!(state.checkpoint, failure.summary.checkpoint);
    assert_eq!(state.pending_verdicts, 2, "{}", failure.summary);
    let snapshot = world.threatq.snapshot();
    assert_eq!(held(&snapshot, "slow"), status("Review", &["active"]));
    let events = snapshot.count("events");

    // ThreatQ answers again: the next run applies what waits, first.
    world.threatq.faults().clear();
    let next = completed(world.run_at(base + Duration::hours(2)).await);
    let snapshot = world.threatq.snapshot();
    for threat in ["slow", "slower"] {
        assert_eq!(
            held(&snapshot, threat),
            status("Whitelisted", &["falsePositive"]),
            "{next}"
        );
    }
    assert_eq!(next.verdicts_applied, 2, "{next}");
    assert_eq!(
        next.messages, next.already_sent_skipped,
        "what the overlap reads again is skipped as already sent: {next}"
    );
    assert_eq!(snapshot.count("events"), events);
    assert_eq!(world.state().pending_verdicts, 0);
}

/// Issue item 3: a verdict that waited as often as `[run]
/// retry_max_attempts` allows is no longer tried by scheduled runs (no
/// lookup for it); it stays waiting, listed as past the limits, and
/// `replay` applies it.
#[tokio::test]
async fn a_verdict_past_its_retry_limit_waits_for_replay_and_is_listed() {
    let base = now() - Duration::hours(5);
    let world = world_with(base, &["stuck"]).await;
    world.write_config(
        true,
        "history_hours = 2\ncreate_incidents = false\n[run]\nretry_max_attempts = 3\n",
    );
    completed(world.run_at(base + Duration::hours(1)).await);
    // A false positive ThreatQ refused three times, as earlier runs left it.
    let waiting = tq_conn::state::VerdictRow {
        indicator_type: "URL".to_owned(),
        indicator_value: url("stuck"),
        threat_id: threat_id("stuck"),
        status: "falsePositive".to_owned(),
        verdict_ms: (base + Duration::minutes(20)).unix_timestamp() * 1000,
        status_set: None,
        error: Some("HTTP 422: refused".to_owned()),
        attempts: 3,
        waiting_since: None,
    };
    tq_conn::state::Store::open(world.config_dir())
        .unwrap()
        .commit(
            &tq_conn::state::Commit {
                verdicts: vec![waiting],
                ..tq_conn::state::Commit::default()
            },
            base + Duration::hours(1),
        )
        .unwrap();
    let lookups = |world: &World| {
        world
            .threatq
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path == "/api/indicators")
            .count()
    };

    world.threatq.clear_requests();
    completed(world.run_at(base + Duration::hours(2)).await);
    assert_eq!(lookups(&world), 0, "a parked verdict was tried");
    assert_eq!(world.state().pending_verdicts, 1, "kept, waiting");
    assert_eq!(
        held(&world.threatq.snapshot(), "stuck"),
        status("Review", &["active"])
    );
    let listing = tq_conn::replay::list(world.config_dir()).unwrap();
    assert!(
        listing.contains("verdict  URL") && listing.contains("PAST THE RETRY LIMITS"),
        "{listing}"
    );

    let mut replay = world.options(base + Duration::hours(2));
    replay.mode = tq_conn::run::RunMode::Replay;
    completed(tq_conn::run::run(&replay).await);
    assert!(lookups(&world) > 0);
    assert_eq!(world.state().pending_verdicts, 0);
    assert_eq!(
        held(&world.threatq.snapshot(), "stuck"),
        status("Whitelisted", &["falsePositive"])
    );
}
