//! What the simulator holds: SIEM records indexed by creation time,
//! campaigns, and forensics reports.

use std::collections::BTreeMap;
use std::ops::Bound;

use anyhow::{Context, anyhow, bail};
use serde_json::Value;
use time::OffsetDateTime;

use crate::records::{
    Campaign, ClickEvent, ClickKind, ForensicsReport, ForensicsScope, MessageEvent, MessageKind,
    ThreatStatus, ThreatType,
};
use crate::times::{parse_instant, unix_ms};

/// The four SIEM arrays, in the order TAP's `/all` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SiemArray {
    ClicksBlocked,
    ClicksPermitted,
    MessagesBlocked,
    MessagesDelivered,
}

impl SiemArray {
    /// The JSON key of the array in a SIEM response.
    pub fn key(self) -> &'static str {
        match self {
            SiemArray::ClicksBlocked => "clicksBlocked",
            SiemArray::ClicksPermitted => "clicksPermitted",
            SiemArray::MessagesBlocked => "messagesBlocked",
            SiemArray::MessagesDelivered => "messagesDelivered",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    pub fn is_click(self) -> bool {
        matches!(self, SiemArray::ClicksBlocked | SiemArray::ClicksPermitted)
    }
}

impl From<MessageKind> for SiemArray {
    fn from(kind: MessageKind) -> Self {
        match kind {
            MessageKind::Delivered => SiemArray::MessagesDelivered,
            MessageKind::Blocked => SiemArray::MessagesBlocked,
        }
    }
}

impl From<ClickKind> for SiemArray {
    fn from(kind: ClickKind) -> Self {
        match kind {
            ClickKind::Permitted => SiemArray::ClicksPermitted,
            ClickKind::Blocked => SiemArray::ClicksBlocked,
        }
    }
}

/// Type and status of one threat of a record, as the filters see them.
/// `None` is a value the simulator does not recognise (e.g. `expired`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreatTag {
    pub kind: Option<ThreatType>,
    pub status: Option<ThreatStatus>,
}

/// The SIEM `threatType` / `threatStatus` filters. `None` means the
/// parameter was not given: every type, and active plus cleared threats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreatFilter {
    pub types: Option<Vec<ThreatType>>,
    pub statuses: Option<Vec<ThreatStatus>>,
}

impl ThreatFilter {
    /// A record is returned when any one of its threats passes both
    /// filters (clicks have a single threat).
    pub fn matches(&self, tags: &[ThreatTag]) -> bool {
        if tags.is_empty() {
            return self.types.is_none() && self.statuses.is_none();
        }
        tags.iter().any(|tag| {
            let type_ok = match &self.types {
                None => true,
                Some(types) => tag.kind.is_some_and(|k| types.contains(&k)),
            };
            let status_ok = match (&self.statuses, tag.status) {
                (None, Some(status)) => status != ThreatStatus::FalsePositive,
                (None, None) => false,
                (Some(statuses), status) => status.is_some_and(|s| statuses.contains(&s)),
            };
            type_ok && status_ok
        })
    }
}

/// Reads a threat type however TAP spells it (`url`, `URL`, `message`, `messageText`).
pub fn parse_threat_type(text: &str) -> Option<ThreatType> {
    match text.to_ascii_lowercase().as_str() {
        "url" => Some(ThreatType::Url),
        "attachment" => Some(ThreatType::Attachment),
        "messagetext" | "message" | "message text" => Some(ThreatType::MessageText),
        _ => None,
    }
}

/// Reads a threat status however TAP spells it (`falsePositive`, `falsepositive`, `ACTIVE`).
pub fn parse_threat_status(text: &str) -> Option<ThreatStatus> {
    match text.to_ascii_lowercase().as_str() {
        "active" => Some(ThreatStatus::Active),
        "cleared" => Some(ThreatStatus::Cleared),
        "falsepositive" => Some(ThreatStatus::FalsePositive),
        _ => None,
    }
}

/// A SIEM record ready to serve: its JSON text, written once.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    pub json: Box<str>,
    pub tags: Vec<ThreatTag>,
    /// When TAP's index makes it visible (creation time plus indexing lag), ms.
    pub visible_from_ms: i64,
}

#[derive(Debug, Clone)]
pub struct StoredCampaign {
    pub json: Box<str>,
    pub last_updated_at: OffsetDateTime,
    pub member_threat_ids: Vec<String>,
}

/// Everything a simulator serves.
#[derive(Debug, Default)]
pub struct Store {
    siem: [BTreeMap<i64, Vec<StoredRecord>>; 4],
    campaigns: BTreeMap<String, StoredCampaign>,
    threat_reports: BTreeMap<String, Vec<Value>>,
    campaign_reports: BTreeMap<String, Vec<Value>>,
}

