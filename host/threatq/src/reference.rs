//! ThreatQ's reference lists, read before a run to check the settings
//! against them (a preflight): today the indicator statuses, which
//! `[threatq] status` must name.
//!
//! ```text
//! GET /api/indicator/statuses
//!   {"total": 5, "data": [{"id": 1, "name": "Active", ...}, ...]}
//! ```

use std::sync::atomic::AtomicUsize;

use serde_json::Value;

use crate::error::ThreatqError;
use crate::session::{ApiRequest, Client};

const INDICATOR_STATUSES_PATH: &str = "/api/indicator/statuses";

impl Client {
    /// The names of the indicator statuses ThreatQ knows (by default
    /// `Active`, `Expired`, `Indirect`, `Review`, `Whitelisted`), in
    /// ThreatQ's order, trimmed and without repeats. Names are compared by
    /// ThreatQ as sent, so a caller checking `[threatq] status` should say
    /// which names exist when it is not among them.
    ///
    /// Lenient about the entries: unknown fields are ignored, an entry may
    /// also be a bare name, and entries without a usable name are skipped.
    /// An answer without a `data` list, or whose entries carry no name at
    /// all, is [`ThreatqError::UnexpectedResponse`].
    pub async fn indicator_statuses(&self) -> Result<Vec<String>, ThreatqError> {
        let what = "reading ThreatQ's indicator statuses";
        let request = ApiRequest::get(INDICATOR_STATUSES_PATH.to_owned(), what);
        let body = self.call(&request, &AtomicUsize::new(0)).await?;
        names(&body).map_err(|detail| ThreatqError::UnexpectedResponse {
            what: what.to_owned(),
            detail,
        })
    }
}

/// The `name` of every entry of `data`. Errors describe the shape only,
/// never quote the answer, so they cannot carry a secret or grow large.
fn names(body: &Value) -> Result<Vec<String>, String> {
    let entries = data_list(body, "statuses")?;
    let mut names: Vec<String> = Vec::new();
    for entry in entries {
        let name = match entry {
            Value::Object(fields) => fields.get("name").and_then(Value::as_str),
            Value::String(name) => Some(name.as_str()),
            _ => None,
        };
        let Some(name) = name.map(str::trim).filter(|name| !name.is_empty()) else {
            continue;
        };
        if !names.iter().any(|known| known == name) {
            names.push(name.to_owned());
        }
    }
    if names.is_empty() && !entries.is_empty() {
        return Err(format!(
            "none of the {} entries of \"data\" has a name",
            entries.len()
        ));
    }
    Ok(names)
}

/// The `data` list of a ThreatQ list answer (`{"total", "data": [...]}`);
/// the error names its shape only (`of` says what the list should hold).
pub(crate) fn data_list<'a>(body: &'a Value, of: &str) -> Result<&'a Vec<Value>, String> {
    match body.get("data") {
        Some(Value::Array(entries)) => Ok(entries),
        Some(other) => Err(format!("\"data\" is {}, not a list of {of}", kind(other))),
        None => Err(format!("the answer ({}) has no \"data\" list", kind(body))),
    }
}

/// What a JSON value is, in words, for errors that must not quote it.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_read_in_order_whatever_else_the_entries_carry() {
        let body = json!({
            "total": 6,
            "data": [
                { "id": 1, "name": "Active", "description": "Poses a threat", "include_in_export": "Y" },
                { "id": 4, "name": " Review " },
                "Expired",
                { "id": 9, "name": "Active" },
                { "id": 7 },
                { "id": 8, "name": 42 },
                { "name": "" },
                null,
            ],
        });
        assert_eq!(names(&body).unwrap(), ["Active", "Review", "Expired"]);
        assert_eq!(names(&json!({ "data": [] })).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn answers_without_a_list_of_names_are_errors_that_quote_nothing() {
        for (body, expected) in [
            (json!({ "data": "secret-ish" }), "\"data\" is a string"),
            (
                json!({ "data": { "name": "Active" } }),
                "\"data\" is an object",
            ),
            (
                json!([{ "name": "Active" }]),
                "the answer (a list) has no \"data\"",
            ),
            (json!(null), "the answer (null) has no \"data\""),
            (json!({ "data": [1, {}, null] }), "none of the 3 entries"),
        ] {
            let error = names(&body).unwrap_err();
            assert!(error.contains(expected), "{body}: {error}");
            assert!(!error.contains("secret-ish"), "{error}");
        }
    }
}
