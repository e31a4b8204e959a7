//! A deterministic, realistic TAP tenant: messages (with per-recipient
//! copies, late verdicts and false positives), clicks on their URLs,
//! campaigns, forensics with every evidence type, a threat summary per
//! threat, and the People API's lists. Same spec, same tenant, byte for
//! byte.

mod clicks;
mod dice;
mod evidence;
mod messages;
mod people;
mod summaries;
mod threats;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use time::{Duration, OffsetDateTime};

use crate::records::{
    Campaign, ClickEvent, ClickKind, ForensicsReport, ForensicsScope, MessageEvent, MessageKind,
    Person, ThreatType,
};
use crate::store::{ThreatFilter, ThreatTag};
use dice::Dice;

pub use evidence::EVIDENCE_TYPES;
pub use threats::Threat;

/// What to generate. Build one with [`TenantSpec::new`] or
/// [`TenantSpec::last_hours`] and adjust the fields.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantSpec {
    pub seed: u64,
    /// Records are created in `[start, end)`.
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    /// Distinct messages (GUIDs) per hour; each yields one record per recipient.
    pub messages_per_hour: u32,
    /// Click records per hour.
    pub clicks_per_hour: u32,
    pub campaigns: u32,
    /// Threats outside any campaign (URL, attachment and message-text).
    pub threats_without_campaign: u32,
    /// Recipients per message, 1 to this many.
    pub max_recipients: u32,
    /// Share of messages blocked rather than delivered.
    pub blocked_message_fraction: f64,
    /// Share of clicks blocked rather than permitted.
    pub blocked_click_fraction: f64,
    /// Share of messages (and permitted clicks) whose verdict comes after
    /// the event, which moves them to a later window.
    pub late_fraction: f64,
    /// Share of threats marked `falsePositive`.
    pub false_positive_fraction: f64,
}

impl TenantSpec {
    /// A modest tenant covering `[start, end)`.
    pub fn new(seed: u64, start: OffsetDateTime, end: OffsetDateTime) -> TenantSpec {
        TenantSpec {
            seed,
            start,
            end,
            messages_per_hour: 30,
            clicks_per_hour: 10,
            campaigns: 4,
            threats_without_campaign: 12,
            max_recipients: 4,
            blocked_message_fraction: 0.25,
            blocked_click_fraction: 0.3,
            late_fraction: 0.1,
            false_positive_fraction: 0.08,
        }
    }

    /// A tenant covering the last `hours` hours, kept five minutes away
    /// from both ends of `[now - hours, now)`, so a run with that much
    /// history and TAP's rounding or a small safety margin sees all of it.
    pub fn last_hours(hours: u32) -> TenantSpec {
        let now = OffsetDateTime::now_utc();
        let minute_floor = |t: OffsetDateTime| {
            t.replace_second(0)
                .and_then(|t| t.replace_nanosecond(0))
                .unwrap_or(t)
        };
        let end = minute_floor(now) - Duration::minutes(5);
        let start = minute_floor(now - Duration::hours(i64::from(hours))) + Duration::minutes(5);
        TenantSpec::new(0x7A9_5EED, start, end.max(start))
    }
}

impl Default for TenantSpec {
    /// The last 24 hours (see [`TenantSpec::last_hours`]).
    fn default() -> Self {
        TenantSpec::last_hours(24)
    }
}

/// A generated tenant, ready for [`crate::TapSim::load_tenant`].
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub spec: TenantSpec,
    /// The TAP organisation id used in threat links.
    pub org_id: String,
    pub messages_delivered: Vec<MessageEvent>,
    pub messages_blocked: Vec<MessageEvent>,
    pub clicks_permitted: Vec<ClickEvent>,
    pub clicks_blocked: Vec<ClickEvent>,
    pub campaigns: Vec<Campaign>,
    /// Every threat, campaign members first.
    pub threats: Vec<Threat>,
    pub forensics: Vec<(ForensicsScope, ForensicsReport)>,
    /// `(threat id, /v2/threat/summary answer)`, one for every threat, in
    /// the order of `threats`.
    pub threat_summaries: Vec<(String, serde_json::Value)>,
    /// The three recipients who received the most messages, most attacked
    /// first (`/v2/people/vap`).
    pub very_attacked_people: Vec<Person>,
    /// The two recipients with the most permitted clicks, most clicks
    /// first (`/v2/people/top-clickers`).
    pub top_clickers: Vec<Person>,
}

