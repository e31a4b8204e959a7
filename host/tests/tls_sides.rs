//! TLS settings are per side: `[tap]`'s reach only the TAP client and
//! `[threatq]`'s only the ThreatQ client; `-ds` alone reaches across both,
//! and says so once. Run with the built binary against the simulators.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use tap_sim::{TapSim, TapSimConfig, TenantSpec};
use threatq_sim::{ThreatqSim, ThreatqSimConfig};

const BIN: &str = env!("CARGO_BIN_EXE_tq-conn-proofpoint-tap");
const NOT_A_CERTIFICATE: &str = "this is not a PEM certificate\n";

struct Sims {
    tap: TapSim,
    threatq: ThreatqSim,
    dir: tempfile::TempDir,
}

async fn sims(threatq_extra: &str, tap_extra: &str) -> Sims {
    let tap = TapSim::start(TapSimConfig::default()).await.unwrap();
    tap.load_tenant(&tap_sim::generator::generate(&TenantSpec::last_hours(1)));
    let threatq = ThreatqSim::start(ThreatqSimConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("not-a-ca.pem"), NOT_A_CERTIFICATE).unwrap();
    let config = sim_config::simulator_config(
        &threatq.base_url(),
        &ThreatqSimConfig::default(),
        Some((&tap.base_url(), &TapSimConfig::default())),
        &format!("history_hours = 1\n{tap_extra}"),
    )
    .replace(
        "status = \"Review\"\n",
        &format!("status = \"Review\"\n{threatq_extra}"),
    );
    std::fs::write(dir.path().join(tq_conn::config::CONFIG_FILE_NAME), config).unwrap();
    Sims { tap, threatq, dir }
}

fn run(dir: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .env("RUST_BACKTRACE", "0")
        .env_remove("TQ_CONN_LOG")
        .stdin(Stdio::null())
        .args(["-c", ".", "-ll", "."])
        .args(extra)
        .output()
        .unwrap()
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(tq_conn::logging::LOG_FILE_NAME)).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tap_ca_file_is_loaded_for_tap_only() {
    let sims = sims("", "ca_file = \"not-a-ca.pem\"\n").await;
    let output = run(sims.dir.path(), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("not-a-ca.pem"), "{stderr}");
    assert!(stderr.contains("[tap]"), "{stderr}");
    assert!(!stderr.contains("[threatq]"), "{stderr}");
    // ThreatQ's client did not load it: the login went through first.
    assert!(
        sims.threatq
            .requests()
            .iter()
            .any(|r| r.path == "/api/token" && r.status == 200),
        "ThreatQ was never reached"
    );
    assert!(sims.tap.requests().is_empty(), "TAP was called");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_threatq_ca_file_is_loaded_for_threatq_only() {
    let sims = sims("ca_file = \"not-a-ca.pem\"\n", "").await;
    let output = run(sims.dir.path(), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("not-a-ca.pem"), "{stderr}");
    assert!(stderr.contains("[threatq]"), "{stderr}");
    assert!(sims.threatq.requests().is_empty(), "ThreatQ was called");
}

#[tokio::test(flavor = "multi_thread")]
async fn threatq_verify_tls_false_is_not_a_reason_to_warn_and_ds_warns_once_naming_both_sides() {
    let sims = sims("verify_tls = false\n", "").await;
    let output = run(sims.dir.path(), &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !log(sims.dir.path()).contains("-ds"),
        "{}",
        log(sims.dir.path())
    );

    let output = run(sims.dir.path(), &["-ds"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let log = log(sims.dir.path());
    let warnings: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("-ds"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].contains("TAP") && warnings[0].contains("ThreatQ"),
        "{}",
        warnings[0]
    );
}
