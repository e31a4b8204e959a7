//! Everything that can go wrong talking to ThreatQ, each worded for the
//! operator who reads it in cron mail: what happened, then what to do.
//!
//! Texts quoted from ThreatQ are scrubbed of the password and tokens before
//! they get here (see `session::Secrets`), so no variant can leak them.

use serde_json::Value;

use crate::model::Collection;
use crate::retry::Transient;

#[derive(Debug, thiserror::Error)]
pub enum ThreatqError {
    #[error(
        "ThreatQ refused the username/password/client id (HTTP {status}): check [threatq] in tq-conn-proofpoint-tap.toml"
    )]
    BadCredentials { status: u16 },

    #[error(
        "could not reach ThreatQ at {base_url} while {what}: {detail}; check [threatq] base_url, the network path or proxy, and that ThreatQ is running"
    )]
    Unreachable {
        base_url: String,
        what: String,
        detail: String,
    },

    #[error(
        "ThreatQ answered HTTP {status} while {what}: {reason}; it is overloaded, restarting or in maintenance mode, so try again later"
    )]
    Unavailable {
        status: u16,
        what: String,
        reason: String,
    },

    #[error(
        "ThreatQ refused a fresh access token while {what} (HTTP 401): check that the ThreatQ user is active and allowed to use the API"
    )]
    Unauthorized { what: String },

    #[error("ThreatQ refused the request while {what} (HTTP {status}): {reason}")]
    Refused {
        status: u16,
        what: String,
        reason: String,
    },

    #[error(
        "ThreatQ answered HTTP {status} while {what} but its answer carries errors: {reason}; nothing from that request is counted as stored"
    )]
    ErrorsInSuccess {
        status: u16,
        what: String,
        reason: String,
    },

    #[error(
        "ThreatQ's answer while {what} is not in a shape this connector understands: {detail}; the ThreatQ API may have changed, so report this with the ThreatQ version"
    )]
    UnexpectedResponse { what: String, detail: String },

    #[error("ThreatQ kept failing after {attempts} attempts: {last}")]
    GaveUp {
        attempts: u32,
        last: Box<ThreatqError>,
    },

    #[error(
        "[threatq] base_url {base_url} cannot carry API paths: write it as https://host or https://host:port"
    )]
    InvalidBaseUrl { base_url: String },

    #[error(
        "the batch to forward is malformed: {detail}; this is a connector bug, please report it"
    )]
    InvalidBatch { detail: String },

    /// ThreatQ refused `refused` objects of `collection` one at a time and
    /// accepted none, so `forward` stopped bisecting (and forwarding)
    /// rather than spend a request on every object of the window.
    #[error(
        "ThreatQ refuses {subject} it is sent (HTTP {status}: \"{reason}\"): it refused {refused} of the {sent} in this window one by one and accepted none. That is a setting or a rule on the ThreatQ side, not bad data: check [threatq] status against ThreatQ's indicator statuses, the ThreatQ user's permissions, and any web firewall in front of ThreatQ. Nothing of the window was checkpointed, so the next run sends it again",
        subject = systemic_subject(.collection, .relations_only)
    )]
    SystemicRefusal {
        collection: Collection,
        /// The status of the last refusal.
        status: u16,
        /// ThreatQ's text of the last refusal.
        reason: String,
        /// Objects refused alone before `forward` stopped.
        refused: usize,
        /// Objects of `collection` this forward was sending (in the pass
        /// that stopped).
        sent: usize,
        /// True when the objects were stored and their relations (the
        /// linking pass) are what ThreatQ refuses.
        relations_only: bool,
    },
}

fn systemic_subject(collection: &Collection, relations_only: &bool) -> String {
    if *relations_only {
        format!("the relations of every {collection} object")
    } else {
        format!("every {collection} object")
    }
}

impl ThreatqError {
    /// True when the same request may succeed if sent again later: network
    /// failures, timeouts, 5xx and 429. `GaveUp` is false: the retry policy
    /// has already spent its attempts on it.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ThreatqError::Unreachable { .. } | ThreatqError::Unavailable { .. }
        )
    }

    /// The HTTP status ThreatQ answered, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ThreatqError::BadCredentials { status }
            | ThreatqError::Unavailable { status, .. }
            | ThreatqError::Refused { status, .. }
            | ThreatqError::ErrorsInSuccess { status, .. }
            | ThreatqError::SystemicRefusal { status, .. } => Some(*status),
            ThreatqError::Unauthorized { .. } => Some(401),
            ThreatqError::GaveUp { last, .. } => last.status(),
            _ => None,
        }
    }
}

impl Transient for ThreatqError {
    fn is_transient(&self) -> bool {
        ThreatqError::is_transient(self)
    }
}

/// Longest quote from a ThreatQ answer that goes into an error or report.
const MAX_REASON_CHARS: usize = 600;

