//! Deserializers that accept every shape TAP has been seen to send for a
//! field (docs/tap-api.md, "Spelling drift we tolerate"): `null` for
//! anything optional, strings or arrays for address lists, booleans or
//! strings for flags, numbers or strings for scores, and enum values in any
//! case.
//!
//! Use with `#[serde(default, deserialize_with = "...")]`.

use std::fmt;

use serde::de::{self, Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

// The readers below are serde visitors rather than "parse a `Value`, then
// look at it": a busy TAP hour is tens of MiB, and building a `Value` per
// field costs more than the whole typed decode (docs/performance.md).

/// A JSON scalar as TAP sent it, with strings borrowed from the body where
/// serde can (no escapes) and copied otherwise.
enum Scalar<'de> {
    Null,
    Text(std::borrow::Cow<'de, str>),
    Number(f64, String),
    Bool(bool),
}

impl Scalar<'_> {
    /// Strings as they are, numbers and booleans written out (a `QID` sent
    /// as a number is still a QID).
    fn into_text(self) -> Option<String> {
        match self {
            Scalar::Null => None,
            Scalar::Text(s) => Some(s.into_owned()),
            Scalar::Number(_, written) => Some(written),
            Scalar::Bool(b) => Some(b.to_string()),
        }
    }
}

/// Reads one scalar; arrays and objects are refused with `expected`.
struct ScalarVisitor {
    expected: &'static str,
}

/// The reader of a scalar that should be text.
const TEXT: ScalarVisitor = ScalarVisitor {
    expected: "expected a string",
};

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expected)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Number(n as f64, n.to_string()))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Number(n as f64, n.to_string()))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
        // Written as serde_json writes a float, so `5.0` stays `5.0`.
        let written =
            serde_json::Number::from_f64(n).map_or_else(|| n.to_string(), |j| j.to_string());
        Ok(Scalar::Number(n, written))
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Text(std::borrow::Cow::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Text(std::borrow::Cow::Owned(s.to_owned())))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        Ok(Scalar::Text(std::borrow::Cow::Owned(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(A::Error::custom(format!(
            "{}, found an array",
            self.expected
        )))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(A::Error::custom(format!(
            "{}, found an object",
            self.expected
        )))
    }
}

fn scalar<'de, D: Deserializer<'de>>(
    d: D,
    expected: &'static str,
) -> Result<Scalar<'de>, D::Error> {
    d.deserialize_any(ScalarVisitor { expected })
}

/// A scalar as text: strings as they are, numbers and booleans written out
/// (a `QID` sent as a number is still a QID). Arrays and objects are errors.
pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(d.deserialize_any(TEXT)?.into_text())
}

/// A list of strings that TAP sometimes sends as a single string, sometimes
/// as an array, sometimes as `null`. Empty strings and `null` elements are
/// dropped.
pub fn text_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct ListVisitor;
    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or a list of strings")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(item) = seq.next_element_seed(TextSeed)? {
                out.extend(item.filter(|t| !t.trim().is_empty()));
            }
            Ok(out)
        }
        fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(A::Error::custom("expected a string, found an object"))
        }
        // A single scalar is a one-element list, read as `opt_text` reads it.
        fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
            Ok(one(Scalar::Bool(b)))
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
            TEXT.visit_i64(n).map(one)
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
            TEXT.visit_u64(n).map(one)
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
            TEXT.visit_f64(n).map(one)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            TEXT.visit_str(s).map(one)
        }
    }
    fn one(scalar: Scalar<'_>) -> Vec<String> {
        scalar
            .into_text()
            .filter(|t| !t.trim().is_empty())
            .into_iter()
            .collect()
    }
    d.deserialize_any(ListVisitor)
}

/// One element of a text list: a scalar, or an error for nested lists.
struct TextSeed;

impl<'de> de::DeserializeSeed<'de> for TextSeed {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        opt_text(d)
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
    let parsed = match scalar(d, "expected a number")? {
        Scalar::Null => return Ok(None),
        Scalar::Number(n, _) => Some(n),
        Scalar::Text(s) if s.trim().is_empty() => return Ok(None),
        Scalar::Text(s) => s.trim().parse::<f64>().ok(),
        Scalar::Bool(_) => {
            return Err(D::Error::custom("expected a number, found a boolean"));
        }
    };
    match parsed {
        Some(n) if n.is_finite() => Ok(Some(Number(n))),
        _ => Err(D::Error::custom("expected a number or a numeric string")),
    }
}

/// A yes/no flag sent as a boolean, `"true"`/`"false"` in any case, or 0/1.
pub fn opt_flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    flag_of(scalar(d, "expected true or false")?).map_err(D::Error::custom)
}

fn flag_of(value: Scalar<'_>) -> Result<Option<bool>, String> {
    match value {
        Scalar::Null => Ok(None),
        Scalar::Bool(b) => Ok(Some(b)),
        Scalar::Number(n, written) => match n {
            0.0 => Ok(Some(false)),
            1.0 => Ok(Some(true)),
            _ => Err(format!("expected true or false, found {written}")),
        },
        Scalar::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(Some(true)),
            "false" | "no" | "0" => Ok(Some(false)),
            "" => Ok(None),
            _ => Err(format!("expected true or false, found `{s}`")),
        },
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
    let value = scalar(d, "expected true or false")?;
    if let Scalar::Text(s) = &value {
        let key = s.trim().to_ascii_lowercase();
        if key == "na" || key == "n/a" {
            return Ok(Some(Rewritten::NotApplicable));
        }
    }
    let flag = flag_of(value).map_err(D::Error::custom)?;
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
    Ok(match scalar(d, "expected a string")? {
        Scalar::Text(s) => Some(s.trim()).filter(|s| !s.is_empty()).map(T::from_tap),
        other => other.into_text().map(|s| T::from_tap(s.trim())),
    })
}

/// Reads a body that must be one JSON object (a Threat or People API
/// answer) with `read`: invalid UTF-8 replaced, a BOM and leading space
/// skipped, and anything but an object refused first, since serde would
/// read an array's elements into a struct's fields by position.
pub fn read_object<R>(
    body: &[u8],
    read: impl FnOnce(&str) -> Result<R, String>,
) -> Result<R, String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    if !text.starts_with('{') {
        return Err("expected a JSON object".to_string());
    }
    read(text)
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
