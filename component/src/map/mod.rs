//! What TAP records become in ThreatQ (`docs/mapping.md`).
//!
//! One module per record kind writes into a shared [`Mapping`], which holds
//! the graph of objects plus what the kinds need to know about each other:
//! which threats are false positives, which indicator stands for which
//! threat, which objects name which campaign, and which message events a
//! click belongs to.

pub mod campaigns;
pub mod clicks;
pub mod forensics;
pub mod graph;
pub mod messages;
pub mod names;
pub mod people;
pub mod summaries;
pub mod threats;
pub mod values;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use graph::{Graph, ObjectId};

use crate::bindings::{CampaignLink, MessageLink, Relation, ThreatqObject, Verdict, VerdictStatus};

/// What a mapping hands out: the graph, and what the host needs to relate
/// it to earlier calls.
#[derive(Debug, Default)]
pub struct Mapped {
    pub objects: Vec<ThreatqObject>,
    pub relations: Vec<Relation>,
    /// Every message event, by GUID.
    pub message_events: Vec<MessageLink>,
    /// Click and incident events whose message has no event here.
    pub unresolved_messages: Vec<MessageLink>,
    /// Objects naming a campaign that has no object here.
    pub unresolved_campaigns: Vec<CampaignLink>,
    pub verdicts: Vec<Verdict>,
}

/// Everything mapped so far in one `sync` call.
#[derive(Debug, Default)]
pub struct Mapping {
    pub graph: Graph,
    /// Lower-cased threat values and ids whose status is falsePositive
    /// somewhere in this window; they never become indicators.
    false_positive_values: HashSet<String>,
    /// Campaign UUID -> campaign object, once known or fetched.
    campaign_objects: HashMap<String, ObjectId>,
    /// Objects that name a campaign id, related once the campaign is known.
    campaign_mentions: Vec<(ObjectId, String)>,
    /// Threat ID -> the indicator that stands for the threat.
    threat_indicators: HashMap<String, ObjectId>,
    /// Campaign ids named by mapped, non-false-positive threats.
    campaigns_seen: BTreeSet<String>,
    /// URL and attachment threats without a campaign: candidates for
    /// forensics by threat id.
    threats_without_campaign: BTreeSet<String>,
    /// Message GUID -> its message events (delivered and/or blocked).
    message_events: HashMap<String, Vec<ObjectId>>,
    /// SIEM threat id -> the events carrying it, for threats that became
    /// an indicator: the threats whose summary is asked for.
    threat_events: BTreeMap<String, Vec<ObjectId>>,
    /// Click (or incident) events and the GUID of the message clicked.
    click_events: Vec<(ObjectId, String)>,
    /// (indicator type, value) -> threat (its lower-cased id, empty for
    /// none) -> that threat's latest word in this call.
    verdicts: BTreeMap<(&'static str, String), BTreeMap<String, Word>>,
}

/// What TAP said of one threat, and when.
#[derive(Debug, Clone)]
struct Word {
    at_ms: i64,
    status: VerdictStatus,
    threat_id: String,
}

/// Which status speaks for an indicator when its threats disagree, or one
/// threat's records disagree at the same time: a false positive keeps a
/// value from ever being an indicator (docs/mapping.md, "Interpretations"
/// 2), and an indicator another threat still condemns is not cleared.
fn weight(status: VerdictStatus) -> u8 {
    match status {
        VerdictStatus::Cleared => 0,
        VerdictStatus::Active => 1,
        VerdictStatus::FalsePositive => 2,
    }
}

fn link(guid: &str, event: ObjectId) -> MessageLink {
    MessageLink {
        guid: guid.to_string(),
        object: u32::try_from(event.index()).unwrap_or(u32::MAX),
    }
}

impl Mapping {
    /// A mapping in which the given threat values and ids (any case) are
    /// false positives.
    pub fn new(false_positives: impl IntoIterator<Item = String>) -> Mapping {
        Mapping {
            false_positive_values: false_positives
                .into_iter()
                .map(|v| v.trim().to_lowercase())
                .filter(|v| !v.is_empty())
                .collect(),
            ..Mapping::default()
        }
    }

    /// Whether a threat value or threat id was judged a false positive.
    pub fn is_false_positive(&self, value: &str) -> bool {
        // Asked for every indicator; most windows have no false positive,
        // and then the lower-cased copy is not worth making.
        !self.false_positive_values.is_empty()
            && self
                .false_positive_values
                .contains(&value.trim().to_lowercase())
    }

    /// The indicator `(type_name, value)`, or `None` when the value is
    /// blank or a false-positive threat: a false positive never becomes an
    /// indicator, whichever field it came from.
    pub fn indicator(&mut self, type_name: &str, value: &str) -> Option<ObjectId> {
        if value.trim().is_empty() || self.is_false_positive(value) {
            return None;
        }
        Some(self.graph.indicator(type_name, value))
    }

    pub fn mention_campaign(&mut self, object: ObjectId, campaign_id: &str) {
        let id = campaign_id.trim();
        if !id.is_empty() {
            self.campaign_mentions.push((object, id.to_string()));
        }
    }

    pub fn note_campaign_seen(&mut self, campaign_id: &str) {
        let id = campaign_id.trim();
        if !id.is_empty() {
            self.campaigns_seen.insert(id.to_string());
        }
    }

    pub fn note_threat_without_campaign(&mut self, threat_id: &str) {
        let id = threat_id.trim();
        if !id.is_empty() {
            self.threats_without_campaign.insert(id.to_string());
        }
    }

