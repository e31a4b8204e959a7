//! A TAP threat (an entry of a message's `threatsInfoMap`, or the URL of a
//! click): its attributes, its indicator, and its campaign.

use std::collections::BTreeSet;

use super::Mapping;
use super::graph::ObjectId;
use super::names::{attributes as attr, types};
use super::values::{email_address, present, sha256, url};
use crate::bindings::VerdictStatus;
use crate::dates::{parse_tap_time, unix_ms};
use crate::tap::siem::{Classification, Click, Message, ThreatStatus, ThreatType};

/// The fields of one threat, whichever record it came from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Threat<'a> {
    pub threat_id: Option<&'a str>,
    pub campaign_id: Option<&'a str>,
    pub classification: Option<&'a Classification>,
    pub status: Option<&'a ThreatStatus>,
    pub threat_type: Option<&'a ThreatType>,
    /// The condemned artefact: URL, SHA-256 or impostor address.
    pub value: Option<&'a str>,
    pub link: Option<&'a str>,
    pub detection_type: Option<&'a str>,
    /// When TAP gave the threat its status (ms): its `threatTime`, or the
    /// record's own time when that is missing or unreadable.
    pub time_ms: i64,
}

/// A `threatTime`, else the record's time.
fn verdict_time(threat_time: Option<&str>, record: time::OffsetDateTime) -> i64 {
    unix_ms(
        threat_time
            .and_then(|t| parse_tap_time(t).ok())
            .unwrap_or(record),
    )
}

