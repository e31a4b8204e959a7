//! TAP's record shapes, typed, in the spelling real TAP responses use
//! (`threatID`, `campaignID`, `cluster`, address arrays, boolean
//! `completelyRewritten`; docs/tap-api.md, "Message records" through
//! "Forensics API"). The generator produces these; the simulator
//! serialises them once when they are loaded.

use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use crate::times::format_event_time;

fn tap_time<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_event_time(*t))
}

/// Which SIEM array a message record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageKind {
    Delivered,
    Blocked,
}

/// Which SIEM array a click record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClickKind {
    Permitted,
    Blocked,
}

/// Status Proofpoint gives a threat; `falsePositive` records are hidden
/// by the SIEM API unless asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ThreatStatus {
    Active,
    Cleared,
    FalsePositive,
}

/// What a threat condemns: a URL, an attachment (by SHA-256) or the
/// message text itself (impostor / TOAD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ThreatType {
    Url,
    Attachment,
    MessageText,
}

/// One element of a message's `threatsInfoMap`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThreatInfo {
    #[serde(rename = "threatID")]
    pub threat_id: String,
    #[serde(rename = "campaignID")]
    pub campaign_id: Option<String>,
    pub classification: String,
    pub threat: String,
    #[serde(rename = "threatStatus")]
    pub threat_status: ThreatStatus,
    #[serde(rename = "threatTime", serialize_with = "tap_time")]
    pub threat_time: OffsetDateTime,
    #[serde(rename = "threatType")]
    pub threat_type: ThreatType,
    #[serde(rename = "threatUrl")]
    pub threat_url: String,
    #[serde(rename = "detectionType", skip_serializing_if = "Option::is_none")]
    pub detection_type: Option<String>,
}

/// One element of a message's `messageParts`: the body (`inline`) or an
/// attached file (`attached`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePart {
    pub content_type: String,
    pub o_content_type: String,
    pub disposition: String,
    pub filename: String,
    pub md5: String,
    pub sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox_status: Option<String>,
}

/// One SIEM message record. A message sent to several recipients yields
/// one record per recipient: same `GUID`, different `recipient` and `id`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageEvent {
    #[serde(rename = "GUID")]
    pub guid: String,
    pub id: String,
    #[serde(rename = "QID")]
    pub qid: Option<String>,
    pub cc_addresses: Vec<String>,
    pub cluster: String,
    pub completely_rewritten: bool,
    pub from_address: Vec<String>,
    #[serde(rename = "headerCC")]
    pub header_cc: Option<String>,
    pub header_from: String,
    pub header_reply_to: Option<String>,
    pub header_to: String,
    pub impostor_score: f64,
    pub malware_score: u32,
    pub phish_score: u32,
    pub spam_score: u32,
    #[serde(rename = "messageID")]
    pub message_id: String,
    pub message_parts: Vec<MessagePart>,
    pub message_size: u64,
    #[serde(serialize_with = "tap_time")]
    pub message_time: OffsetDateTime,
    pub modules_run: Vec<String>,
    pub policy_routes: Vec<String>,
    pub quarantine_folder: Option<String>,
    pub quarantine_rule: Option<String>,
    pub recipient: Vec<String>,
    pub reply_to_address: Vec<String>,
    pub sender: String,
    #[serde(rename = "senderIP")]
    pub sender_ip: String,
    pub subject: Option<String>,
    pub threats_info_map: Vec<ThreatInfo>,
    pub to_addresses: Vec<String>,
    pub xmailer: Option<String>,
}

impl MessageEvent {
    /// TAP's creation time: the later of the message time and the latest
    /// threat verdict. The SIEM API selects records by it.
    pub fn created_at(&self) -> OffsetDateTime {
        self.threats_info_map
            .iter()
            .map(|t| t.threat_time)
            .fold(self.message_time, OffsetDateTime::max)
    }
}

