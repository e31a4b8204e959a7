//! Deserializers that accept every shape TAP has been seen to send for a
//! field (docs/tap-api.md, "Spelling drift we tolerate"): `null` for
//! anything optional, strings or arrays for address lists, booleans or
//! strings for flags, numbers or strings for scores, and enum values in any
//! case.
//!
//! Use with `#[serde(default, deserialize_with = "...")]`.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A scalar as text: strings as they are, numbers and booleans written out
/// (a `QID` sent as a number is still a QID). Arrays and objects are errors.
pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(v) => scalar_text(&v).map(Some).map_err(D::Error::custom),
    }
}

/// A list of strings that TAP sometimes sends as a single string, sometimes
/// as an array, sometimes as `null`. Empty strings and `null` elements are
/// dropped.
pub fn text_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let values = match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(single) => vec![single],
    };
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        if v.is_null() {
            continue;
        }
        let text = scalar_text(&v).map_err(D::Error::custom)?;
        if !text.trim().is_empty() {
            out.push(text);
        }
    }
    Ok(out)
}

fn scalar_text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        Value::Array(_) => Err("expected a string, found an array".to_string()),
        Value::Object(_) => Err("expected a string, found an object".to_string()),
    }
}

/// A number TAP may send as a JSON number or as a numeric string.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number(pub f64);

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Scores and sizes are integers in practice; `5295.0` would read
        // oddly in ThreatQ.
        if self.0.fract() == 0.0 && self.0.abs() < 1e15 {
            write!(f, "{:.0}", self.0)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

pub fn opt_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Number>, D::Error> {
    let parsed = match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(other) => {
            return Err(D::Error::custom(format!(
                "expected a number, found {}",
                json_kind(&other)
            )));
        }
    };
    match parsed {
        Some(n) if n.is_finite() => Ok(Some(Number(n))),
        _ => Err(D::Error::custom("expected a number or a numeric string")),
    }
}

/// A yes/no flag sent as a boolean, `"true"`/`"false"` in any case, or 0/1.
pub fn opt_flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(0) => Ok(Some(false)),
            Some(1) => Ok(Some(true)),
            _ => Err(D::Error::custom(format!(
                "expected true or false, found {n}"
            ))),
        },
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(Some(true)),
            "false" | "no" | "0" => Ok(Some(false)),
            "" => Ok(None),
            _ => Err(D::Error::custom(format!(
                "expected true or false, found `{s}`"
            ))),
        },
        Some(other) => Err(D::Error::custom(format!(
            "expected true or false, found {}",
            json_kind(&other)
        ))),
    }
}

/// `completelyRewritten`: documented as `"true"`/`"false"`/`"na"`, sent as
/// a JSON boolean in real responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewritten {
    Yes,
    No,
    /// The message had no URL threats to rewrite.
    NotApplicable,
}

impl Rewritten {
    pub fn as_str(self) -> &'static str {
        match self {
            Rewritten::Yes => "true",
            Rewritten::No => "false",
            Rewritten::NotApplicable => "na",
        }
    }
}

pub fn opt_rewritten<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Rewritten>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    if let Some(Value::String(s)) = &value {
        let key = s.trim().to_ascii_lowercase();
        if key == "na" || key == "n/a" {
            return Ok(Some(Rewritten::NotApplicable));
        }
    }
    let flag = opt_flag(value.unwrap_or(Value::Null)).map_err(D::Error::custom)?;
    Ok(flag.map(|yes| if yes { Rewritten::Yes } else { Rewritten::No }))
}

/// An enum TAP spells in varying case (`MALWARE`, `malware`,
/// `falsePositive`, `falsepositive`). Unknown values are kept, not refused.
pub trait FromTap: Sized {
    fn from_tap(raw: &str) -> Self;
}

/// The comparison form of an enum value: lower case, without `_`, `-` or
/// spaces.
pub fn enum_key(raw: &str) -> String {
    raw.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

pub fn opt_enum<'de, D: Deserializer<'de>, T: FromTap>(d: D) -> Result<Option<T>, D::Error> {
    Ok(opt_text(d)?
        .filter(|s| !s.trim().is_empty())
        .map(|s| T::from_tap(s.trim())))
}

/// An array that may be `null`.
pub fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
