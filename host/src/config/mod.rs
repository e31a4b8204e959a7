//! The local configuration file, `tq-conn-proofpoint-tap.toml` in the
//! config directory (`-c`).
//!
//! It holds the ThreatQ connection (only ever set here) and, optionally, TAP
//! settings that win over the ones made in ThreatQ's UI. Loading is strict:
//! an unknown key, a wrong type or an out-of-range value stops the run with
//! a message that names the file, the key and the fix, because a typo that
//! silently fell back to a default would go unnoticed under cron.
//!
//! `keys`: every key, declared once with its default and range;
//! `schema`: what the file holds; `parse`: reading and checking it;
//! `write`: writing it (owner-only); `legacy`: recognising the Python
//! connector's files an upgrade leaves behind.

pub mod keys;
mod legacy;
mod parse;
mod schema;
mod write;

pub use legacy::find_legacy_config;
#[cfg(test)]
use parse::line_and_column;
pub use parse::parse;
pub use schema::*;
pub use write::{directory_warning, permission_warning, write};

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

pub use crate::urls::ProxyUrl;
use crate::urls::redact_url;

/// The config file's name inside the config directory.
pub const CONFIG_FILE_NAME: &str = "tq-conn-proofpoint-tap.toml";

/// `[threatq] status` when the file does not say.
pub const DEFAULT_STATUS: &str = text_default(&keys::THREATQ_STATUS);
/// `[threatq] false_positive_status` when the file does not say.
pub const DEFAULT_FALSE_POSITIVE_STATUS: &str = text_default(&keys::THREATQ_FALSE_POSITIVE_STATUS);

/// Only called for the constants above, so a key that loses its default
/// stops the build.
const fn text_default(key: &keys::Key<keys::Text>) -> &'static str {
    match key.value.default {
        Some(default) => default,
        None => panic!("the key has no default"),
    }
}

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
    for warning in [permission_warning(&file), directory_warning(dir)]
        .into_iter()
        .flatten()
    {
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
                threat_summaries_per_day: Some(500),
                people_refresh_hours: Some(12),
                people_window_days: Some(90),
                ca_file: Some(PathBuf::from("/tap-ca.pem")),
                // Written only when false; a true one would not show here.
                verify_tls: false,
                proxy: Some(ProxyUrl::parse("http://tap-proxy:3128").expect("valid proxy")),
                // Written only when true.
                hostname_from_ui: true,
                allow_plain_http: true,
            },
            run: RunSection {
                deadline_minutes: Some(50),
                memory_mib: Some(512),
                tap_response_mib: Some(256),
                tap_request_timeout_seconds: Some(120),
                threatq_request_timeout_seconds: Some(300),
                retry_max_attempts: Some(72),
                retry_max_age_days: Some(7),
            },
        }
    }

    /// The declarations drive the unknown-key messages and the checks;
    /// they must name exactly the struct fields or a valid key would be
    /// rejected, or a field go unchecked and undocumented.
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
        let sorted = |section: keys::Section| {
            let mut list: Vec<String> = keys::names(section)
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
            list.sort();
            list
        };
        assert_eq!(keys("threatq"), sorted(keys::Section::Threatq));
        assert_eq!(keys("tap"), sorted(keys::Section::Tap));
        assert_eq!(keys("run"), sorted(keys::Section::Run));
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
    fn a_secret_that_is_not_text_is_not_quoted_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("threatq", "password", "12345678", "an integer"),
            ("threatq", "password", "0x7a6b5c4d", "an integer"),
            ("threatq", "password", "98765.4321", "a number"),
            ("tap", "secret", "31415926", "an integer"),
        ];
        for (section, key, value, kind) in cases {
            let text = if section == "threatq" {
                MINIMAL.replace("password = \"pw\"", &format!("password = {value}"))
            } else {
                format!("{MINIMAL}[tap]\nsecret = {value}\n")
            };
            let message = parse_in(dir.path(), &text)
                .expect_err("not a string")
                .to_string();
            for shown in [value.to_owned(), "2054904909".to_owned()] {
                assert!(!message.contains(&shown), "{shown} in {message}");
            }
            assert!(message.contains(&format!("`{section}.{key}`")), "{message}");
            assert!(message.contains(kind), "{message}");
            assert!(message.contains("text in quotes"), "{message}");
        }
        // Other keys keep serde's own words, value included.
        let text = format!("{MINIMAL}[tap]\nhistory_hours = \"twelve\"\n");
        let message = parse_in(dir.path(), &text).unwrap_err().to_string();
        assert!(message.contains("twelve"), "{message}");
    }

    #[test]
    fn line_and_column_count_from_one() {
        assert_eq!(line_and_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_and_column("ab\ncd", 4), (2, 2));
    }
}
