//! The connector's settings and the proxy as ThreatQ's UI keeps them.
//!
//! **This module is a documented guess.** How ThreatQ stores a legacy
//! connector's settings is not public (docs/threatq-api.md, "Connector
//! settings (a documented guess)"): ThreatQ's own QA scripts show connector
//! rows under `/api/connectors`, but not their fields. The shapes read here
//! are:
//!
//! ```text
//! GET /api/connectors?name=<name>
//!   {"data": [{"id": 7, "name": "<name>", "category": "Labs", "active": true,
//!              "options": {"hostname": "...", "api_principal": "...",
//!                          "api_secret": "...", "history_hours": "24",
//!                          "create_incidents": "Yes"}}], "total": 1}
//! GET /api/configuration/proxy
//!   {"data": {"proxy": "http://host:port"}}
//! ```
//!
//! A 404 or an empty list means "no entry" (`Ok(None)`), so a run whose
//! local file sets everything does not depend on this guess. Reading is
//! lenient: values may be strings, numbers or booleans, and `options` may
//! also be a list of `{"name", "value"}` pairs.
//!
//! To correct the guess against a real instance: capture what the UI sends
//! when the connector's settings are saved (browser developer tools,
//! *Incoming Feeds → Labs*), then change `CONNECTORS_PATH`, `PROXY_PATH` and
//! the option names in `OptionName` below; nothing outside this module
//! knows the shapes.

use std::fmt;
use std::sync::atomic::AtomicUsize;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use crate::error::ThreatqError;
use crate::session::{ApiRequest, Client};

const CONNECTORS_PATH: &str = "/api/connectors";
const PROXY_PATH: &str = "/api/configuration/proxy";

/// The option keys of a connector entry.
struct OptionName;

impl OptionName {
    const HOSTNAME: &str = "hostname";
    const PRINCIPAL: &str = "api_principal";
    const SECRET: &str = "api_secret";
    const HISTORY_HOURS: &str = "history_hours";
    const CREATE_INCIDENTS: &str = "create_incidents";
}

/// The connector's entry in ThreatQ's UI. `None` fields were not set there.
#[derive(Clone)]
pub struct ConnectorSettings {
    /// The UI's on/off switch; an entry without one counts as on, so a
    /// missing field never silently stops the feed.
    pub enabled: bool,
    pub hostname: Option<String>,
    pub principal: Option<String>,
    pub secret: Option<SecretString>,
    pub history_hours: Option<u32>,
    pub create_incidents: Option<bool>,
}

impl PartialEq for ConnectorSettings {
    fn eq(&self, other: &Self) -> bool {
        // Exhaustive, so a new field cannot be forgotten here.
        let ConnectorSettings {
            enabled,
            hostname,
            principal,
            secret,
            history_hours,
            create_incidents,
        } = self;
        *enabled == other.enabled
            && *hostname == other.hostname
            && *principal == other.principal
            && secret.as_ref().map(|s| s.expose_secret())
                == other.secret.as_ref().map(|s| s.expose_secret())
            && *history_hours == other.history_hours
            && *create_incidents == other.create_incidents
    }
}

impl Eq for ConnectorSettings {}

impl fmt::Debug for ConnectorSettings {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ConnectorSettings")
            .field("enabled", &self.enabled)
            .field("hostname", &self.hostname)
            .field("principal", &self.principal)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("history_hours", &self.history_hours)
            .field("create_incidents", &self.create_incidents)
            .finish()
    }
}

impl Client {
    /// The settings of the connector called `connector_name`, or `None`
    /// when ThreatQ has no such entry (or no connectors endpoint).
    pub async fn connector_settings(
        &self,
        connector_name: &str,
    ) -> Result<Option<ConnectorSettings>, ThreatqError> {
        let what = format!("reading the '{connector_name}' connector settings");
        let mut request = ApiRequest::get(CONNECTORS_PATH.to_owned(), what.clone());
        request.query.push(("name", connector_name.to_owned()));
        let body = match self.call(&request, &AtomicUsize::new(0)).await {
            Err(ThreatqError::Refused { status: 404, .. }) => return Ok(None),
            outcome => outcome?,
        };
        let entries = match body.get("data") {
            Some(Value::Array(entries)) => entries.iter().collect(),
            Some(entry @ Value::Object(_)) => vec![entry],
            Some(Value::Null) | None => Vec::new(),
            Some(other) => {
                return Err(self.scrubbed(unexpected(
                    &what,
                    format!("\"data\" is {other}, not a list"),
                )));
            }
        };
        // The server may ignore the filter; only an entry with our name counts.
        let Some(entry) = entries.into_iter().find(|entry| {
            entry
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|name| name.trim().eq_ignore_ascii_case(connector_name.trim()))
        }) else {
            return Ok(None);
        };
        parse_entry(entry, &what)
            .map(Some)
            .map_err(|error| self.scrubbed(error))
    }

    /// An answer quoted in an error may hold what we sent (the password) or
    /// a token: scrub it like every other quoted answer.
    fn scrubbed(&self, error: ThreatqError) -> ThreatqError {
        match error {
            ThreatqError::UnexpectedResponse { what, detail } => ThreatqError::UnexpectedResponse {
                what,
                detail: self.scrub(detail),
            },
            other => other,
        }
    }

    /// The proxy configured in ThreatQ (for `-ep`), or `None` when none is
    /// set or ThreatQ has no such endpoint.
    pub async fn proxy_setting(&self) -> Result<Option<String>, ThreatqError> {
        let request = ApiRequest::get(PROXY_PATH.to_owned(), "reading ThreatQ's proxy setting");
        let body = match self.call(&request, &AtomicUsize::new(0)).await {
            Err(ThreatqError::Refused { status: 404, .. }) => return Ok(None),
            outcome => outcome?,
        };
        let proxy = match body.get("data") {
            Some(Value::String(proxy)) => Some(proxy.as_str()),
            Some(data) => ["proxy", "value"]
                .iter()
                .find_map(|key| data.get(*key).and_then(Value::as_str)),
            None => None,
        };
        Ok(proxy
            .map(str::trim)
            .filter(|proxy| !proxy.is_empty())
            .map(str::to_owned))
    }
}

