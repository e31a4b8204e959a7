//! The Forensics API's answer (`/v2/forensics?threatId=` or `?campaignId=`).
//!
//! Evidence types keep growing ("each test, we get a new evidence type",
//! OpenCTI), so each evidence element stays raw JSON until it is read, and
//! a type we do not know is kept as it came rather than refused.

use serde::Deserialize;
use serde_json::Value;

use super::lenient::{self, FromTap, enum_key, opt_enum, opt_flag, opt_text};
use super::siem::ThreatStatus;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ForensicsResponse {
    #[serde(default, deserialize_with = "lenient::list")]
    pub reports: Vec<Report>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportScope {
    Threat,
    Campaign,
    Other(String),
}

impl FromTap for ReportScope {
    fn from_tap(raw: &str) -> Self {
        match enum_key(raw).as_str() {
            "threat" => ReportScope::Threat,
            "campaign" => ReportScope::Campaign,
            _ => ReportScope::Other(raw.to_string()),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Report {
    #[serde(default, deserialize_with = "opt_enum")]
    pub scope: Option<ReportScope>,
    /// The threat ID, or the campaign UUID for campaign-scoped reports.
    #[serde(default, deserialize_with = "opt_text")]
    pub id: Option<String>,
    /// The malicious URL, the attachment's SHA-256, or the campaign name.
    #[serde(default, deserialize_with = "opt_text")]
    pub name: Option<String>,
    #[serde(rename = "threatStatus", default, deserialize_with = "opt_enum")]
    pub threat_status: Option<ThreatStatus>,
    /// Raw evidence, read one element at a time by `Evidence::read`.
    #[serde(default, deserialize_with = "lenient::list")]
    pub forensics: Vec<Value>,
}

/// The evidence types of the documented set plus those seen in the wild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvidenceKind {
    Url,
    RedirectChain,
    Dns,
    Network,
    File,
    Dropper,
    Attachment,
    Mutex,
    Registry,
    Process,
    Ids,
    Behavior,
    Cookie,
    Screenshot,
    Other(String),
}

impl FromTap for EvidenceKind {
    fn from_tap(raw: &str) -> Self {
        match enum_key(raw).as_str() {
            "url" => EvidenceKind::Url,
            "redirectchain" => EvidenceKind::RedirectChain,
            "dns" => EvidenceKind::Dns,
            "network" => EvidenceKind::Network,
            "file" => EvidenceKind::File,
            "dropper" => EvidenceKind::Dropper,
            "attachment" => EvidenceKind::Attachment,
            "mutex" => EvidenceKind::Mutex,
            "registry" => EvidenceKind::Registry,
            "process" => EvidenceKind::Process,
            "ids" | "idsrule" => EvidenceKind::Ids,
            "behavior" | "behaviour" => EvidenceKind::Behavior,
            "cookie" => EvidenceKind::Cookie,
            "screenshot" => EvidenceKind::Screenshot,
            _ => EvidenceKind::Other(raw.to_string()),
        }
    }
}

/// One piece of evidence. `what` stays raw JSON because its keys depend
/// on the type; `Evidence::text` and `Evidence::texts` read it leniently.
#[derive(Debug, Clone, Deserialize)]
pub struct Evidence {
    #[serde(rename = "type", default, deserialize_with = "opt_enum")]
    pub kind: Option<EvidenceKind>,
    #[serde(default, deserialize_with = "opt_flag")]
    pub malicious: Option<bool>,
    #[serde(default, deserialize_with = "opt_text")]
    pub note: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub display: Option<String>,
    #[serde(default)]
    pub what: Value,
}

impl Evidence {
    /// Reads one raw evidence element; the error says why it is unusable.
    pub fn read(raw: &Value) -> Result<Evidence, String> {
        Evidence::deserialize(raw).map_err(|e| e.to_string())
    }

    /// A scalar of `what` as trimmed, non-empty text.
    pub fn text(&self, key: &str) -> Option<String> {
        let text = match self.what.get(key)? {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        (!text.is_empty()).then_some(text)
    }

    /// A list of strings in `what` (also accepting a single string).
    pub fn texts(&self, key: &str) -> Vec<String> {
        match self.what.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            Some(Value::String(s)) if !s.trim().is_empty() => vec![s.trim().to_string()],
            _ => Vec::new(),
        }
    }
}

/// Parses a forensics body; the error names line and column.
pub fn parse_forensics(body: &[u8]) -> Result<ForensicsResponse, String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim_start_matches('\u{feff}');
    if text.trim().is_empty() {
        return Ok(ForensicsResponse::default());
    }
    serde_json::from_str(text).map_err(|e| e.to_string())
}