    pub fn register_threat(&mut self, threat_id: &str, indicator: ObjectId) {
        let id = threat_id.trim();
        if !id.is_empty() {
            self.threat_indicators
                .entry(id.to_string())
                .or_insert(indicator);
        }
    }

    /// Notes that `event` carries the SIEM threat `threat_id`, which became
    /// an indicator.
    pub fn note_threat_event(&mut self, threat_id: &str, event: ObjectId) {
        let id = threat_id.trim();
        if id.is_empty() {
            return;
        }
        let events = self.threat_events.entry(id.to_string()).or_default();
        if !events.contains(&event) {
            events.push(event);
        }
    }

    /// The SIEM threats that became indicators, sorted by id.
    pub fn threats_with_indicator(&self) -> impl Iterator<Item = &str> {
        self.threat_events.keys().map(String::as_str)
    }

    /// The events of this call that carry `threat_id`.
    pub fn threat_events(&self, threat_id: &str) -> Vec<ObjectId> {
        self.threat_events
            .get(threat_id.trim())
            .cloned()
            .unwrap_or_default()
    }

    pub fn threat_indicator(&self, threat_id: &str) -> Option<ObjectId> {
        self.threat_indicators.get(threat_id.trim()).copied()
    }

    pub fn set_campaign_object(&mut self, campaign_id: &str, object: ObjectId) {
        self.campaign_objects
            .insert(campaign_id.trim().to_string(), object);
    }

    pub fn campaign_object(&self, campaign_id: &str) -> Option<ObjectId> {
        self.campaign_objects.get(campaign_id.trim()).copied()
    }

    /// Campaign ids named by this window's mapped threats, sorted.
    pub fn campaigns_seen(&self) -> impl Iterator<Item = &str> {
        self.campaigns_seen.iter().map(String::as_str)
    }

    /// URL/attachment threat ids without a campaign, sorted.
    pub fn threats_without_campaign(&self) -> impl Iterator<Item = &str> {
        self.threats_without_campaign.iter().map(String::as_str)
    }

    pub fn add_message_event(&mut self, guid: &str, event: ObjectId) {
        let events = self.message_events.entry(guid.to_string()).or_default();
        if !events.contains(&event) {
            events.push(event);
        }
    }

    pub fn add_click_event(&mut self, guid: Option<&str>, event: ObjectId) {
        if let Some(guid) = values::present(guid) {
            self.click_events.push((event, guid.to_string()));
        }
    }

    /// Notes that TAP judged the threat standing for indicator
    /// `(type_name, value)` `status` at `at_ms`. Each threat keeps its
    /// latest word (records of one call may carry the threat before and
    /// after a change); at the same time, the weightier status.
    pub fn note_verdict(
        &mut self,
        type_name: &'static str,
        value: String,
        status: VerdictStatus,
        threat_id: &str,
        at_ms: i64,
    ) {
        let threat_id = threat_id.trim();
        let word = Word {
            at_ms,
            status,
            threat_id: threat_id.to_string(),
        };
        let held = self
            .verdicts
            .entry((type_name, value))
            .or_default()
            .entry(threat_id.to_lowercase())
            .or_insert_with(|| word.clone());
        if (word.at_ms, weight(word.status)) > (held.at_ms, weight(held.status)) {
            *held = word;
        }
    }

    /// Resolves what could only be related at the end (clicks to their
    /// messages, mentions to campaigns) and hands out the result. A click
    /// whose message is not here is handed out as unresolved: the host may
    /// know the message from an earlier call (docs/sync.md, "Across
    /// windows and runs").
    pub fn finish(mut self) -> Mapped {
        let mut unresolved_messages = Vec::new();
        for (click, guid) in std::mem::take(&mut self.click_events) {
            match self.message_events.get(&guid) {
                Some(messages) => {
                    for message in messages {
                        self.graph.relate(click, *message);
                    }
                }
                None => unresolved_messages.push(link(&guid, click)),
            }
        }
        let mut unresolved_campaigns = Vec::new();
        for (object, campaign_id) in std::mem::take(&mut self.campaign_mentions) {
            match self.campaign_objects.get(&campaign_id) {
                Some(campaign) => self.graph.relate(object, *campaign),
                None => unresolved_campaigns.push(CampaignLink {
                    campaign_id,
                    object: u32::try_from(object.index()).unwrap_or(u32::MAX),
                }),
            }
        }
        unresolved_campaigns.sort();
        unresolved_campaigns.dedup();
        let mut message_events: Vec<MessageLink> = self
            .message_events
            .iter()
            .flat_map(|(guid, events)| events.iter().map(move |event| link(guid, *event)))
            .collect();
        message_events.sort_by_key(|l| l.object);
        let verdicts = std::mem::take(&mut self.verdicts)
            .into_iter()
            .filter_map(|((type_name, value), threats)| {
                // The weightiest of the threats' latest words speaks, at
                // the latest time the call heard of the indicator.
                let at_ms = threats.values().map(|w| w.at_ms).max()?;
                let word = threats
                    .into_values()
                    .max_by_key(|w| (weight(w.status), w.at_ms))?;
                Some(Verdict {
                    threat_id: word.threat_id,
                    status: word.status,
                    threat_time_ms: at_ms,
                    indicator_type: type_name.to_string(),
                    indicator_value: value,
                })
            })
            .collect();
        let (objects, relations) = self.graph.finish();
        Mapped {
            objects,
            relations,
            message_events,
            unresolved_messages,
            unresolved_campaigns,
            verdicts,
        }
    }
}
