//! The local configuration file, `tq-conn-proofpoint-tap.toml` in the
//! config directory (`-c`).
//!
//! It holds the ThreatQ connection (only ever set here) and, optionally, TAP
//! settings that win over the ones made in ThreatQ's UI. Loading is strict:
//! an unknown key, a wrong type or an out-of-range value stops the run with
//! a message that names the file, the key and the fix, because a typo that
//! silently fell back to a default would go unnoticed under cron.

use std::fmt;
use std::fs;
use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

pub use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

pub use crate::http::ProxyUrl;
use crate::http::redact_url;

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

const THREATQ_KEYS: &[&str] = &[
    "host",
    "client_id",
    "username",
    "password",
    "status",
    "ca_file",
    "proxy",
    "verify_tls",
];
const THREATQ_REQUIRED_KEYS: &[&str] = &["host", "client_id", "username", "password"];
const TAP_KEYS: &[&str] = &[
    "hostname",
    "principal",
    "secret",
    "history_hours",
    "create_incidents",
    "enabled",
    "overlap_minutes",
    "safety_margin_seconds",
    "ca_file",
    "verify_tls",
];
const RUN_KEYS: &[&str] = &[
    "deadline_minutes",
    "memory_mib",
    "tap_response_mib",
    "tap_request_timeout_seconds",
    "threatq_request_timeout_seconds",
];
const SECTIONS: &[&str] = &["threatq", "tap", "run"];

/// A run must end before the next hourly one; a day is the outer bound.
pub const DEADLINE_MINUTES: RangeInclusive<u32> = 1..=1440;
/// The component needs some tens of MiB for an empty window; 4 GiB is the
/// most a 32-bit wasm memory can address.
pub const MEMORY_MIB: RangeInclusive<u32> = 64..=4096;
/// One SIEM answer; larger windows are split (docs/sync.md).
pub const TAP_RESPONSE_MIB: RangeInclusive<u32> = 1..=2048;
/// One HTTP request, connecting to the last byte.
pub const REQUEST_TIMEOUT_SECONDS: RangeInclusive<u32> = 5..=3600;

/// The whole config file.
///
/// Secrets are [`SecretString`]s: their Debug prints a placeholder and they
/// have no Display, so formatting a section cannot log one; only the config
/// writer serialises them (`serialize_with`), into this owner-only file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub threatq: ThreatqSection,
    #[serde(default)]
    pub tap: TapSection,
    #[serde(default, skip_serializing_if = "RunSection::is_empty")]
    pub run: RunSection,
}

/// How a run is bounded: its deadline, the sandbox's memory, the size of
/// one TAP answer, and each request's time (docs/sync.md, "Deadlines" and
/// "Windows that fit"). Every key is optional; unset means the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tap_response_mib: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tap_request_timeout_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threatq_request_timeout_seconds: Option<u32>,
}

impl RunSection {
    pub fn is_empty(&self) -> bool {
        *self == RunSection::default()
    }
}

/// How to reach and log in to ThreatQ.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreatqSection {
    pub host: HostUrl,
    pub client_id: String,
    pub username: String,
    #[serde(serialize_with = "serialize_secret")]
    pub password: SecretString,
    /// Status of the indicators the connector creates.
    #[serde(default = "default_status")]
    pub status: String,
    /// Extra CA certificate (PEM) trusted on top of the system store, for
    /// a ThreatQ behind a corporate CA; ThreatQ's connection only (TAP's is
    /// [`TapSection::ca_file`]). Relative paths are taken from the config
    /// directory, since cron's working directory is arbitrary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Proxy for TAP traffic when ThreatQ's UI configures none (with `-ep`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyUrl>,
    /// Verify ThreatQ's certificate (TAP's is [`TapSection::verify_tls`]);
    /// `-ds` overrides this to false for one run.
    #[serde(default = "default_true")]
    pub verify_tls: bool,
}

impl PartialEq for ThreatqSection {
    fn eq(&self, other: &Self) -> bool {
        // Exhaustive, so a new field cannot be forgotten here.
        let ThreatqSection {
            host,
            client_id,
            username,
            password,
            status,
            ca_file,
            proxy,
            verify_tls,
        } = self;
        *host == other.host
            && *client_id == other.client_id
            && *username == other.username
            && password.expose_secret() == other.password.expose_secret()
            && *status == other.status
            && *ca_file == other.ca_file
            && *proxy == other.proxy
            && *verify_tls == other.verify_tls
    }
}

