//! What the simulator holds: SIEM records indexed by creation time,
//! campaigns, forensics reports, threat summaries and the People API's
//! two lists.

use std::collections::BTreeMap;
use std::ops::Bound;

use anyhow::{Context, anyhow, bail};
use serde_json::Value;
use time::OffsetDateTime;

use crate::records::{
    Campaign, ClickEvent, ClickKind, ForensicsReport, ForensicsScope, MessageEvent, MessageKind,
    Person, ThreatStatus, ThreatType,
};
use crate::times::{format_event_time, parse_instant, unix_ms};

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

    /// Every array, in the order of [`SiemArray::key`]'s listing.
    pub const ALL: [SiemArray; 4] = [
        SiemArray::ClicksBlocked,
        SiemArray::ClicksPermitted,
        SiemArray::MessagesBlocked,
        SiemArray::MessagesDelivered,
    ];

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
    /// `threatStatus=active&threatStatus=cleared&threatStatus=falsePositive`
    /// and no `threatType`: what the connector asks for. Every record with
    /// at least one threat of a known status passes.
    pub fn all_statuses() -> ThreatFilter {
        ThreatFilter {
            types: None,
            statuses: Some(vec![
                ThreatStatus::Active,
                ThreatStatus::Cleared,
                ThreatStatus::FalsePositive,
            ]),
        }
    }

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
    /// A later copy of this record carries a newer verdict
    /// ([`Store::change_verdict`]). It is still served in its own window,
    /// but the next verdict change copies the newer one instead.
    pub superseded: bool,
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
    /// `/v2/threat/summary/{id}` answers by threat id, each a JSON object.
    threat_summaries: BTreeMap<String, Value>,
    /// Kept in serving order: attack index, highest first.
    very_attacked_people: Vec<Person>,
    /// Kept in serving order: click count, highest first.
    top_clickers: Vec<Person>,
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

    /// Records a new verdict for `threat_id`, as TAP does when an analyst
    /// or a re-scan changes a threat's status: every SIEM record carrying
    /// the threat gets a new copy in which that threat's `threatStatus` is
    /// `status` and its `threatTime` is `at`, created (and so indexed) at
    /// `at`. The earlier copies stay in their windows. A record already
    /// copied by an earlier change is not copied again; its newest copy is.
    /// Forensics reports of the threat (its own, and its entries in campaign
    /// forensics) get the new `threatStatus`. Returns how many SIEM records
    /// re-surfaced.
    pub fn change_verdict(
        &mut self,
        threat_id: &str,
        status: ThreatStatus,
        at: OffsetDateTime,
        lag_ms: i64,
    ) -> usize {
        let status_json = serde_json::to_value(status).unwrap_or(Value::Null);
        let time_json = Value::String(format_event_time(at));
        // Cheap pre-check on the stored text; ids that JSON would escape
        // are looked for the slow way.
        let plain_id = !threat_id.contains(['"', '\\']) && !threat_id.chars().any(char::is_control);
        let mut copies = Vec::new();
        for array in SiemArray::ALL {
            for record in self.siem[array.index()]
                .values_mut()
                .flatten()
                .filter(|r| !r.superseded)
            {
                if plain_id && !record.json.contains(threat_id) {
                    continue;
                }
                let Ok(mut value) = serde_json::from_str::<Value>(&record.json) else {
                    continue;
                };
                if !set_verdict(&mut value, array, threat_id, &status_json, &time_json) {
                    continue;
                }
                let Ok(json) = serde_json::to_string(&value) else {
                    continue;
                };
                record.superseded = true;
                copies.push((
                    array,
                    StoredRecord {
                        json: json.into_boxed_str(),
                        tags: raw_tags(array, &value),
                        visible_from_ms: unix_ms(at).saturating_add(lag_ms),
                        superseded: false,
                    },
                ));
            }
        }
        let resurfaced = copies.len();
        for (array, copy) in copies {
            self.insert_siem(array, at, copy);
        }
        let set_status = |report: &mut Value| {
            if let Some(fields) = report.as_object_mut() {
                fields.insert("threatStatus".to_owned(), status_json.clone());
            }
        };
        if let Some(reports) = self.threat_reports.get_mut(threat_id) {
            reports.iter_mut().for_each(set_status);
        }
        self.campaign_reports
            .values_mut()
            .flatten()
            .filter(|r| r.get("id").and_then(Value::as_str) == Some(threat_id))
            .for_each(set_status);
        // A summary names the threat's status under `status`.
        if let Some(Value::Object(fields)) = self.threat_summaries.get_mut(threat_id) {
            fields.insert("status".to_owned(), status_json.clone());
        }
        resurfaced
    }

    /// Serves `summary` (a JSON object) for `threat_id`, replacing any
    /// summary loaded for it before.
    pub fn insert_summary(&mut self, threat_id: String, summary: Value) {
        self.threat_summaries.insert(threat_id, summary);
    }

    pub fn remove_summary(&mut self, threat_id: &str) {
        self.threat_summaries.remove(threat_id);
    }

    pub fn summary(&self, threat_id: &str) -> Option<&Value> {
        self.threat_summaries.get(threat_id)
    }

    /// Replaces the Very Attacked People.
    pub fn set_very_attacked_people(&mut self, mut people: Vec<Person>) {
        sort_people(&mut people, |p| p.attack_index);
        self.very_attacked_people = people;
    }

    /// Replaces the top clickers.
    pub fn set_top_clickers(&mut self, mut people: Vec<Person>) {
        sort_people(&mut people, |p| p.click_count);
        self.top_clickers = people;
    }

    pub fn very_attacked_people(&self) -> &[Person] {
        &self.very_attacked_people
    }

    pub fn top_clickers(&self) -> &[Person] {
        &self.top_clickers
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

/// Highest `key` first; ties by guid, then addresses, so the order (and
/// so every page) does not depend on the order the people were given in.
fn sort_people(people: &mut [Person], key: impl Fn(&Person) -> u32) {
    people.sort_by(|a, b| {
        key(b)
            .cmp(&key(a))
            .then_with(|| a.guid.cmp(&b.guid))
            .then_with(|| a.emails.cmp(&b.emails))
    });
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
        superseded: false,
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
        superseded: false,
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

/// The `threatID` of a threat (a `threatsInfoMap` entry or a click),
/// in either spelling TAP uses.
fn threat_id_of(threat: &Value) -> Option<&str> {
    threat
        .get("threatID")
        .or_else(|| threat.get("threatId"))
        .and_then(Value::as_str)
}

/// The filters' view of a stored record's threats.
fn raw_tags(array: SiemArray, record: &Value) -> Vec<ThreatTag> {
    if array.is_click() {
        return vec![tag_of(record, Some(ThreatType::Url))];
    }
    match record.get("threatsInfoMap") {
        Some(Value::Array(threats)) => threats.iter().map(|t| tag_of(t, None)).collect(),
        _ => Vec::new(),
    }
}

/// Gives `threat_id` in `record` the status and verdict time given;
/// false when the record does not carry that threat.
fn set_verdict(
    record: &mut Value,
    array: SiemArray,
    threat_id: &str,
    status: &Value,
    threat_time: &Value,
) -> bool {
    let set = |threat: &mut Value| -> bool {
        if threat_id_of(threat) != Some(threat_id) {
            return false;
        }
        let Some(fields) = threat.as_object_mut() else {
            return false;
        };
        fields.insert("threatStatus".to_owned(), status.clone());
        fields.insert("threatTime".to_owned(), threat_time.clone());
        true
    };
    if array.is_click() {
        return set(record);
    }
    match record.get_mut("threatsInfoMap") {
        Some(Value::Array(threats)) => threats.iter_mut().fold(false, |any, t| set(t) | any),
        _ => false,
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
    let threat_times = if array.is_click() {
        vec![time_field(record, "threatTime")?]
    } else {
        let threats = match record.get("threatsInfoMap") {
            Some(Value::Array(threats)) => threats.as_slice(),
            None | Some(Value::Null) => &[],
            Some(other) => bail!("threatsInfoMap must be an array, found {other}"),
        };
        threats
            .iter()
            .map(|t| time_field(t, "threatTime"))
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    let tags = raw_tags(array, record);
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
            superseded: false,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::{TenantSpec, generate};
    use serde_json::json;
    use time::Duration;
    use time::macros::datetime;

    const SENT: OffsetDateTime = datetime!(2024-03-25 10:00:00 UTC);
    const DISPUTED: OffsetDateTime = datetime!(2024-03-25 15:20:00 UTC);
    const LATER: OffsetDateTime = datetime!(2024-03-26 09:00:00 UTC);

    fn threat(id: &str, status: &str) -> Value {
        json!({
            "threatID": id,
            "threat": format!("https://evil.zz/{id}"),
            "threatType": "url",
            "threatStatus": status,
            "classification": "phish",
            "threatTime": "2024-03-25T10:00:30.000Z",
        })
    }

    fn raw_message(guid: &str, threats: Vec<Value>) -> Value {
        json!({
            "GUID": guid,
            "id": format!("{guid}-1"),
            "messageTime": "2024-03-25T10:00:00.000Z",
            "threatsInfoMap": threats,
        })
    }

    fn raw_click(id: &str, threat_id: &str) -> Value {
        json!({
            "id": id,
            "GUID": "g-1",
            "clickTime": "2024-03-25T11:00:00.000Z",
            "threatID": threat_id,
            "threatStatus": "active",
            "threatTime": "2024-03-25T10:00:30.000Z",
            "url": format!("https://evil.zz/{threat_id}"),
        })
    }

    fn add_raw(store: &mut Store, array: SiemArray, record: Value, lag_ms: i64) {
        let (created, stored) = stored_raw(array, &record, lag_ms).unwrap();
        store.insert_siem(array, created, stored);
    }

    /// Records of `array` created in `[from, from + 1 min)` that `filter`
    /// lets through, parsed, as served long after.
    fn served(
        store: &Store,
        array: SiemArray,
        from: OffsetDateTime,
        filter: &ThreatFilter,
    ) -> Vec<Value> {
        let start = unix_ms(from);
        store
            .siem_window(array, start, start + 60_000, i64::MAX)
            .filter(|r| filter.matches(&r.tags))
            .map(|r| serde_json::from_str(&r.json).unwrap())
            .collect()
    }

    fn every(store: &Store, array: SiemArray, from: OffsetDateTime) -> Vec<Value> {
        served(store, array, from, &ThreatFilter::all_statuses())
    }

    #[test]
    fn a_hand_written_message_resurfaces_with_the_new_verdict_and_its_old_copy_stays() {
        let mut store = Store::default();
        add_raw(
            &mut store,
            SiemArray::MessagesDelivered,
            raw_message(
                "g-1",
                vec![threat("aaa", "active"), threat("bbb", "active")],
            ),
            0,
        );
        let resurfaced = store.change_verdict("aaa", ThreatStatus::FalsePositive, DISPUTED, 0);
        assert_eq!(resurfaced, 1);

        let original = every(&store, SiemArray::MessagesDelivered, SENT);
        assert_eq!(original.len(), 1, "TAP's history stays as it was");
        assert_eq!(original[0]["threatsInfoMap"][0]["threatStatus"], "active");

        let copy = every(&store, SiemArray::MessagesDelivered, DISPUTED);
        assert_eq!(copy.len(), 1, "the copy is indexed at the verdict's time");
        let threats = &copy[0]["threatsInfoMap"];
        assert_eq!(threats[0]["threatStatus"], "falsePositive");
        assert_eq!(threats[0]["threatTime"], format_event_time(DISPUTED));
        assert_eq!(
            threats[1]["threatStatus"], "active",
            "the other threat is untouched"
        );
        assert_eq!(threats[1]["threatTime"], "2024-03-25T10:00:30.000Z");
        assert_eq!(copy[0]["GUID"], "g-1");
        assert_eq!(copy[0]["messageTime"], "2024-03-25T10:00:00.000Z");
        // Another threat still active: TAP's default view keeps serving it.
        assert_eq!(
            served(
                &store,
                SiemArray::MessagesDelivered,
                DISPUTED,
                &ThreatFilter::default()
            )
            .len(),
            1
        );
    }

    #[test]
    fn a_message_whose_only_threat_turns_false_positive_is_served_only_when_asked_for() {
        let mut store = Store::default();
        add_raw(
            &mut store,
            SiemArray::MessagesBlocked,
            raw_message("g-2", vec![threat("aaa", "active")]),
            0,
        );
        assert_eq!(
            store.change_verdict("aaa", ThreatStatus::FalsePositive, DISPUTED, 0),
            1
        );
        let default = ThreatFilter::default();
        assert!(served(&store, SiemArray::MessagesBlocked, DISPUTED, &default).is_empty());
        let all = every(&store, SiemArray::MessagesBlocked, DISPUTED);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0]["threatsInfoMap"][0]["threatStatus"], "falsePositive");
        // Only falsePositive asked for: the copy, not the original.
        let only_fp = ThreatFilter {
            types: None,
            statuses: Some(vec![ThreatStatus::FalsePositive]),
        };
        assert_eq!(
            served(&store, SiemArray::MessagesBlocked, DISPUTED, &only_fp).len(),
            1
        );
        assert!(served(&store, SiemArray::MessagesBlocked, SENT, &only_fp).is_empty());
        assert_eq!(
            served(&store, SiemArray::MessagesBlocked, SENT, &default).len(),
            1
        );
    }

    #[test]
    fn a_hand_written_click_resurfaces_and_the_lag_applies() {
        let mut store = Store::default();
        add_raw(
            &mut store,
            SiemArray::ClicksPermitted,
            raw_click("c-1", "aaa"),
            0,
        );
        add_raw(
            &mut store,
            SiemArray::ClicksPermitted,
            raw_click("c-2", "zzz"),
            0,
        );
        let lag_ms = 20 * 60_000;
        assert_eq!(
            store.change_verdict("aaa", ThreatStatus::Cleared, DISPUTED, lag_ms),
            1
        );

        let copy = every(&store, SiemArray::ClicksPermitted, DISPUTED);
        assert_eq!(copy.len(), 1);
        assert_eq!(copy[0]["id"], "c-1");
        assert_eq!(copy[0]["threatStatus"], "cleared");
        assert_eq!(copy[0]["threatTime"], format_event_time(DISPUTED));
        assert_eq!(copy[0]["clickTime"], "2024-03-25T11:00:00.000Z");
        // Cleared threats are part of TAP's default view.
        assert_eq!(
            served(
                &store,
                SiemArray::ClicksPermitted,
                DISPUTED,
                &ThreatFilter::default()
            )
            .len(),
            1
        );

        let start = unix_ms(DISPUTED);
        let visible_at = |now: OffsetDateTime| {
            store
                .siem_window(
                    SiemArray::ClicksPermitted,
                    start,
                    start + 60_000,
                    unix_ms(now),
                )
                .count()
        };
        assert_eq!(
            visible_at(DISPUTED + Duration::minutes(19)),
            0,
            "not indexed yet"
        );
        assert_eq!(visible_at(DISPUTED + Duration::minutes(20)), 1);
    }

    #[test]
    fn a_click_turning_false_positive_is_hidden_by_default() {
        let mut store = Store::default();
        add_raw(
            &mut store,
            SiemArray::ClicksBlocked,
            raw_click("c-1", "aaa"),
            0,
        );
        assert_eq!(
            store.change_verdict("aaa", ThreatStatus::FalsePositive, DISPUTED, 0),
            1
        );
        assert!(
            served(
                &store,
                SiemArray::ClicksBlocked,
                DISPUTED,
                &ThreatFilter::default()
            )
            .is_empty()
        );
        let all = every(&store, SiemArray::ClicksBlocked, DISPUTED);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0]["threatStatus"], "falsePositive");
    }

    #[test]
    fn the_threat_id_spelling_does_not_matter_and_unknown_threats_change_nothing() {
        let mut store = Store::default();
        let mut t = threat("x", "active");
        let id = t.as_object_mut().unwrap().remove("threatID").unwrap();
        t["threatId"] = id;
        add_raw(
            &mut store,
            SiemArray::MessagesDelivered,
            raw_message("g-3", vec![t]),
            0,
        );
        assert_eq!(
            store.change_verdict("nobody", ThreatStatus::Cleared, DISPUTED, 0),
            0
        );
        assert_eq!(
            store.change_verdict("x", ThreatStatus::Cleared, DISPUTED, 0),
            1
        );
        let copy = every(&store, SiemArray::MessagesDelivered, DISPUTED);
        assert_eq!(copy[0]["threatsInfoMap"][0]["threatStatus"], "cleared");
    }

    #[test]
    fn a_second_change_copies_the_newest_copy_only() {
        let mut store = Store::default();
        add_raw(
            &mut store,
            SiemArray::MessagesDelivered,
            raw_message("g-4", vec![threat("aaa", "active")]),
            0,
        );
        add_raw(
            &mut store,
            SiemArray::ClicksPermitted,
            raw_click("c-1", "aaa"),
            0,
        );
        assert_eq!(
            store.change_verdict("aaa", ThreatStatus::Cleared, DISPUTED, 0),
            2
        );
        assert_eq!(
            store.change_verdict("aaa", ThreatStatus::FalsePositive, LATER, 0),
            2
        );
        let message_status = |v: &Value| v["threatsInfoMap"][0]["threatStatus"].clone();
        let click_status = |v: &Value| v["threatStatus"].clone();
        for (array, status) in [
            (
                SiemArray::MessagesDelivered,
                &message_status as &dyn Fn(&Value) -> Value,
            ),
            (SiemArray::ClicksPermitted, &click_status),
        ] {
            let at = |t| {
                every(&store, array, t)
                    .iter()
                    .map(status)
                    .collect::<Vec<_>>()
            };
            assert_eq!(at(DISPUTED), [json!("cleared")], "{array:?}");
            assert_eq!(at(LATER), [json!("falsePositive")], "{array:?}");
        }
        let history: usize = [SiemArray::MessagesDelivered, SiemArray::ClicksPermitted]
            .into_iter()
            .map(|a| store.siem_window(a, 0, i64::MAX, i64::MAX).count())
            .sum();
        assert_eq!(history, 6, "three versions of each record");
    }

    fn loaded(store: &mut Store, tenant: &crate::Tenant) {
        for (array, events) in [
            (SiemArray::MessagesDelivered, &tenant.messages_delivered),
            (SiemArray::MessagesBlocked, &tenant.messages_blocked),
        ] {
            for event in events {
                let (created, record) = stored_message(event, 0);
                store.insert_siem(array, created, record);
            }
        }
        for (array, events) in [
            (SiemArray::ClicksPermitted, &tenant.clicks_permitted),
            (SiemArray::ClicksBlocked, &tenant.clicks_blocked),
        ] {
            for event in events {
                let (created, record) = stored_click(event, 0);
                store.insert_siem(array, created, record);
            }
        }
        for (scope, report) in &tenant.forensics {
            store.insert_report(scope.clone(), report_json(report));
        }
    }

    #[test]
    fn generated_records_resurface_and_the_forensics_take_the_new_status() {
        let spec = TenantSpec::new(9, SENT, SENT + Duration::hours(6));
        let tenant = generate(&spec);
        let mut store = Store::default();
        loaded(&mut store, &tenant);
        let carries = |id: &str| {
            let messages = tenant
                .messages_delivered
                .iter()
                .chain(&tenant.messages_blocked)
                .filter(|m| m.threats_info_map.iter().any(|t| t.threat_id == id))
                .count();
            let clicks = tenant
                .clicks_permitted
                .iter()
                .chain(&tenant.clicks_blocked)
                .filter(|c| c.threat_id == id)
                .count();
            (messages, clicks)
        };
        // A clicked threat of a campaign, and one outside any campaign.
        let in_campaign = tenant
            .threats
            .iter()
            .find(|t| t.campaign_id.is_some() && carries(&t.id).1 > 0)
            .expect("a clicked campaign threat");
        let standalone = tenant
            .threats
            .iter()
            .find(|t| {
                t.campaign_id.is_none() && t.kind != ThreatType::MessageText && carries(&t.id).0 > 0
            })
            .expect("a standalone threat in messages");
        let at = spec.end + Duration::hours(2);

        for (n, threat) in [in_campaign, standalone].into_iter().enumerate() {
            let at = at + Duration::hours(n as i64);
            let (messages, clicks) = carries(&threat.id);
            let resurfaced = store.change_verdict(&threat.id, ThreatStatus::FalsePositive, at, 0);
            assert_eq!(resurfaced, messages + clicks, "{}", threat.id);

            let start = unix_ms(at);
            let copies: Vec<(SiemArray, Value)> = SiemArray::ALL
                .into_iter()
                .flat_map(|a| {
                    store
                        .siem_window(a, start, start + 1, i64::MAX)
                        .map(move |r| (a, serde_json::from_str(&r.json).unwrap()))
                })
                .collect();
            assert_eq!(copies.len(), resurfaced);
            for (array, copy) in &copies {
                let changed: Vec<&Value> = if array.is_click() {
                    vec![copy]
                } else {
                    copy["threatsInfoMap"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|t| t["threatID"] == threat.id.as_str())
                        .collect()
                };
                assert_eq!(changed.len(), 1);
                assert_eq!(changed[0]["threatStatus"], "falsePositive");
                assert_eq!(changed[0]["threatTime"], format_event_time(at));
            }
            assert_eq!(copies.iter().filter(|(a, _)| a.is_click()).count(), clicks);

            let reports = store.threat_reports(&threat.id);
            assert!(!reports.is_empty());
            for report in reports {
                assert_eq!(report["threatStatus"], "falsePositive");
            }
        }
        // The campaign's forensics list the threat with its new status.
        let campaign = in_campaign.campaign_id.as_deref().unwrap();
        let entry = store
            .campaign_reports(campaign)
            .unwrap()
            .iter()
            .find(|r| r["id"] == in_campaign.id.as_str())
            .unwrap();
        assert_eq!(entry["threatStatus"], "falsePositive");
        // Other threats' reports are untouched.
        let other = tenant
            .threats
            .iter()
            .find(|t| {
                t.id != in_campaign.id && t.id != standalone.id && t.kind != ThreatType::MessageText
            })
            .unwrap();
        for report in store.threat_reports(&other.id) {
            assert_eq!(
                report["threatStatus"],
                serde_json::to_value(other.status).unwrap()
            );
        }
    }
}
