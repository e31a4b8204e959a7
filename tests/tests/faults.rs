//! The fault matrix (docs/sync.md, "Failures"): one test per row, each run
//! against the simulators with the fault on, then again with it gone.
//! Each asserts the exit status, the message, the checkpoint, and that in
//! the end ThreatQ holds exactly what a fault-free run over the same data
//! produced: nothing missing, nothing twice. The crash row (SIGKILL at
//! random points) is `host/tests/crash.rs`; the stalled-ThreatQ deadline,
//! the lock rows and windows too large for the sandbox are in `sync.rs`.

use std::collections::BTreeSet;
use std::time::Duration as StdDuration;

use e2e_tests::{World, failed, holdings, now, tenant};
use tap_sim::{SiemFault, TapSimConfig, Tenant};
use threatq_sim::ThreatqSimConfig;
use time::OffsetDateTime;
use tq_conn::run::{FailureKind, RunOptions, RunOutcome};

const HOURS: &str = "history_hours = 3\n";

/// Holdings of a fault-free run over `tenant` at `now`.
async fn clean_holdings(
    tenant: &Tenant,
    now: OffsetDateTime,
) -> BTreeSet<(String, String, usize, usize)> {
    let clean = world().await;
    clean.load(tenant);
    run_to_success(&clean, now).await;
    let held = holdings(&clean.threatq);
    assert!(
        held.len() > 20,
        "the tenant lands something: {}",
        held.len()
    );
    held
}

async fn world() -> World {
    World::start_with(TapSimConfig::default(), ThreatqSimConfig::default(), HOURS).await
}

/// Runs until a run completes; a run that exits 11 (undelivered) is
/// followed by another, as cron would, since it has replayed by then.
async fn run_to_success(world: &World, now: OffsetDateTime) {
    for _ in 0..3 {
        match world.run_at(now).await {
            Ok(RunOutcome::Completed(_)) => return,
            Err(failure) if failure.kind == FailureKind::Undelivered => continue,
            other => panic!("the run did not complete: {other:?}"),
        }
    }
    panic!("three runs in a row left something undelivered");
}

/// One row: the fault is on for the first run, which fails with `kind`
/// and a message holding `says`; `checkpoint_moved` says whether that run
/// may move the checkpoint. Then the fault is cleared and runs go on until
/// one completes; ThreatQ must then hold what the clean run landed.
struct Row {
    seed: u64,
    kind: FailureKind,
    says: &'static [&'static str],
    checkpoint_moved: bool,
}

impl Row {
    async fn check(
        self,
        fault_on: impl FnOnce(&mut World, &BTreeSet<(String, String, usize, usize)>),
        options: impl FnOnce(&mut RunOptions),
        fault_off: impl FnOnce(&mut World),
    ) -> World {
        let now = now();
        let tenant = tenant(self.seed, 3, now);
        let expected = clean_holdings(&tenant, now).await;

        let mut world = world().await;
        world.load(&tenant);
        fault_on(&mut world, &expected);
        let mut faulty = world.options(now);
        options(&mut faulty);
        let failure = failed(tq_conn::run::run(&faulty).await);
        let text = format!("{:#}", failure.error);
        assert_eq!(failure.kind, self.kind, "{text}");
        for needle in self.says {
            assert!(text.contains(needle), "expected {needle:?} in: {text}");
        }
        let checkpoint = world.state().checkpoint;
        if self.checkpoint_moved {
            assert!(checkpoint.is_some(), "the windows still count as forwarded");
        } else {
            assert_eq!(checkpoint, None, "no checkpoint moved: {text}");
        }

        fault_off(&mut world);
        run_to_success(&world, now).await;
        assert_eq!(
            holdings(&world.threatq),
            expected,
            "once the fault is gone ThreatQ holds what a fault-free run produces"
        );
        assert_eq!(
            world.state().undelivered(),
            0,
            "nothing is left undelivered"
        );
        world
    }
}

fn no_options(_: &mut RunOptions) {}

impl Row {
    /// The row whose fault is TAP answering every SIEM request with `fault`.
    async fn with_tap_answering(self, fault: SiemFault) {
        self.check(
            move |world, _| world.tap.faults().set_persistent_siem(Some(fault)),
            no_options,
            |world| world.tap.faults().clear(),
        )
        .await;
    }
}

#[tokio::test]
async fn tap_failing_500_for_good_stops_with_the_checkpoint_intact_and_loses_nothing() {
    Row {
        seed: 21,
        kind: FailureKind::Tap,
        says: &["TAP failed", "HTTP 500", "checkpoint stays"],
        checkpoint_moved: false,
    }
    .with_tap_answering(SiemFault::Status {
        status: 500,
        body: "internal error".into(),
    })
    .await;
}