impl Eq for ThreatqSection {}

/// TAP settings; each one set here wins over ThreatQ's UI. `ca_file` and
/// `verify_tls` are the TAP connection's TLS settings (ThreatQ's UI has
/// none), independent of `[threatq]`'s.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TapSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<HostUrl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_optional_secret"
    )]
    pub secret: Option<SecretString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_hours: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_incidents: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap_minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_margin_seconds: Option<u32>,
    /// Extra CA certificate (PEM) trusted for the TAP connection, on top of
    /// the system store (a TLS-inspecting proxy's CA). Relative paths are
    /// taken from the config directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Verify TAP's certificate (default true); `-ds` overrides this to
    /// false for one run. Written only when false.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub verify_tls: bool,
}

impl Default for TapSection {
    fn default() -> Self {
        TapSection {
            hostname: None,
            principal: None,
            secret: None,
            history_hours: None,
            create_incidents: None,
            enabled: None,
            overlap_minutes: None,
            safety_margin_seconds: None,
            ca_file: None,
            verify_tls: true,
        }
    }
}

impl PartialEq for TapSection {
    fn eq(&self, other: &Self) -> bool {
        // Exhaustive, so a new field cannot be forgotten here.
        let TapSection {
            hostname,
            principal,
            secret,
            history_hours,
            create_incidents,
            enabled,
            overlap_minutes,
            safety_margin_seconds,
            ca_file,
            verify_tls,
        } = self;
        *hostname == other.hostname
            && *principal == other.principal
            && secret.as_ref().map(ExposeSecret::expose_secret)
                == other.secret.as_ref().map(ExposeSecret::expose_secret)
            && *history_hours == other.history_hours
            && *create_incidents == other.create_incidents
            && *enabled == other.enabled
            && *overlap_minutes == other.overlap_minutes
            && *safety_margin_seconds == other.safety_margin_seconds
            && *ca_file == other.ca_file
            && *verify_tls == other.verify_tls
    }
}

impl Eq for TapSection {}

impl TapSection {
    /// True when every TAP setting a run needs is set here, so a run does
    /// not depend on ThreatQ's connector entry.
    pub fn is_complete(&self) -> bool {
        self.hostname.is_some()
            && self.principal.is_some()
            && self.secret.is_some()
            && self.history_hours.is_some()
            && self.create_incidents.is_some()
    }
}

fn default_status() -> String {
    DEFAULT_STATUS.to_owned()
}

fn default_true() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// The config writer's only way to a secret's text: `SecretString` has no
/// `Serialize` of its own, so nothing else (state, export) can write one.
fn serialize_secret<S: Serializer>(
    secret: &SecretString,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_secret())
}

fn serialize_optional_secret<S: Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => serialize_secret(secret, serializer),
        None => serializer.serialize_none(),
    }
}

/// A scheme, host and optional port, and nothing else: the base of an API.
///
/// Written as a bare host (`threatq.example.com`, `10.0.0.5:8443`, which
/// mean HTTPS) or as a URL (`http://127.0.0.1:8080`).
#[derive(Clone, PartialEq, Eq)]
pub struct HostUrl(Url);

impl HostUrl {
    /// Parses a bare host or a URL; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err("is empty; expected a host name such as `threatq.example.com` or a URL such as `https://threatq.example.com:8443`".to_owned());
        }
        // Messages quote the value, but never a password in it.
        let shown = redact_url(trimmed);
        let with_scheme = if trimmed.contains("://") {
            trimmed.to_owned()
        } else {
            format!("https://{trimmed}")
        };
        let url = Url::parse(&with_scheme)
            .map_err(|e| format!("`{shown}` is not a valid host or URL ({e})"))?;
        if url.scheme() != "https" && url.scheme() != "http" {
            return Err(format!(
                "`{shown}` uses scheme `{}`; only `https://` and `http://` are supported",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("`{shown}` has no host name"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "`{shown}` contains credentials; put them in their own keys, not in the host"
            ));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            let mut base = url.clone();
            base.set_path("");
            base.set_query(None);
            base.set_fragment(None);
            return Err(format!(
                "`{shown}` has a path, query or fragment; give only the scheme, host and port, e.g. `{}`",
                base.as_str().trim_end_matches('/')
            ));
        }
        Ok(Self(url))
    }

    /// The parsed URL (its path is always `/`).
    pub fn url(&self) -> &Url {
        &self.0
    }

    /// Scheme and authority without a trailing slash, e.g.
    /// `https://tap-api-v2.proofpoint.com`: the form the TAP component's
    /// `tap-base-url` setting expects.
    pub fn base(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }

    /// The host name or IP address alone.
    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }
}

