//! `tq-conn-proofpoint-tap setup`: the first-run answers from flags and
//! files, for hosts without a terminal.

use std::fs;
use std::path::Path;

use anyhow::anyhow;
use tq_conn::cli::{Command, SetupArgs, parse_args};
use tq_conn::config::{self, ExposeSecret as _, ThreatqSection};
use tq_conn::setup::{config_from_args, run_setup_command};

fn setup_args(dir: &Path, flags: &[&str]) -> SetupArgs {
    let dir = dir.to_str().expect("utf-8");
    let argv = ["tq-conn-proofpoint-tap", "-c", dir, "setup"]
        .into_iter()
        .chain(flags.iter().copied());
    match parse_args(argv).expect("parses").command {
        Some(Command::Setup(args)) => args,
        other => panic!("expected setup, got {other:?}"),
    }
}

fn password_file(dir: &Path, content: &str) -> String {
    let file = dir.join("tq-password");
    fs::write(&file, content).expect("write password file");
    file.to_str().expect("utf-8").to_owned()
}

async fn accept(_: &ThreatqSection) -> anyhow::Result<()> {
    Ok(())
}

async fn reject(_: &ThreatqSection) -> anyhow::Result<()> {
    Err(anyhow!("ThreatQ answered 401: invalid credentials"))
}

#[tokio::test]
async fn flags_and_a_password_file_write_a_loadable_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secrets = tempfile::tempdir().expect("tempdir");
    let password = password_file(secrets.path(), "pw with spaces \n");
    let tap_secret = secrets.path().join("tap-secret");
    fs::write(&tap_secret, "tap-s3cret\r\n").expect("write");
    let args = setup_args(
        dir.path(),
        &[
            "--host",
            "http://127.0.0.1:9000",
            "--client-id",
            "cid",
            "--username",
            "svc@example.com",
            "--password-file",
            &password,
            "--status",
            "Active",
            "--tap-hostname",
            "tap.example.com",
            "--tap-principal",
            "principal",
            "--tap-secret-file",
            tap_secret.to_str().expect("utf-8"),
            "--history-hours",
            "12",
            "--create-incidents",
            "true",
        ],
    );
    let written = run_setup_command(dir.path(), &args, accept)
        .await
        .expect("setup");
    let loaded = config::load(dir.path()).expect("loads").expect("present");
    assert_eq!(loaded, written);
    assert_eq!(loaded.threatq.host.base(), "http://127.0.0.1:9000");
    assert_eq!(loaded.threatq.password.expose_secret(), "pw with spaces ");
    assert_eq!(loaded.threatq.status, "Active");
    assert_eq!(
        loaded.tap.hostname.as_ref().map(|h| h.base()),
        Some("https://tap.example.com")
    );
    assert_eq!(
        loaded.tap.secret.as_ref().map(|s| s.expose_secret()),
        Some("tap-s3cret")
    );
    assert_eq!(loaded.tap.history_hours, Some(12));
    assert_eq!(loaded.tap.create_incidents, Some(true));
}

#[tokio::test]
async fn an_existing_config_is_not_overwritten_without_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let password = password_file(dir.path(), "first");
    let first = setup_args(
        dir.path(),
        &[
            "--host",
            "tq1",
            "--client-id",
            "a",
            "--username",
            "u",
            "--password-file",
            &password,
        ],
    );
    run_setup_command(dir.path(), &first, accept)
        .await
        .expect("first setup");
    let before = fs::read_to_string(config::path(dir.path())).expect("read");

    let second = setup_args(
        dir.path(),
        &[
            "--host",
            "tq2",
            "--client-id",
            "b",
            "--username",
            "u",
            "--password-file",
            &password,
        ],
    );
    let error = run_setup_command(dir.path(), &second, accept)
        .await
        .expect_err("refused");
    let message = format!("{error:#}");
    assert!(message.contains("already exists"), "{message}");
    assert!(message.contains("--force"), "{message}");
    assert_eq!(
        fs::read_to_string(config::path(dir.path())).expect("read"),
        before
    );

    let forced = setup_args(
        dir.path(),
        &[
            "--host",
            "tq2",
            "--client-id",
            "b",
            "--username",
            "u",
            "--password-file",
            &password,
            "--force",
        ],
    );
    run_setup_command(dir.path(), &forced, accept)
        .await
        .expect("forced");
    let loaded = config::load(dir.path()).expect("loads").expect("present");
    assert_eq!(loaded.threatq.host.host(), "tq2");
}

