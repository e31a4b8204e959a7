//! End to end: host + sandboxed component + TAP and ThreatQ simulators.
//! Each test names the rule of `docs/sync.md` (or of the issue) that it
//! guards.

use e2e_tests::{World, completed, failed, holdings, now, tenant};
use serde_json::{Value, json};
use std::time::Duration as StdDuration;
use tap_sim::{MessageKind, SiemFault, TapSimConfig};
use threatq_sim::ThreatqSimConfig;

use time::{Duration, OffsetDateTime};
use tq_conn::run::{FailureKind, RunOutcome};

fn ts(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A delivered message with one URL threat, in TAP's JSON shape.
fn message(guid: &str, message_time: OffsetDateTime, threat_time: OffsetDateTime) -> Value {
    json!({
        "GUID": guid,
        "id": format!("{guid}-1"),
        "QID": "r2FNwRHF004109",
        "messageTime": ts(message_time),
        "messageID": format!("<{guid}@mail.example.com>"),
        "recipient": ["victim@example.com"],
        "sender": "e99d7ed5580193f36a51f597bc2c0210@evil.zz",
        "senderIP": "192.0.2.10",
        "fromAddress": ["billing@evil.zz"],
        "subject": format!("Invoice {guid}"),
        "spamScore": 10, "phishScore": 90, "malwareScore": 0, "impostorScore": 0.0,
        "messageParts": [],
        "threatsInfoMap": [{
            "threatID": format!("{:0>64}", guid.len()),
            "threat": format!("https://evil.zz/{guid}"),
            "threatType": "url",
            "threatStatus": "active",
            "classification": "phish",
            "threatTime": ts(threat_time),
            "threatUrl": "https://threatinsight.proofpoint.com/x/threat/email/1",
            "campaignID": null
        }]
    })
}

fn spearphish_titles_containing(world: &World, needle: &str) -> usize {
    world
        .threatq
        .snapshot()
        .events_of_type("Spearphish")
        .iter()
        .filter(|e| e.value.contains(needle))
        .count()
}

#[tokio::test]
async fn first_run_over_48_hours_lands_what_was_generated_and_the_summary_matches_threatq() {
    let world = World::start_with(
        TapSimConfig::default(),
        ThreatqSimConfig::default(),
        "history_hours = 48\ncreate_incidents = true\n",
    )
    .await;
    let now = now();
    let tenant = tenant(1, 48, now);
    world.load(&tenant);
    let visible = tenant.summary().visible;
    // A click on a threat TAP judged a false positive makes no incident.
    let not_false_positive = tenant.summary().visible_without_false_positives;

    let summary = completed(world.run_at(now).await);

    assert_eq!(summary.windows_done, summary.windows_planned);
    assert!(summary.windows_planned >= 48, "{summary}");
    let landed = world.threatq.snapshot();
    let spearphish = landed.events_of_type("Spearphish").len();
    let incidents = landed.events_of_type("Incident").len();
    assert_eq!(
        spearphish,
        visible.distinct_message_guids + visible.clicks_permitted + visible.clicks_blocked,
        "one event per message GUID and one per click"
    );
    assert_eq!(
        incidents, not_false_positive.clicks_permitted,
        "one incident per permitted click on a threat that is not a false positive"
    );
    // Every count in the summary is what ThreatQ now holds.
    assert_eq!(summary.accepted("events"), spearphish, "{summary}");
    assert_eq!(summary.accepted("incidents"), incidents);
    for (kind, collection) in [
        ("indicators", "indicators"),
        ("campaigns", "campaign"),
        ("malware", "malware"),
        ("adversaries", "adversaries"),
        ("attack patterns", "attack_pattern"),
    ] {
        assert_eq!(
            summary.accepted(kind),
            landed.count(collection),
            "{kind} in the summary vs ThreatQ"
        );
    }
    assert!(
        landed.count("campaign") > 0,
        "campaigns were fetched and mapped"
    );
    assert_eq!(summary.rejected_records, 0);
    assert_eq!(summary.rejected_objects, 0);
    assert_eq!(
        world.state().checkpoint,
        Some(now - Duration::minutes(2)),
        "the checkpoint is the last window's queryEndTime"
    );
}

#[tokio::test]
async fn a_generated_hour_of_over_a_thousand_events_maps_through_the_sandbox() {
    let world = World::start_with(
        TapSimConfig::default(),
        ThreatqSimConfig::default(),
        "history_hours = 1\ncreate_incidents = false\n",
    )
    .await;
    let now = now();
    let mut spec =
        tap_sim::TenantSpec::new(7, now - Duration::minutes(55), now - Duration::minutes(5));
    spec.messages_per_hour = 900;
    spec.clicks_per_hour = 300;
    let tenant = tap_sim::generator::generate(&spec);
    let visible = tenant.summary().visible;
    assert!(
        visible.messages_delivered
            + visible.messages_blocked
            + visible.clicks_permitted
            + visible.clicks_blocked
            >= 1000
    );
    world.load(&tenant);

    let summary = completed(world.run_at(now).await);

    let landed = world.threatq.snapshot();
    assert_eq!(
        landed.events_of_type("Spearphish").len(),
        visible.distinct_message_guids + visible.clicks_permitted + visible.clicks_blocked
    );
    assert_eq!(
        landed.events_of_type("Incident").len(),
        0,
        "incidents are off"
    );
    assert_eq!(summary.accepted("indicators"), landed.count("indicators"));
}

#[tokio::test]
async fn second_run_brings_only_what_is_new_and_sends_no_event_twice() {
    let world = World::start_with(
        TapSimConfig::default(),
        ThreatqSimConfig::default(),
        "history_hours = 4\ncreate_incidents = true\n",
    )
    .await;
    let now = now();
    let tenant = tenant(2, 4, now);
    world.load(&tenant);

    let first = completed(world.run_at(now - Duration::minutes(50)).await);
    let second = completed(world.run_at(now).await);

    let landed = world.threatq.snapshot();
    let visible = tenant.summary().visible;
    assert_eq!(
        landed.events_of_type("Spearphish").len(),
        visible.distinct_message_guids + visible.clicks_permitted + visible.clicks_blocked
    );
    assert!(
        second.already_sent_skipped > 0,
        "the overlap re-read records the first run had sent: {second}"
    );
    // Clicks map to one event each: across both runs each was sent once.
    assert_eq!(
        first.accepted("incidents") + second.accepted("incidents"),
        landed.events_of_type("Incident").len(),
        "no incident sent twice"
    );
    assert!(second.windows_planned < first.windows_planned);
}

#[tokio::test]
async fn event_indexed_late_is_picked_up_by_the_next_run_through_the_overlap() {
    let world = World::start().await;
    let t = now();
    // The first run happens ten minutes ago; its checkpoint is t - 12 min.
    completed(world.run_at(t - Duration::minutes(10)).await);
    // TAP condemns a URL in a three-hour-old message at t - 20 min, but
    // indexes the event only after that run: TAP files it by the verdict's
    // time, which the first run had already passed.
    world
        .tap
        .add_message(
            MessageKind::Delivered,
            message(
                "late-guid",
                t - Duration::hours(3),
                t - Duration::minutes(20),
            ),
        )
        .unwrap();

    completed(world.run_at(t).await);

    assert_eq!(spearphish_titles_containing(&world, "late-guid"), 1);
}

#[tokio::test]
async fn without_the_overlap_the_late_event_would_be_lost() {
    // The control for the test above: it proves the overlap is what saves it.
    let world = World::start_with(
        TapSimConfig::default(),
        ThreatqSimConfig::default(),
        "overlap_minutes = 0\n",
    )
    .await;
    let t = now();
    completed(world.run_at(t - Duration::minutes(10)).await);
    world
        .tap
        .add_message(
            MessageKind::Delivered,
            message(
                "late-guid",
                t - Duration::hours(3),
                t - Duration::minutes(20),
            ),
        )
        .unwrap();
    completed(world.run_at(t).await);
    assert_eq!(spearphish_titles_containing(&world, "late-guid"), 0);
}

#[tokio::test]
async fn running_twice_over_the_same_data_makes_no_duplicates_in_threatq() {
    let world = World::start().await;
    let now = now();
    world.load(&tenant(3, 6, now));
    completed(world.run_at(now).await);
    let once = world.threatq.snapshot();

    // Forget everything we knew: the same windows are fetched and sent again.
    std::fs::remove_file(world.config_dir().join(tq_conn::state::STATE_DB_NAME)).unwrap();
    completed(world.run_at(now).await);
    let twice = world.threatq.snapshot();

    assert_eq!(once.objects.len(), twice.objects.len());
    for collection in [
        "indicators",
        "events",
        "campaign",
        "malware",
        "adversaries",
        "attack_pattern",
    ] {
        assert_eq!(
            once.count(collection),
            twice.count(collection),
            "{collection}"
        );
    }
    let attributes =
        |s: &threatq_sim::Snapshot| -> usize { s.objects.iter().map(|o| o.attributes.len()).sum() };
    assert_eq!(
        attributes(&once),
        attributes(&twice),
        "attributes are not repeated"
    );
}

#[tokio::test]
async fn threatq_answering_503_for_a_while_then_recovering_loses_nothing() {
    let world = World::start().await;
    let now = now();
    let tenant = tenant(4, 3, now);
    world.load(&tenant);
    world.threatq.faults().fail_next(3, 503);

    completed(world.run_at(now).await);

    let visible = tenant.summary().visible;
    assert_eq!(
        world.threatq.snapshot().events_of_type("Spearphish").len(),
        visible.distinct_message_guids + visible.clicks_permitted + visible.clicks_blocked
    );
}

#[tokio::test]
async fn tap_500_fails_the_run_at_that_window_and_the_next_run_continues_without_a_gap() {
    let world = World::start_with(
        TapSimConfig::default(),
        ThreatqSimConfig::default(),
        "history_hours = 6\n",
    )
    .await;
    let now = now();
    let tenant = tenant(5, 6, now);
    world.load(&tenant);

    completed(world.run_at(now - Duration::hours(3)).await);
    let checkpoint = world.state().checkpoint;
    assert!(checkpoint.is_some());
    world.tap.faults().fail_next_siem(
        3,
        500,
        "The service has encountered an unexpected situation",
    );
    let failure = failed(world.run_at(now).await);
    assert_eq!(failure.kind, FailureKind::Tap);
    assert!(
        format!("{:#}", failure.error).contains("500"),
        "{:#}",
        failure.error
    );
    assert_eq!(world.state().checkpoint, checkpoint, "checkpoint intact");

    completed(world.run_at(now).await);

    let visible = tenant.summary().visible;
    assert_eq!(
        world.threatq.snapshot().events_of_type("Spearphish").len(),
        visible.distinct_message_guids + visible.clicks_permitted + visible.clicks_blocked,
        "nothing lost"
    );
}

#[tokio::test]
async fn tap_500_once_is_retried_within_the_run() {
    let world = World::start().await;
    let now = now();
    world.load(&tenant(6, 2, now));
    world.tap.faults().fail_next_siem(1, 503, "busy");
    completed(world.run_at(now).await);
}

#[tokio::test]
async fn threatq_token_expiring_mid_run_is_renewed_and_the_run_completes() {
    let world = World::start_with(
        TapSimConfig::default(),
        ThreatqSimConfig::default(),
        "history_hours = 12\n",
    )
    .await;
    let now = now();
    let tenant = tenant(7, 12, now);
    world.load(&tenant);
    // Expire every token as soon as the first window has been forwarded.
    let watcher = {
        let faults = world.threatq.faults();
        let dir = world.config_dir().to_path_buf();
        tokio::spawn(async move {
            for _ in 0..2000 {
                let state = tq_conn::state::Store::open(&dir);
                if state.is_ok_and(|s| s.state().checkpoint.is_some()) {
                    faults.expire_all_tokens();
                    return true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            false
        })
    };

    completed(world.run_at(now).await);

    assert!(watcher.await.unwrap(), "tokens were expired mid-run");
    let token_requests = world
        .threatq
        .requests()
        .iter()
        .filter(|r| r.path == "/api/token")
        .count();
    assert!(token_requests >= 2, "a new token was fetched");
    let visible = tenant.summary().visible;
    assert_eq!(
        world.threatq.snapshot().events_of_type("Spearphish").len(),
        visible.distinct_message_guids + visible.clicks_permitted + visible.clicks_blocked
    );
}

#[tokio::test]
async fn object_threatq_rejects_is_reported_and_the_rest_lands() {
    let world = World::start().await;
    let t = now();
    world
        .tap
        .add_message(
            MessageKind::Delivered,
            message("good-guid", t - Duration::hours(2), t - Duration::hours(2)),
        )
        .unwrap();
    world
        .tap
        .add_message(
            MessageKind::Delivered,
            message(
                "poison-guid",
                t - Duration::hours(2),
                t - Duration::hours(2),
            ),
        )
        .unwrap();
    world
        .threatq
        .faults()
        .reject_values_containing("poison-guid");

    // Every window is forwarded, but the refused object is kept, and the
    // run says so with its own exit status (docs/sync.md, "Nothing
    // refused is lost").
    let failure = failed(world.run_at(t).await);

    assert_eq!(
        failure.kind,
        FailureKind::Undelivered,
        "{:#}",
        failure.error
    );
    assert_eq!(failure.kind.exit_code(), 11);
    assert!(failure.summary.rejected_objects >= 1, "{}", failure.summary);
    assert_eq!(spearphish_titles_containing(&world, "good-guid"), 1);
    assert_eq!(spearphish_titles_containing(&world, "poison-guid"), 0);
    assert!(
        world.state().checkpoint.is_some(),
        "the window still counts as forwarded"
    );
    assert!(world.state().dead_letters >= 1);
}

/// A web firewall in front of ThreatQ that refuses ten phishing URLs on
/// every run (anyone can make TAP report them by sending the email) must
/// not stop the feed: the dead letters are sent again and refused again,
/// and each later run still delivers its own new data.
#[tokio::test]
async fn ten_urls_a_waf_always_refuses_do_not_stop_later_runs_from_delivering() {
    let world = World::start().await;
    let t = now();
    for n in 0..10 {
        world
            .tap
            .add_message(
                MessageKind::Delivered,
                message(
                    &format!("waf-blocked-{n}"),
                    t - Duration::hours(3),
                    t - Duration::hours(3),
                ),
            )
            .unwrap();
    }
    world
        .threatq
        .faults()
        .refuse_bodies_containing("waf-blocked", 403);

    let first = failed(world.run_at(t - Duration::hours(2)).await);
    assert_eq!(first.kind, FailureKind::Undelivered, "{:#}", first.error);
    let letters = world.state().dead_letters;
    assert!(letters >= 10, "{letters} dead letters");

    for (run, fresh) in [(1, "fresh-run-2"), (0, "fresh-run-3")] {
        let at = t - Duration::hours(run);
        world
            .tap
            .add_message(
                MessageKind::Delivered,
                message(
                    fresh,
                    at - Duration::minutes(40),
                    at - Duration::minutes(40),
                ),
            )
            .unwrap();
        let failure = failed(world.run_at(at).await);
        assert_eq!(
            failure.kind,
            FailureKind::Undelivered,
            "the run stopped instead of going on: {:#}",
            failure.error
        );
        assert_eq!(spearphish_titles_containing(&world, fresh), 1, "{fresh}");
        assert_eq!(
            failure.summary.windows_done,
            failure.summary.windows_planned
        );
        assert_eq!(world.state().dead_letters, letters, "kept, not dropped");
    }
    assert_eq!(spearphish_titles_containing(&world, "waf-blocked"), 0);
}

/// Issue item 3: a dead letter refused as often as `[run]
/// retry_max_attempts` allows is no longer sent by scheduled runs; it is
/// kept, still makes the run exit 11, is listed as past the limits, and
/// `replay` sends it.
#[tokio::test]
async fn a_dead_letter_past_its_retry_limit_is_kept_listed_and_left_to_replay() {
    let world = World::start().await;
    world.write_config(true, "\n[run]\nretry_max_attempts = 2\n");
    let t = now();
    world
        .tap
        .add_message(
            MessageKind::Delivered,
            message(
                "always-blocked",
                t - Duration::hours(3),
                t - Duration::hours(3),
            ),
        )
        .unwrap();
    world
        .threatq
        .faults()
        .refuse_bodies_containing("always-blocked", 403);
    let attempts = |world: &World| {
        tq_conn::state::Store::open(world.config_dir())
            .unwrap()
            .dead_letters()
            .unwrap()
            .iter()
            .map(|letter| letter.attempts)
            .max()
    };
    let refused_bodies = |world: &World| {
        world
            .threatq
            .requests()
            .iter()
            .filter(|r| String::from_utf8_lossy(&r.body).contains("always-blocked"))
            .count()
    };

    // Refused in its window, then once more by the next run's replay.
    for hours_ago in [2, 1] {
        let failure = failed(world.run_at(t - Duration::hours(hours_ago)).await);
        assert_eq!(
            failure.kind,
            FailureKind::Undelivered,
            "{:#}",
            failure.error
        );
    }
    assert_eq!(attempts(&world), Some(2));
    let listing = tq_conn::replay::list(world.config_dir()).unwrap();
    assert!(listing.contains("PAST THE RETRY LIMITS"), "{listing}");

    // The third run no longer sends it, and still says it is undelivered.
    let before = refused_bodies(&world);
    let failure = failed(world.run_at(t).await);
    assert_eq!(
        failure.kind,
        FailureKind::Undelivered,
        "{:#}",
        failure.error
    );
    assert_eq!(refused_bodies(&world), before, "a parked letter was sent");
    assert_eq!(attempts(&world), Some(2), "kept as it was");

    // `replay` sends it, whatever its attempts, once the firewall lets it by.
    world.threatq.faults().clear();
    let mut replay = world.options(t);
    replay.mode = tq_conn::run::RunMode::Replay;
    let outcome = tq_conn::run::run(&replay).await;
    assert!(
        matches!(outcome, Ok(RunOutcome::Completed(_))),
        "{outcome:?}"
    );
    assert_eq!(attempts(&world), None);
    assert_eq!(spearphish_titles_containing(&world, "always-blocked"), 1);
}

/// Review finding: a dead letter whose body ThreatQ (or a firewall) now
/// answers with a 5xx made the replay, and so every run, stop before its
/// windows. Now the chunk is kept with one more attempt and the windows go
/// on.
#[tokio::test]
async fn a_dead_letter_answered_with_a_server_error_does_not_stop_the_windows() {
    let world = World::start().await;
    let t = now();
    world
        .tap
        .add_message(
            MessageKind::Delivered,
            message("now-a-502", t - Duration::hours(3), t - Duration::hours(3)),
        )
        .unwrap();
    world
        .threatq
        .faults()
        .refuse_bodies_containing("now-a-502", 403);
    let first = failed(world.run_at(t - Duration::hours(2)).await);
    assert_eq!(first.kind, FailureKind::Undelivered, "{:#}", first.error);
    let attempts = |world: &World| {
        tq_conn::state::Store::open(world.config_dir())
            .unwrap()
            .dead_letters()
            .unwrap()
            .iter()
            .map(|letter| (letter.attempts, letter.reason.clone()))
            .collect::<Vec<_>>()
    };
    let before = attempts(&world);
    assert!(!before.is_empty());

    world.threatq.faults().clear();
    world
        .threatq
        .faults()
        .refuse_bodies_containing("now-a-502", 502);
    world
        .tap
        .add_message(
            MessageKind::Delivered,
            message(
                "fresh-after-502",
                t - Duration::minutes(40),
                t - Duration::minutes(40),
            ),
        )
        .unwrap();
    let second = failed(world.run_at(t).await);
    assert_eq!(second.kind, FailureKind::Undelivered, "{:#}", second.error);
    assert_eq!(second.summary.windows_done, second.summary.windows_planned);
    assert_eq!(spearphish_titles_containing(&world, "fresh-after-502"), 1);
    let after = attempts(&world);
    assert_eq!(after.len(), before.len(), "kept, not dropped");
    for ((was, _), (now, reason)) in before.iter().zip(&after) {
        assert_eq!(*now, was + 1, "one more attempt");
        assert!(reason.contains("502"), "{reason}");
    }
}

#[tokio::test]
async fn wrong_tap_secret_stops_with_a_credentials_error_and_no_checkpoint() {
    let mut world = World::start().await;
    world.tap_config.secret = "not-the-secret".into();
    world.write_config(true, "");

    let failure = failed(world.run_at(now()).await);

    assert_eq!(failure.kind, FailureKind::TapCredentials);
    let text = format!("{:#}", failure.error);
    assert!(
        text.contains("Principal") && text.contains("Secret"),
        "{text}"
    );
    assert!(
        !text.contains("not-the-secret"),
        "the secret is never printed"
    );
    assert_eq!(world.state().checkpoint, None);
}

#[tokio::test]
async fn tap_429_stops_cleanly_with_the_checkpoint_intact() {
    let world = World::start().await;
    let now = now();
    completed(world.run_at(now - Duration::hours(2)).await);
    let checkpoint = world.state().checkpoint;
    world.tap.spend_pool(tap_sim::Pool::Siem, 1800);

    let failure = failed(world.run_at(now).await);

    assert_eq!(failure.kind, FailureKind::TapRateLimited);
    assert_eq!(world.state().checkpoint, checkpoint);
}

#[tokio::test]
async fn tap_clock_behind_ours_gives_taps_still_current_text_and_a_hint() {
    let world = World::start().await;
    world.tap.faults().set_clock_offset(Duration::minutes(-10));

    let t = now();
    let failure = failed(world.run_at(t).await);

    let text = format!("{:#}", failure.error);
    assert!(
        text.contains("The requested interval is still current."),
        "{text}"
    );
    assert!(text.contains("NTP"), "{text}");
    // TAP accepts the older windows; the run stops at the first one TAP
    // calls current, and the checkpoint stays before it.
    let checkpoint = world
        .state()
        .checkpoint
        .expect("earlier windows were forwarded");
    assert!(checkpoint <= t - Duration::minutes(10), "{checkpoint}");
}

#[tokio::test]
async fn tap_body_that_is_not_json_fails_the_window_clearly() {
    let world = World::start().await;
    world.tap.faults().next_siem(1, SiemFault::NotJson);

    let failure = failed(world.run_at(now()).await);

    assert_eq!(failure.kind, FailureKind::Tap);
    let text = format!("{:#}", failure.error);
    assert!(text.contains("/v2/siem/all"), "{text}");
    assert_eq!(world.state().checkpoint, None);
}

#[tokio::test]
async fn unmappable_record_is_quarantined_and_the_rest_of_the_window_lands() {
    let world = World::start().await;
    let t = now();
    world
        .tap
        .add_message(
            MessageKind::Delivered,
            message("good-guid", t - Duration::hours(1), t - Duration::hours(1)),
        )
        .unwrap();
    let mut broken = message(
        "broken-guid",
        t - Duration::hours(1),
        t - Duration::hours(1),
    );
    // Every field TAP's own rules need is there, but not the GUID that
    // names the message: the record cannot become an event.
    broken.as_object_mut().unwrap().remove("GUID");
    world
        .tap
        .add_message(MessageKind::Delivered, broken)
        .unwrap();

    let failure = failed(world.run_at(t).await);

    assert_eq!(
        failure.kind,
        FailureKind::Undelivered,
        "{:#}",
        failure.error
    );
    assert_eq!(failure.summary.rejected_records, 1, "{}", failure.summary);
    assert_eq!(spearphish_titles_containing(&world, "good-guid"), 1);
    assert!(world.state().checkpoint.is_some());
    assert_eq!(world.state().quarantined, 1);
}

#[tokio::test]
async fn empty_hours_and_204_answers_complete_and_move_the_checkpoint() {
    let world = World::start().await;
    world.tap.faults().set_empty_as_no_content(true);
    let now = now();

    let summary = completed(world.run_at(now).await);

    assert_eq!(world.threatq.snapshot().objects.len(), 0);
    assert_eq!(summary.windows_done, summary.windows_planned);
    assert_eq!(world.state().checkpoint, Some(now - Duration::minutes(2)));
}

#[tokio::test]
async fn a_run_while_another_holds_the_lock_exits_quietly() {
    let world = World::start().await;
    let _held = tq_conn::state::RunLock::try_acquire(world.config_dir(), OffsetDateTime::now_utc())
        .unwrap();

    let outcome = world.run_at(now()).await;

    match outcome {
        Ok(RunOutcome::AlreadyRunning(Some(holder))) => {
            assert_eq!(holder.pid, std::process::id())
        }
        other => panic!("expected AlreadyRunning with the holder, got {other:?}"),
    }
    assert!(world.tap.requests().is_empty());
}

/// Before: a run hung on a stalled ThreatQ held the lock for ever, and
/// every later run logged "another run holds the lock" and exited 0.
#[tokio::test]
async fn a_lock_held_for_longer_than_the_deadline_is_a_stuck_run_not_a_quiet_exit() {
    let world = World::start().await;
    let since = OffsetDateTime::now_utc() - Duration::hours(2);
    let _held = tq_conn::state::RunLock::try_acquire(world.config_dir(), since).unwrap();

    let failure = failed(world.run_at(now()).await);

    assert_eq!(failure.kind, FailureKind::StuckRun);
    assert_eq!(failure.kind.exit_code(), 10);
    let text = format!("{:#}", failure.error);
    assert!(
        text.contains(&format!("pid {}", std::process::id())) && text.contains("stuck"),
        "{text}"
    );
    assert!(world.tap.requests().is_empty());
}

/// Before: ThreatQ accepting the connection and never answering hung the
/// run for ever. Now the run deadline ends it at the window, checkpoint
/// intact, and once ThreatQ answers again nothing is missing.
#[tokio::test]
async fn a_stalled_threatq_ends_the_run_at_its_deadline_with_the_checkpoint_intact() {
    let world = World::start().await;
    let now = now();
    world.load(&tenant(5, 3, now));
    let mut options = world.options(now);
    options.deadline = StdDuration::from_secs(3);

    // Stalled on data: the window is cut at the deadline, not committed.
    world
        .threatq
        .faults()
        .set_consume_delay(Some(StdDuration::from_secs(3600)));
    let started = std::time::Instant::now();
    let failure = failed(tq_conn::run::run(&options).await);
    assert!(started.elapsed() < StdDuration::from_secs(60));
    assert_eq!(failure.kind, FailureKind::Deadline);
    assert_eq!(failure.kind.exit_code(), 9);
    let text = format!("{:#}", failure.error);
    assert!(
        text.contains("deadline") && text.contains("window") && text.contains("checkpoint"),
        "{text}"
    );
    // Empty windows before the first one with data were committed; the
    // stalled one and everything after it were not.
    assert!(failure.summary.windows_done < failure.summary.windows_planned);
    let checkpoint = world.state().checkpoint;
    assert_eq!(checkpoint, failure.summary.checkpoint);

    // Stalled from the login on: the run is cut before its first window.
    world.threatq.faults().set_consume_delay(None);
    world
        .threatq
        .faults()
        .set_delay(Some(StdDuration::from_secs(3600)));
    let failure = failed(tq_conn::run::run(&options).await);
    assert_eq!(failure.kind, FailureKind::Deadline);
    assert_eq!(world.state().checkpoint, checkpoint);

    // Once ThreatQ answers, it ends up holding what a fault-free run gives.
    world.threatq.faults().set_delay(None);
    let summary = completed(world.run_at(now).await);
    assert_eq!(summary.windows_done, summary.windows_planned);
    let clean = World::start().await;
    clean.load(&tenant(5, 3, now));
    completed(clean.run_at(now).await);
    assert_eq!(
        world.threatq.snapshot().objects.len(),
        clean.threatq.snapshot().objects.len()
    );
    assert!(!clean.threatq.snapshot().objects.is_empty());
}

fn connector_entry(world: &World, active: bool, history_hours: &str) -> Value {
    json!({
        "id": 7,
        "name": "tq-conn-proofpoint-tap",
        "category": "Labs",
        "active": active,
        "options": {
            "hostname": world.tap.base_url(),
            "api_principal": world.tap_config.principal,
            "api_secret": world.tap_config.secret,
            "history_hours": history_hours,
            "create_incidents": "Yes"
        }
    })
}

#[tokio::test]
async fn connector_switched_off_in_threatq_fetches_nothing_and_exits_cleanly() {
    let world = World::start().await;
    world.write_config(false, "");
    world
        .threatq
        .set_connector(Some(connector_entry(&world, false, "24")));

    let outcome = world.run_at(now()).await;

    assert!(matches!(outcome, Ok(RunOutcome::Disabled)), "{outcome:?}");
    assert!(world.tap.requests().is_empty());
    assert_eq!(world.state().checkpoint, None);
}

#[tokio::test]
async fn settings_come_from_threatqs_ui_and_local_values_win() {
    let world = World::start().await;
    // Only history_hours is local; the rest comes from ThreatQ's entry.
    world.write_config(false, "history_hours = 2\n");
    world
        .threatq
        .set_connector(Some(connector_entry(&world, true, "24")));
    let now = now();
    world.load(&tenant(8, 2, now));

    let summary = completed(world.run_at(now).await);

    assert_eq!(summary.windows_planned, 2, "the local history_hours wins");
    assert!(
        !world
            .threatq
            .snapshot()
            .events_of_type("Incident")
            .is_empty(),
        "create_incidents from the UI"
    );
}

#[tokio::test]
async fn missing_tap_settings_are_named_with_where_to_set_them() {
    let world = World::start().await;
    world.write_config(false, "");
    world.threatq.faults().set_connectors_missing(true);

    let failure = failed(world.run_at(now()).await);

    assert_eq!(failure.kind, FailureKind::Config);
    let text = format!("{:#}", failure.error);
    assert!(text.contains("UI") && text.contains("[tap]"), "{text}");
}

#[tokio::test]
async fn dry_run_sends_nothing_moves_no_checkpoint_and_exports_what_it_would_send() {
    let world = World::start().await;
    let now = now();
    world.load(&tenant(9, 2, now));
    let export = world.config_dir().join("export.jsonl");
    let mut options = world.options(now);
    options.dry_run = true;
    options.export = Some(export.clone());

    let summary = completed(tq_conn::run::run(&options).await);

    assert!(summary.dry_run);
    assert_eq!(
        world.threatq.snapshot().objects.len(),
        0,
        "nothing written to ThreatQ"
    );
    assert_eq!(world.state().checkpoint, None, "no checkpoint moved");
    let lines = std::fs::read_to_string(&export).unwrap();
    let objects: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!objects.is_empty());
    assert!(objects.iter().any(|o| o["collection"] == "events"));
    // The export is per window (an indicator seen in two windows is listed
    // twice); the summary counts distinct objects.
    let distinct: std::collections::BTreeSet<String> = objects
        .iter()
        .map(|o| {
            format!(
                "{}|{}|{}|{}",
                o["collection"], o["type"], o["value"], o["happened_at"]
            )
        })
        .collect();
    assert_eq!(distinct.len(), summary.objects_sent());
}

#[tokio::test]
async fn export_lists_every_object_sent_with_its_relations() {
    let world = World::start().await;
    let t = now();
    world
        .tap
        .add_message(
            MessageKind::Delivered,
            message(
                "export-guid",
                t - Duration::hours(1),
                t - Duration::hours(1),
            ),
        )
        .unwrap();
    let export = world.config_dir().join("sent.jsonl");
    let mut options = world.options(t);
    options.export = Some(export.clone());

    completed(tq_conn::run::run(&options).await);

    let text = std::fs::read_to_string(&export).unwrap();
    let event: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|o| o["collection"] == "events")
        .unwrap();
    assert!(event["value"].as_str().unwrap().contains("export-guid"));
    let related = event["related"].as_array().unwrap();
    assert!(related.iter().any(|r| r["type"] == "URL"), "{event}");
}

#[tokio::test]
async fn wrong_threatq_password_stops_before_any_tap_request() {
    let mut world = World::start().await;
    world.threatq_config.password = "not-the-password".into();
    world.write_config(true, "");

    let failure = failed(world.run_at(now()).await);

    assert_eq!(failure.kind, FailureKind::Threatq);
    let text = format!("{:#}", failure.error);
    assert!(text.contains("[threatq]"), "{text}");
    assert!(
        !text.contains("not-the-password"),
        "the password is never printed"
    );
    assert!(world.tap.requests().is_empty(), "no TAP budget spent");
}

/// Before: a window too large for the sandbox failed every run, for ever.
/// Now it is retried as two halves (down to TAP's 30 s minimum), and
/// ThreatQ ends up holding exactly what an unsplit run gives.
#[tokio::test]
async fn a_window_over_the_response_cap_is_split_in_halves_and_nothing_is_lost() {
    let now = now();
    let tap_config = TapSimConfig {
        gzip: false,
        ..TapSimConfig::default()
    };
    let clean = World::start_with(tap_config.clone(), ThreatqSimConfig::default(), "").await;
    clean.load(&tenant(9, 3, now));
    completed(clean.run_at(now).await);
    let largest = clean
        .tap
        .requests()
        .iter()
        .filter(|request| request.path == "/v2/siem/all")
        .filter_map(|request| request.body_bytes)
        .max()
        .expect("SIEM answers have a known size");

    let world = World::start_with(tap_config, ThreatqSimConfig::default(), "").await;
    world.load(&tenant(9, 3, now));
    let mut options = world.options(now);
    options.tap_max_response_bytes = usize::try_from(largest * 3 / 4).expect("fits");
    let summary = completed(tq_conn::run::run(&options).await);

    assert!(summary.windows_split > 0, "{summary}");
    assert_eq!(summary.windows_done, summary.windows_planned);
    assert!(summary.to_string().contains("split in halves"), "{summary}");
    // Every object, with every attribute, lands either way.
    let objects = |world: &World| -> std::collections::BTreeSet<_> {
        holdings(&world.threatq)
            .into_iter()
            .map(|(collection, value, attributes, _)| (collection, value, attributes))
            .collect()
    };
    assert_eq!(objects(&world), objects(&clean));
    assert!(!objects(&clean).is_empty());
    // Relations too, except a click whose message fell into the other half:
    // a click relates to its message only within one window until the
    // host keeps a message index (docs/mapping.md, Clicks).
    let (split, unsplit) = (holdings(&world.threatq), holdings(&clean.threatq));
    for (collection, value, _, _) in split.symmetric_difference(&unsplit) {
        assert!(
            collection == "events"
                && (value.starts_with("TAP Click") || value.starts_with("TAP Message")),
            "{collection} {value} differs in more than a click-message link"
        );
    }
}

/// A window that does not fit even at 30 s fails with the limit named and
/// the checkpoint intact, instead of splitting for ever.
#[tokio::test]
async fn a_window_that_never_fits_fails_at_taps_shortest_window() {
    let world = World::start().await;
    let now = now();
    world.load(&tenant(9, 3, now));
    let mut options = world.options(now);
    options.tap_max_response_bytes = 16;
    let failure = failed(tq_conn::run::run(&options).await);
    assert_eq!(failure.kind, FailureKind::Sandbox);
    let text = format!("{:#}", failure.error);
    assert!(text.contains("30 s") && text.contains("[run]"), "{text}");
    assert!(failure.summary.windows_done < failure.summary.windows_planned);
}