impl fmt::Display for HostUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base())
    }
}

impl fmt::Debug for HostUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostUrl({})", self.base())
    }
}

impl Serialize for HostUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.base())
    }
}

impl<'de> Deserialize<'de> for HostUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        HostUrl::parse(&text).map_err(serde::de::Error::custom)
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

/// Parses config text; `file` is used in messages and `dir` to resolve a
/// relative `ca_file`.
pub fn parse(text: &str, file: &Path, dir: &Path) -> Result<Config, ConfigError> {
    let table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(e) => {
            if let Some(older) = older_format(text, file) {
                return Err(older);
            }
            let (line, column) = e.span().map_or((1, 1), |s| line_and_column(text, s.start));
            return Err(ConfigError::Syntax {
                path: file.to_owned(),
                line,
                column,
                message: e.message().to_owned(),
            });
        }
    };
    check_keys(&table, file)?;

    // The same text parsed again, now keeping the spans that let a type
    // error name its line.
    let deserializer = toml::Deserializer::parse(text).map_err(|e| {
        let (line, column) = e.span().map_or((1, 1), |s| line_and_column(text, s.start));
        ConfigError::Syntax {
            path: file.to_owned(),
            line,
            column,
            message: e.message().to_owned(),
        }
    })?;
    let mut config: Config =
        serde_path_to_error::deserialize(deserializer).map_err(|e| ConfigError::WrongValue {
            path: file.to_owned(),
            key: e.path().to_string(),
            line: e.inner().span().map(|s| line_and_column(text, s.start).0),
            message: e.inner().message().to_owned(),
        })?;
    for ca_file in [&mut config.threatq.ca_file, &mut config.tap.ca_file] {
        if let Some(path) = ca_file.as_ref()
            && path.is_relative()
        {
            *ca_file = Some(dir.join(path));
        }
    }
    validate(&config, file)?;
    Ok(config)
}

/// Writes `config` to `dir` atomically (temporary file, fsync, rename), so
/// a crash never leaves a half-written file, with owner-only permissions
/// because it holds the ThreatQ password.
pub fn write(dir: &Path, config: &Config) -> Result<(), ConfigError> {
    let file = path(dir);
    let body = toml::to_string_pretty(config).map_err(|e| ConfigError::Serialize(e.to_string()))?;
    let text = format!(
        "# tq-conn-proofpoint-tap configuration.\n\
         # [threatq] is how to reach ThreatQ; any value set in [tap] wins over\n\
         # the connector's settings in ThreatQ's UI. Keep this file private.\n\n{body}"
    );
    crate::atomic_file::write_atomically(&file, text.as_bytes())
        .map_err(|source| ConfigError::Write { path: file, source })
}

/// A warning when the config file is readable or writable by group or
/// others, with the command that fixes it.
#[cfg(unix)]
pub fn permission_warning(file: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(file).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            // No `password:` in the text: the log redactor would take the
            // next word for a password and mask the advice.
            "{} is accessible by other users (mode {mode:04o}) and holds the ThreatQ password; \
             run `chmod 600 {}`",
            file.display(),
            file.display()
        )
    })
}

#[cfg(not(unix))]
pub fn permission_warning(_file: &Path) -> Option<String> {
    None
}