impl Store {
    pub fn insert_siem(&mut self, array: SiemArray, created: OffsetDateTime, record: StoredRecord) {
        self.siem[array.index()]
            .entry(unix_ms(created))
            .or_default()
            .push(record);
    }

    /// Records of `array` created in `[start_ms, end_ms)` and visible at `now_ms`.
    pub fn siem_window(
        &self,
        array: SiemArray,
        start_ms: i64,
        end_ms: i64,
        now_ms: i64,
    ) -> impl Iterator<Item = &StoredRecord> {
        let range = if start_ms < end_ms {
            Some((Bound::Included(start_ms), Bound::Excluded(end_ms)))
        } else {
            None
        };
        range
            .into_iter()
            .flat_map(move |r| self.siem[array.index()].range(r))
            .flat_map(|(_, records)| records.iter())
            .filter(move |r| r.visible_from_ms <= now_ms)
    }

    pub fn insert_campaign(&mut self, id: String, campaign: StoredCampaign) {
        self.campaigns.insert(id, campaign);
    }

    pub fn campaign(&self, id: &str) -> Option<&StoredCampaign> {
        self.campaigns.get(id)
    }

    /// Campaigns last updated in `[start, end)`, most recently updated first.
    pub fn campaigns_updated_in(
        &self,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Vec<(&str, OffsetDateTime)> {
        let mut found: Vec<_> = self
            .campaigns
            .iter()
            .filter(|(_, c)| c.last_updated_at >= start && c.last_updated_at < end)
            .map(|(id, c)| (id.as_str(), c.last_updated_at))
            .collect();
        found.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        found
    }

    /// The campaign a threat belongs to, if any loaded campaign lists it.
    pub fn campaign_of_threat(&self, threat_id: &str) -> Option<&str> {
        self.campaigns
            .iter()
            .find(|(_, c)| c.member_threat_ids.iter().any(|m| m == threat_id))
            .map(|(id, _)| id.as_str())
    }

    pub fn insert_report(&mut self, scope: ForensicsScope, report: Value) {
        match scope {
            ForensicsScope::Threat(id) => self.threat_reports.entry(id).or_default().push(report),
            ForensicsScope::Campaign(id) => {
                self.campaign_reports.entry(id).or_default().push(report)
            }
        }
    }

    /// Reports answering `threatId=<id>`: those loaded for the threat, else
    /// the threat-scoped report inside its campaign's forensics.
    pub fn threat_reports(&self, threat_id: &str) -> Vec<Value> {
        if let Some(reports) = self.threat_reports.get(threat_id) {
            return reports.clone();
        }
        self.campaign_reports
            .values()
            .flatten()
            .filter(|r| {
                r.get("id").and_then(Value::as_str) == Some(threat_id)
                    && r.get("scope")
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.eq_ignore_ascii_case("THREAT"))
            })
            .cloned()
            .collect()
    }

    /// Reports answering `campaignId=<id>`.
    pub fn campaign_reports(&self, campaign_id: &str) -> Option<&Vec<Value>> {
        self.campaign_reports.get(campaign_id)
    }

    /// Only the campaign-scoped reports of a campaign, for
    /// `includeCampaignForensics=true`.
    pub fn campaign_scope_reports(&self, campaign_id: &str) -> Vec<Value> {
        self.campaign_reports
            .get(campaign_id)
            .into_iter()
            .flatten()
            .filter(|r| {
                r.get("scope")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.eq_ignore_ascii_case("CAMPAIGN"))
            })
            .cloned()
            .collect()
    }
}

/// Serialises a typed record; serde_json cannot fail on these structs
/// (string keys, finite numbers), but a failure still must not panic.
fn to_json<T: serde::Serialize>(value: &T) -> Box<str> {
    serde_json::to_string(value)
        .unwrap_or_else(|e| format!("{{\"simulatorError\":\"{e}\"}}"))
        .into_boxed_str()
}

pub fn stored_message(event: &MessageEvent, lag_ms: i64) -> (OffsetDateTime, StoredRecord) {
    let created = event.created_at();
    let tags = event
        .threats_info_map
        .iter()
        .map(|t| ThreatTag {
            kind: Some(t.threat_type),
            status: Some(t.threat_status),
        })
        .collect();
    let record = StoredRecord {
        json: to_json(event),
        tags,
        visible_from_ms: unix_ms(created).saturating_add(lag_ms),
    };
    (created, record)
}

