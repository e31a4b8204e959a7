//! The local configuration file, `tq-conn-proofpoint-tap.toml` in the
//! config directory (`-c`).
//!
//! It holds the ThreatQ connection (only ever set here) and, optionally, TAP
//! settings that win over the ones made in ThreatQ's UI. Loading is strict:
//! an unknown key, a wrong type or an out-of-range value stops the run with
//! a message that names the file, the key and the fix, because a typo that
//! silently fell back to a default would go unnoticed under cron.
//!
//! `schema`: what the file holds; `parse`: reading and checking it;
//! `write`: writing it (owner-only); `legacy`: recognising the Python
//! connector's files an upgrade leaves behind.

mod legacy;
mod parse;
mod schema;
mod write;

pub use legacy::find_legacy_config;
pub use parse::parse;
#[cfg(test)]
use parse::{RUN_KEYS, TAP_KEYS, THREATQ_KEYS, line_and_column};
pub use schema::*;
pub use write::{permission_warning, write};

use std::fmt;
use std::fs;
use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

pub use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

pub use crate::urls::ProxyUrl;
use crate::urls::redact_url;

/// The config file's name inside the config directory.
pub const CONFIG_FILE_NAME: &str = "tq-conn-proofpoint-tap.toml";

/// Status given to new indicators when the file does not say.
pub const DEFAULT_STATUS: &str = "Review";

/// TAP keeps SIEM data for 7 days, but the legacy UI setting allowed at
/// most 48 hours of history on a first run; we keep its limit.
pub const HISTORY_HOURS: RangeInclusive<u32> = 1..=48;
/// Re-fetching more than six hours per run would spend the TAP budget on
/// data already sent.
pub const OVERLAP_MINUTES: RangeInclusive<u32> = 0..=360;
/// Waiting more than an hour behind "now" only delays data.
pub const SAFETY_MARGIN_SECONDS: RangeInclusive<u32> = 0..=3600;
/// `[tap] message_index_days`: a click comes at most this long after its
/// message to be related to it. TAP keeps SIEM data for 7 days; clicks on
/// a message can come later than that.
pub const MESSAGE_INDEX_DAYS: RangeInclusive<u32> = 1..=90;
pub const DEFAULT_MESSAGE_INDEX_DAYS: u32 = 14;
/// `[tap] threat_refresh_days`: forensics of a threat, once per this.
pub const THREAT_REFRESH_DAYS: RangeInclusive<u32> = 1..=90;
pub const DEFAULT_THREAT_REFRESH_DAYS: u32 = 7;
/// `[tap] campaign_refresh_hours`: a campaign's details and forensics.
pub const CAMPAIGN_REFRESH_HOURS: RangeInclusive<u32> = 1..=24 * 30;
pub const DEFAULT_CAMPAIGN_REFRESH_HOURS: u32 = 24;
/// `[threatq] false_positive_status` when not set.
pub const DEFAULT_FALSE_POSITIVE_STATUS: &str = "Whitelisted";

/// A run must end before the next hourly one; a day is the outer bound.
pub const DEADLINE_MINUTES: RangeInclusive<u32> = 1..=1440;
/// The component needs some tens of MiB for an empty window; 4 GiB is the
/// most a 32-bit wasm memory can address.
pub const MEMORY_MIB: RangeInclusive<u32> = 64..=4096;
/// One SIEM answer; larger windows are split (docs/sync.md).
pub const TAP_RESPONSE_MIB: RangeInclusive<u32> = 1..=2048;
/// One HTTP request, connecting to the last byte.
pub const REQUEST_TIMEOUT_SECONDS: RangeInclusive<u32> = 5..=3600;