/// Counts of SIEM records by array.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SiemCounts {
    pub messages_delivered: usize,
    pub messages_blocked: usize,
    /// Distinct GUIDs among the message records above.
    pub distinct_message_guids: usize,
    pub clicks_permitted: usize,
    pub clicks_blocked: usize,
}

/// Malicious and benign pieces of evidence of one type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvidenceCount {
    pub malicious: usize,
    pub benign: usize,
}

/// What a tenant holds, to compare with what reached ThreatQ.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantSummary {
    /// Every record generated.
    pub all: SiemCounts,
    /// What the SIEM API returns when asked for
    /// `threatStatus=active&threatStatus=cleared&threatStatus=falsePositive`,
    /// as the connector does: records with at least one threat of a known
    /// status. For a generated tenant that is every record.
    pub visible: SiemCounts,
    /// What the SIEM API returns without `threatStatus` (TAP's default):
    /// records with at least one threat that is not `falsePositive`.
    pub visible_without_false_positives: SiemCounts,
    pub campaigns: usize,
    /// Distinct threat ids referenced by SIEM records.
    pub threats: usize,
    pub false_positive_threats: usize,
    /// Records whose creation time is later than their event time.
    pub late_verdict_records: usize,
    pub forensics_reports: usize,
    pub evidence: BTreeMap<String, EvidenceCount>,
    pub threat_summaries: usize,
    pub very_attacked_people: usize,
    pub top_clickers: usize,
}

impl std::fmt::Display for TenantSummary {
    /// One line for people: what was generated, then what TAP shows
    /// asked for every status and by default.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (all, visible, default) =
            (self.all, self.visible, self.visible_without_false_positives);
        let evidence: usize = self.evidence.values().map(|c| c.malicious + c.benign).sum();
        write!(
            f,
            "{} messages as {} records ({} delivered, {} blocked), {} clicks ({} permitted, {} blocked), \
             {} campaigns, {} threats ({} false positive), {} late verdicts, {} forensics reports \
             with {evidence} pieces of evidence; asked for every status TAP shows {} messages and {} clicks, \
             by default (falsePositive hidden) {} messages and {} clicks; \
             {} threat summaries, {} very attacked people, {} top clickers",
            all.distinct_message_guids,
            all.messages_delivered + all.messages_blocked,
            all.messages_delivered,
            all.messages_blocked,
            all.clicks_permitted + all.clicks_blocked,
            all.clicks_permitted,
            all.clicks_blocked,
            self.campaigns,
            self.threats,
            self.false_positive_threats,
            self.late_verdict_records,
            self.forensics_reports,
            visible.distinct_message_guids,
            visible.clicks_permitted + visible.clicks_blocked,
            default.distinct_message_guids,
            default.clicks_permitted + default.clicks_blocked,
            self.threat_summaries,
            self.very_attacked_people,
            self.top_clickers,
        )
    }
}

