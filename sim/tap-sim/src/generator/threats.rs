//! The tenant's threats and the campaigns some of them belong to.

use time::{Duration, OffsetDateTime};

use super::dice::{self, Dice};
use crate::records::{Campaign, CampaignMember, NamedRef, ThreatStatus, ThreatType};
use crate::stable;

/// A threat Proofpoint condemned, as messages, clicks, campaigns and
/// forensics of the tenant refer to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Threat {
    /// 64 hex digits.
    pub id: String,
    pub kind: ThreatType,
    /// The URL, the attachment's SHA-256, or the impostor's address / text.
    pub value: String,
    /// An attachment's MD5 (empty for other kinds).
    pub md5: String,
    pub classification: String,
    pub status: ThreatStatus,
    pub identified_at: OffsetDateTime,
    pub campaign_id: Option<String>,
    pub detection_type: Option<String>,
}

/// The kinds of threat the generator makes; message-text threats come as
/// an impostor's address (an indicator) or as text (an attribute only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreatShape {
    Url,
    Attachment,
    ImpostorAddress,
    CallbackText,
}

pub struct ThreatParams {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub false_positive_fraction: f64,
}

fn status(dice: &mut Dice, false_positive_fraction: f64) -> ThreatStatus {
    if dice.chance(false_positive_fraction) {
        ThreatStatus::FalsePositive
    } else if dice.chance(0.15) {
        ThreatStatus::Cleared
    } else {
        ThreatStatus::Active
    }
}

pub fn threat(dice: &mut Dice, shape: ThreatShape, p: &ThreatParams) -> Threat {
    let kind = match shape {
        ThreatShape::Url => ThreatType::Url,
        ThreatShape::Attachment => ThreatType::Attachment,
        ThreatShape::ImpostorAddress | ThreatShape::CallbackText => ThreatType::MessageText,
    };
    let (value, md5, classification) = match shape {
        ThreatShape::Url => {
            let domain = dice.pick(dice::HOSTILE_DOMAINS);
            let path = dice.pick(dice::URL_PATHS);
            let token = dice.hex(6);
            let classification = *dice.pick(&["phish", "phish", "malware", "spam"]);
            (
                format!("https://{domain}{path}?t={token}"),
                String::new(),
                classification,
            )
        }
        ThreatShape::Attachment => {
            let classification = *dice.pick(&["malware", "malware", "phish"]);
            (dice.hex(64), dice.hex(32), classification)
        }
        ThreatShape::ImpostorAddress => {
            let first = dice.pick(dice::FIRST_NAMES);
            let domain = dice.pick(dice::HOSTILE_DOMAINS);
            (format!("{first}.ceo@{domain}"), String::new(), "impostor")
        }
        ThreatShape::CallbackText => {
            // Telephone-oriented attack: the text names a callback number.
            let number = format!("+1 202 555 01{:02}", dice.between(0, 99));
            (
                format!("Call {number} to cancel your renewal"),
                String::new(),
                "toad",
            )
        }
    };
    let detection_type = match kind {
        ThreatType::Url => Some(dice.pick(&["reputation", "sandbox"]).to_string()),
        ThreatType::Attachment => Some("sandbox".to_owned()),
        ThreatType::MessageText => None,
    };
    Threat {
        id: dice.hex(64),
        kind,
        value,
        md5,
        classification: classification.to_owned(),
        status: status(dice, p.false_positive_fraction),
        // Most threats were known a little before the tenant's window.
        identified_at: dice.instant(p.start - Duration::hours(6), p.end),
        campaign_id: None,
        detection_type,
    }
}

/// `low` to `high` distinct names of a pool. Their ids follow from the
/// name (TAP has one id per actor, malware... whatever the campaign), so
/// threat summaries can name the same ones; a uuid is still drawn per
/// name, so every later draw, and the tenant of a seed, stay as they were
/// before ids were derived.
fn named(dice: &mut Dice, kind: &str, names: &[&str], low: u64, high: u64) -> Vec<NamedRef> {
    let n = dice.between(low, high) as usize;
    dice.pick_distinct(names, n)
        .into_iter()
        .map(|name| {
            let _kept_for_the_stream = dice.uuid();
            NamedRef {
                id: stable::uuid_of(kind, name),
                name: name.to_owned(),
            }
        })
        .collect()
}

/// A campaign with 2 to 6 member threats; the members are also returned
/// so messages can carry them.
pub fn campaign(dice: &mut Dice, p: &ThreatParams) -> (Campaign, Vec<Threat>) {
    let id = dice.uuid();
    let malware = named(dice, "malware", dice::MALWARE, 1, 2);
    let uses_urls = dice.chance(0.5);
    let member_count = dice.between(2, 6);
    let mut members = Vec::new();
    for _ in 0..member_count {
        let shape = if uses_urls == dice.chance(0.8) {
            ThreatShape::Url
        } else {
            ThreatShape::Attachment
        };
        let mut member = threat(dice, shape, p);
        member.campaign_id = Some(id.clone());
        members.push(member);
    }
    let first_seen = members
        .iter()
        .map(|m| m.identified_at)
        .min()
        .unwrap_or(p.start);
    let last_updated_at = members
        .iter()
        .map(|m| m.identified_at)
        .max()
        .unwrap_or(p.start)
        .max(p.start)
        .min(p.end - Duration::SECOND);
    let region = dice.pick(dice::REGIONS);
    let lead_malware = malware.first().map_or("Unknown", |m| m.name.as_str());
    let vector = if uses_urls { "URLs" } else { "Attachments" };
    let date = first_seen.date();
    let name = format!(
        "{lead_malware} \"{}_{}\" | {region} Targeting | {vector} | {} {} {}",
        dice.between(2000, 2400),
        dice.between(10000, 99999),
        date.day(),
        date.month(),
        date.year()
    );
    let description = format!(
        "Proofpoint researchers observed a {lead_malware} campaign using {vector}.\r\nMessages impersonated common brands and targeted {region} organisations.\r\nIndicators are listed as campaign members."
    );
    let campaign = Campaign {
        campaign_members: members
            .iter()
            .map(|m| CampaignMember {
                id: m.id.clone(),
                threat: m.value.clone(),
                kind: m.kind,
                sub_type: match m.kind {
                    ThreatType::Url => "COMPLETE_URL".to_owned(),
                    _ => "ATTACHMENT".to_owned(),
                },
                threat_time: m.identified_at,
                threat_status: m.status,
            })
            .collect(),
        id,
        name,
        description,
        start_date: first_seen - Duration::minutes(dice.between(1, 600) as i64),
        notable: dice.chance(0.3),
        actors: named(dice, "actor", dice::ACTORS, 0, 2),
        malware,
        techniques: named(dice, "technique", dice::TECHNIQUES, 1, 3),
        families: named(dice, "family", dice::FAMILIES, 1, 2),
        brands: named(dice, "brand", dice::BRANDS, 0, 2),
        last_updated_at,
    };
    (campaign, members)
}
