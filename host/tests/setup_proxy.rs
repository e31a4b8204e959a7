//! `setup`'s proxies and TAP secret: a proxy password never needs to be on
//! the command line (where `ps` shows it to every user), and a TAP secret
//! is written only with the hostname it may go to.

use std::fs;
use std::path::Path;

use tq_conn::cli::{Command, SetupArgs, parse_args};
use tq_conn::config::{self, ExposeSecret as _};
use tq_conn::setup::config_from_args;

const PROXY_PASSWORD: &str = "Pr0xy-Pa55-setup";

fn setup_args(flags: &[&str]) -> SetupArgs {
    let argv = [
        "tq-conn-proofpoint-tap",
        "setup",
        "--host",
        "tq",
        "--client-id",
        "a",
        "--username",
        "u",
    ]
    .into_iter()
    .chain(flags.iter().copied());
    match parse_args(argv).expect("parses").command {
        Some(Command::Setup(args)) => args,
        other => panic!("expected setup, got {other:?}"),
    }
}

fn file(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, content).expect("written");
    path.to_str().expect("utf-8").to_owned()
}

#[test]
fn proxy_files_give_each_section_its_proxy_with_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let threatq_proxy = file(
        dir.path(),
        "threatq-proxy",
        &format!("http://squid:{PROXY_PASSWORD}@threatq-proxy:3128\n"),
    );
    let tap_proxy = file(
        dir.path(),
        "tap-proxy",
        &format!("http://squid:{PROXY_PASSWORD}@tap-proxy:3128\n"),
    );
    let config = config_from_args(
        &setup_args(&[
            "--proxy-file",
            &threatq_proxy,
            "--tap-proxy-file",
            &tap_proxy,
        ]),
        Some("pw".to_owned()),
        None,
    )
    .expect("accepted");
    let threatq = config.threatq.proxy.expect("[threatq] proxy");
    assert_eq!(threatq.to_string(), "http://squid:***@threatq-proxy:3128");
    assert_eq!(threatq.password(), Some(PROXY_PASSWORD));
    let tap = config.tap.proxy.expect("[tap] proxy");
    assert_eq!(tap.to_string(), "http://squid:***@tap-proxy:3128");
    assert_eq!(tap.password(), Some(PROXY_PASSWORD));

    // And the file written keeps them, for the run.
    let out = tempfile::tempdir().unwrap();
    config::write(
        out.path(),
        &config_from_args(
            &setup_args(&["--tap-proxy-file", &tap_proxy]),
            Some("pw".to_owned()),
            None,
        )
        .unwrap(),
    )
    .unwrap();
    let loaded = config::load(out.path()).unwrap().unwrap();
    assert_eq!(
        loaded.tap.proxy.as_ref().and_then(|p| p.password()),
        Some(PROXY_PASSWORD)
    );
    assert_eq!(loaded.threatq.proxy, None);
}

/// A URL flag with a password is refused, naming the file flag; the
/// message masks the password it refuses.
#[test]
fn a_proxy_password_on_the_command_line_is_refused_naming_the_file_flag() {
    for (flag, file_flag) in [
        ("--proxy", "--proxy-file"),
        ("--tap-proxy", "--tap-proxy-file"),
    ] {
        let url = format!("http://squid:{PROXY_PASSWORD}@proxy:3128");
        let message = config_from_args(&setup_args(&[flag, &url]), Some("pw".to_owned()), None)
            .expect_err(flag)
            .to_string();
        assert!(message.contains("`ps`"), "{message}");
        assert!(message.contains(&format!("{file_flag} FILE")), "{message}");
        assert!(message.contains("squid:***@proxy"), "{message}");
        assert!(!message.contains(PROXY_PASSWORD), "{message}");

        // Without a password the flag is fine.
        config_from_args(
            &setup_args(&[flag, "http://proxy:3128"]),
            Some("pw".to_owned()),
            None,
        )
        .expect("no password");
    }
}

#[test]
fn a_bad_proxy_file_is_named_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let bad = file(
        dir.path(),
        "proxy",
        &format!("ftp://squid:{PROXY_PASSWORD}@proxy:21"),
    );
    let message = config_from_args(
        &setup_args(&["--tap-proxy-file", &bad]),
        Some("pw".to_owned()),
        None,
    )
    .expect_err("ftp")
    .to_string();
    assert!(
        message.starts_with(&format!("--tap-proxy-file {bad}: ")),
        "{message}"
    );
    assert!(!message.contains(PROXY_PASSWORD), "{message}");
    let empty = file(dir.path(), "empty", "\n");
    let message = config_from_args(
        &setup_args(&["--proxy-file", &empty]),
        Some("pw".to_owned()),
        None,
    )
    .expect_err("empty")
    .to_string();
    assert!(message.contains("empty"), "{message}");
}

#[test]
fn a_url_and_a_file_for_one_proxy_are_a_usage_error() {
    let argv = [
        "tq-conn-proofpoint-tap",
        "setup",
        "--proxy",
        "http://proxy:3128",
        "--proxy-file",
        "/some/file",
    ];
    let error = parse_args(argv).expect_err("conflict");
    assert_eq!(error.exit_code(), 2);
}

/// A run refuses a local secret whose hostname comes from ThreatQ's UI;
/// setup refuses to write one.
#[test]
fn a_tap_secret_without_a_tap_hostname_is_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let secret = file(dir.path(), "tap-secret", "s3cret\n");
    let message = config_from_args(
        &setup_args(&["--tap-secret-file", &secret]),
        Some("pw".to_owned()),
        None,
    )
    .expect_err("no hostname")
    .to_string();
    assert!(message.contains("--tap-hostname"), "{message}");
    let message = config_from_args(&setup_args(&[]), Some("pw".to_owned()), Some("env".into()))
        .expect_err("TAP_SECRET without a hostname")
        .to_string();
    assert!(message.contains("--tap-hostname"), "{message}");

    let config = config_from_args(
        &setup_args(&[
            "--tap-secret-file",
            &secret,
            "--tap-hostname",
            "tap.example.com",
        ]),
        Some("pw".to_owned()),
        None,
    )
    .expect("with its hostname");
    assert_eq!(
        config.tap.secret.as_ref().map(|s| s.expose_secret()),
        Some("s3cret")
    );
}