#[tokio::test]
async fn tap_not_answering_in_time_stops_with_the_checkpoint_intact() {
    Row {
        seed: 22,
        kind: FailureKind::Tap,
        says: &["cannot reach TAP"],
        checkpoint_moved: false,
    }
    .check(
        |world, _| {
            world.write_config(
                true,
                &format!("{HOURS}\n[run]\ntap_request_timeout_seconds = 5\n"),
            );
            world
                .tap
                .faults()
                .set_persistent_siem(Some(SiemFault::SlowHeaders(StdDuration::from_secs(12))));
        },
        no_options,
        |world| {
            world.tap.faults().clear();
            world.write_config(true, HOURS);
        },
    )
    .await;
}

#[tokio::test]
async fn threatq_failing_503_for_good_stops_with_the_checkpoint_intact_and_loses_nothing() {
    Row {
        seed: 23,
        kind: FailureKind::Threatq,
        says: &["503"],
        checkpoint_moved: false,
    }
    .check(
        |world, _| world.threatq.faults().fail_next(100_000, 503),
        no_options,
        |world| world.threatq.faults().clear(),
    )
    .await;
}

#[tokio::test]
async fn tap_429_stops_fetching_and_keeps_the_checkpoint() {
    Row {
        seed: 24,
        kind: FailureKind::TapRateLimited,
        says: &["throttled", "checkpoint is kept"],
        checkpoint_moved: false,
    }
    .with_tap_answering(SiemFault::Status {
        status: 429,
        body: "Too many requests".into(),
    })
    .await;
}

#[tokio::test]
async fn tap_401_names_the_principal_and_secret() {
    Row {
        seed: 25,
        kind: FailureKind::TapCredentials,
        says: &["Principal and Secret"],
        checkpoint_moved: false,
    }
    .with_tap_answering(SiemFault::Status {
        status: 401,
        body: "Unauthorized".into(),
    })
    .await;
}

#[tokio::test]
async fn threatq_401_for_good_stops_with_a_clear_message() {
    Row {
        seed: 26,
        kind: FailureKind::Threatq,
        says: &["401"],
        checkpoint_moved: false,
    }
    .check(
        |world, _| world.threatq.faults().fail_next(100_000, 401),
        no_options,
        |world| world.threatq.faults().clear(),
    )
    .await;
}

#[tokio::test]
async fn tap_body_that_is_not_json_fails_the_window_and_the_next_run_fills_it() {
    Row {
        seed: 27,
        kind: FailureKind::Tap,
        says: &["cannot read"],
        checkpoint_moved: false,
    }
    .with_tap_answering(SiemFault::NotJson)
    .await;
}

#[tokio::test]
async fn a_component_out_of_time_is_an_error_of_its_window_and_the_next_run_fills_it() {
    Row {
        seed: 28,
        kind: FailureKind::Sandbox,
        says: &["checkpoint stays"],
        checkpoint_moved: false,
    }
    .check(
        |_, _| {},
        |options| {
            options.limits.cpu_time = StdDuration::from_micros(1);
            options.limits.wall_time = StdDuration::from_micros(1);
        },
        |_| {},
    )
    .await;
}

/// Issue case 2: `status = "Bogus"` made ThreatQ refuse every indicator,
/// and the run moved its checkpoint and exited 0: the indicators were lost.
/// Now the status is checked against ThreatQ before anything is fetched.
#[tokio::test]
async fn an_unknown_indicator_status_is_refused_before_anything_is_fetched() {
    let world = Row {
        seed: 29,
        kind: FailureKind::Config,
        says: &["status = \"Bogus\"", "Review", "nothing was fetched"],
        checkpoint_moved: false,
    }
    .check(
        |world, _| {
            let config = world.config_dir().join(tq_conn::config::CONFIG_FILE_NAME);
            let text = std::fs::read_to_string(&config).unwrap();
            std::fs::write(
                &config,
                text.replace("status = \"Review\"", "status = \"Bogus\""),
            )
            .unwrap();
            world.tap.clear_requests();
        },
        no_options,
        |world| {
            assert!(
                world.tap.requests().is_empty(),
                "no TAP request was made with a status ThreatQ would refuse"
            );
            world.write_config(true, HOURS);
        },
    )
    .await;
    assert_eq!(world.state().undelivered(), 0);
}

