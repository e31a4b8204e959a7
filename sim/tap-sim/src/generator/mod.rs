//! A deterministic, realistic TAP tenant: messages (with per-recipient
//! copies, late verdicts and false positives), clicks on their URLs,
//! campaigns and forensics with every evidence type. Same spec, same
//! tenant, byte for byte.

mod clicks;
mod dice;
mod evidence;
mod messages;
mod threats;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use time::{Duration, OffsetDateTime};

use crate::records::{
    Campaign, ClickEvent, ClickKind, ForensicsReport, ForensicsScope, MessageEvent, MessageKind,
    ThreatType,
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
             by default (falsePositive hidden) {} messages and {} clicks",
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
}
