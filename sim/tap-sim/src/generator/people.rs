//! The tenant's People API lists, made from its own records: the Very
//! Attacked People are the three recipients who got the most messages,
//! the top clickers the two recipients with the most permitted clicks.
//! Nothing here is drawn from dice: a person's id, department and title
//! follow from the address, so one address is one person in both lists.

use std::collections::{BTreeMap, BTreeSet};

use crate::records::{ClickEvent, MessageEvent, Person};
use crate::stable;

const VERY_ATTACKED: usize = 3;
const TOP_CLICKERS: usize = 2;
/// The first VAP's attack index; each next one is lower by `INDEX_STEP`.
const TOP_INDEX: u32 = 2400;
const INDEX_STEP: u32 = 500;

/// Department and title, in pairs that go together.
const ROLES: &[(&str, &str)] = &[
    ("Finance", "Accounts Payable Specialist"),
    ("Executive Office", "Chief Financial Officer"),
    ("Human Resources", "HR Business Partner"),
    ("Sales", "Account Executive"),
    ("IT", "Systems Administrator"),
];

/// Highest count first, ties by address.
fn ranked(counts: BTreeMap<&str, u32>, n: usize) -> Vec<(&str, u32)> {
    let mut ranked: Vec<_> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    ranked.truncate(n);
    ranked
}

/// `alice.wayne@example.com` is Alice Wayne.
fn display_name(address: &str) -> String {
    let local = address.split('@').next().unwrap_or(address);
    local
        .split(['.', '_', '-'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect::<String>()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `(very attacked people, top clickers)`.
pub fn people<'a>(
    messages: impl Iterator<Item = &'a MessageEvent>,
    clicks_permitted: &[ClickEvent],
) -> (Vec<Person>, Vec<Person>) {
    // Messages, not records: a message is counted once per recipient.
    let mut received: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for m in messages {
        for address in &m.recipient {
            received.entry(address).or_default().insert(&m.guid);
        }
    }
    let received: BTreeMap<&str, u32> = received
        .into_iter()
        .map(|(address, guids)| (address, guids.len() as u32))
        .collect();
    let mut clicked: BTreeMap<&str, u32> = BTreeMap::new();
    for c in clicks_permitted {
        *clicked.entry(c.recipient.as_str()).or_default() += 1;
    }
    let vaps = ranked(received.clone(), VERY_ATTACKED);
    let first_vap = vaps.first().map(|&(address, _)| address);
    let attack_index = |address: &str| {
        match vaps.iter().position(|&(a, _)| a == address) {
            Some(rank) => TOP_INDEX.saturating_sub(INDEX_STEP * rank as u32),
            // Below every VAP: attacked, but not very.
            None => (received.get(address).copied().unwrap_or(0) * 100)
                .min(TOP_INDEX.saturating_sub(INDEX_STEP * VERY_ATTACKED as u32)),
        }
    };
    let person = |address: &str| {
        let is_first_vap = first_vap == Some(address);
        let mut emails = vec![address.to_owned()];
        if is_first_vap {
            // An alias differing only in case, for case-blind matching.
            emails.push(address.to_uppercase());
        }
        let (department, title) = stable::pick(ROLES, address).copied().unwrap_or_default();
        Person {
            guid: stable::uuid_of("person", address),
            emails,
            name: display_name(address),
            department: department.to_owned(),
            title: title.to_owned(),
            vip: is_first_vap,
            attack_index: attack_index(address),
            click_count: clicked.get(address).copied().unwrap_or(0),
        }
    };
    let very_attacked = vaps.iter().map(|&(address, _)| person(address)).collect();
    let top_clickers = ranked(clicked.clone(), TOP_CLICKERS)
        .into_iter()
        .map(|(address, _)| person(address))
        .collect();
    (very_attacked, top_clickers)
}
