//! The SIEM API's answer (`/v2/siem/all`), read one record at a time.
//!
//! The envelope is parsed first with every array left as raw JSON values;
//! each element is then decoded on its own, so one record TAP sends in an
//! unexpected shape becomes a rejection while the rest of the window maps
//! (the lesson of OpenCTI connectors issue #4172, where one bad record
//! stopped the feed).

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

use super::lenient::{
    self, FromTap, Number, Rewritten, enum_key, opt_enum, opt_number, opt_rewritten, opt_text,
    text_list,
};
use crate::dates::{parse_tap_time, unix_ms};
use crate::model::Rejection;

/// The four arrays of `/v2/siem/all`, each optional, plus `queryEndTime`.
#[derive(Debug, Default, Deserialize)]
pub struct SiemEnvelope {
    #[serde(rename = "queryEndTime", default)]
    pub query_end_time: Option<Value>,
    #[serde(rename = "messagesDelivered", default)]
    pub messages_delivered: Option<Vec<Value>>,
    #[serde(rename = "messagesBlocked", default)]
    pub messages_blocked: Option<Vec<Value>>,
    #[serde(rename = "clicksPermitted", default)]
    pub clicks_permitted: Option<Vec<Value>>,
    #[serde(rename = "clicksBlocked", default)]
    pub clicks_blocked: Option<Vec<Value>>,
}

/// Parses a 200 body. Always read as UTF-8, replacing invalid bytes, since
/// TAP has sent subjects in other encodings (tap-api.md section 7 item 10)
/// and one odd subject must not fail the window. A body of only whitespace
/// is an empty window, like a 204. The error gives serde's line and column.
pub fn parse_envelope(body: &[u8]) -> Result<SiemEnvelope, String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim_start_matches('\u{feff}');
    if text.trim().is_empty() {
        return Ok(SiemEnvelope::default());
    }
    serde_json::from_str(text).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classification {
    Malware,
    Phish,
    Spam,
    Impostor,
    Toad,
    Other(String),
}

impl FromTap for Classification {
    fn from_tap(raw: &str) -> Self {
        match enum_key(raw).as_str() {
            "malware" => Classification::Malware,
            "phish" | "phishing" => Classification::Phish,
            "spam" => Classification::Spam,
            "impostor" | "imposter" => Classification::Impostor,
            "toad" => Classification::Toad,
            _ => Classification::Other(raw.to_string()),
        }
    }
}

