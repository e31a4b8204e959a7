//! One `/v2/threat/summary/{id}` answer per threat of the tenant.
//!
//! Summaries are drawn from dice of their own, seeded from the tenant's
//! seed, so adding them left every other record of a seed as it was. A
//! campaign member's summary names its campaign's actors, malware,
//! families, techniques and brands (same ids), so a reader joining the two
//! sees one story; other threats get 0 to 2 of each from the same pools.

use serde_json::{Map, Value, json};

use super::dice::{self, Dice};
use super::threats::Threat;
use crate::records::{Campaign, NamedRef, ThreatStatus, ThreatType};
use crate::stable;
use crate::times::format_event_time;

/// Mixed into the tenant's seed for the summaries' own dice.
const SUMMARY_SALT: u64 = 0x5EED_0000_5A11_0001;

/// `(threat id, summary)` for every threat, in the order of `threats`.
pub fn summaries(seed: u64, threats: &[Threat], campaigns: &[Campaign]) -> Vec<(String, Value)> {
    let mut dice = Dice::new(seed ^ SUMMARY_SALT);
    threats
        .iter()
        .enumerate()
        .map(|(i, threat)| {
            let campaign = threat
                .campaign_id
                .as_deref()
                .and_then(|id| campaigns.iter().find(|c| c.id == id));
            (threat.id.clone(), summary(&mut dice, i, threat, campaign))
        })
        .collect()
}

/// 0 to 2 entries of a pool, with ids derived from the names, as TAP's
/// actors and malware have one id each whatever the threat.
fn refs(dice: &mut Dice, kind: &str, pool: &[&str]) -> Vec<NamedRef> {
    let n = dice.between(0, 2) as usize;
    dice.pick_distinct(pool, n)
        .into_iter()
        .map(|name| NamedRef {
            id: stable::uuid_of(kind, name),
            name: name.to_owned(),
        })
        .collect()
}

/// Puts a list in the summary. An empty one is sometimes `[]`, sometimes
/// `null`, sometimes left out: readers must take all three.
fn put_list(dice: &mut Dice, fields: &mut Map<String, Value>, key: &str, refs: &[NamedRef]) {
    let value = if !refs.is_empty() {
        Value::Array(
            refs.iter()
                .map(|r| json!({"id": r.id, "name": r.name}))
                .collect(),
        )
    } else {
        match dice.between(0, 2) {
            0 => Value::Array(Vec::new()),
            1 => Value::Null,
            _ => return,
        }
    };
    fields.insert(key.to_owned(), value);
}

/// TAP's summary category for a SIEM classification.
fn category(classification: &str) -> &'static str {
    match classification.to_ascii_lowercase().as_str() {
        "malware" => "malware",
        "spam" => "spam",
        "impostor" => "impostor",
        // TOAD is callback phishing; anything unknown is filed with phish.
        _ => "phish",
    }
}

fn summary(dice: &mut Dice, index: usize, threat: &Threat, campaign: Option<&Campaign>) -> Value {
    let category = category(&threat.classification);
    let mut fields = Map::new();
    fields.insert("id".to_owned(), json!(threat.id));
    fields.insert(
        "identifiedAt".to_owned(),
        json!(format_event_time(threat.identified_at)),
    );
    fields.insert("name".to_owned(), json!(threat.value));
    let kind = match threat.kind {
        ThreatType::Url => "url",
        ThreatType::Attachment => "attachment",
        ThreatType::MessageText => "message text",
    };
    fields.insert("type".to_owned(), json!(kind));
    fields.insert("category".to_owned(), json!(category));
    fields.insert("status".to_owned(), json!(threat.status));
    if let Some(detection) = &threat.detection_type {
        fields.insert("detectionType".to_owned(), json!(detection));
    }
    let severity = match (threat.status, category) {
        (ThreatStatus::FalsePositive, _) => dice.between(0, 50),
        (_, "malware") => dice.between(550, 980),
        (_, "phish" | "impostor") => dice.between(250, 850),
        _ => dice.between(20, 400),
    };
    // Real TAP drifts between the sample data's spellings and the
    // documented ones; alternating by index makes every tenant of two or
    // more threats show both, and all four pairings from four threats.
    let severity_key = if index.is_multiple_of(2) {
        "severity"
    } else {
        "severityScore"
    };
    fields.insert(severity_key.to_owned(), json!(severity));
    fields.insert("attackSpread".to_owned(), json!(dice.between(1, 400)));
    let notable = campaign.map_or_else(|| dice.chance(0.15), |c| c.notable);
    fields.insert("notable".to_owned(), json!(notable));
    let (verticals, geographies) = if (index / 2).is_multiple_of(2) {
        ("verticals", "geographies")
    } else {
        ("verticallyTargeted", "geoTargeted")
    };
    fields.insert(verticals.to_owned(), json!(dice.chance(0.3)));
    fields.insert(geographies.to_owned(), json!(dice.chance(0.3)));
    let lists: [(&str, Vec<NamedRef>); 5] = match campaign {
        Some(c) => [
            ("actors", c.actors.clone()),
            ("families", c.families.clone()),
            ("malware", c.malware.clone()),
            ("techniques", c.techniques.clone()),
            ("brands", c.brands.clone()),
        ],
        None => [
            ("actors", refs(dice, "actor", dice::ACTORS)),
            ("families", refs(dice, "family", dice::FAMILIES)),
            ("malware", refs(dice, "malware", dice::MALWARE)),
            ("techniques", refs(dice, "technique", dice::TECHNIQUES)),
            ("brands", refs(dice, "brand", dice::BRANDS)),
        ],
    };
    for (key, refs) in &lists {
        put_list(dice, &mut fields, key, refs);
    }
    Value::Object(fields)
}