impl<'a> Threat<'a> {
    pub fn of_message(message: &'a Message) -> impl Iterator<Item = Threat<'a>> {
        message.fields.threats_info_map.iter().map(|t| Threat {
            threat_id: present(t.threat_id.as_deref()),
            campaign_id: present(t.campaign_id.as_deref()),
            classification: t.classification.as_ref(),
            status: t.threat_status.as_ref(),
            threat_type: t.threat_type.as_ref(),
            value: present(t.threat.as_deref()),
            link: present(t.threat_url.as_deref()),
            detection_type: present(t.detection_type.as_deref()),
            time_ms: verdict_time(t.threat_time.as_deref(), message.time),
        })
    }

    pub fn of_click(click: &'a Click) -> Threat<'a> {
        let f = &click.fields;
        Threat {
            threat_id: present(f.threat_id.as_deref()),
            campaign_id: present(f.campaign_id.as_deref()),
            classification: f.classification.as_ref(),
            status: f.threat_status.as_ref(),
            threat_type: Some(&ThreatType::Url),
            value: Some(click.url.as_str()),
            link: present(f.threat_url.as_deref()),
            detection_type: None,
            time_ms: verdict_time(f.threat_time.as_deref(), click.time),
        }
    }

    pub fn is_false_positive_status(&self) -> bool {
        self.status == Some(&ThreatStatus::FalsePositive)
    }

    /// How the threat is counted once: its id, else its value.
    fn identity(&self) -> Option<String> {
        self.threat_id.or(self.value).map(|v| v.to_lowercase())
    }

    /// The indicator type and canonical value TAP's threat becomes; a type
    /// TAP did not state is inferred from the value's shape.
    fn indicator_value(&self) -> Option<(&'static str, String)> {
        let value = self.value?;
        match self.threat_type {
            Some(ThreatType::Url) => url(value).map(|v| (types::URL, v)),
            Some(ThreatType::Attachment) => sha256(value).map(|v| (types::SHA256, v)),
            Some(ThreatType::MessageText) => {
                email_address(value).map(|v| (types::EMAIL_ADDRESS, v))
            }
            Some(ThreatType::Other(_)) | None => {
                if let Some(hash) = sha256(value) {
                    Some((types::SHA256, hash))
                } else if let Some(address) = email_address(value) {
                    Some((types::EMAIL_ADDRESS, address))
                } else if value.contains("://") {
                    url(value).map(|v| (types::URL, v))
                } else {
                    None
                }
            }
        }
    }

    fn is_url_or_attachment(&self) -> bool {
        matches!(
            self.threat_type,
            Some(ThreatType::Url) | Some(ThreatType::Attachment)
        )
    }
}

/// The values and ids of every false-positive threat among the records,
/// and how many distinct threats that is.
pub fn false_positives(messages: &[&Message], clicks: &[&Click]) -> (Vec<String>, u32) {
    let threats = messages
        .iter()
        .flat_map(|m| Threat::of_message(m))
        .chain(clicks.iter().map(|c| Threat::of_click(c)))
        .filter(Threat::is_false_positive_status);
    let mut values = Vec::new();
    let mut distinct = BTreeSet::new();
    for threat in threats {
        values.extend(threat.threat_id.map(str::to_string));
        values.extend(threat.value.map(str::to_string));
        distinct.extend(threat.identity());
    }
    (values, u32::try_from(distinct.len()).unwrap_or(u32::MAX))
}

/// Classification, Threat ID, Threat Status, TAP Threat Link, Campaign ID.
pub fn add_event_attributes(m: &mut Mapping, object: ObjectId, threat: &Threat<'_>) {
    let g = &mut m.graph;
    if let Some(c) = threat.classification {
        g.attribute(object, attr::CLASSIFICATION, c.as_str());
    }
    if let Some(id) = threat.threat_id {
        g.attribute(object, attr::THREAT_ID, id);
    }
    if let Some(s) = threat.status {
        g.attribute(object, attr::THREAT_STATUS, s.as_str());
    }
    if let Some(link) = threat.link {
        g.attribute(object, attr::TAP_THREAT_LINK, link);
    }
    if let Some(campaign) = threat.campaign_id {
        g.attribute(object, attr::CAMPAIGN_ID, campaign);
    }
}

/// Every threat of the call's SIEM records, those skipped as already sent
/// included, is TAP's word on the indicator it stands for: the host follows
/// the latest across calls (docs/mapping.md, "Verdict changes"). A record
/// already sent can still carry news: TAP serves a threat that turns
/// active again under the key its first, active, record had. The indicator
/// is named even for a false positive, which is never made an indicator.
pub fn note_verdicts<'a>(m: &mut Mapping, threats: impl IntoIterator<Item = Threat<'a>>) {
    for threat in threats {
        let Some((type_name, value)) = threat.indicator_value() else {
            continue;
        };
        let status = match threat.status {
            Some(ThreatStatus::FalsePositive) => VerdictStatus::FalsePositive,
            Some(ThreatStatus::Cleared) => VerdictStatus::Cleared,
            Some(ThreatStatus::Active) => VerdictStatus::Active,
            _ => continue,
        };
        m.note_verdict(
            type_name,
            value,
            status,
            threat.threat_id.unwrap_or(""),
            threat.time_ms,
        );
    }
}

/// Maps one threat of `event`: the event's threat attributes always; for a
/// threat that is not a false positive also its indicator (with Detection
/// Type), the event-indicator relation, and the campaign mention. Returns
/// the indicator, if one was made.
pub fn map_threat(m: &mut Mapping, event: ObjectId, threat: &Threat<'_>) -> Option<ObjectId> {
    add_event_attributes(m, event, threat);
    let false_positive = threat.is_false_positive_status()
        || threat.threat_id.is_some_and(|id| m.is_false_positive(id));
    if false_positive {
        return None;
    }
    if let Some(campaign) = threat.campaign_id {
        m.mention_campaign(event, campaign);
        m.note_campaign_seen(campaign);
    } else if let Some(id) = threat.threat_id
        && threat.is_url_or_attachment()
    {
        m.note_threat_without_campaign(id);
    }
    let (type_name, value) = threat.indicator_value()?;
    let indicator = m.indicator(type_name, &value)?;
    add_event_attributes(m, indicator, threat);
    if let Some(detection) = threat.detection_type {
        m.graph
            .attribute(indicator, attr::DETECTION_TYPE, detection);
    }
    m.graph.relate(event, indicator);
    if let Some(campaign) = threat.campaign_id {
        m.mention_campaign(indicator, campaign);
    }
    if let Some(id) = threat.threat_id {
        m.register_threat(id, indicator);
        m.note_threat_event(id, event);
    }
    Some(indicator)
}