impl Classification {
    pub fn as_str(&self) -> &str {
        match self {
            Classification::Malware => "malware",
            Classification::Phish => "phish",
            Classification::Spam => "spam",
            Classification::Impostor => "impostor",
            Classification::Toad => "toad",
            Classification::Other(raw) => raw,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreatStatus {
    Active,
    Cleared,
    FalsePositive,
    Expired,
    Other(String),
}

impl FromTap for ThreatStatus {
    fn from_tap(raw: &str) -> Self {
        match enum_key(raw).as_str() {
            "active" => ThreatStatus::Active,
            "cleared" => ThreatStatus::Cleared,
            "falsepositive" => ThreatStatus::FalsePositive,
            "expired" => ThreatStatus::Expired,
            _ => ThreatStatus::Other(raw.to_string()),
        }
    }
}

impl ThreatStatus {
    pub fn as_str(&self) -> &str {
        match self {
            ThreatStatus::Active => "active",
            ThreatStatus::Cleared => "cleared",
            ThreatStatus::FalsePositive => "falsePositive",
            ThreatStatus::Expired => "expired",
            ThreatStatus::Other(raw) => raw,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreatType {
    Url,
    Attachment,
    MessageText,
    Other(String),
}

impl FromTap for ThreatType {
    fn from_tap(raw: &str) -> Self {
        match enum_key(raw).as_str() {
            "url" => ThreatType::Url,
            "attachment" => ThreatType::Attachment,
            "messagetext" | "message" => ThreatType::MessageText,
            _ => ThreatType::Other(raw.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxStatus {
    Unsupported,
    Clean,
    Threat,
    Prefilter,
    Uploaded,
    InProgress,
    UploadDisabled,
    Other(String),
}

impl FromTap for SandboxStatus {
    fn from_tap(raw: &str) -> Self {
        match enum_key(raw).as_str() {
            "unsupported" | "notsupported" => SandboxStatus::Unsupported,
            "clean" => SandboxStatus::Clean,
            "threat" => SandboxStatus::Threat,
            "prefilter" => SandboxStatus::Prefilter,
            "uploaded" => SandboxStatus::Uploaded,
            "inprogress" => SandboxStatus::InProgress,
            "uploaddisabled" => SandboxStatus::UploadDisabled,
            _ => SandboxStatus::Other(raw.to_string()),
        }
    }
}

impl SandboxStatus {
    pub fn as_str(&self) -> &str {
        match self {
            SandboxStatus::Unsupported => "unsupported",
            SandboxStatus::Clean => "clean",
            SandboxStatus::Threat => "threat",
            SandboxStatus::Prefilter => "prefilter",
            SandboxStatus::Uploaded => "uploaded",
            SandboxStatus::InProgress => "inprogress",
            SandboxStatus::UploadDisabled => "uploaddisabled",
            SandboxStatus::Other(raw) => raw,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartDisposition {
    Attached,
    Inline,
    Other(String),
}

impl FromTap for PartDisposition {
    fn from_tap(raw: &str) -> Self {
        match enum_key(raw).as_str() {
            "attached" | "attachment" => PartDisposition::Attached,
            "inline" => PartDisposition::Inline,
            _ => PartDisposition::Other(raw.to_string()),
        }
    }
}

/// One element of a message's `threatsInfoMap`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ThreatInfo {
    #[serde(
        rename = "threatID",
        alias = "threatId",
        alias = "threatid",
        default,
        deserialize_with = "opt_text"
    )]
    pub threat_id: Option<String>,
    #[serde(
        rename = "campaignID",
        alias = "campaignId",
        alias = "campaignid",
        default,
        deserialize_with = "opt_text"
    )]
    pub campaign_id: Option<String>,
    #[serde(default, deserialize_with = "opt_enum")]
    pub classification: Option<Classification>,
    #[serde(default, deserialize_with = "opt_text")]
    pub threat: Option<String>,
    #[serde(rename = "threatStatus", default, deserialize_with = "opt_enum")]
    pub threat_status: Option<ThreatStatus>,
    #[serde(rename = "threatTime", default, deserialize_with = "opt_text")]
    pub threat_time: Option<String>,
    #[serde(rename = "threatType", default, deserialize_with = "opt_enum")]
    pub threat_type: Option<ThreatType>,
    #[serde(
        rename = "threatUrl",
        alias = "threatURL",
        default,
        deserialize_with = "opt_text"
    )]
    pub threat_url: Option<String>,
    #[serde(rename = "detectionType", default, deserialize_with = "opt_text")]
    pub detection_type: Option<String>,
}

/// One element of a message's `messageParts`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MessagePart {
    #[serde(rename = "contentType", default, deserialize_with = "opt_text")]
    pub content_type: Option<String>,
    #[serde(default, deserialize_with = "opt_enum")]
    pub disposition: Option<PartDisposition>,
    #[serde(default, deserialize_with = "opt_text")]
    pub filename: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub md5: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub sha256: Option<String>,
    #[serde(rename = "sandboxStatus", default, deserialize_with = "opt_enum")]
    pub sandbox_status: Option<SandboxStatus>,
}

/// A `messagesDelivered` / `messagesBlocked` element as TAP sends it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MessageFields {
    #[serde(
        rename = "GUID",
        alias = "guid",
        default,
        deserialize_with = "opt_text"
    )]
    pub guid: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub id: Option<String>,
    #[serde(rename = "QID", alias = "qid", default, deserialize_with = "opt_text")]
    pub qid: Option<String>,
    #[serde(
        rename = "messageID",
        alias = "messageId",
        default,
        deserialize_with = "opt_text"
    )]
    pub message_id: Option<String>,
    #[serde(rename = "messageTime", default, deserialize_with = "opt_text")]
    pub message_time: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub subject: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub sender: Option<String>,
    #[serde(
        rename = "senderIP",
        alias = "senderIp",
        default,
        deserialize_with = "opt_text"
    )]
    pub sender_ip: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub xmailer: Option<String>,
    #[serde(default, deserialize_with = "text_list")]
    pub recipient: Vec<String>,
    #[serde(rename = "fromAddress", default, deserialize_with = "text_list")]
    pub from_address: Vec<String>,
    #[serde(rename = "replyToAddress", default, deserialize_with = "text_list")]
    pub reply_to_address: Vec<String>,
    #[serde(rename = "toAddresses", default, deserialize_with = "text_list")]
    pub to_addresses: Vec<String>,
    #[serde(rename = "ccAddresses", default, deserialize_with = "text_list")]
    pub cc_addresses: Vec<String>,
    #[serde(alias = "clusterId", default, deserialize_with = "opt_text")]
    pub cluster: Option<String>,
    #[serde(
        rename = "completelyRewritten",
        default,
        deserialize_with = "opt_rewritten"
    )]
    pub completely_rewritten: Option<Rewritten>,
    #[serde(rename = "spamScore", default, deserialize_with = "opt_number")]
    pub spam_score: Option<Number>,
    #[serde(rename = "phishScore", default, deserialize_with = "opt_number")]
    pub phish_score: Option<Number>,
    #[serde(rename = "malwareScore", default, deserialize_with = "opt_number")]
    pub malware_score: Option<Number>,
    #[serde(rename = "impostorScore", default, deserialize_with = "opt_number")]
    pub impostor_score: Option<Number>,
    #[serde(rename = "messageSize", default, deserialize_with = "opt_number")]
    pub message_size: Option<Number>,
    #[serde(rename = "quarantineFolder", default, deserialize_with = "opt_text")]
    pub quarantine_folder: Option<String>,
    #[serde(rename = "quarantineRule", default, deserialize_with = "opt_text")]
    pub quarantine_rule: Option<String>,
    #[serde(rename = "policyRoutes", default, deserialize_with = "text_list")]
    pub policy_routes: Vec<String>,
    #[serde(rename = "modulesRun", default, deserialize_with = "text_list")]
    pub modules_run: Vec<String>,
    #[serde(rename = "threatsInfoMap", default, deserialize_with = "lenient::list")]
    pub threats_info_map: Vec<ThreatInfo>,
    #[serde(rename = "messageParts", default, deserialize_with = "lenient::list")]
    pub message_parts: Vec<MessagePart>,
}

