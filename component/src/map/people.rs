//! People marks (docs/mapping.md, "People"): every message, click and
//! incident event whose recipient is on one of TAP's people lists says so,
//! so an analyst sees at once that a Very Attacked Person, a top clicker
//! or a VIP is involved. The lists themselves are the host's (it reads
//! them, keeps them and decides whether they are fresh enough); here they
//! arrive as one mark per address.

use std::collections::HashMap;

use super::Mapping;
use super::names::attributes as attr;
use super::values::email_address;
use crate::bindings::{ObjectKind, PersonMark};

/// Marks every event whose `Recipient` attributes name a listed address:
/// `Very Attacked Person`, `Top Clicker` and `VIP` with the address, and
/// once per event `Attack Index`, the highest of its Very Attacked
/// recipients. Returns how many events were marked.
pub fn mark_people(m: &mut Mapping, people: &[PersonMark]) -> u32 {
    if people.is_empty() {
        return 0;
    }
    // One mark per address; a host that sends an address twice (once per
    // list) gets both marks merged, not the last one.
    let mut by_address: HashMap<String, PersonMark> = HashMap::with_capacity(people.len());
    for mark in people {
        if let Some(address) = email_address(&mark.email) {
            let merged = by_address
                .entry(address.to_lowercase())
                .or_insert_with(|| PersonMark {
                    email: mark.email.clone(),
                    very_attacked: None,
                    top_clicker: false,
                    vip: false,
                });
            merged.very_attacked = merged.very_attacked.max(mark.very_attacked);
            merged.top_clicker |= mark.top_clicker;
            merged.vip |= mark.vip;
        }
    }
    let mut marked = 0;
    for id in m.graph.ids() {
        let Some(object) = m.graph.get(id) else {
            continue;
        };
        if object.kind != ObjectKind::Event {
            continue;
        }
        let listed: Vec<(String, PersonMark)> = object
            .attributes
            .iter()
            .filter(|a| a.name == attr::RECIPIENT)
            .filter_map(|a| {
                let address = email_address(&a.value)?.to_lowercase();
                let mark = by_address.get(&address)?.clone();
                Some((address, mark))
            })
            .collect();
        if listed.is_empty() {
            continue;
        }
        marked += 1;
        let mut attack_index = None;
        for (address, mark) in &listed {
            if let Some(index) = mark.very_attacked {
                m.graph.attribute(id, attr::VERY_ATTACKED_PERSON, address);
                attack_index = attack_index.max(Some(index));
            }
            if mark.top_clicker {
                m.graph.attribute(id, attr::TOP_CLICKER, address);
            }
            if mark.vip {
                m.graph.attribute(id, attr::VIP, address);
            }
        }
        if let Some(index) = attack_index {
            m.graph
                .attribute(id, attr::ATTACK_INDEX, &index.to_string());
        }
    }
    marked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::names::types;

    fn mark(email: &str, very_attacked: Option<u32>, top_clicker: bool, vip: bool) -> PersonMark {
        PersonMark {
            email: email.into(),
            very_attacked,
            top_clicker,
            vip,
        }
    }

    #[test]
    fn listed_recipients_mark_their_events_case_insensitively() {
        let mut m = Mapping::default();
        let event = m
            .graph
            .event(types::SPEARPHISH, "TAP Message", "2026-12-08 10:00:00");
        m.graph
            .attribute(event, attr::RECIPIENT, "Alice@Example.com");
        m.graph.attribute(event, attr::RECIPIENT, "bob@example.com");
        m.graph
            .attribute(event, attr::RECIPIENT, "carol@example.com");
        let other = m
            .graph
            .event(types::SPEARPHISH, "Other", "2026-12-08 10:00:00");
        m.graph
            .attribute(other, attr::RECIPIENT, "dave@example.com");
        // An indicator with the same address is not an event: untouched.
        let indicator = m.graph.indicator(types::EMAIL_ADDRESS, "alice@example.com");
        let people = [
            mark("ALICE@example.com", Some(2400), false, true),
            mark("bob@example.com", Some(3100), true, false),
        ];
        assert_eq!(mark_people(&mut m, &people), 1);
        let marks: Vec<(String, String)> = m
            .graph
            .attribute_pairs(event)
            .into_iter()
            .filter(|(name, _)| name != "Recipient")
            .collect();
        assert_eq!(
            marks,
            [
                (
                    "Very Attacked Person".to_string(),
                    "alice@example.com".to_string()
                ),
                ("VIP".into(), "alice@example.com".into()),
                ("Very Attacked Person".into(), "bob@example.com".into()),
                ("Top Clicker".into(), "bob@example.com".into()),
                ("Attack Index".into(), "3100".into()),
            ]
        );
        assert_eq!(m.graph.attribute_pairs(other).len(), 1);
        assert!(m.graph.attribute_pairs(indicator).is_empty());
    }

    #[test]
    fn a_top_clicker_alone_gets_no_attack_index_and_no_lists_no_marks() {
        let mut m = Mapping::default();
        let event = m
            .graph
            .event(types::INCIDENT, "TAP Incident", "2026-12-08 10:00:00");
        m.graph.attribute(event, attr::RECIPIENT, "c@example.com");
        assert_eq!(mark_people(&mut m, &[]), 0);
        assert_eq!(
            mark_people(&mut m, &[mark("c@example.com", None, true, false)]),
            1
        );
        assert_eq!(
            m.graph.attribute_pairs(event)[1..],
            [("Top Clicker".to_string(), "c@example.com".to_string())]
        );
    }
}