/// Why the config file could not be read or written. Every message names
/// the file and says how to fix the problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot read {path}: {source}; check that the file is readable by the user running the connector"
    )]
    Read { path: PathBuf, source: io::Error },

    #[error(
        "{path} is not UTF-8 text; write it again with a text editor or `tq-conn-proofpoint-tap setup --force`"
    )]
    NotText { path: PathBuf },

    #[error("{path} is not valid TOML (line {line}, column {column}): {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("{path} looks like {what}, not this version's TOML format; {how_to_migrate}")]
    OlderFormat {
        path: PathBuf,
        what: String,
        how_to_migrate: String,
    },

    #[error("unknown key `{key}` in {section} of {path}; expected one of {expected}{suggestion}")]
    UnknownKey {
        path: PathBuf,
        /// `[tap]`, `[threatq]` or `the top level`.
        section: String,
        key: String,
        expected: String,
        /// Empty, or "; did you mean `...`?".
        suggestion: String,
    },

    #[error("missing key `{key}` in [{section}] of {path}; {hint}")]
    MissingKey {
        path: PathBuf,
        section: String,
        key: String,
        hint: String,
    },

    #[error("`{key}` in {path}{}: {message}", line_suffix(.line))]
    WrongValue {
        path: PathBuf,
        /// Dotted, e.g. `tap.history_hours`.
        key: String,
        line: Option<usize>,
        message: String,
    },

    #[error("`{key}` = {value} in {path} is out of range: must be between {min} and {max}")]
    OutOfRange {
        path: PathBuf,
        key: String,
        value: u32,
        min: u32,
        max: u32,
    },

    #[error("`{key}` in {path} is empty; {hint}")]
    Empty {
        path: PathBuf,
        key: String,
        hint: String,
    },

    #[error("`{key}` in {path}: {problem}")]
    BadPath {
        path: PathBuf,
        key: String,
        problem: String,
    },

    #[error(
        "cannot write {path}: {source}; check that the config directory is writable by the user running the connector"
    )]
    Write { path: PathBuf, source: io::Error },

    #[error("cannot write the configuration: {0}")]
    Serialize(String),
}

fn line_suffix(line: &Option<usize>) -> String {
    line.map(|line| format!(" (line {line})"))
        .unwrap_or_default()
}

/// Where the config file lives inside `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(CONFIG_FILE_NAME)
}