pub fn stored_click(event: &ClickEvent, lag_ms: i64) -> (OffsetDateTime, StoredRecord) {
    let created = event.created_at();
    let record = StoredRecord {
        json: to_json(event),
        tags: vec![ThreatTag {
            kind: Some(ThreatType::Url),
            status: Some(event.threat_status),
        }],
        visible_from_ms: unix_ms(created).saturating_add(lag_ms),
    };
    (created, record)
}

pub fn stored_campaign(campaign: &Campaign) -> StoredCampaign {
    StoredCampaign {
        json: to_json(campaign),
        last_updated_at: campaign.last_updated_at,
        member_threat_ids: campaign
            .campaign_members
            .iter()
            .map(|m| m.id.clone())
            .collect(),
    }
}

pub fn report_json(report: &ForensicsReport) -> Value {
    serde_json::to_value(report).unwrap_or(Value::Null)
}

/// Reads a time field of a hand-written record.
fn time_field(record: &Value, key: &str) -> anyhow::Result<Option<OffsetDateTime>> {
    match record.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => parse_instant(text)
            .map(Some)
            .with_context(|| format!("field {key}")),
        Some(other) => bail!("field {key} must be an ISO-8601 string, found {other}"),
    }
}

fn tag_of(threat: &Value, default_kind: Option<ThreatType>) -> ThreatTag {
    ThreatTag {
        kind: threat
            .get("threatType")
            .and_then(Value::as_str)
            .and_then(parse_threat_type)
            .or(default_kind),
        status: threat
            .get("threatStatus")
            .and_then(Value::as_str)
            .and_then(parse_threat_status),
    }
}

/// Indexes a hand-written SIEM record (any spelling TAP uses). The record
/// is served exactly as given.
pub fn stored_raw(
    array: SiemArray,
    record: &Value,
    lag_ms: i64,
) -> anyhow::Result<(OffsetDateTime, StoredRecord)> {
    if !record.is_object() {
        bail!("a SIEM record must be a JSON object, found {record}");
    }
    let (time_key, what) = if array.is_click() {
        ("clickTime", "click")
    } else {
        ("messageTime", "message")
    };
    let event_time = time_field(record, time_key)?
        .ok_or_else(|| anyhow!("this {what} record has no {time_key}, so it has no place in time; add one such as \"2024-03-25T20:25:00.000Z\""))?;
    let (tags, threat_times) = if array.is_click() {
        (
            vec![tag_of(record, Some(ThreatType::Url))],
            vec![time_field(record, "threatTime")?],
        )
    } else {
        let threats = match record.get("threatsInfoMap") {
            Some(Value::Array(threats)) => threats.as_slice(),
            None | Some(Value::Null) => &[],
            Some(other) => bail!("threatsInfoMap must be an array, found {other}"),
        };
        let times = threats
            .iter()
            .map(|t| time_field(t, "threatTime"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        (threats.iter().map(|t| tag_of(t, None)).collect(), times)
    };
    let created = threat_times
        .into_iter()
        .flatten()
        .fold(event_time, OffsetDateTime::max);
    let json = serde_json::to_string(record)
        .context("the record could not be written back as JSON")?
        .into_boxed_str();
    Ok((
        created,
        StoredRecord {
            json,
            tags,
            visible_from_ms: unix_ms(created).saturating_add(lag_ms),
        },
    ))
}

/// Indexes a hand-written campaign. `/v2/campaign/ids` lists it by its
/// `lastUpdatedAt` if given, else its newest member's `threatTime`, else
/// its `startDate`.
pub fn stored_raw_campaign(campaign: &Value) -> anyhow::Result<(String, StoredCampaign)> {
    let id = campaign
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("a campaign needs a string \"id\""))?
        .to_owned();
    let members = match campaign.get("campaignMembers") {
        Some(Value::Array(members)) => members.as_slice(),
        None | Some(Value::Null) => &[],
        Some(other) => bail!("campaign {id}: campaignMembers must be an array, found {other}"),
    };
    let mut newest_member = None;
    for member in members {
        if let Some(t) =
            time_field(member, "threatTime").with_context(|| format!("campaign {id}"))?
        {
            newest_member = newest_member.max(Some(t));
        }
    }
    let last_updated_at = time_field(campaign, "lastUpdatedAt")?
        .or(newest_member)
        .or(time_field(campaign, "startDate")?)
        .ok_or_else(|| {
            anyhow!("campaign {id} has no lastUpdatedAt, member threatTime or startDate, so /v2/campaign/ids cannot place it in time")
        })?;
    let member_threat_ids = members
        .iter()
        .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let json = serde_json::to_string(campaign)
        .with_context(|| format!("campaign {id} could not be written back as JSON"))?
        .into_boxed_str();
    Ok((
        id,
        StoredCampaign {
            json,
            last_updated_at,
            member_threat_ids,
        },
    ))
}
