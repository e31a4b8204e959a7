//! Reading config text strictly: unknown keys, wrong types and values out
//! of range are errors that name the key and the fix.

use super::*;

pub(super) const THREATQ_KEYS: &[&str] = &[
    "host",
    "client_id",
    "username",
    "password",
    "status",
    "false_positive_status",
    "ca_file",
    "proxy",
    "verify_tls",
];
const THREATQ_REQUIRED_KEYS: &[&str] = &["host", "client_id", "username", "password"];
pub(super) const TAP_KEYS: &[&str] = &[
    "hostname",
    "principal",
    "secret",
    "history_hours",
    "create_incidents",
    "enabled",
    "overlap_minutes",
    "safety_margin_seconds",
    "message_index_days",
    "threat_refresh_days",
    "campaign_refresh_hours",
    "ca_file",
    "verify_tls",
];
pub(super) const RUN_KEYS: &[&str] = &[
    "deadline_minutes",
    "memory_mib",
    "tap_response_mib",
    "tap_request_timeout_seconds",
    "threatq_request_timeout_seconds",
];
const SECTIONS: &[&str] = &["threatq", "tap", "run"];

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
    if threatq
        .false_positive_status
        .as_deref()
        .is_some_and(|s| s.trim().is_empty())
    {
        return Err(empty(
            "threatq.false_positive_status",
            "set the status for indicators TAP later judges false positives, e.g. `Whitelisted`, \
             or remove the key to use `Whitelisted`",
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
            "tap.message_index_days",
            tap.message_index_days,
            MESSAGE_INDEX_DAYS,
        ),
        (
            "tap.threat_refresh_days",
            tap.threat_refresh_days,
            THREAT_REFRESH_DAYS,
        ),
        (
            "tap.campaign_refresh_hours",
            tap.campaign_refresh_hours,
            CAMPAIGN_REFRESH_HOURS,
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

pub(super) fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
