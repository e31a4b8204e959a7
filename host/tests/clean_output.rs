//! What TAP and ThreatQ say reaches the operator as one line per event:
//! control characters in log fields and on standard error are escaped, and
//! standard error goes through the log's redactor.

use std::fs;
use std::path::Path;
use std::process::Command;

use tq_conn::cli::{LogTarget, Verbosity};
use tq_conn::logging::{self, LOG_FILE_NAME};

const BIN: &str = env!("CARGO_BIN_EXE_tq-conn-proofpoint-tap");

/// A subject an attacker could send: a forged log line, a terminal escape
/// (clear screen), the C1 CSI, DEL, a tab and a Unicode line separator.
const HOSTILE: &str = "Invoice\nERROR forged line\r\u{1b}[2J\u{9b}31m\u{7f}\tend\u{2028}x";

#[derive(Debug)]
struct Failure(String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

fn unsafe_chars(line: &str) -> Vec<char> {
    line.chars()
        .filter(|c| logging::is_unsafe_char(*c))
        .collect()
}

#[test]
fn every_field_of_every_event_is_one_line_in_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (subscriber, guard) = logging::build(
        &LogTarget::Dir(dir.path().to_owned()),
        Verbosity::Everything,
    )
    .expect("logging starts");
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!(target: "tq_conn::run", "window", subject = %HOSTILE);
        let _entered = span.enter();
        tracing::warn!(target: "tq_conn::run", subject = %HOSTILE, "case 1: display field");
        tracing::warn!(target: "tq_conn::run", "case 2: in the message: {HOSTILE}");
        tracing::warn!(target: "tq_conn::run", subject = ?HOSTILE, "case 3: debug field");
        tracing::warn!(target: "tq_conn::run", subject = HOSTILE, "case 4: str field");
        let error: &(dyn std::error::Error + 'static) = &Failure(HOSTILE.to_owned());
        tracing::warn!(target: "tq_conn::run", error, "case 5: error field");
        tracing::warn!(target: "tq_conn::run", r#type = %HOSTILE, "case 6: raw name");
    });
    drop(guard);

    let log = fs::read_to_string(dir.path().join(LOG_FILE_NAME)).expect("log written");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 6, "one line per event:\n{log}");
    for (case, line) in (1..=6).zip(&lines) {
        assert!(line.contains(&format!("case {case}:")), "{line}");
        assert_eq!(
            unsafe_chars(line),
            Vec::<char>::new(),
            "case {case}: {line}"
        );
        assert!(!line.starts_with("ERROR forged"), "case {case}: {line}");
        assert!(
            line.contains("window{subject=Invoice"),
            "the span's field: {line}"
        );
    }
    let escaped = r"Invoice\nERROR forged line\r\u{1b}[2J\u{9b}31m\u{7f}\tend\u{2028}x";
    for case in [1, 2, 5, 6] {
        assert!(
            lines[case - 1].contains(escaped),
            "case {case}: {}",
            lines[case - 1]
        );
    }
    assert!(lines[5].contains("type=Invoice"), "{}", lines[5]);
}

fn write_config(dir: &Path, threatq_extra: &str) {
    let text = format!(
        "[threatq]\nhost = \"threatq.example.com\"\nclient_id = \"c\"\n\
         username = \"u@example.com\"\npassword = \"pw-not-shown\"\n{threatq_extra}"
    );
    fs::write(dir.join(tq_conn::config::CONFIG_FILE_NAME), text).expect("config written");
}

fn stderr_of(command: &mut Command) -> String {
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the connector runs");
    assert!(!output.status.success(), "{output:?}");
    String::from_utf8(output.stderr).expect("UTF-8")
}

#[test]
fn standard_error_escapes_control_characters_and_masks_proxy_passwords() {
    let dir = tempfile::tempdir().expect("tempdir");
    // An unknown key is quoted in the error: one with an escape sequence
    // and a line break in its name.
    write_config(dir.path(), "\"evil\\u001b[2J\\nERROR forged\" = 1\n");
    let stderr = stderr_of(
        Command::new(BIN)
            .arg("-c")
            .arg(dir.path())
            .args(["-ll", "stdout"]),
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(
        unsafe_chars(stderr.trim_end()),
        Vec::<char>::new(),
        "{stderr:?}"
    );
    assert!(stderr.contains(r"evil\u{1b}[2J\nERROR forged"), "{stderr}");

    // A proxy password with `/` in it, written as is: the URL parser ends
    // the host there; the message still masks all of it.
    write_config(
        dir.path(),
        "proxy = \"http://squid:s3cr/et?pa#ss@proxy.example:3128\"\n",
    );
    let stderr = stderr_of(
        Command::new(BIN)
            .arg("-c")
            .arg(dir.path())
            .args(["-ll", "stdout"]),
    );
    for part in ["s3cr", "et?pa", "#ss"] {
        assert!(!stderr.contains(part), "{part}: {stderr}");
    }
    assert!(stderr.contains("squid:***@proxy.example:3128"), "{stderr}");
}

#[test]
fn a_usage_error_quoting_a_url_password_is_masked() {
    let stderr = stderr_of(Command::new(BIN).arg("http://squid:cl1-pa55word@proxy:3128"));
    assert!(!stderr.contains("cl1-pa55word"), "{stderr}");
    assert!(stderr.contains("squid:***@proxy:3128"), "{stderr}");
    assert!(stderr.contains("Usage:"), "clap's text stays: {stderr}");
}