/// ThreatQ's own words from an error body, in any of the shapes seen
/// (docs/threatq-api.md, "Errors"): `{"errors": {field: [msg]}}`,
/// `{"data": {"errors": ...}}`, `{"errors": [msg, [msg, msg]]}`,
/// `{"message": ..}`, `{"error": .., "error_description": ..}`; else the
/// raw text.
///
/// Not shortened: the caller scrubs secrets from the whole text first and
/// shortens after, or a secret echoed across the cut would leave its head.
pub(crate) fn reason_from_body(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(json) => errors_of(&json)
            .or_else(|| message_of(&json))
            .unwrap_or_else(|| json.to_string()),
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    };
    if text.trim().is_empty() {
        "(empty answer)".to_owned()
    } else {
        text
    }
}

/// The `errors` member of a body (top level or under `data`), flattened,
/// when it is present and not empty.
pub(crate) fn errors_of(body: &Value) -> Option<String> {
    let errors = body
        .get("errors")
        .or_else(|| body.get("data").and_then(|data| data.get("errors")))?;
    let mut parts = Vec::new();
    flatten(errors, None, &mut parts);
    if parts.is_empty() {
        return None;
    }
    // `{"errors": ""}` still says something went wrong; quote it rather
    // than fail with an empty reason.
    if parts.iter().all(|part| part.trim().is_empty()) {
        return Some(format!("errors: {errors}"));
    }
    Some(parts.join("; "))
}

fn message_of(body: &Value) -> Option<String> {
    let texts: Vec<&str> = ["message", "error_description", "error", "name"]
        .iter()
        .filter_map(|key| body.get(*key).and_then(Value::as_str))
        // A blank message says nothing; the whole body is quoted instead.
        .filter(|text| !text.trim().is_empty())
        .collect();
    (!texts.is_empty()).then(|| texts.join(": "))
}

fn flatten(errors: &Value, field: Option<&str>, parts: &mut Vec<String>) {
    match errors {
        Value::Null => {}
        Value::String(message) => parts.push(match field {
            Some(field) => format!("{field}: {message}"),
            None => message.clone(),
        }),
        Value::Array(items) => {
            for item in items {
                flatten(item, field, parts);
            }
        }
        Value::Object(fields) => {
            for (name, item) in fields {
                flatten(item, Some(name), parts);
            }
        }
        other => parts.push(other.to_string()),
    }
}

pub(crate) fn shorten(text: String) -> String {
    match text.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_errors_in_a_success_are_still_errors_with_a_reason() {
        assert_eq!(
            errors_of(&serde_json::json!({"errors": ""})).as_deref(),
            Some(r#"errors: """#)
        );
        assert_eq!(errors_of(&serde_json::json!({"errors": []})), None);
        assert_eq!(errors_of(&serde_json::json!({"errors": null})), None);
    }

    #[test]
    fn reasons_are_read_from_every_error_shape_threatq_uses() {
        assert_eq!(
            reason_from_body(br#"{"errors": {"0.type.name": ["The selected type is invalid."]}}"#),
            "0.type.name: The selected type is invalid."
        );
        assert_eq!(
            reason_from_body(br#"{"data": {"errors": {"name": ["taken"], "f": ["a", "b"]}}}"#),
            "f: a; f: b; name: taken"
        );
        assert_eq!(
            reason_from_body(br#"{"errors": ["First Error", ["part 1", "part 2"]]}"#),
            "First Error; part 1; part 2"
        );
        assert_eq!(
            reason_from_body(br#"{"error": "invalid_grant", "message": "bad"}"#),
            "bad: invalid_grant"
        );
        assert_eq!(
            reason_from_body(b"<html>Bad Gateway</html>"),
            "<html>Bad Gateway</html>"
        );
        assert_eq!(reason_from_body(b""), "(empty answer)");
        assert_eq!(reason_from_body(b" \x0b\n"), "(empty answer)");
        assert_eq!(
            reason_from_body(br#"{"message": "\u000b"}"#),
            r#"{"message":"\u000b"}"#
        );
    }

    #[test]
    fn long_reasons_are_cut() {
        let reason = shorten(reason_from_body("x".repeat(5000).as_bytes()));
        assert_eq!(reason.chars().count(), MAX_REASON_CHARS + 3);
    }

    #[test]
    fn only_network_and_server_side_failures_are_transient() {
        let unavailable = ThreatqError::Unavailable {
            status: 503,
            what: "w".into(),
            reason: "r".into(),
        };
        assert!(unavailable.is_transient());
        assert!(!ThreatqError::BadCredentials { status: 400 }.is_transient());
        assert!(
            !ThreatqError::GaveUp {
                attempts: 5,
                last: Box::new(unavailable)
            }
            .is_transient()
        );
    }
}
