//! Campaign API answers: the campaign object, its actors, malware and
//! techniques, and its member threats as indicators.

use super::Mapping;
use super::graph::ObjectId;
use super::names::{attributes as attr, types};
use super::values::{present, sha256, url};
use crate::bindings::{CampaignRef, ObjectKind};
use crate::dates::{parse_tap_time, threatq_date};
use crate::tap::campaign::{Campaign, CampaignMember};
use crate::tap::siem::{ThreatStatus, ThreatType};

/// A campaign the host already knows: related by name, not fetched.
pub fn map_known_campaign(m: &mut Mapping, known: &CampaignRef) -> ObjectId {
    let campaign = m.graph.named(ObjectKind::Campaign, known.name.trim());
    m.graph.attribute(campaign, attr::CAMPAIGN_ID, &known.id);
    m.set_campaign_object(&known.id, campaign);
    campaign
}

/// Maps a fetched campaign; `requested_id` is the id it was fetched by.
/// A campaign without a name is named by its id, since the name is its
/// identity in ThreatQ and it must have one.
pub fn map_campaign(m: &mut Mapping, requested_id: &str, fetched: &Campaign) -> CampaignRef {
    let name = present(fetched.name.as_deref())
        .unwrap_or(requested_id)
        .to_string();
    let campaign = m.graph.named(ObjectKind::Campaign, &name);
    m.set_campaign_object(requested_id, campaign);
    let g = &mut m.graph;
    if let Some(description) = fetched.description.as_deref() {
        g.describe(campaign, description);
    }
    g.attribute(campaign, attr::CAMPAIGN_ID, requested_id);
    if let Some(start) = present(fetched.start_date.as_deref()) {
        // An unreadable date is still worth showing as TAP wrote it.
        let date = parse_tap_time(start).map_or_else(|_| start.to_string(), threatq_date);
        g.attribute(campaign, attr::START_DATE, &date);
    }
    if let Some(notable) = fetched.notable {
        g.attribute(
            campaign,
            attr::NOTABLE,
            if notable { "true" } else { "false" },
        );
    }
    for family in &fetched.families {
        if let Some(name) = present(family.name.as_deref()) {
            g.attribute(campaign, attr::MALWARE_FAMILY, name);
        }
    }
    for brand in &fetched.brands {
        if let Some(name) = present(brand.name.as_deref()) {
            g.attribute(campaign, attr::TARGETED_BRAND, name);
        }
    }
    let linked = [
        (ObjectKind::Adversary, &fetched.actors),
        (ObjectKind::Malware, &fetched.malware),
        (ObjectKind::AttackPattern, &fetched.techniques),
    ];
    for (kind, entries) in linked {
        for entry in entries {
            if let Some(name) = present(entry.name.as_deref()) {
                let object = g.named(kind, name);
                g.relate(campaign, object);
            }
        }
    }
    for member in &fetched.campaign_members {
        map_member(m, campaign, member);
    }
    CampaignRef {
        id: requested_id.to_string(),
        name,
    }
}

/// A member threat becomes a URL or SHA-256 indicator related to the
/// campaign, unless TAP calls it a false positive.
fn map_member(m: &mut Mapping, campaign: ObjectId, member: &CampaignMember) {
    if member.threat_status == Some(ThreatStatus::FalsePositive) {
        return;
    }
    let threat_id = present(member.id.as_deref());
    if threat_id.is_some_and(|id| m.is_false_positive(id)) {
        return;
    }
    let Some(threat) = present(member.threat.as_deref()) else {
        return;
    };
    let indicator_value = match member.threat_type {
        Some(ThreatType::Url) => url(threat).map(|v| (types::URL, v)),
        Some(ThreatType::Attachment) => sha256(threat).map(|v| (types::SHA256, v)),
        Some(ThreatType::MessageText) => None,
        Some(ThreatType::Other(_)) | None => {
            sha256(threat).map(|v| (types::SHA256, v)).or_else(|| {
                threat
                    .contains("://")
                    .then(|| url(threat))
                    .flatten()
                    .map(|v| (types::URL, v))
            })
        }
    };
    let Some((type_name, value)) = indicator_value else {
        return;
    };
    let Some(indicator) = m.indicator(type_name, &value) else {
        return;
    };
    let g = &mut m.graph;
    if let Some(id) = threat_id {
        g.attribute(indicator, attr::THREAT_ID, id);
    }
    if let Some(status) = &member.threat_status {
        g.attribute(indicator, attr::THREAT_STATUS, status.as_str());
    }
    if let Some(sub_type) = present(member.sub_type.as_deref()) {
        g.attribute(indicator, attr::SUB_TYPE, sub_type);
    }
    g.relate(campaign, indicator);
    if let Some(id) = threat_id {
        m.register_threat(id, indicator);
    }
}