fn unexpected(what: &str, detail: String) -> ThreatqError {
    ThreatqError::UnexpectedResponse {
        what: what.to_owned(),
        detail,
    }
}

fn parse_entry(entry: &Value, what: &str) -> Result<ConnectorSettings, ThreatqError> {
    let options = options_of(entry);
    let option = |name: &str| options.get(name).filter(|value| !is_blank(value));
    let enabled = match entry.get("active").or_else(|| entry.get("enabled")) {
        None | Some(Value::Null) => true,
        Some(value) => flag(value).ok_or_else(|| {
            unexpected(what, format!("\"active\" is {value}, not a yes/no value"))
        })?,
    };
    let history_hours = option(OptionName::HISTORY_HOURS)
        .map(|value| {
            number(value).ok_or_else(|| {
                unexpected(
                    what,
                    format!(
                        "option {} is {value}, not a whole number of hours: correct it in ThreatQ's connector settings",
                        OptionName::HISTORY_HOURS
                    ),
                )
            })
        })
        .transpose()?;
    let create_incidents = option(OptionName::CREATE_INCIDENTS)
        .map(|value| {
            flag(value).ok_or_else(|| {
                unexpected(
                    what,
                    format!(
                        "option {} is {value}, not Yes or No: correct it in ThreatQ's connector settings",
                        OptionName::CREATE_INCIDENTS
                    ),
                )
            })
        })
        .transpose()?;
    Ok(ConnectorSettings {
        enabled,
        hostname: option(OptionName::HOSTNAME).map(text),
        principal: option(OptionName::PRINCIPAL).map(text),
        secret: option(OptionName::SECRET).map(|value| text(value).into()),
        history_hours,
        create_incidents,
    })
}

/// `options` as a map, whether sent as an object or as `[{name, value}]`.
fn options_of(entry: &Value) -> Map<String, Value> {
    match entry.get("options") {
        Some(Value::Object(options)) => options.clone(),
        Some(Value::Array(pairs)) => pairs
            .iter()
            .filter_map(|pair| {
                let name = pair.get("name")?.as_str()?;
                Some((name.to_owned(), pair.get("value")?.clone()))
            })
            .collect(),
        _ => Map::new(),
    }
}

fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.trim().is_empty(),
        _ => false,
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.trim().to_owned(),
        other => other.to_string(),
    }
}

fn number(value: &Value) -> Option<u32> {
    match value {
        Value::Number(number) => number.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn flag(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::Number(number) => match number.as_u64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "yes" | "y" | "true" | "1" | "on" | "enabled" | "active" => Some(true),
            "no" | "n" | "false" | "0" | "off" | "disabled" | "inactive" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn string_number_and_boolean_values_are_all_read() {
        let entry = json!({
            "name": "Proofpoint TAP", "active": "1",
            "options": {
                "hostname": "tap-api-v2.proofpoint.com", "api_principal": "p",
                "api_secret": 1234, "history_hours": 12, "create_incidents": true,
            },
        });
        let settings = parse_entry(&entry, "test").unwrap();
        assert!(settings.enabled);
        assert_eq!(
            settings
                .secret
                .as_ref()
                .map(secrecy::ExposeSecret::expose_secret),
            Some("1234")
        );
        assert_eq!(settings.history_hours, Some(12));
        assert_eq!(settings.create_incidents, Some(true));
    }

    #[test]
    fn options_given_as_name_value_pairs_are_read() {
        let entry = json!({
            "name": "Proofpoint TAP", "active": false,
            "options": [
                { "name": "history_hours", "value": " 36 " },
                { "name": "create_incidents", "value": "No" },
                { "name": "hostname", "value": "" },
            ],
        });
        let settings = parse_entry(&entry, "test").unwrap();
        assert!(!settings.enabled);
        assert_eq!(settings.history_hours, Some(36));
        assert_eq!(settings.create_incidents, Some(false));
        assert_eq!(settings.hostname, None);
    }

    #[test]
    fn nonsense_option_values_are_errors_that_name_the_option() {
        let entry = json!({ "name": "x", "options": { "history_hours": "a day" } });
        let error = parse_entry(&entry, "test").unwrap_err().to_string();
        assert!(error.contains("history_hours"), "{error}");
        let entry = json!({ "name": "x", "options": { "create_incidents": "maybe" } });
        assert!(parse_entry(&entry, "test").is_err());
    }

    #[test]
    fn the_secret_never_appears_in_debug_output() {
        let entry = json!({ "name": "x", "options": { "api_secret": "s3cr3t-value" } });
        let settings = parse_entry(&entry, "test").unwrap();
        assert!(!format!("{settings:?}").contains("s3cr3t-value"));
    }
}