/// One SIEM click record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClickEvent {
    #[serde(rename = "campaignId")]
    pub campaign_id: Option<String>,
    pub classification: String,
    #[serde(rename = "clickIP")]
    pub click_ip: String,
    #[serde(rename = "clickTime", serialize_with = "tap_time")]
    pub click_time: OffsetDateTime,
    #[serde(rename = "GUID")]
    pub guid: String,
    pub id: String,
    #[serde(rename = "messageID")]
    pub message_id: String,
    pub recipient: String,
    pub sender: String,
    #[serde(rename = "senderIP")]
    pub sender_ip: String,
    #[serde(rename = "threatID")]
    pub threat_id: String,
    #[serde(rename = "threatStatus")]
    pub threat_status: ThreatStatus,
    #[serde(rename = "threatTime", serialize_with = "tap_time")]
    pub threat_time: OffsetDateTime,
    #[serde(rename = "threatURL")]
    pub threat_url: String,
    pub url: String,
    #[serde(rename = "userAgent")]
    pub user_agent: String,
}

impl ClickEvent {
    /// TAP's creation time: the later of the click time and the verdict.
    pub fn created_at(&self) -> OffsetDateTime {
        self.click_time.max(self.threat_time)
    }
}

/// An `{id, name}` pair as used by campaigns for actors, malware,
/// techniques, families and brands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedRef {
    pub id: String,
    pub name: String,
}

/// One threat that belongs to a campaign.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignMember {
    pub id: String,
    pub threat: String,
    #[serde(rename = "type")]
    pub kind: ThreatType,
    pub sub_type: String,
    #[serde(serialize_with = "tap_time")]
    pub threat_time: OffsetDateTime,
    pub threat_status: ThreatStatus,
}

/// A `/v2/campaign/{id}` response.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Campaign {
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(serialize_with = "tap_time")]
    pub start_date: OffsetDateTime,
    pub notable: bool,
    pub actors: Vec<NamedRef>,
    pub malware: Vec<NamedRef>,
    pub techniques: Vec<NamedRef>,
    pub families: Vec<NamedRef>,
    pub brands: Vec<NamedRef>,
    pub campaign_members: Vec<CampaignMember>,
    /// What `/v2/campaign/ids` lists as `lastUpdatedAt`; not part of the
    /// campaign response itself.
    #[serde(skip)]
    pub last_updated_at: OffsetDateTime,
}

/// The sandbox platform a piece of evidence was seen on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    pub name: String,
    pub os: String,
    pub version: String,
}

/// One piece of forensic evidence. `what` depends on `type`
/// (docs/tap-api.md, "Forensics API"), so it stays JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    #[serde(rename = "type")]
    pub kind: String,
    pub display: String,
    pub engine: String,
    pub malicious: bool,
    /// Real TAP always sends 0 here.
    pub time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub what: serde_json::Value,
    pub platforms: Vec<Platform>,
}

/// One element of a `/v2/forensics` response's `reports`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForensicsReport {
    /// `THREAT` or `CAMPAIGN`.
    pub scope: String,
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threat_status: Option<ThreatStatus>,
    pub forensics: Vec<Evidence>,
}

/// Which forensics query answers with a report.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ForensicsScope {
    /// Returned for `/v2/forensics?threatId=<id>`.
    Threat(String),
    /// Returned for `/v2/forensics?campaignId=<id>`.
    Campaign(String),
}

/// One person of the People API (docs/tap-api.md, "People API"): a Very
/// Attacked Person of `/v2/people/vap` or a top clicker of
/// `/v2/people/top-clickers`. `attack_index` orders the first list,
/// `click_count` the second. The simulator derives what TAP sends beyond
/// these fields (`location`, the per-family split of the index or the
/// clicks) from them, so the same person always looks the same.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Person {
    pub guid: String,
    /// The person's addresses, primary first; TAP lists aliases too.
    pub emails: Vec<String>,
    pub name: String,
    pub department: String,
    pub title: String,
    pub vip: bool,
    pub attack_index: u32,
    pub click_count: u32,
}
