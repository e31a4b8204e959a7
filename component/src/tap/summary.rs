//! The Threat API's answer (`/v2/threat/summary/{threatId}`,
//! docs/tap-api.md, "Threat API").
//!
//! Every field is optional and read leniently: TAP's documentation and its
//! sample data disagree on spellings (`severityScore` or `severity`), lists
//! may be absent or `null`, and numbers may come as strings. Severity and
//! attack spread are kept as TAP wrote them (a number written out), since
//! they only become attribute values.

use serde::Deserialize;

use super::campaign::Named;
use super::lenient::{self, opt_flag, opt_text};

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ThreatSummary {
    #[serde(default, deserialize_with = "opt_text")]
    pub id: Option<String>,
    #[serde(rename = "identifiedAt", default, deserialize_with = "opt_text")]
    pub identified_at: Option<String>,
    /// `impostor`, `malware`, `phish`, `spam`.
    #[serde(default, deserialize_with = "opt_text")]
    pub category: Option<String>,
    /// The documented spelling (0-1000).
    #[serde(rename = "severityScore", default, deserialize_with = "opt_text")]
    pub severity_score: Option<String>,
    /// The spelling of TAP's sample data.
    #[serde(default, deserialize_with = "opt_text")]
    pub severity: Option<String>,
    /// How many Proofpoint customers the threat reached.
    #[serde(rename = "attackSpread", default, deserialize_with = "opt_text")]
    pub attack_spread: Option<String>,
    #[serde(default, deserialize_with = "opt_flag")]
    pub notable: Option<bool>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub actors: Vec<Named>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub families: Vec<Named>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub malware: Vec<Named>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub techniques: Vec<Named>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub brands: Vec<Named>,
}

impl ThreatSummary {
    /// The severity in whichever spelling TAP sent, the documented one
    /// first.
    pub fn severity(&self) -> Option<&str> {
        self.severity_score
            .as_deref()
            .or(self.severity.as_deref())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

/// Parses a summary body; the error names line and column.
pub fn parse_summary(body: &[u8]) -> Result<ThreatSummary, String> {
    lenient::read_object(body, |text| {
        serde_json::from_str(text).map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sample_data_spelling() {
        let s = parse_summary(
            br#"{"id":"t1","identifiedAt":"2020-07-21T15:30:10.000Z","name":"x","type":"attachment",
                "category":"malware","status":"active","severity":20,"attackSpread":62,"notable":false,
                "verticals":false,"geographies":false,
                "actors":[{"id":"a","name":"TA505"}],"families":[{"id":"f","name":"Banking"}],
                "malware":[{"id":"m","name":"Ursnif"}],"techniques":[{"id":"q","name":"XL4 macros"}],
                "brands":[{"id":"b","name":"DocuSign"}]}"#,
        )
        .unwrap();
        assert_eq!(s.severity(), Some("20"));
        assert_eq!(s.attack_spread.as_deref(), Some("62"));
        assert_eq!(s.notable, Some(false));
        assert_eq!(s.actors[0].name.as_deref(), Some("TA505"));
        assert_eq!(s.brands[0].name.as_deref(), Some("DocuSign"));
        assert_eq!(s.category.as_deref(), Some("malware"));
    }

    #[test]
    fn reads_the_documented_spelling_strings_for_numbers_and_null_lists() {
        let s = parse_summary(
            br#"{"severityScore":"740","attackSpread":"3","notable":"true","actors":null,
                 "verticallyTargeted":true,"somethingNew":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(s.severity(), Some("740"));
        assert_eq!(s.attack_spread.as_deref(), Some("3"));
        assert_eq!(s.notable, Some(true));
        assert!(s.actors.is_empty() && s.malware.is_empty() && s.techniques.is_empty());
    }

    #[test]
    fn a_body_that_is_not_an_object_is_an_error_not_a_panic() {
        assert!(parse_summary(b"[1,2]").is_err());
        assert!(parse_summary(b"<html>").is_err());
        assert!(parse_summary(br#"{"actors": 5}"#).is_err());
    }
}