/// Issue case 2, the other way in: a ThreatQ that refuses every indicator
/// (a rule, a role without write access) fails the window with exit 12 and
/// keeps the checkpoint, after a bounded number of requests.
#[tokio::test]
async fn threatq_refusing_every_indicator_is_systemic_and_keeps_the_checkpoint() {
    Row {
        seed: 30,
        kind: FailureKind::Refused,
        says: &["indicators", "not bad data", "checkpoint"],
        checkpoint_moved: false,
    }
    .check(
        |world, _| {
            world.threatq.faults().refuse_collection(
                "indicators",
                422,
                "The selected status is invalid.",
            )
        },
        no_options,
        |world| world.threatq.faults().clear(),
    )
    .await;
}

/// Issue case 3: a web firewall that answered 403 to the body holding one
/// phishing URL failed the whole window, on every run, until the window
/// fell out of TAP's 7 days. Now the object is isolated, kept as a dead
/// letter with the firewall's answer, every later window goes out, and the
/// run exits 11; once the firewall lets it through, the next run delivers it.
#[tokio::test]
async fn a_firewall_refusing_one_url_costs_only_that_object_until_it_lets_it_through() {
    let dir = Row {
        seed: 31,
        kind: FailureKind::Undelivered,
        says: &["refused by ThreatQ", "replay --list"],
        checkpoint_moved: true,
    }
    .check(
        |world, expected| {
            let url = expected
                .iter()
                .find(|(collection, value, _, _)| {
                    collection == "indicators" && value.starts_with("http")
                })
                .map(|(_, value, _, _)| value.clone())
                .expect("the tenant has a URL indicator");
            world.threatq.faults().refuse_bodies_containing(&url, 403);
        },
        no_options,
        |world| {
            let listing = tq_conn::replay::list(world.config_dir()).unwrap();
            assert!(listing.contains("HTTP 403"), "{listing}");
            assert!(listing.contains("d1"), "{listing}");
            world.threatq.faults().clear();
        },
    )
    .await;
    let listing = tq_conn::replay::list(dir.config_dir()).unwrap();
    assert!(listing.contains("nothing undelivered"), "{listing}");
}

/// The row "ThreatQ 400/422 on one object": the rest goes on, the object
/// is reported with its reason and kept; it lands once ThreatQ takes it.
#[tokio::test]
async fn an_object_threatq_refuses_as_invalid_is_kept_and_lands_once_accepted() {
    Row {
        seed: 32,
        kind: FailureKind::Undelivered,
        says: &["1 object refused by ThreatQ"],
        checkpoint_moved: true,
    }
    .check(
        |world, expected| {
            let (_, title, _, _) = expected
                .iter()
                .find(|(collection, _, _, _)| collection == "events")
                .expect("the tenant has an event")
                .clone();
            world.threatq.faults().reject_values_containing(&title);
        },
        no_options,
        |world| world.threatq.faults().clear(),
    )
    .await;
}

