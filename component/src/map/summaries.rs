//! Threat API answers (docs/mapping.md, "Threat summaries"): what TAP
//! knows of a threat beyond the SIEM record. Its actors, malware and
//! techniques become Adversary, Malware and Attack Pattern objects, named
//! as the campaign mapping names them (so the same actor from a campaign
//! and from a summary is one object), related to the threat's indicator
//! and to the events of this call that carry the threat; the rest becomes
//! attributes of the indicator.

use super::Mapping;
use super::graph::ObjectId;
use super::names::attributes as attr;
use super::values::present;
use crate::bindings::{NamedRef, ObjectKind};
use crate::dates::{parse_tap_time, threatq_date};
use crate::tap::summary::ThreatSummary;

/// Maps `summary` onto `indicator`, the indicator the threat stands for,
/// and the events that carry the threat. Returns what it named, for the
/// host to keep.
pub fn map_summary(
    m: &mut Mapping,
    indicator: ObjectId,
    events: &[ObjectId],
    summary: &ThreatSummary,
) -> Vec<NamedRef> {
    let g = &mut m.graph;
    for family in &summary.families {
        if let Some(name) = present(family.name.as_deref()) {
            g.attribute(indicator, attr::MALWARE_FAMILY, name);
        }
    }
    for brand in &summary.brands {
        if let Some(name) = present(brand.name.as_deref()) {
            g.attribute(indicator, attr::TARGETED_BRAND, name);
        }
    }
    if let Some(severity) = summary.severity() {
        g.attribute(indicator, attr::TAP_SEVERITY, severity);
    }
    if let Some(spread) = present(summary.attack_spread.as_deref()) {
        g.attribute(indicator, attr::ATTACK_SPREAD, spread);
    }
    if let Some(notable) = summary.notable {
        g.attribute(
            indicator,
            attr::NOTABLE,
            if notable { "true" } else { "false" },
        );
    }
    if let Some(category) = present(summary.category.as_deref()) {
        g.attribute(indicator, attr::THREAT_CATEGORY, category);
    }
    if let Some(identified) = present(summary.identified_at.as_deref()) {
        // An unreadable date is still worth showing as TAP wrote it.
        let date = parse_tap_time(identified).map_or_else(|_| identified.to_string(), threatq_date);
        g.attribute(indicator, attr::IDENTIFIED_AT, &date);
    }
    let linked = [
        (ObjectKind::Adversary, &summary.actors),
        (ObjectKind::Malware, &summary.malware),
        (ObjectKind::AttackPattern, &summary.techniques),
    ];
    let mut named = Vec::new();
    for (kind, entries) in linked {
        for entry in entries {
            if let Some(name) = present(entry.name.as_deref()) {
                let reference = NamedRef {
                    kind,
                    name: name.to_string(),
                };
                if !named.contains(&reference) {
                    named.push(reference);
                }
            }
        }
    }
    relate_named(m, Some(indicator), events, &named);
    named
}

/// Relates the threat's indicator (when this call has it) and events to
/// what its summary named: a summary fetched by an earlier call (the host
/// keeps what it named) is related as if fetched now. Only adversaries,
/// malware and attack patterns are named; anything else is ignored.
pub fn relate_named(
    m: &mut Mapping,
    indicator: Option<ObjectId>,
    events: &[ObjectId],
    named: &[NamedRef],
) {
    let g = &mut m.graph;
    for reference in named {
        let kind = reference.kind;
        let name = reference.name.trim();
        let wanted = matches!(
            kind,
            ObjectKind::Adversary | ObjectKind::Malware | ObjectKind::AttackPattern
        );
        if !wanted || name.is_empty() {
            continue;
        }
        let object = g.named(kind, name);
        if let Some(indicator) = indicator {
            g.relate(indicator, object);
        }
        for event in events {
            g.relate(*event, object);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::names::types;
    use crate::tap::summary::parse_summary;

    #[test]
    fn actors_malware_and_techniques_are_related_to_the_indicator_and_events() {
        let mut m = Mapping::default();
        let indicator = m.graph.indicator(types::URL, "http://bad.example/x");
        let event = m
            .graph
            .event(types::SPEARPHISH, "TAP Message", "2026-12-08 10:00:00");
        // The campaign mapping names the same actor: one object, not two.
        let from_campaign = m.graph.named(ObjectKind::Adversary, "TA505");
        let summary = parse_summary(
            br#"{"identifiedAt":"2026-12-01T15:30:10.000Z","category":"malware","severity":"20",
                 "attackSpread":62,"notable":true,"actors":[{"id":"a","name":"TA505"}],
                 "families":[{"name":"Banking"}],"malware":[{"name":"Ursnif"},{"name":" "}],
                 "techniques":[{"name":"XL4 macros"}],"brands":[{"name":"DocuSign"}]}"#,
        )
        .unwrap();
        let named = map_summary(&mut m, indicator, &[event], &summary);
        assert_eq!(named.len(), 3, "{named:?}");
        assert_eq!(
            m.graph.attribute_pairs(indicator),
            [
                ("Malware Family".to_string(), "Banking".to_string()),
                ("Targeted Brand".into(), "DocuSign".into()),
                ("TAP Severity".into(), "20".into()),
                ("Attack Spread".into(), "62".into()),
                ("Notable".into(), "true".into()),
                ("Threat Category".into(), "malware".into()),
                ("Identified At".into(), "2026-12-01 15:30:10".into()),
            ]
        );
        let mapped = m.finish();
        let kinds: Vec<(ObjectKind, &str)> = mapped
            .objects
            .iter()
            .map(|o| (o.kind, o.value.as_str()))
            .collect();
        assert_eq!(
            kinds[3..],
            [
                (ObjectKind::Malware, "Ursnif"),
                (ObjectKind::AttackPattern, "XL4 macros")
            ]
        );
        assert_eq!(from_campaign.index(), 2, "TA505 is the campaign's object");
        // Indicator and event each related to the actor, malware, technique.
        assert_eq!(mapped.relations.len(), 6);
    }

    #[test]
    fn an_empty_summary_adds_nothing() {
        let mut m = Mapping::default();
        let indicator = m.graph.indicator(types::URL, "http://bad.example/x");
        assert!(map_summary(&mut m, indicator, &[], &parse_summary(b"{}").unwrap()).is_empty());
        assert!(m.graph.attribute_pairs(indicator).is_empty());
        assert_eq!(m.finish().objects.len(), 1);
    }
}
