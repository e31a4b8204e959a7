//! The built binary, as cron runs it, against the simulators.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tap_sim::{TapSim, TapSimConfig, TenantSpec};
use threatq_sim::{ThreatqSim, ThreatqSimConfig};
use time::OffsetDateTime;

const BIN: &str = env!("CARGO_BIN_EXE_tq-conn-proofpoint-tap");

struct Sims {
    tap: TapSim,
    threatq: ThreatqSim,
    dir: tempfile::TempDir,
    tenant: tap_sim::Tenant,
}

async fn sims(hours: u32, messages_per_hour: u32) -> Sims {
    let tap = TapSim::start(TapSimConfig::default()).await.unwrap();
    let threatq = ThreatqSim::start(ThreatqSimConfig::default())
        .await
        .unwrap();
    let mut spec = TenantSpec::last_hours(hours);
    spec.messages_per_hour = messages_per_hour;
    // The false-positive rule applies within a window, so its outcome for a
    // value seen twice depends on where windows fall; the resume test below
    // compares runs cut into different windows.
    spec.false_positive_fraction = 0.0;
    let tenant = tap_sim::generator::generate(&spec);
    tap.load_tenant(&tenant);
    let dir = tempfile::tempdir().unwrap();
    let config = sim_config::simulator_config(
        &threatq.base_url(),
        &ThreatqSimConfig::default(),
        Some((&tap.base_url(), &TapSimConfig::default())),
        &format!("history_hours = {hours}\ncreate_incidents = true\n"),
    );
    std::fs::write(dir.path().join(tq_conn::config::CONFIG_FILE_NAME), config).unwrap();
    Sims {
        tap,
        threatq,
        dir,
        tenant,
    }
}

/// A child process that is killed and reaped however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn connector(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null());
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn the_old_crontab_line_runs_unchanged_and_logs_a_summary_without_secrets() {
    let sims = sims(3, 30).await;
    let config_dir = sims.dir.path().join("tq_labs");
    let log_dir = sims.dir.path().join("log");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::create_dir_all(&log_dir).unwrap();
    std::fs::rename(
        sims.dir.path().join(tq_conn::config::CONFIG_FILE_NAME),
        config_dir.join(tq_conn::config::CONFIG_FILE_NAME),
    )
    .unwrap();

    // `tq-conn-proofpoint-tap -c /etc/tq_labs/ -ll /var/log/tq_labs/ -v3`
    let output = connector(sims.dir.path())
        .args(["-c", &format!("{}/", config_dir.display())])
        .args(["-ll", &format!("{}/", log_dir.display())])
        .arg("-v3")
        .output()
        .unwrap();

    assert!(
        output.status.success(),
        "exit {:?}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let log = std::fs::read_to_string(log_dir.join("tq-conn-proofpoint-tap.log")).unwrap();
    assert!(log.contains("summary: windows 3/3"), "{log}");
    assert!(
        log.contains("window forwarded"),
        "one line per window at info"
    );
    for secret in ["sim-password", "sim-secret", "Bearer ", "Authorization"] {
        assert!(!log.contains(secret), "the log shows `{secret}`");
    }
    assert!(sims.threatq.snapshot().count("events") > 0);
    let tap_requests = sims.tap.requests();
    assert!(!tap_requests.is_empty());
    assert!(
        tap_requests.iter().all(|r| r.status < 400),
        "every TAP request was authenticated and legal"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_mid_way_loses_and_duplicates_nothing_when_run_again() {
    let sims = sims(24, 60).await;
    // Slow ThreatQ down so the run is still going when it is killed.
    sims.threatq
        .faults()
        .set_delay(Some(Duration::from_millis(40)));

    let mut child = KillOnDrop(
        connector(sims.dir.path())
            .args(["-c", "."])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut killed_mid_run = false;
    while Instant::now() < deadline {
        if child.0.try_wait().unwrap().is_some() {
            break;
        }
        let checkpointed = sims.dir.path().join(tq_conn::state::STATE_DB_NAME).exists()
            && tq_conn::state::Store::open(sims.dir.path())
                .is_ok_and(|store| store.state().checkpoint.is_some());
        if checkpointed {
            child.0.kill().unwrap(); // SIGKILL
            child.0.wait().unwrap();
            killed_mid_run = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(child);
    assert!(killed_mid_run, "the run ended before it could be killed");
    let store = tq_conn::state::Store::open(sims.dir.path()).unwrap();
    let checkpoint = store
        .state()
        .checkpoint
        .expect("a checkpoint was written before the kill");
    assert!(checkpoint < OffsetDateTime::now_utc() - time::Duration::hours(1));

    sims.threatq.faults().set_delay(None);
    let status = connector(sims.dir.path())
        .args(["-c", "."])
        .status()
        .unwrap();
    assert!(status.success());

    // Nothing lost: a fresh connector over the same TAP data (a fresh
    // simulator, so fresh TAP budgets) into an empty ThreatQ lands exactly
    // what the killed-and-resumed pair landed.
    let reference_tap = TapSim::start(TapSimConfig::default()).await.unwrap();
    reference_tap.load_tenant(&sims.tenant);
    let reference = ThreatqSim::start(ThreatqSimConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(tq_conn::config::CONFIG_FILE_NAME),
        sim_config::simulator_config(
            &reference.base_url(),
            &ThreatqSimConfig::default(),
            Some((&reference_tap.base_url(), &TapSimConfig::default())),
            "history_hours = 24\ncreate_incidents = true\n",
        ),
    )
    .unwrap();
    assert!(
        connector(dir.path())
            .args(["-c", "."])
            .status()
            .unwrap()
            .success()
    );
    let resumed = sims.threatq.snapshot();
    let clean = reference.snapshot();
    for collection in [
        "indicators",
        "events",
        "campaign",
        "malware",
        "adversaries",
        "attack_pattern",
    ] {
        assert_eq!(
            resumed.count(collection),
            clean.count(collection),
            "{collection}: killed-and-resumed vs clean run"
        );
    }
}

#[test]
fn without_config_and_without_a_terminal_it_says_how_to_set_up_instead_of_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let output = connector(dir.path()).args(["-c", "."]).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("setup"), "{stderr}");
}

#[test]
fn demo_runs_on_the_simulators_and_prints_what_landed() {
    let output = Command::new(BIN)
        .args(["demo", "--hours", "3"])
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("Landed in the simulated ThreatQ"),
        "{stdout}"
    );
    assert!(stdout.contains("indicators"), "{stdout}");
    assert!(stdout.contains("Incremental run"), "{stdout}");
    // The demo shows the context only this connector gives.
    assert!(
        stdout.contains("A threat in no campaign, from its summary: indicator"),
        "{stdout}"
    );
    assert!(
        stdout.contains("An incident of a Very Attacked Person: TAP Incident"),
        "{stdout}"
    );
    assert!(stdout.contains("Attack Index = "), "{stdout}");
}