/// The row "a TAP record that cannot be mapped": the rest of the window
/// lands, the record is kept raw (so a later version can map it), the run
/// exits 11 until it is dealt with, `replay` tries it again on demand, and
/// `replay --discard` lets the operator drop it for good.
#[tokio::test]
async fn an_unmappable_record_is_kept_raw_replayed_on_demand_and_discarded_on_the_operators_word() {
    let world = world().await;
    let now = now();
    // Every field TAP's own rules need is there, but not the GUID that
    // names the message: the record cannot become an event.
    let marker = "broken-record-0001";
    let at = (now - time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let raw = serde_json::json!({
        "id": marker,
        "QID": "r2FNwRHF004109",
        "messageTime": at,
        "recipient": ["victim@example.com"],
        "sender": "billing@evil.zz",
        "subject": "Invoice",
        "messageParts": [],
        // TAP lists a message for its threats; a query by threat status
        // serves none without one.
        "threatsInfoMap": [{"threat": "https://evil.zz/broken", "threatType": "url", "threatStatus": "active"}]
    });
    world
        .tap
        .add_message(tap_sim::MessageKind::Delivered, raw.clone())
        .unwrap();

    let failure = failed(world.run_at(now).await);
    assert_eq!(
        failure.kind,
        FailureKind::Undelivered,
        "{:#}",
        failure.error
    );
    assert!(
        format!("{:#}", failure.error).contains("1 TAP records"),
        "{:#}",
        failure.error
    );
    assert!(
        world.state().checkpoint.is_some(),
        "the window was forwarded"
    );

    let store = tq_conn::state::Store::open(world.config_dir()).unwrap();
    let kept = store.quarantined().unwrap();
    assert_eq!(kept.len(), 1);
    let kept_raw: serde_json::Value = serde_json::from_str(&kept[0].raw).unwrap();
    assert_eq!(kept_raw, raw, "kept exactly as TAP sent it");
    assert_eq!(kept[0].section, "messagesDelivered");
    drop(store);
    let listing = tq_conn::replay::list(world.config_dir()).unwrap();
    assert!(
        listing.contains("q1") && listing.contains(marker),
        "{listing}"
    );

    // The same version maps it the same way: a plain run does not spend
    // TAP budget on it again, but still says it is undelivered.
    let failure = failed(world.run_at(now).await);
    assert_eq!(failure.kind, FailureKind::Undelivered);
    let attempts = |world: &World| {
        tq_conn::state::Store::open(world.config_dir())
            .unwrap()
            .quarantined()
            .unwrap()[0]
            .attempts
    };
    assert_eq!(attempts(&world), 1);

    // `replay` tries it now, whatever version quarantined it.
    let mut replay = world.options(now);
    replay.mode = tq_conn::run::RunMode::Replay;
    let failure = failed(tq_conn::run::run(&replay).await);
    assert_eq!(failure.kind, FailureKind::Undelivered);
    assert_eq!(attempts(&world), 2, "tried again and still kept");

    tq_conn::replay::discard(world.config_dir(), &["q1".parse().unwrap()]).unwrap();
    let outcome = world.run_at(now).await;
    assert!(
        matches!(outcome, Ok(RunOutcome::Completed(_))),
        "{outcome:?}"
    );
}

/// The row "ThreatQ answers 2xx with errors in the body": nothing from
/// that request counts as stored, so the window fails and keeps its
/// checkpoint; the next run sends it again.
#[tokio::test]
async fn threatq_answering_200_with_errors_is_not_taken_as_stored() {
    Row {
        seed: 33,
        kind: FailureKind::Threatq,
        says: &["carries errors", "checkpoint stays"],
        checkpoint_moved: false,
    }
    .check(
        |world, _| world.threatq.faults().errors_in_success_next(100_000),
        no_options,
        |world| world.threatq.faults().clear(),
    )
    .await;
}

/// The row "ThreatQ has no collection for a kind (404)": those objects are
/// refused with the reason and kept (or, when every one of several is,
/// the window fails as systemic); once the object type is installed they
/// land.
#[tokio::test]
async fn a_collection_threatq_lacks_is_named_and_its_objects_land_once_it_exists() {
    let now = now();
    let tenant = tenant(34, 3, now);
    let expected = clean_holdings(&tenant, now).await;
    let adversaries = expected
        .iter()
        .filter(|(collection, ..)| collection == "adversaries")
        .count();
    assert!(adversaries > 0, "the tenant has adversaries");
    Row {
        seed: 34,
        kind: if adversaries >= 8 {
            FailureKind::Refused
        } else {
            FailureKind::Undelivered
        },
        says: &[],
        checkpoint_moved: adversaries < 8,
    }
    .check(
        |world, _| {
            world
                .threatq
                .faults()
                .refuse_collection("adversaries", 404, "No such endpoint.")
        },
        no_options,
        |world| world.threatq.faults().clear(),
    )
    .await;
}

/// The row "the state store is damaged": the run stops before any request
/// with the way out, and leaves the file as it was; once it is moved
/// aside, the next run starts again from the configured history and
/// ThreatQ, which upserts, ends up as a clean run leaves it.
#[tokio::test]
async fn a_damaged_state_store_stops_the_run_untouched_and_moving_it_aside_recovers() {
    let now = now();
    let tenant = tenant(35, 3, now);
    let expected = clean_holdings(&tenant, now).await;
    let world = world().await;
    world.load(&tenant);
    completed_or_undelivered(&world, now).await;
    let db = world.config_dir().join(tq_conn::state::STATE_DB_NAME);
    std::fs::write(&db, vec![0x5a; 4096]).unwrap();
    world.tap.clear_requests();

    let failure = failed(world.run_at(now).await);
    let text = format!("{:#}", failure.error);
    assert_eq!(failure.kind, FailureKind::Local, "{text}");
    assert_eq!(failure.kind.exit_code(), 1);
    assert!(
        text.contains(".recover") && text.contains("move it aside"),
        "{text}"
    );
    assert_eq!(std::fs::read(&db).unwrap(), vec![0x5a; 4096], "not reset");
    assert!(world.tap.requests().is_empty(), "nothing fetched");

    std::fs::rename(&db, db.with_extension("db.damaged")).unwrap();
    run_to_success(&world, now).await;
    assert_eq!(holdings(&world.threatq), expected);
}

async fn completed_or_undelivered(world: &World, now: OffsetDateTime) {
    match world.run_at(now).await {
        Ok(RunOutcome::Completed(_)) => {}
        Err(failure) if failure.kind == FailureKind::Undelivered => {}
        other => panic!("the run did not complete: {other:?}"),
    }
}