#[tokio::test]
async fn a_rejected_login_writes_nothing_unless_no_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let password = password_file(dir.path(), "pw");
    let flags = [
        "--host",
        "tq",
        "--client-id",
        "a",
        "--username",
        "u",
        "--password-file",
        &password,
    ];
    let args = setup_args(dir.path(), &flags);
    let error = run_setup_command(dir.path(), &args, reject)
        .await
        .expect_err("rejected");
    let message = format!("{error:#}");
    assert!(message.contains("invalid credentials"), "{message}");
    assert!(message.contains("--no-verify"), "{message}");
    assert!(!config::path(dir.path()).exists());

    let mut flags = flags.to_vec();
    flags.push("--no-verify");
    let args = setup_args(dir.path(), &flags);
    run_setup_command(dir.path(), &args, reject)
        .await
        .expect("written without checking");
    assert!(config::path(dir.path()).exists());
}

#[test]
fn every_missing_value_is_named_in_one_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = setup_args(dir.path(), &["--client-id", "a"]);
    let message = config_from_args(&args, None, None)
        .expect_err("incomplete")
        .to_string();
    assert_eq!(
        message,
        "setup needs --host (or TQ_HOST), --username (or TQ_USERNAME), --password-file (or TQ_PASSWORD)"
    );
}

#[test]
fn the_password_file_wins_over_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let password = password_file(dir.path(), "from-file");
    let flags = ["--host", "tq", "--client-id", "a", "--username", "u"];
    let from_env = config_from_args(
        &setup_args(dir.path(), &flags),
        Some("from-env".into()),
        None,
    )
    .expect("env password");
    assert_eq!(from_env.threatq.password.expose_secret(), "from-env");
    let mut with_file = flags.to_vec();
    with_file.extend(["--password-file", &password]);
    let from_file = config_from_args(
        &setup_args(dir.path(), &with_file),
        Some("from-env".into()),
        None,
    )
    .expect("file password");
    assert_eq!(from_file.threatq.password.expose_secret(), "from-file");
}

#[test]
fn bad_values_are_named_by_their_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let password = password_file(dir.path(), "pw");
    let base = [
        "--client-id",
        "a",
        "--username",
        "u",
        "--password-file",
        &password,
    ];
    let cases: [(&[&str], &str); 5] = [
        (
            &["--host", "https://tq/api"],
            "--host `https://tq/api` has a path",
        ),
        (&["--host", "tq", "--proxy", "proxy:3128"], "--proxy: "),
        (
            &["--host", "tq", "--ca-file", "/nonexistent.pem"],
            "--ca-file /nonexistent.pem does not exist",
        ),
        (
            &["--host", "tq", "--tap-hostname", "ftp://tap"],
            "--tap-hostname `ftp://tap` uses scheme",
        ),
        (
            &["--host", "tq", "--status", " "],
            "--status cannot be empty",
        ),
    ];
    for (extra, expected) in cases {
        let mut flags = base.to_vec();
        flags.extend_from_slice(extra);
        let message = config_from_args(&setup_args(dir.path(), &flags), None, None)
            .expect_err(expected)
            .to_string();
        assert!(message.starts_with(expected), "{message}");
    }
    let empty = password_file(dir.path(), "\n");
    let mut flags = vec![
        "--host",
        "tq",
        "--client-id",
        "a",
        "--username",
        "u",
        "--password-file",
    ];
    flags.push(&empty);
    let message = config_from_args(&setup_args(dir.path(), &flags), None, None)
        .expect_err("empty password file")
        .to_string();
    assert!(message.contains("the file is empty"), "{message}");
}

#[test]
fn history_hours_outside_one_to_48_is_a_usage_error() {
    let error = parse_args(["tq-conn-proofpoint-tap", "setup", "--history-hours", "72"])
        .expect_err("out of range");
    assert_eq!(error.exit_code(), 2);
    assert!(error.to_string().contains("72"), "{error}");
}