/// A `clicksPermitted` / `clicksBlocked` element as TAP sends it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClickFields {
    #[serde(default, deserialize_with = "opt_text")]
    pub id: Option<String>,
    #[serde(
        rename = "GUID",
        alias = "guid",
        default,
        deserialize_with = "opt_text"
    )]
    pub guid: Option<String>,
    #[serde(
        rename = "campaignId",
        alias = "campaignID",
        alias = "campaignid",
        default,
        deserialize_with = "opt_text"
    )]
    pub campaign_id: Option<String>,
    #[serde(default, deserialize_with = "opt_enum")]
    pub classification: Option<Classification>,
    #[serde(
        rename = "clickIP",
        alias = "clickIp",
        default,
        deserialize_with = "opt_text"
    )]
    pub click_ip: Option<String>,
    #[serde(rename = "clickTime", default, deserialize_with = "opt_text")]
    pub click_time: Option<String>,
    #[serde(
        rename = "messageID",
        alias = "messageId",
        default,
        deserialize_with = "opt_text"
    )]
    pub message_id: Option<String>,
    /// One address in every sample, but read like the message field.
    #[serde(default, deserialize_with = "text_list")]
    pub recipient: Vec<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub sender: Option<String>,
    #[serde(
        rename = "senderIP",
        alias = "senderIp",
        default,
        deserialize_with = "opt_text"
    )]
    pub sender_ip: Option<String>,
    #[serde(
        rename = "threatID",
        alias = "threatId",
        alias = "threatid",
        default,
        deserialize_with = "opt_text"
    )]
    pub threat_id: Option<String>,
    #[serde(rename = "threatStatus", default, deserialize_with = "opt_enum")]
    pub threat_status: Option<ThreatStatus>,
    #[serde(rename = "threatTime", default, deserialize_with = "opt_text")]
    pub threat_time: Option<String>,
    #[serde(
        rename = "threatURL",
        alias = "threatUrl",
        default,
        deserialize_with = "opt_text"
    )]
    pub threat_url: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub url: Option<String>,
    #[serde(rename = "userAgent", default, deserialize_with = "opt_text")]
    pub user_agent: Option<String>,
}

/// A message record that decoded and has what every message needs.
#[derive(Debug, Clone)]
pub struct Message {
    pub guid: String,
    pub time: OffsetDateTime,
    /// `m:<GUID>:<id or sorted recipients>`.
    pub key: String,
    /// The later of `messageTime` and the latest `threatTime`.
    pub created_ms: i64,
    pub fields: MessageFields,
}

/// A click record that decoded and has what every click needs.
#[derive(Debug, Clone)]
pub struct Click {
    pub url: String,
    pub time: OffsetDateTime,
    /// `c:<id>`, or `c:<GUID>:<threatID>:<clickTime>` without an id.
    pub key: String,
    /// What goes between the brackets of the event title: the click id, or
    /// `<GUID>:<threatID>` without one (the time is in `happened_at`).
    pub title_id: String,
    pub created_ms: i64,
    pub fields: ClickFields,
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Decodes one raw value with the path of a failing field in the error.
fn decode<T: for<'de> Deserialize<'de>>(value: &Value) -> Result<T, String> {
    if !value.is_object() {
        return Err(format!(
            "the record is {}, not a JSON object",
            lenient::json_kind(value)
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.inner().to_string()
        } else {
            format!("field `{path}`: {}", e.inner())
        }
    })
}

/// The later of an event time and the threat times; unreadable threat
/// times are ignored because the event time alone still orders the record.
fn created_ms<'a>(event: OffsetDateTime, threat_times: impl Iterator<Item = &'a str>) -> i64 {
    let latest = threat_times
        .filter_map(|t| parse_tap_time(t).ok())
        .fold(event, OffsetDateTime::max);
    unix_ms(latest)
}