/// Reads and checks the config file in `dir`; `Ok(None)` when there is none
/// yet (the first run). A file that group or others can read is accepted
/// with a warning, since refusing it would stop a working cron job.
pub fn load(dir: &Path) -> Result<Option<Config>, ConfigError> {
    let file = path(dir);
    let text = match fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            return Err(ConfigError::NotText { path: file });
        }
        Err(source) => return Err(ConfigError::Read { path: file, source }),
    };
    if let Some(warning) = permission_warning(&file) {
        tracing::warn!("{warning}");
    }
    parse(&text, &file, dir).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_config() -> Config {
        Config {
            threatq: ThreatqSection {
                host: HostUrl::parse("threatq.example.com").expect("valid host"),
                client_id: "client".to_owned(),
                username: "analyst@example.com".to_owned(),
                password: "pw".into(),
                status: "Review".to_owned(),
                false_positive_status: Some("Whitelisted".to_owned()),
                ca_file: Some(PathBuf::from("/ca.pem")),
                proxy: Some(ProxyUrl::parse("http://proxy:3128").expect("valid proxy")),
                verify_tls: true,
            },
            tap: TapSection {
                hostname: Some(HostUrl::parse("tap.example.com").expect("valid host")),
                principal: Some("p".to_owned()),
                secret: Some("s".into()),
                history_hours: Some(1),
                create_incidents: Some(true),
                enabled: Some(true),
                overlap_minutes: Some(1),
                safety_margin_seconds: Some(1),
                message_index_days: Some(30),
                threat_refresh_days: Some(3),
                campaign_refresh_hours: Some(12),
                ca_file: Some(PathBuf::from("/tap-ca.pem")),
                // Written only when false; a true one would not show here.
                verify_tls: false,
            },
            run: RunSection {
                deadline_minutes: Some(50),
                memory_mib: Some(512),
                tap_response_mib: Some(256),
                tap_request_timeout_seconds: Some(120),
                threatq_request_timeout_seconds: Some(300),
            },
        }
    }

    /// The key lists drive the unknown-key messages; they must name exactly
    /// the struct fields or a valid key would be rejected.
    #[test]
    fn key_lists_match_the_struct_fields() {
        let value = toml::Value::try_from(full_config()).expect("serializes");
        let table = value.as_table().expect("table");
        let keys = |section: &str| -> Vec<String> {
            let mut keys: Vec<String> = table[section]
                .as_table()
                .expect("section")
                .keys()
                .cloned()
                .collect();
            keys.sort();
            keys
        };
        let sorted = |list: &[&str]| {
            let mut list: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
            list.sort();
            list
        };
        assert_eq!(keys("threatq"), sorted(THREATQ_KEYS));
        assert_eq!(keys("tap"), sorted(TAP_KEYS));
        assert_eq!(keys("run"), sorted(RUN_KEYS));
    }

    #[test]
    fn run_bounds_are_read_and_checked_against_their_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{MINIMAL}[run]\ndeadline_minutes = 20\nmemory_mib = 1024\ntap_response_mib = 64\n\
             tap_request_timeout_seconds = 60\nthreatq_request_timeout_seconds = 90\n"
        );
        let config = parse_in(dir.path(), &text).expect("parses");
        assert_eq!(config.run.deadline_minutes, Some(20));
        assert_eq!(config.run.memory_mib, Some(1024));
        let err = parse_in(dir.path(), &format!("{MINIMAL}[run]\nmemory_mib = 8\n"))
            .expect_err("too small")
            .to_string();
        assert!(
            err.contains("run.memory_mib") && err.contains("64"),
            "{err}"
        );
        let err = parse_in(dir.path(), &format!("{MINIMAL}[run]\nmemory = 512\n"))
            .expect_err("unknown")
            .to_string();
        assert!(err.contains("memory_mib"), "{err}");
    }

    const MINIMAL: &str = "[threatq]\nhost = \"threatq.example.com\"\nclient_id = \"c\"\n\
                           username = \"u@example.com\"\npassword = \"pw\"\n";

    fn parse_in(dir: &Path, text: &str) -> Result<Config, ConfigError> {
        parse(text, &dir.join(CONFIG_FILE_NAME), dir)
    }

    #[test]
    fn tap_tls_settings_default_to_verifying_with_the_system_store() {
        let dir = tempfile::tempdir().unwrap();
        let config = parse_in(dir.path(), MINIMAL).expect("loads");
        assert!(config.tap.verify_tls);
        assert_eq!(config.tap.ca_file, None);
        // `[threatq] verify_tls = false` does not touch [tap]'s.
        let text = format!("{MINIMAL}verify_tls = false\n");
        let config = parse_in(dir.path(), &text).expect("loads");
        assert!(!config.threatq.verify_tls);
        assert!(config.tap.verify_tls);
        let text = format!("{MINIMAL}[tap]\nverify_tls = false\n");
        let config = parse_in(dir.path(), &text).expect("loads");
        assert!(config.threatq.verify_tls);
        assert!(!config.tap.verify_tls);
    }

    #[test]
    fn a_relative_tap_ca_file_is_taken_from_the_config_directory() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("tap-ca.pem"), "pem").unwrap();
        let text = format!("{MINIMAL}[tap]\nca_file = \"tap-ca.pem\"\n");
        let config = parse_in(dir.path(), &text).expect("loads");
        assert_eq!(config.tap.ca_file, Some(dir.path().join("tap-ca.pem")));
        assert_eq!(
            config.threatq.ca_file, None,
            "[tap] ca_file reached [threatq]"
        );
    }

    #[test]
    fn a_missing_tap_ca_file_is_refused_naming_the_tap_key() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("{MINIMAL}[tap]\nca_file = \"nowhere.pem\"\n");
        let message = parse_in(dir.path(), &text)
            .expect_err("missing file")
            .to_string();
        assert!(message.contains("`tap.ca_file`"), "{message}");
        assert!(message.contains("nowhere.pem"), "{message}");
    }

    #[test]
    fn a_proxy_password_never_reaches_a_message_or_debug_output() {
        let dir = tempfile::tempdir().unwrap();
        let text = MINIMAL.replace(
            "[threatq]\n",
            "[threatq]\nproxy = \"ftp://squid:pr0xy-pa55@proxy:21\"\n",
        );
        let message = parse_in(dir.path(), &text)
            .expect_err("bad scheme")
            .to_string();
        assert!(message.contains("`threatq.proxy`"), "{message}");
        assert!(message.contains("squid:***@proxy"), "{message}");
        assert!(!message.contains("pr0xy-pa55"), "{message}");

        let text = text.replace("ftp://", "http://");
        let config = parse_in(dir.path(), &text).expect("loads");
        let debug = format!("{config:?}");
        assert!(!debug.contains("pr0xy-pa55"), "{debug}");
        assert!(debug.contains("http://squid:***@proxy:21"), "{debug}");

        let message = HostUrl::parse("https://admin:h0st-pa55@threatq.example")
            .expect_err("credentials in the host");
        assert!(!message.contains("h0st-pa55"), "{message}");
        assert!(message.contains("admin:***@threatq.example"), "{message}");
    }

    #[test]
    fn the_written_file_keeps_the_secrets_and_the_proxy_as_given() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = full_config();
        config.threatq.ca_file = None;
        config.tap.ca_file = None;
        config.threatq.proxy = Some(ProxyUrl::parse("http://u:pp-77@proxy:3128").unwrap());
        write(dir.path(), &config).expect("written");
        let text = fs::read_to_string(path(dir.path())).unwrap();
        assert!(text.contains("password = \"pw\""), "{text}");
        assert!(text.contains("secret = \"s\""), "{text}");
        assert!(
            text.contains("proxy = \"http://u:pp-77@proxy:3128\""),
            "{text}"
        );
        assert_eq!(load(dir.path()).unwrap(), Some(config));
    }

    #[test]
    fn line_and_column_count_from_one() {
        assert_eq!(line_and_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_and_column("ab\ncd", 4), (2, 2));
    }
}
