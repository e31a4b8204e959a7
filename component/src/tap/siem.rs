//! The SIEM API's answer (`/v2/siem/all`), read one record at a time.
//!
//! The envelope is parsed first with every array element left as raw JSON
//! text (not a `Value` tree: that costs more than the typed decode, see
//! docs/performance.md); each element is then decoded on its own, straight
//! into typed fields, so one record TAP sends in an
//! unexpected shape becomes a rejection while the rest of the window maps
//! (the lesson of OpenCTI connectors issue #4172, where one bad record
//! stopped the feed).

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use time::OffsetDateTime;

use super::lenient::{
    self, FromTap, Number, Rewritten, enum_key, opt_enum, opt_number, opt_rewritten, opt_text,
    text_list,
};
use crate::bindings::Rejection;
use crate::dates::{parse_tap_time, unix_ms};

/// The four arrays of `/v2/siem/all`, each optional, plus `queryEndTime`.
#[derive(Debug, Default, Deserialize)]
pub struct SiemEnvelope {
    #[serde(rename = "queryEndTime", default)]
    pub query_end_time: Option<Value>,
    #[serde(rename = "messagesDelivered", default)]
    pub messages_delivered: Option<Vec<Box<RawValue>>>,
    #[serde(rename = "messagesBlocked", default)]
    pub messages_blocked: Option<Vec<Box<RawValue>>>,
    #[serde(rename = "clicksPermitted", default)]
    pub clicks_permitted: Option<Vec<Box<RawValue>>>,
    #[serde(rename = "clicksBlocked", default)]
    pub clicks_blocked: Option<Vec<Box<RawValue>>>,
}

/// The four record arrays of `/v2/siem/all`, in the order `sync` reads
/// them. `name` is the array's JSON name, which is also a rejection's
/// `section`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    MessagesDelivered,
    MessagesBlocked,
    ClicksPermitted,
    ClicksBlocked,
}

impl Section {
    pub const ALL: [Section; 4] = [
        Section::MessagesDelivered,
        Section::MessagesBlocked,
        Section::ClicksPermitted,
        Section::ClicksBlocked,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Section::MessagesDelivered => "messagesDelivered",
            Section::MessagesBlocked => "messagesBlocked",
            Section::ClicksPermitted => "clicksPermitted",
            Section::ClicksBlocked => "clicksBlocked",
        }
    }

    /// The section of a JSON array name, exactly as `name` spells it.
    pub fn from_name(name: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Parses a 200 body. Always read as UTF-8, replacing invalid bytes, since
/// TAP has sent subjects in other encodings (docs/tap-api.md, "Response
/// envelope and empty windows") and one odd subject must not fail the
/// window. A body of only whitespace is an empty window, like a 204. The
/// error gives serde's line and column.
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
    /// `m:<GUID>:<id or sorted recipients>`, then `|<verdicts>` when a
    /// threat is not active (see [`verdict_suffix`]).
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
    /// `c:<id>`, or `c:<GUID>:<threatID>:<clickTime>` without an id; then
    /// `|<verdict>` when the threat is not active (see [`verdict_suffix`]).
    pub key: String,
    /// What goes between the brackets of the event title: the click id, or
    /// `<GUID>:<threatID>` without one (the time is in `happened_at`).
    pub title_id: String,
    pub created_ms: i64,
    pub fields: ClickFields,
}

/// `|cleared,falsePositive`: the sorted statuses other than `active` of a
/// record's threats, or nothing when all are active (the keys of earlier
/// versions, so records already sent stay skipped). TAP serves a record
/// again, at its new threat time, when it changes a verdict; the suffix
/// makes that copy a record of its own instead of one "already sent"
/// (docs/mapping.md, "Verdict changes").
fn verdict_suffix<'a>(statuses: impl Iterator<Item = Option<&'a ThreatStatus>>) -> String {
    let mut later: Vec<&str> = statuses
        .flatten()
        .filter(|status| **status != ThreatStatus::Active)
        .map(ThreatStatus::as_str)
        .collect();
    later.sort_unstable();
    later.dedup();
    if later.is_empty() {
        String::new()
    } else {
        format!("|{}", later.join(","))
    }
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Decodes one record's JSON text with the path of a failing field in the
/// error. Text after the record (possible only in `map-records` input) is
/// an error too.
fn decode<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, String> {
    if !text.trim_start().starts_with('{') {
        let kind = serde_json::from_str::<Value>(text)
            .map_or("not JSON", |value| lenient::json_kind(&value));
        return Err(format!("the record is {kind}, not a JSON object"));
    }
    // Nearly every record decodes, and for those tracking the path of
    // each field is wasted work: the path is found again, by a second
    // decode, only for a record that failed.
    let mut deserializer = serde_json::Deserializer::from_str(text);
    if let Ok(value) = T::deserialize(&mut deserializer)
        && deserializer.end().is_ok()
    {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.inner().to_string()
        } else {
            format!("field `{path}`: {}", e.inner())
        }
    })?;
    deserializer.end().map_err(|e| e.to_string())?;
    Ok(value)
}

