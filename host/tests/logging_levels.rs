//! What each verbosity writes, and how a line looks.

use std::fs;

use tq_conn::cli::{LogTarget, Verbosity};
use tq_conn::logging::{self, LOG_FILE_NAME};

/// Emits one event per level for our crate and for a third-party one, and
/// returns the log file's lines.
fn log_at(verbosity: Verbosity) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (subscriber, guard) =
        logging::build(&LogTarget::Dir(dir.path().to_owned()), verbosity).expect("builds");
    tracing::subscriber::with_default(subscriber, || {
        for target_is_ours in [true, false] {
            macro_rules! each_level {
                ($target:literal) => {
                    tracing::error!(target: $target, "error from {}", $target);
                    tracing::warn!(target: $target, "warn from {}", $target);
                    tracing::info!(target: $target, "info from {}", $target);
                    tracing::debug!(target: $target, "debug from {}", $target);
                    tracing::trace!(target: $target, "trace from {}", $target);
                };
            }
            if target_is_ours {
                each_level!("tq_conn::run");
            } else {
                each_level!("hyper::client");
            }
        }
    });
    drop(guard);
    fs::read_to_string(dir.path().join(LOG_FILE_NAME))
        .expect("log file")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn has(lines: &[String], text: &str) -> bool {
    lines.iter().any(|line| line.contains(text))
}

#[test]
fn verbosity_one_writes_warnings_and_errors_only() {
    let lines = log_at(Verbosity::Warnings);
    assert!(has(&lines, "error from tq_conn::run") && has(&lines, "warn from tq_conn::run"));
    assert!(!has(&lines, "info from tq_conn::run"));
    assert!(has(&lines, "warn from hyper::client") && !has(&lines, "info from hyper::client"));
}

#[test]
fn verbosity_two_adds_our_info_but_not_third_party_info() {
    let lines = log_at(Verbosity::Info);
    assert!(has(&lines, "info from tq_conn::run"));
    assert!(!has(&lines, "debug from tq_conn::run"));
    assert!(!has(&lines, "info from hyper::client"));
}

#[test]
fn verbosity_three_writes_everything_of_ours_and_third_party_info() {
    let lines = log_at(Verbosity::Everything);
    for level in ["error", "warn", "info", "debug", "trace"] {
        assert!(
            has(&lines, &format!("{level} from tq_conn::run")),
            "{level}: {lines:?}"
        );
    }
    assert!(has(&lines, "info from hyper::client"));
    assert!(!has(&lines, "debug from hyper::client"));
}

#[test]
fn the_run_summary_line_is_logged_even_at_warnings_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (subscriber, guard) =
        logging::build(&LogTarget::Dir(dir.path().to_owned()), Verbosity::Warnings)
            .expect("builds");
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(target: "summary", "summary: 3 windows forwarded");
        tracing::info!(target: "tap_component", "component says hello");
    });
    drop(guard);
    let log = fs::read_to_string(dir.path().join(LOG_FILE_NAME)).expect("log");
    assert!(log.contains("summary: 3 windows forwarded"), "{log}");
    assert!(
        !log.contains("component says hello"),
        "other info lines stay hidden at -v 1: {log}"
    );
}

#[test]
fn lines_start_with_a_utc_rfc3339_timestamp_and_show_level_and_target() {
    let lines = log_at(Verbosity::Warnings);
    let line = lines
        .iter()
        .find(|line| line.contains("warn from tq_conn::run"))
        .expect("logged");
    let timestamp = line.split_whitespace().next().expect("timestamp");
    time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("`{timestamp}` is not RFC 3339: {e}"));
    assert!(timestamp.ends_with('Z'), "not UTC: {timestamp}");
    assert!(line.contains(" WARN "), "{line}");
    assert!(line.contains("tq_conn::run:"), "{line}");
    assert!(!line.contains('\u{1b}'), "no colour codes in files: {line}");
}

#[test]
fn the_log_file_is_appended_to_not_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    for run in ["first run", "second run"] {
        let (subscriber, guard) =
            logging::build(&LogTarget::Dir(dir.path().to_owned()), Verbosity::Warnings)
                .expect("builds");
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target: "tq_conn", "{run}");
        });
        drop(guard);
    }
    let log = fs::read_to_string(dir.path().join(LOG_FILE_NAME)).expect("log");
    assert!(
        log.contains("first run") && log.contains("second run"),
        "{log}"
    );
}

#[test]
fn an_unusable_log_directory_is_reported_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing");
    let error = logging::build(&LogTarget::Dir(missing), Verbosity::Warnings)
        .err()
        .expect("fails");
    let message = format!("{error:#}");
    assert!(message.contains("cannot open the log file"), "{message}");
    assert!(message.contains("-ll stdout"), "{message}");
}

#[cfg(unix)]
#[test]
fn a_new_log_file_is_not_readable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let (_subscriber, guard) =
        logging::build(&LogTarget::Dir(dir.path().to_owned()), Verbosity::Warnings)
            .expect("builds");
    drop(guard);
    let mode = fs::metadata(dir.path().join(LOG_FILE_NAME))
        .expect("created")
        .permissions()
        .mode();
    assert_eq!(mode & 0o007, 0, "mode {mode:o}");
}
