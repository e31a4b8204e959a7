//! Reading config text strictly: unknown keys, wrong types and values out
//! of range are errors that name the key and the fix.

use super::*;
use keys::{AnyKey, Section};

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
    let mut config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = e.path().to_string();
        let message = match secret_key(&key) {
            // Serde quotes a number or a boolean it did not expect
            // ("invalid type: integer `12345678`"), and for a secret
            // that is the secret itself.
            Some(name) => format!(
                "must be text in quotes (`{name} = \"...\"`), not {}; the value is not repeated \
                 here because it is a secret",
                type_in(&table, &key).unwrap_or("that value")
            ),
            None => e.inner().message().to_owned(),
        };
        ConfigError::WrongValue {
            path: file.to_owned(),
            key,
            line: e.inner().span().map(|s| line_and_column(text, s.start).0),
            message,
        }
    })?;
    for ca_file in [&mut config.threatq.ca_file, &mut config.tap.ca_file] {
        if let Some(path) = ca_file.as_ref()
            && path.is_relative()
        {
            *ca_file = Some(dir.join(path));
        }
    }
    validate(&table, &config, file)?;
    Ok(config)
}

/// The key's name when `dotted` (`threatq.password`) is a secret.
fn secret_key(dotted: &str) -> Option<&'static str> {
    keys::ALL.iter().find_map(|key| match key {
        AnyKey::Text(text) if text.value.secret && key.dotted() == dotted => Some(key.name()),
        _ => None,
    })
}

/// What kind of TOML value the file gives `dotted`, in words
/// (`an integer`), for a message that must not quote the value.
fn type_in(table: &toml::Table, dotted: &str) -> Option<&'static str> {
    let (section, name) = dotted.split_once('.')?;
    let value = table.get(section)?.as_table()?.get(name)?;
    Some(match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a number",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "a list",
        toml::Value::Table(_) => "a table",
    })
}

fn check_keys(table: &toml::Table, file: &Path) -> Result<(), ConfigError> {
    let sections = Section::ALL.map(Section::name);
    for (key, value) in table {
        if !sections.contains(&key.as_str()) {
            // A key of [threatq] or [tap] above its section's line: say
            // where it belongs ([threatq] first, for the names both have).
            let belongs = keys::ALL
                .iter()
                .find(|known| known.name() == key && known.section() != Section::Run);
            if let Some(known) = belongs {
                return Err(ConfigError::UnknownKey {
                    path: file.to_owned(),
                    section: "the top level".to_owned(),
                    key: key.clone(),
                    expected: "the sections [threatq] and [tap]".to_owned(),
                    suggestion: format!(
                        "; move `{key}` under a `[{}]` line",
                        known.section().name()
                    ),
                });
            }
            return Err(unknown_key(file, "the top level", key, &sections));
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
    let required: Vec<&str> = keys::in_section(Section::Threatq)
        .filter(|key| key.required())
        .map(AnyKey::name)
        .collect();
    if !table.get("threatq").is_some_and(toml::Value::is_table) {
        return Err(ConfigError::MissingKey {
            path: file.to_owned(),
            section: "threatq".to_owned(),
            key: required.first().copied().unwrap_or_default().to_owned(),
            hint: format!(
                "the file needs a [threatq] section with {}; run \
                 `tq-conn-proofpoint-tap setup --help` to write one",
                and_list(&required)
            ),
        });
    }
    for section in Section::ALL {
        let Some(values) = table.get(section.name()).and_then(toml::Value::as_table) else {
            continue;
        };
        let known = keys::names(section);
        for key in values.keys() {
            if !known.contains(&key.as_str()) {
                return Err(unknown_key(
                    file,
                    &format!("[{}]", section.name()),
                    key,
                    &known,
                ));
            }
        }
        for key in keys::in_section(section).filter(|key| key.required()) {
            if !values.contains_key(key.name()) {
                return Err(ConfigError::MissingKey {
                    path: file.to_owned(),
                    section: section.name().to_owned(),
                    key: key.name().to_owned(),
                    hint: format!("add `{} = \"...\"` under [{}]", key.name(), section.name()),
                });
            }
        }
    }
    Ok(())
}

/// `a, b and c`.
fn and_list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
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

/// The checks serde cannot make, on the file's values: a number out of its
/// declared range, an empty text, a CA file that is not there. [threatq]'s
/// come first, then both CA files, then [tap]'s and [run]'s, so a file
/// with several problems is refused for the same one as before the checks
/// were read from the declarations.
fn validate(table: &toml::Table, config: &Config, file: &Path) -> Result<(), ConfigError> {
    check_values(table, Section::Threatq, file)?;
    let ca_files = [
        (
            AnyKey::Text(&keys::THREATQ_CA_FILE),
            &config.threatq.ca_file,
        ),
        (AnyKey::Text(&keys::TAP_CA_FILE), &config.tap.ca_file),
    ];
    for (key, ca_file) in ca_files {
        if let Some(ca_file) = ca_file
            && !ca_file.is_file()
        {
            return Err(ConfigError::BadPath {
                path: file.to_owned(),
                key: key.dotted(),
                problem: format!(
                    "{} does not exist or is not a file; point it at a PEM certificate or remove the key",
                    ca_file.display()
                ),
            });
        }
    }
    check_values(table, Section::Tap, file)?;
    check_values(table, Section::Run, file)
}

/// Checks each value `section` sets against its declaration. Serde has
/// read the file already, so each value has its key's type.
fn check_values(table: &toml::Table, section: Section, file: &Path) -> Result<(), ConfigError> {
    let Some(values) = table.get(section.name()).and_then(toml::Value::as_table) else {
        return Ok(());
    };
    for key in keys::in_section(section) {
        let Some(value) = values.get(key.name()) else {
            continue;
        };
        match key {
            AnyKey::Number(number) => {
                if let Some(value) = value.as_integer().and_then(|v| u32::try_from(v).ok())
                    && !number.value.range().contains(&value)
                {
                    return Err(ConfigError::OutOfRange {
                        path: file.to_owned(),
                        key: key.dotted(),
                        value,
                        min: number.value.min,
                        max: number.value.max,
                    });
                }
            }
            AnyKey::Text(text) => {
                if let (Some(hint), Some(value)) = (text.value.if_empty, value.as_str()) {
                    let value = if text.value.secret {
                        value
                    } else {
                        value.trim()
                    };
                    if value.is_empty() {
                        return Err(ConfigError::Empty {
                            path: file.to_owned(),
                            key: key.dotted(),
                            hint: hint.to_owned(),
                        });
                    }
                }
            }
            AnyKey::Flag(_) => {}
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