fn check_keys(table: &toml::Table, file: &Path) -> Result<(), ConfigError> {
    for (key, value) in table {
        if !SECTIONS.contains(&key.as_str()) {
            if THREATQ_KEYS.contains(&key.as_str()) || TAP_KEYS.contains(&key.as_str()) {
                let section = if THREATQ_KEYS.contains(&key.as_str()) {
                    "threatq"
                } else {
                    "tap"
                };
                return Err(ConfigError::UnknownKey {
                    path: file.to_owned(),
                    section: "the top level".to_owned(),
                    key: key.clone(),
                    expected: "the sections [threatq] and [tap]".to_owned(),
                    suggestion: format!("; move `{key}` under a `[{section}]` line"),
                });
            }
            return Err(unknown_key(file, "the top level", key, SECTIONS));
        }
        if !value.is_table() {
            return Err(ConfigError::WrongValue {
                path: file.to_owned(),
                key: key.clone(),
                line: None,
                message: format!("must be a section (`[{key}]` on its own line), not a value"),
            });
        }
    }
    let Some(threatq) = table.get("threatq").and_then(toml::Value::as_table) else {
        return Err(ConfigError::MissingKey {
            path: file.to_owned(),
            section: "threatq".to_owned(),
            key: "host".to_owned(),
            hint: "the file needs a [threatq] section with host, client_id, username and \
                   password; run `tq-conn-proofpoint-tap setup --help` to write one"
                .to_owned(),
        });
    };
    for key in threatq.keys() {
        if !THREATQ_KEYS.contains(&key.as_str()) {
            return Err(unknown_key(file, "[threatq]", key, THREATQ_KEYS));
        }
    }
    for key in THREATQ_REQUIRED_KEYS {
        if !threatq.contains_key(*key) {
            return Err(ConfigError::MissingKey {
                path: file.to_owned(),
                section: "threatq".to_owned(),
                key: (*key).to_owned(),
                hint: format!("add `{key} = \"...\"` under [threatq]"),
            });
        }
    }
    if let Some(tap) = table.get("tap").and_then(toml::Value::as_table) {
        for key in tap.keys() {
            if !TAP_KEYS.contains(&key.as_str()) {
                return Err(unknown_key(file, "[tap]", key, TAP_KEYS));
            }
        }
    }
    if let Some(run) = table.get("run").and_then(toml::Value::as_table) {
        for key in run.keys() {
            if !RUN_KEYS.contains(&key.as_str()) {
                return Err(unknown_key(file, "[run]", key, RUN_KEYS));
            }
        }
    }
    Ok(())
}