impl Tenant {
    pub fn summary(&self) -> TenantSummary {
        let message_tags = |m: &MessageEvent| -> Vec<ThreatTag> {
            m.threats_info_map
                .iter()
                .map(|t| ThreatTag {
                    kind: Some(t.threat_type),
                    status: Some(t.threat_status),
                })
                .collect()
        };
        let click_tags = |c: &ClickEvent| {
            vec![ThreatTag {
                kind: Some(ThreatType::Url),
                status: Some(c.threat_status),
            }]
        };
        let count = |filter: Option<&ThreatFilter>| {
            let keep = |m: &&MessageEvent| filter.is_none_or(|f| f.matches(&message_tags(m)));
            let delivered: Vec<&MessageEvent> =
                self.messages_delivered.iter().filter(keep).collect();
            let blocked: Vec<&MessageEvent> = self.messages_blocked.iter().filter(keep).collect();
            let guids: BTreeSet<&str> = delivered
                .iter()
                .chain(&blocked)
                .map(|m| m.guid.as_str())
                .collect();
            let clicks = |list: &[ClickEvent]| {
                list.iter()
                    .filter(|c| filter.is_none_or(|f| f.matches(&click_tags(c))))
                    .count()
            };
            SiemCounts {
                messages_delivered: delivered.len(),
                messages_blocked: blocked.len(),
                distinct_message_guids: guids.len(),
                clicks_permitted: clicks(&self.clicks_permitted),
                clicks_blocked: clicks(&self.clicks_blocked),
            }
        };
        let all_messages = || self.messages_delivered.iter().chain(&self.messages_blocked);
        let all_clicks = || self.clicks_permitted.iter().chain(&self.clicks_blocked);
        let threats: BTreeSet<&str> = all_messages()
            .flat_map(|m| m.threats_info_map.iter().map(|t| t.threat_id.as_str()))
            .chain(all_clicks().map(|c| c.threat_id.as_str()))
            .collect();
        let late_verdict_records = all_messages()
            .filter(|m| m.created_at() > m.message_time)
            .count()
            + all_clicks()
                .filter(|c| c.created_at() > c.click_time)
                .count();
        let mut evidence: BTreeMap<String, EvidenceCount> = BTreeMap::new();
        for (_, report) in &self.forensics {
            for e in &report.forensics {
                let entry = evidence.entry(e.kind.clone()).or_default();
                if e.malicious {
                    entry.malicious += 1;
                } else {
                    entry.benign += 1;
                }
            }
        }
        TenantSummary {
            all: count(None),
            visible: count(Some(&ThreatFilter::all_statuses())),
            visible_without_false_positives: count(Some(&ThreatFilter::default())),
            campaigns: self.campaigns.len(),
            threats: threats.len(),
            false_positive_threats: self
                .threats
                .iter()
                .filter(|t| t.status == crate::records::ThreatStatus::FalsePositive)
                .count(),
            late_verdict_records,
            forensics_reports: self.forensics.len(),
            evidence,
            threat_summaries: self.threat_summaries.len(),
            very_attacked_people: self.very_attacked_people.len(),
            top_clickers: self.top_clickers.len(),
        }
    }

    /// Clicks (permitted and blocked) whose `clickTime` is at least `gap`
    /// after their message's `messageTime`: clicks a connector sees in a
    /// later window, or a later run, than the message they belong to.
    /// Clicks whose GUID matches no generated message are not counted.
    pub fn clicks_after_their_message(&self, gap: Duration) -> usize {
        let sent: HashMap<&str, OffsetDateTime> = self
            .messages_delivered
            .iter()
            .chain(&self.messages_blocked)
            .map(|m| (m.guid.as_str(), m.message_time))
            .collect();
        self.clicks_permitted
            .iter()
            .chain(&self.clicks_blocked)
            .filter(|c| {
                sent.get(c.guid.as_str())
                    .is_some_and(|&at| c.click_time - at >= gap)
            })
            .count()
    }
}

/// How many threats a message carries: mostly one.
fn threats_per_message(dice: &mut Dice) -> usize {
    if dice.chance(0.7) {
        1
    } else if dice.chance(0.85) {
        2
    } else {
        3
    }
}