/// Decodes element `index` of `array` (`messagesDelivered` or
/// `messagesBlocked`).
pub fn decode_message(array: &str, index: usize, value: &Value) -> Result<Message, Rejection> {
    let fallback_key = format!("{array}[{index}]");
    let fields: MessageFields = decode(value).map_err(|reason| Rejection {
        key: describe_raw_message(value).unwrap_or_else(|| fallback_key.clone()),
        reason,
    })?;
    let rejection_key = match (non_empty(&fields.guid), non_empty(&fields.id)) {
        (Some(guid), Some(id)) => format!("message GUID={guid} id={id}"),
        (Some(guid), None) => format!("message GUID={guid}"),
        _ => fallback_key,
    };
    let reject = |reason: String| Rejection {
        key: rejection_key.clone(),
        reason,
    };
    let guid = non_empty(&fields.guid)
        .ok_or_else(|| reject("the message has no GUID, so it cannot be identified".into()))?
        .to_string();
    let raw_time = non_empty(&fields.message_time)
        .ok_or_else(|| reject("the message has no messageTime".into()))?;
    let time = parse_tap_time(raw_time).map_err(|e| reject(format!("messageTime {e}")))?;
    let which = match non_empty(&fields.id) {
        Some(id) => id.to_string(),
        None => {
            let mut recipients: Vec<&str> = fields.recipient.iter().map(|r| r.trim()).collect();
            recipients.sort_unstable();
            recipients.join(",")
        }
    };
    let created_ms = created_ms(
        time,
        fields
            .threats_info_map
            .iter()
            .filter_map(|t| t.threat_time.as_deref()),
    );
    Ok(Message {
        key: format!("m:{guid}:{which}"),
        guid,
        time,
        created_ms,
        fields,
    })
}

/// Decodes element `index` of `array` (`clicksPermitted` or
/// `clicksBlocked`).
pub fn decode_click(array: &str, index: usize, value: &Value) -> Result<Click, Rejection> {
    let fallback_key = format!("{array}[{index}]");
    let fields: ClickFields = decode(value).map_err(|reason| Rejection {
        key: describe_raw_click(value).unwrap_or_else(|| fallback_key.clone()),
        reason,
    })?;
    let rejection_key = match (non_empty(&fields.id), non_empty(&fields.guid)) {
        (Some(id), _) => format!("click id={id}"),
        (None, Some(guid)) => format!("click GUID={guid}"),
        _ => fallback_key,
    };
    let reject = |reason: String| Rejection {
        key: rejection_key.clone(),
        reason,
    };
    let raw_time =
        non_empty(&fields.click_time).ok_or_else(|| reject("the click has no clickTime".into()))?;
    let time = parse_tap_time(raw_time).map_err(|e| reject(format!("clickTime {e}")))?;
    let url = non_empty(&fields.url)
        .ok_or_else(|| reject("the click has no url".into()))?
        .to_string();
    let (key, title_id) = match (non_empty(&fields.id), non_empty(&fields.guid)) {
        (Some(id), _) => (format!("c:{id}"), id.to_string()),
        (None, Some(guid)) => {
            let threat = non_empty(&fields.threat_id).unwrap_or("");
            (
                format!("c:{guid}:{threat}:{raw_time}"),
                format!("{guid}:{threat}"),
            )
        }
        (None, None) => {
            return Err(reject(
                "the click has neither an id nor a GUID, so it cannot be identified".into(),
            ));
        }
    };
    let created_ms = created_ms(time, fields.threat_time.as_deref().into_iter());
    Ok(Click {
        url,
        time,
        key,
        title_id,
        created_ms,
        fields,
    })
}

/// Best-effort identification of a record that failed to decode, from the
/// raw JSON, so the operator can find it in TAP.
fn describe_raw_message(value: &Value) -> Option<String> {
    let guid = raw_str(value, &["GUID", "guid"])?;
    Some(match raw_str(value, &["id"]) {
        Some(id) => format!("message GUID={guid} id={id}"),
        None => format!("message GUID={guid}"),
    })
}

fn describe_raw_click(value: &Value) -> Option<String> {
    if let Some(id) = raw_str(value, &["id"]) {
        return Some(format!("click id={id}"));
    }
    raw_str(value, &["GUID", "guid"]).map(|guid| format!("click GUID={guid}"))
}

fn raw_str<'a>(value: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| value.get(k)?.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}
