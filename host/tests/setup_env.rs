//! `setup` reads TQ_HOST, TQ_CLIENT_ID, TQ_USERNAME, TQ_PASSWORD and
//! TQ_STATUS; flags win over them. One test only: it changes this
//! process's environment.

use tq_conn::cli::{Command, parse_args};
use tq_conn::config::{self, ExposeSecret as _, ThreatqSection};
use tq_conn::setup::run_setup_command;

async fn accept(_: &ThreatqSection) -> anyhow::Result<()> {
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn setup_takes_its_values_from_the_environment_and_flags_win() {
    // SAFETY: this is the only test in this binary and it runs on one
    // thread, so nothing reads the environment while it is changed.
    unsafe {
        std::env::set_var("TQ_HOST", "tq-from-env.example.com");
        std::env::set_var("TQ_CLIENT_ID", "cid-env");
        std::env::set_var("TQ_USERNAME", "env@example.com");
        std::env::set_var("TQ_PASSWORD", "pw-from-env");
        std::env::set_var("TQ_STATUS", "Whitelisted");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let dir_text = dir.path().to_str().expect("utf-8");
    let cli = parse_args([
        "tq-conn-proofpoint-tap",
        "-c",
        dir_text,
        "setup",
        "--username",
        "flag@example.com",
    ])
    .expect("parses");
    let Some(Command::Setup(args)) = cli.command else {
        panic!("expected setup");
    };
    run_setup_command(dir.path(), &args, accept)
        .await
        .expect("setup");
    let config = config::load(dir.path()).expect("loads").expect("present");
    assert_eq!(config.threatq.host.host(), "tq-from-env.example.com");
    assert_eq!(config.threatq.client_id, "cid-env");
    assert_eq!(config.threatq.username, "flag@example.com");
    assert_eq!(config.threatq.password.expose_secret(), "pw-from-env");
    assert_eq!(config.threatq.status, "Whitelisted");
}