/// Hour-long slots covering `[start, end)`, the last one possibly shorter,
/// with the share of a full hour each covers.
fn hour_slots(
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> Vec<(OffsetDateTime, OffsetDateTime, f64)> {
    let mut slots = Vec::new();
    let mut from = start;
    while from < end {
        let to = (from + Duration::HOUR).min(end);
        slots.push((from, to, (to - from).as_seconds_f64() / 3600.0));
        from = to;
    }
    slots
}

fn per_slot(rate: u32, share: f64) -> u32 {
    (f64::from(rate) * share).round() as u32
}

/// Builds the tenant `spec` describes.
pub fn generate(spec: &TenantSpec) -> Tenant {
    let mut dice = Dice::new(spec.seed);
    let (start, end) = (spec.start, spec.end.max(spec.start));
    let org_id = dice.uuid();
    let threat_params = threats::ThreatParams {
        start,
        end,
        false_positive_fraction: spec.false_positive_fraction,
    };

    let mut campaigns = Vec::new();
    let mut threats = Vec::new();
    for _ in 0..spec.campaigns {
        let (campaign, members) = threats::campaign(&mut dice, &threat_params);
        campaigns.push(campaign);
        threats.extend(members);
    }
    let campaign_threats = threats.len();
    // Messages need at least one threat to carry.
    let standalone = spec
        .threats_without_campaign
        .max(u32::from(threats.is_empty()));
    use threats::ThreatShape;
    const STANDALONE_SHAPES: [ThreatShape; 6] = [
        ThreatShape::Url,
        ThreatShape::Attachment,
        ThreatShape::ImpostorAddress,
        ThreatShape::Url,
        ThreatShape::Attachment,
        ThreatShape::CallbackText,
    ];
    for i in 0..standalone as usize {
        let shape = STANDALONE_SHAPES[i % STANDALONE_SHAPES.len()];
        threats.push(threats::threat(&mut dice, shape, &threat_params));
    }

    let message_params = messages::MessageParams {
        end,
        org_id: &org_id,
        max_recipients: spec.max_recipients,
        blocked_fraction: spec.blocked_message_fraction,
        late_fraction: spec.late_fraction,
    };
    let mut messages_delivered = Vec::new();
    let mut messages_blocked = Vec::new();
    // Delivered messages with a URL threat, as (time, first copy, copies).
    let mut clickable: Vec<(OffsetDateTime, usize, usize)> = Vec::new();
    let slots = hour_slots(start, end);
    for &(from, to, share) in &slots {
        for _ in 0..per_slot(spec.messages_per_hour, share) {
            let at = dice.instant(from, to);
            let n = threats_per_message(&mut dice);
            let chosen_indices = dice.pick_distinct(&(0..threats.len()).collect::<Vec<_>>(), n);
            let chosen: Vec<&Threat> = chosen_indices.iter().map(|&i| &threats[i]).collect();
            let (kind, copies) = messages::message(&mut dice, at, &chosen, &message_params);
            match kind {
                MessageKind::Delivered => {
                    if chosen.iter().any(|t| t.kind == ThreatType::Url) {
                        clickable.push((at, messages_delivered.len(), copies.len()));
                    }
                    messages_delivered.extend(copies);
                }
                MessageKind::Blocked => messages_blocked.extend(copies),
            }
        }
    }
    clickable.sort_by_key(|&(at, first, _)| (at, first));

    let by_id: HashMap<&str, &Threat> = threats.iter().map(|t| (t.id.as_str(), t)).collect();
    let click_params = clicks::ClickParams {
        end,
        org_id: &org_id,
        blocked_fraction: spec.blocked_click_fraction,
        late_fraction: spec.late_fraction,
    };
    let mut clicks_permitted = Vec::new();
    let mut clicks_blocked = Vec::new();
    for &(from, to, share) in &slots {
        // People click within hours of delivery, not days.
        let oldest = from - Duration::hours(6);
        let newest = to - Duration::seconds(30);
        let low = clickable.partition_point(|c| c.0 < oldest);
        let high = clickable.partition_point(|c| c.0 < newest);
        if low >= high {
            continue;
        }
        for _ in 0..per_slot(spec.clicks_per_hour, share) {
            let (sent, first, copies) =
                clickable[dice.between(low as u64, high as u64 - 1) as usize];
            let copy = &messages_delivered[first + dice.between(0, copies as u64 - 1) as usize];
            let urls: Vec<&Threat> = copy
                .threats_info_map
                .iter()
                .filter_map(|t| by_id.get(t.threat_id.as_str()).copied())
                .filter(|t| t.kind == ThreatType::Url)
                .collect();
            let Some(&threat) =
                urls.get(dice.between(0, (urls.len() as u64).saturating_sub(1)) as usize)
            else {
                continue;
            };
            let at = dice.instant(from.max(sent + Duration::seconds(30)), to);
            match clicks::click(&mut dice, at, copy, threat, &click_params) {
                (ClickKind::Permitted, event) => clicks_permitted.push(event),
                (ClickKind::Blocked, event) => clicks_blocked.push(event),
            }
        }
    }

    let mut forensics = Vec::new();
    let mut first_report = true;
    let mut threat_report = |dice: &mut Dice, threat: &Threat| {
        let evidence = if std::mem::take(&mut first_report) {
            evidence::every_kind(dice)
        } else {
            evidence::some(dice)
        };
        ForensicsReport {
            scope: "THREAT".to_owned(),
            id: threat.id.clone(),
            name: threat.value.clone(),
            threat_status: Some(threat.status),
            forensics: evidence,
        }
    };
    for campaign in &campaigns {
        let scope = ForensicsScope::Campaign(campaign.id.clone());
        forensics.push((
            scope.clone(),
            ForensicsReport {
                scope: "CAMPAIGN".to_owned(),
                id: campaign.id.clone(),
                name: campaign.name.clone(),
                threat_status: None,
                forensics: Vec::new(),
            },
        ));
        for member in threats[..campaign_threats]
            .iter()
            .filter(|t| t.campaign_id.as_deref() == Some(campaign.id.as_str()))
        {
            forensics.push((scope.clone(), threat_report(&mut dice, member)));
        }
    }
    // Message-text threats have nothing to detonate, so TAP has no
    // forensics for them (and answers 404).
    for threat in threats[campaign_threats..]
        .iter()
        .filter(|t| t.kind != ThreatType::MessageText)
    {
        forensics.push((
            ForensicsScope::Threat(threat.id.clone()),
            threat_report(&mut dice, threat),
        ));
    }

    // Both come last and use no shared dice, so the records above are the
    // same as before they existed.
    let threat_summaries = summaries::summaries(spec.seed, &threats, &campaigns);
    let (very_attacked_people, top_clickers) = people::people(
        messages_delivered.iter().chain(&messages_blocked),
        &clicks_permitted,
    );

    Tenant {
        spec: spec.clone(),
        org_id,
        messages_delivered,
        messages_blocked,
        clicks_permitted,
        clicks_blocked,
        campaigns,
        threats,
        forensics,
        threat_summaries,
        very_attacked_people,
        top_clickers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const START: OffsetDateTime = datetime!(2024-03-25 00:00:00 UTC);

    #[test]
    fn clicks_come_after_their_message_and_often_hours_later() {
        let tenant = generate(&TenantSpec::new(11, START, START + Duration::hours(12)));
        let sent: HashMap<&str, OffsetDateTime> = tenant
            .messages_delivered
            .iter()
            .map(|m| (m.guid.as_str(), m.message_time))
            .collect();
        let clicks: Vec<&ClickEvent> = tenant
            .clicks_permitted
            .iter()
            .chain(&tenant.clicks_blocked)
            .collect();
        assert!(!clicks.is_empty());
        // Every click is on a delivered message, after it was sent.
        for click in &clicks {
            let at = sent.get(click.guid.as_str()).expect("a delivered message");
            assert!(click.click_time > *at, "{}", click.id);
        }
        assert_eq!(
            tenant.clicks_after_their_message(Duration::ZERO),
            clicks.len()
        );
        let an_hour = tenant.clicks_after_their_message(Duration::HOUR);
        let by_hand = clicks
            .iter()
            .filter(|c| c.click_time - sent[c.guid.as_str()] >= Duration::HOUR)
            .count();
        assert_eq!(an_hour, by_hand);
        assert!(
            an_hour > 0,
            "some clicks land a window (or more) after their message"
        );
        assert!(tenant.clicks_after_their_message(Duration::hours(3)) > 0);
        assert!(an_hour < clicks.len(), "and some within the hour");
        assert_eq!(tenant.clicks_after_their_message(Duration::days(1)), 0);
        // Such clicks fall in a later hour-long SIEM window than their message.
        let hour_of = |t: OffsetDateTime| (t - START).whole_hours();
        assert!(
            clicks
                .iter()
                .any(|c| hour_of(c.created_at()) > hour_of(sent[c.guid.as_str()]))
        );
    }

    #[test]
    fn visible_is_what_a_query_for_every_status_returns() {
        let tenant = generate(&TenantSpec::new(12, START, START + Duration::hours(6)));
        let summary = tenant.summary();
        assert_eq!(summary.visible, summary.all);
        let hidden = summary.visible_without_false_positives;
        assert!(
            hidden.messages_delivered + hidden.messages_blocked
                <= summary.all.messages_delivered + summary.all.messages_blocked
        );
        let only_false_positive = tenant
            .messages_delivered
            .iter()
            .filter(|m| {
                m.threats_info_map
                    .iter()
                    .all(|t| t.threat_status == crate::records::ThreatStatus::FalsePositive)
            })
            .count();
        assert_eq!(
            hidden.messages_delivered,
            summary.all.messages_delivered - only_false_positive
        );
    }

    #[test]
    fn every_threat_has_one_summary_in_both_severity_spellings_deterministically() {
        let spec = TenantSpec::default();
        let tenant = generate(&spec);
        assert_eq!(tenant.threat_summaries.len(), tenant.threats.len());
        let ids: BTreeSet<&str> = tenant
            .threat_summaries
            .iter()
            .map(|(id, _)| id.as_str())
            .collect();
        let threat_ids: BTreeSet<&str> = tenant.threats.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, threat_ids, "one summary per threat, no other");
        assert_eq!(generate(&spec).threat_summaries, tenant.threat_summaries);
        let other = generate(&TenantSpec {
            seed: spec.seed + 1,
            ..spec.clone()
        });
        assert_ne!(other.threat_summaries, tenant.threat_summaries);

        let has = |key: &str| {
            tenant
                .threat_summaries
                .iter()
                .filter(|(_, s)| s.get(key).is_some())
                .count()
        };
        let (sample, documented) = (has("severity"), has("severityScore"));
        assert!(sample > 0 && documented > 0, "{sample} / {documented}");
        assert_eq!(sample + documented, tenant.threats.len());
        assert!(has("verticals") > 0 && has("verticallyTargeted") > 0);
        // Lenient readers meet lists that are null or missing.
        let lists = ["actors", "families", "malware", "techniques", "brands"];
        let shapes: BTreeSet<&str> = tenant
            .threat_summaries
            .iter()
            .flat_map(|(_, s)| {
                lists.map(|key| match s.get(key) {
                    None => "absent",
                    Some(serde_json::Value::Null) => "null",
                    Some(_) => "array",
                })
            })
            .collect();
        assert_eq!(shapes, BTreeSet::from(["absent", "null", "array"]));

        for (threat, (_, summary)) in tenant.threats.iter().zip(&tenant.threat_summaries) {
            assert_eq!(summary["id"], threat.id.as_str());
            assert_eq!(summary["status"], serde_json::json!(threat.status));
            let identified = crate::times::format_event_time(threat.identified_at);
            assert!(identified.ends_with(".000Z"));
            assert_eq!(summary["identifiedAt"], identified.as_str());
            let kind = summary["type"].as_str().unwrap();
            assert!(
                ["url", "attachment", "message text"].contains(&kind),
                "{kind}"
            );
            let category = summary["category"].as_str().unwrap();
            assert!(["impostor", "malware", "phish", "spam"].contains(&category));
            assert!(summary["attackSpread"].is_u64() && summary["notable"].is_boolean());
            // A campaign member names its campaign's actors and malware, same ids.
            if let Some(campaign_id) = &threat.campaign_id {
                let campaign = tenant
                    .campaigns
                    .iter()
                    .find(|c| &c.id == campaign_id)
                    .unwrap();
                for (key, refs) in [("actors", &campaign.actors), ("malware", &campaign.malware)] {
                    let named: Vec<(String, String)> = refs
                        .iter()
                        .map(|r| (r.id.clone(), r.name.clone()))
                        .collect();
                    let served: Vec<(String, String)> = summary
                        .get(key)
                        .and_then(|v| v.as_array())
                        .into_iter()
                        .flatten()
                        .map(|r| {
                            (
                                r["id"].as_str().unwrap().to_owned(),
                                r["name"].as_str().unwrap().to_owned(),
                            )
                        })
                        .collect();
                    assert_eq!(served, named, "{key} of {}", threat.id);
                }
            }
        }
        // One actor name, one id, across campaigns and summaries.
        let mut ids_of: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (_, summary) in &tenant.threat_summaries {
            for actor in summary
                .get("actors")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
            {
                ids_of
                    .entry(actor["name"].as_str().unwrap().to_owned())
                    .or_default()
                    .insert(actor["id"].as_str().unwrap().to_owned());
            }
        }
        assert!(!ids_of.is_empty());
        assert!(ids_of.values().all(|ids| ids.len() == 1), "{ids_of:?}");
    }

    #[test]
    fn the_people_lists_are_the_tenants_own_recipients_and_clickers() {
        let tenant = generate(&TenantSpec::new(13, START, START + Duration::hours(12)));
        let messages: Vec<&MessageEvent> = tenant
            .messages_delivered
            .iter()
            .chain(&tenant.messages_blocked)
            .collect();
        let received = |address: &str| {
            messages
                .iter()
                .filter(|m| m.recipient.iter().any(|r| r == address))
                .map(|m| m.guid.as_str())
                .collect::<BTreeSet<_>>()
                .len()
        };
        let vaps = &tenant.very_attacked_people;
        assert_eq!(vaps.len(), 3);
        let most = messages
            .iter()
            .flat_map(|m| &m.recipient)
            .map(|r| received(r))
            .max()
            .unwrap();
        assert_eq!(received(&vaps[0].emails[0]), most);
        for pair in vaps.windows(2) {
            assert!(pair[0].attack_index > pair[1].attack_index);
            assert!(received(&pair[0].emails[0]) >= received(&pair[1].emails[0]));
        }
        assert!(vaps[0].vip && !vaps[1].vip && !vaps[2].vip);
        assert_eq!(
            vaps[0].emails,
            [vaps[0].emails[0].clone(), vaps[0].emails[0].to_uppercase()]
        );
        assert!(vaps[1..].iter().all(|p| p.emails.len() == 1));

        let clickers = &tenant.top_clickers;
        assert_eq!(clickers.len(), 2);
        for clicker in clickers {
            let clicks = tenant
                .clicks_permitted
                .iter()
                .filter(|c| c.recipient == clicker.emails[0])
                .count();
            assert_eq!(clicker.click_count as usize, clicks);
            assert!(received(&clicker.emails[0]) > 0);
        }
        assert!(clickers[0].click_count >= clickers[1].click_count);
        let summary = tenant.summary();
        assert_eq!(
            (
                summary.threat_summaries,
                summary.very_attacked_people,
                summary.top_clickers
            ),
            (tenant.threats.len(), 3, 2)
        );
        assert!(summary.to_string().contains("3 very attacked people"));
    }
}