/// The raw record as a `Value`, only to name a record that failed to decode.
fn as_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// The later of an event time and the threat times; unreadable threat
/// times are ignored because the event time alone still orders the record.
fn created_ms<'a>(event: OffsetDateTime, threat_times: impl Iterator<Item = &'a str>) -> i64 {
    let latest = threat_times
        .filter_map(|t| parse_tap_time(t).ok())
        .fold(event, OffsetDateTime::max);
    unix_ms(latest)
}

/// A rejection of the record `text` of `array`.
fn rejection(array: &str, text: &str, key: String, reason: String) -> Rejection {
    Rejection {
        key,
        reason,
        section: array.to_string(),
        raw: text.to_string(),
    }
}

/// Decodes element `index` of `array` (`messagesDelivered` or
/// `messagesBlocked`).
pub fn decode_message(array: &str, index: usize, raw: &RawValue) -> Result<Message, Rejection> {
    decode_message_text(array, index, raw.get())
}

/// `decode_message` of a record's JSON text; a rejection carries `text` as
/// its `raw`, unchanged.
pub fn decode_message_text(array: &str, index: usize, text: &str) -> Result<Message, Rejection> {
    let fallback_key = format!("{array}[{index}]");
    let fields: MessageFields = decode(text).map_err(|reason| {
        let key = describe_raw_message(&as_value(text)).unwrap_or_else(|| fallback_key.clone());
        rejection(array, text, key, reason)
    })?;
    let rejection_key = match (non_empty(&fields.guid), non_empty(&fields.id)) {
        (Some(guid), Some(id)) => format!("message GUID={guid} id={id}"),
        (Some(guid), None) => format!("message GUID={guid}"),
        _ => fallback_key,
    };
    let reject = |reason: String| rejection(array, text, rejection_key.clone(), reason);
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
    let verdicts = verdict_suffix(
        fields
            .threats_info_map
            .iter()
            .map(|t| t.threat_status.as_ref()),
    );
    Ok(Message {
        key: format!("m:{guid}:{which}{verdicts}"),
        guid,
        time,
        created_ms,
        fields,
    })
}

/// Decodes element `index` of `array` (`clicksPermitted` or
/// `clicksBlocked`).
pub fn decode_click(array: &str, index: usize, raw: &RawValue) -> Result<Click, Rejection> {
    decode_click_text(array, index, raw.get())
}