fn unknown_key(file: &Path, section: &str, key: &str, known: &[&str]) -> ConfigError {
    let closest = known
        .iter()
        .map(|candidate| (strsim::jaro_winkler(key, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    ConfigError::UnknownKey {
        path: file.to_owned(),
        section: section.to_owned(),
        key: key.to_owned(),
        expected: known.join(", "),
        suggestion: closest
            .map(|(_, name)| format!("; did you mean `{name}`?"))
            .unwrap_or_default(),
    }
}

fn validate(config: &Config, file: &Path) -> Result<(), ConfigError> {
    let empty = |key: &str, hint: &str| ConfigError::Empty {
        path: file.to_owned(),
        key: key.to_owned(),
        hint: hint.to_owned(),
    };
    let threatq = &config.threatq;
    if threatq.client_id.trim().is_empty() {
        return Err(empty(
            "threatq.client_id",
            "copy the Client ID from ThreatQ's OAuth Management page for the connector's user",
        ));
    }
    if threatq.username.trim().is_empty() {
        return Err(empty(
            "threatq.username",
            "set the e-mail address of the ThreatQ user the connector logs in as",
        ));
    }
    if threatq.password.expose_secret().is_empty() {
        return Err(empty(
            "threatq.password",
            "set that ThreatQ user's password",
        ));
    }
    if threatq.status.trim().is_empty() {
        return Err(empty(
            "threatq.status",
            "set the status of new indicators, e.g. `Review`, or remove the key to use `Review`",
        ));
    }
    let ca_files = [
        ("threatq.ca_file", &threatq.ca_file),
        ("tap.ca_file", &config.tap.ca_file),
    ];
    for (key, ca_file) in ca_files {
        if let Some(ca_file) = ca_file
            && !ca_file.is_file()
        {
            return Err(ConfigError::BadPath {
                path: file.to_owned(),
                key: key.to_owned(),
                problem: format!(
                    "{} does not exist or is not a file; point it at a PEM certificate or remove the key",
                    ca_file.display()
                ),
            });
        }
    }

    let tap = &config.tap;
    if tap
        .principal
        .as_deref()
        .is_some_and(|p| p.trim().is_empty())
    {
        return Err(empty(
            "tap.principal",
            "set the TAP service principal, or remove the key to use the one in ThreatQ's UI",
        ));
    }
    if tap
        .secret
        .as_ref()
        .is_some_and(|secret| secret.expose_secret().is_empty())
    {
        return Err(empty(
            "tap.secret",
            "set the TAP service secret, or remove the key to use the one in ThreatQ's UI",
        ));
    }
    let ranges = [
        ("tap.history_hours", tap.history_hours, HISTORY_HOURS),
        ("tap.overlap_minutes", tap.overlap_minutes, OVERLAP_MINUTES),
        (
            "tap.safety_margin_seconds",
            tap.safety_margin_seconds,
            SAFETY_MARGIN_SECONDS,
        ),
        (
            "run.deadline_minutes",
            config.run.deadline_minutes,
            DEADLINE_MINUTES,
        ),
        ("run.memory_mib", config.run.memory_mib, MEMORY_MIB),
        (
            "run.tap_response_mib",
            config.run.tap_response_mib,
            TAP_RESPONSE_MIB,
        ),
        (
            "run.tap_request_timeout_seconds",
            config.run.tap_request_timeout_seconds,
            REQUEST_TIMEOUT_SECONDS,
        ),
        (
            "run.threatq_request_timeout_seconds",
            config.run.threatq_request_timeout_seconds,
            REQUEST_TIMEOUT_SECONDS,
        ),
    ];
    for (key, value, range) in ranges {
        if let Some(value) = value
            && !range.contains(&value)
        {
            return Err(ConfigError::OutOfRange {
                path: file.to_owned(),
                key: key.to_owned(),
                value,
                min: *range.start(),
                max: *range.end(),
            });
        }
    }
    Ok(())
}

/// Recognises config text written for an older connector, so the message
/// can explain the move instead of reporting a TOML syntax error.
fn older_format(text: &str, file: &Path) -> Option<ConfigError> {
    let trimmed = text.trim_start();
    let lowered = text.to_ascii_lowercase();
    let mentions_threatq_login = lowered.contains("client") && lowered.contains("password");
    let yaml_like = trimmed
        .lines()
        .filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty())
        .take(3)
        .all(|line| {
            line.split_once(':')
                .is_some_and(|(key, _)| !key.contains('=') && !key.trim().is_empty())
        });
    let what = if trimmed.starts_with('{') {
        "JSON (the legacy Python connector's format)"
    } else if yaml_like && mentions_threatq_login {
        "YAML (the legacy Python connector's format)"
    } else if yaml_like {
        "YAML"
    } else {
        return None;
    };
    Some(ConfigError::OlderFormat {
        path: file.to_owned(),
        what: what.to_owned(),
        how_to_migrate: format!(
            "move it aside (`mv {0} {0}.old`), then run `tq-conn-proofpoint-tap setup -c {1} \
             --host HOST --client-id ID --username USER --password-file FILE` (or run the \
             connector once in a terminal to be asked); TAP settings stay in ThreatQ's UI",
            file.display(),
            file.parent().unwrap_or(Path::new(".")).display()
        ),
    })
}

/// Files larger than this are not the legacy connector's small config.
const LEGACY_CONFIG_MAX_BYTES: u64 = 64 * 1024;

/// Extensions of the files this connector keeps beside its config (config,
/// log, lock, state, temporary files), which are never the legacy one.
const OWN_FILE_EXTENSIONS: &[&str] = &["toml", "log", "lock", "tmp", "json"];

/// Looks in `dir` for a file that is probably the legacy Python
/// connector's configuration: the old guide used the same `-c` directory,
/// so an upgrade that only swaps the program finds it there instead of
/// ours. Its exact name and format were never documented, so a small text
/// file named after Proofpoint or TAP that mentions a host, a client id and
/// a password qualifies. The name matters because `/etc/tq_labs/` also
/// holds other ThreatQ connectors' configs, which mention the same words.
pub fn find_legacy_config(dir: &Path) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .metadata()
                .is_ok_and(|m| m.is_file() && m.len() <= LEGACY_CONFIG_MAX_BYTES)
        })
        .map(|entry| entry.path())
        .filter(|candidate| {
            let name = candidate
                .file_name()
                .map(|n| n.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            let ours = candidate
                .extension()
                .is_some_and(|ext| OWN_FILE_EXTENSIONS.iter().any(|own| ext == *own))
                && name.starts_with("tq-conn-proofpoint-tap.");
            !ours && (name.contains("proofpoint") || name.contains("tap"))
        })
        .filter(|candidate| {
            fs::read_to_string(candidate).is_ok_and(|text| {
                let text = text.to_ascii_lowercase();
                text.contains("host") && text.contains("client") && text.contains("password")
            })
        })
        .collect();
    candidates.sort();
    candidates.into_iter().next()
}

fn line_suffix(line: &Option<usize>) -> String {
    line.map(|line| format!(" (line {line})"))
        .unwrap_or_default()
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
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