/// `decode_click` of a record's JSON text; a rejection carries `text` as
/// its `raw`, unchanged.
pub fn decode_click_text(array: &str, index: usize, text: &str) -> Result<Click, Rejection> {
    let fallback_key = format!("{array}[{index}]");
    let fields: ClickFields = decode(text).map_err(|reason| {
        let key = describe_raw_click(&as_value(text)).unwrap_or_else(|| fallback_key.clone());
        rejection(array, text, key, reason)
    })?;
    let rejection_key = match (non_empty(&fields.id), non_empty(&fields.guid)) {
        (Some(id), _) => format!("click id={id}"),
        (None, Some(guid)) => format!("click GUID={guid}"),
        _ => fallback_key,
    };
    let reject = |reason: String| rejection(array, text, rejection_key.clone(), reason);
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
    let key = key + &verdict_suffix(std::iter::once(fields.threat_status.as_ref()));
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

#[cfg(test)]
mod tests {
    //! One test per spelling drift TAP has shown (docs/tap-api.md, "Message
    //! records", "Click records" and "Spelling drift we tolerate"); each
    //! fails without the lenient reader it names.

    use super::*;
    use serde_json::json;

    fn raw(value: &Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(value).expect("serialises")
    }

    fn message(extra: Value) -> Message {
        let mut base = json!({"GUID": "g1", "id": "i1", "messageTime": "2026-11-28T10:00:00.000Z"});
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        decode_message("messagesDelivered", 0, &raw(&base)).expect("decodes")
    }

    fn click(extra: Value) -> Click {
        let mut base =
            json!({"id": "c1", "clickTime": "2026-11-28T10:00:00Z", "url": "http://x.zz/"});
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        decode_click("clicksPermitted", 0, &raw(&base)).expect("decodes")
    }

    fn threat(t: Value) -> ThreatInfo {
        message(json!({ "threatsInfoMap": [t] }))
            .fields
            .threats_info_map[0]
            .clone()
    }

    #[test]
    fn threat_id_is_read_as_threat_id_or_threat_id_lower_d() {
        assert_eq!(
            threat(json!({"threatID": "A"})).threat_id.as_deref(),
            Some("A")
        );
        assert_eq!(
            threat(json!({"threatId": "B"})).threat_id.as_deref(),
            Some("B")
        );
        assert_eq!(
            click(json!({"threatId": "C"})).fields.threat_id.as_deref(),
            Some("C")
        );
    }

    #[test]
    fn campaign_id_is_read_as_campaign_id_in_either_case() {
        assert_eq!(
            threat(json!({"campaignID": "A"})).campaign_id.as_deref(),
            Some("A")
        );
        assert_eq!(
            threat(json!({"campaignId": "B"})).campaign_id.as_deref(),
            Some("B")
        );
        assert_eq!(
            click(json!({"campaignID": "C"}))
                .fields
                .campaign_id
                .as_deref(),
            Some("C")
        );
        assert_eq!(
            click(json!({"campaignId": "D"}))
                .fields
                .campaign_id
                .as_deref(),
            Some("D")
        );
    }

    #[test]
    fn threat_link_is_read_as_threat_url_or_threat_url_upper() {
        assert_eq!(
            threat(json!({"threatUrl": "a"})).threat_url.as_deref(),
            Some("a")
        );
        assert_eq!(
            threat(json!({"threatURL": "b"})).threat_url.as_deref(),
            Some("b")
        );
        assert_eq!(
            click(json!({"threatURL": "c"}))
                .fields
                .threat_url
                .as_deref(),
            Some("c")
        );
        assert_eq!(
            click(json!({"threatUrl": "d"}))
                .fields
                .threat_url
                .as_deref(),
            Some("d")
        );
    }

    #[test]
    fn cluster_is_read_as_cluster_or_cluster_id() {
        assert_eq!(
            message(json!({"cluster": "a"})).fields.cluster.as_deref(),
            Some("a")
        );
        assert_eq!(
            message(json!({"clusterId": "b"})).fields.cluster.as_deref(),
            Some("b")
        );
    }

    #[test]
    fn address_lists_are_read_as_a_string_or_an_array() {
        for field in [
            "fromAddress",
            "recipient",
            "replyToAddress",
            "toAddresses",
            "ccAddresses",
        ] {
            let single = message(json!({ field: "a@x.zz" })).fields;
            let many = message(json!({ field: ["a@x.zz", null, "", "b@x.zz"] })).fields;
            let none = message(json!({ field: null })).fields;
            let pick = |f: &MessageFields| -> Vec<String> {
                match field {
                    "fromAddress" => f.from_address.clone(),
                    "recipient" => f.recipient.clone(),
                    "replyToAddress" => f.reply_to_address.clone(),
                    "toAddresses" => f.to_addresses.clone(),
                    _ => f.cc_addresses.clone(),
                }
            };
            assert_eq!(pick(&single), ["a@x.zz"], "{field}");
            assert_eq!(pick(&many), ["a@x.zz", "b@x.zz"], "{field}");
            assert!(pick(&none).is_empty(), "{field}");
        }
        assert_eq!(
            click(json!({"recipient": ["a@x.zz"]})).fields.recipient,
            ["a@x.zz"]
        );
    }

    #[test]
    fn completely_rewritten_is_read_as_a_boolean_or_true_false_na_strings() {
        let read = |v: Value| {
            message(json!({ "completelyRewritten": v }))
                .fields
                .completely_rewritten
        };
        assert_eq!(read(json!(true)), Some(Rewritten::Yes));
        assert_eq!(read(json!(false)), Some(Rewritten::No));
        assert_eq!(read(json!("true")), Some(Rewritten::Yes));
        assert_eq!(read(json!("FALSE")), Some(Rewritten::No));
        assert_eq!(read(json!("na")), Some(Rewritten::NotApplicable));
        assert_eq!(read(json!(null)), None);
    }

    #[test]
    fn enum_values_are_read_in_any_case() {
        let t = threat(
            json!({"classification": "MALWARE", "threatType": "URL", "threatStatus": "ACTIVE"}),
        );
        assert_eq!(t.classification, Some(Classification::Malware));
        assert_eq!(t.threat_type, Some(ThreatType::Url));
        assert_eq!(t.threat_status, Some(ThreatStatus::Active));
        let t = threat(json!({"classification": "Toad", "threatType": "ATTACHMENT"}));
        assert_eq!(t.classification, Some(Classification::Toad));
        assert_eq!(t.threat_type, Some(ThreatType::Attachment));
        assert_eq!(
            threat(json!({"threatType": "messageText"})).threat_type,
            Some(ThreatType::MessageText)
        );
        assert_eq!(
            click(json!({"classification": "Phish"}))
                .fields
                .classification,
            Some(Classification::Phish)
        );
    }

    #[test]
    fn false_positive_status_is_read_in_every_spelling() {
        for spelling in [
            "falsePositive",
            "falsepositive",
            "FALSEPOSITIVE",
            "false_positive",
        ] {
            assert_eq!(
                threat(json!({ "threatStatus": spelling })).threat_status,
                Some(ThreatStatus::FalsePositive),
                "{spelling}"
            );
        }
        assert_eq!(
            click(json!({"threatStatus": "falsepositive"}))
                .fields
                .threat_status,
            Some(ThreatStatus::FalsePositive)
        );
    }

    #[test]
    fn sandbox_status_and_disposition_are_read_in_any_case() {
        let parts = message(json!({"messageParts": [
            {"sandboxStatus": "NOT_SUPPORTED", "disposition": "ATTACHED"},
            {"sandboxStatus": "CLEAN", "disposition": "Inline"},
            {"sandboxStatus": "brand-new-status"}
        ]}))
        .fields
        .message_parts;
        assert_eq!(parts[0].sandbox_status, Some(SandboxStatus::Unsupported));
        assert_eq!(parts[0].disposition, Some(PartDisposition::Attached));
        assert_eq!(parts[1].sandbox_status, Some(SandboxStatus::Clean));
        assert_eq!(parts[1].disposition, Some(PartDisposition::Inline));
        assert_eq!(
            parts[2].sandbox_status,
            Some(SandboxStatus::Other("brand-new-status".into()))
        );
    }

    #[test]
    fn null_is_accepted_for_every_optional_field() {
        let m = message(json!({
            "QID": null, "messageID": null, "subject": null, "sender": null, "senderIP": null,
            "xmailer": null, "cluster": null, "spamScore": null, "messageSize": null,
            "quarantineFolder": null, "quarantineRule": null, "policyRoutes": null, "modulesRun": null,
            "threatsInfoMap": [{"threatID": null, "campaignID": null, "classification": null,
                "threat": null, "threatStatus": null, "threatTime": null, "threatType": null, "threatUrl": null}],
            "messageParts": null, "completelyRewritten": null, "headerReplyTo": null
        }));
        assert!(m.fields.threats_info_map[0].threat_id.is_none());
        assert!(m.fields.message_parts.is_empty());
        let c = click(
            json!({"campaignId": null, "clickIP": null, "userAgent": null, "threatTime": null, "GUID": null}),
        );
        assert!(c.fields.campaign_id.is_none());
    }

    #[test]
    fn scores_and_size_are_read_as_numbers_or_numeric_strings() {
        let f = message(json!({"spamScore": "4", "phishScore": 46, "impostorScore": "0.5", "messageSize": "5295", "malwareScore": ""})).fields;
        assert_eq!(f.spam_score.map(|n| n.to_string()).as_deref(), Some("4"));
        assert_eq!(f.phish_score.map(|n| n.to_string()).as_deref(), Some("46"));
        assert_eq!(
            f.impostor_score.map(|n| n.to_string()).as_deref(),
            Some("0.5")
        );
        assert_eq!(
            f.message_size.map(|n| n.to_string()).as_deref(),
            Some("5295")
        );
        assert_eq!(f.malware_score, None);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let m = message(json!({"brandNewField": {"nested": [1, 2]}, "headerFrom": "x"}));
        assert_eq!(m.guid, "g1");
    }

    #[test]
    fn a_score_that_is_not_a_number_rejects_the_record_naming_the_field() {
        let value =
            json!({"GUID": "g1", "messageTime": "2026-11-28T10:00:00Z", "spamScore": "high"});
        let rejection = decode_message("messagesDelivered", 0, &raw(&value)).unwrap_err();
        assert_eq!(rejection.key, "message GUID=g1");
        assert!(
            rejection.reason.contains("spamScore"),
            "{}",
            rejection.reason
        );
    }

    #[test]
    fn a_record_without_guid_or_time_is_rejected_with_the_reason() {
        let no_guid = decode_message(
            "messagesBlocked",
            3,
            &raw(&json!({"messageTime": "2026-11-28T10:00:00Z"})),
        )
        .unwrap_err();
        assert_eq!(no_guid.key, "messagesBlocked[3]");
        assert!(no_guid.reason.contains("GUID"));
        let bad_time = decode_message(
            "messagesBlocked",
            0,
            &raw(&json!({"GUID": "g", "messageTime": "12/01/2026"})),
        )
        .unwrap_err();
        assert!(bad_time.reason.contains("messageTime"));
        let no_id = decode_click(
            "clicksBlocked",
            1,
            &raw(&json!({"clickTime": "2026-11-28T10:00:00Z", "url": "http://x/"})),
        )
        .unwrap_err();
        assert_eq!(no_id.key, "clicksBlocked[1]");
    }
}
