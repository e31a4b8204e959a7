//! The result being built: every object once (by its ThreatQ identity),
//! attributes merged without repeats, relations merged without repeats.
//!
//! Order is insertion order everywhere, so the same TAP answer always
//! produces the same result, byte for byte.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use crate::bindings::{Attribute, ObjectKind, Relation, ThreatqObject};

/// Index of an object in the graph (and in `SyncResult::objects`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(u32);

impl ObjectId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What makes two objects the same object in ThreatQ (see the WIT
/// `object-kind` docs), borrowed from the object or from the caller's
/// text: a lookup of an object already in the graph allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Identity<'a> {
    Indicator {
        type_name: &'a str,
        value: &'a str,
    },
    Event {
        title: &'a str,
        happened_at: &'a str,
    },
    Named {
        kind: ObjectKind,
        value: &'a str,
    },
}

impl<'a> Identity<'a> {
    /// The identity of an object the graph made; the constructors below
    /// fill exactly the fields it is read from.
    fn of(object: &'a ThreatqObject) -> Identity<'a> {
        match object.kind {
            ObjectKind::Indicator => Identity::Indicator {
                type_name: object.type_name.as_deref().unwrap_or_default(),
                value: &object.value,
            },
            ObjectKind::Event => Identity::Event {
                title: &object.value,
                happened_at: object.happened_at.as_deref().unwrap_or_default(),
            },
            kind => Identity::Named {
                kind,
                value: &object.value,
            },
        }
    }
}

/// The graph's indexes hold positions, not copies of keys: each entry is
/// compared against the object (or attribute) it points at. Most upserts
/// and attributes of a window repeat one already there, so the lookups
/// are the mapping's hot path (docs/performance.md, "Figures 1 and 2").
/// The hasher is std's seeded SipHash: the keys are attacker-influenced
/// text (phishing URLs, subjects).
#[derive(Debug, Default)]
pub struct Graph {
    objects: Vec<ThreatqObject>,
    hasher: RandomState,
    by_identity: HashTable<Hashed<ObjectId>>,
    /// (object, index into its `attributes`), one entry per attribute.
    attributes: HashTable<Hashed<(ObjectId, u32)>>,
    relations: Vec<Relation>,
    relation_set: HashSet<Relation>,
}

/// An index entry with its key's hash. A table that grows rehashes every
/// entry: with the hash kept, that is a copy, not a SipHash of text read
/// back from the objects (the rehash was half of the mapping's hashing,
/// docs/performance.md, "Figure 2, profiled"). A lookup also compares the
/// hash before it reads the object.
#[derive(Debug, Clone, Copy)]
struct Hashed<T> {
    hash: u64,
    at: T,
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    fn upsert(&mut self, identity: Identity<'_>, make: impl FnOnce() -> ThreatqObject) -> ObjectId {
        let Graph {
            objects,
            hasher,
            by_identity,
            ..
        } = self;
        let hash = hasher.hash_one(identity);
        let found = by_identity.find(hash, |entry| {
            entry.hash == hash
                && objects
                    .get(entry.at.index())
                    .is_some_and(|object| Identity::of(object) == identity)
        });
        if let Some(entry) = found {
            return entry.at;
        }
        // A window yields thousands of objects at most; u32 is the WIT index.
        let id = ObjectId(u32::try_from(objects.len()).unwrap_or(u32::MAX));
        objects.push(make());
        by_identity.insert_unique(hash, Hashed { hash, at: id }, |entry| entry.hash);
        id
    }

    /// The indicator `(type_name, value)`; the caller has normalised the
    /// value (see `map::values`).
    pub fn indicator(&mut self, type_name: &str, value: &str) -> ObjectId {
        let identity = Identity::Indicator { type_name, value };
        self.upsert(identity, || ThreatqObject {
            kind: ObjectKind::Indicator,
            value: value.to_string(),
            type_name: Some(type_name.to_string()),
            happened_at: None,
            description: None,
            attributes: Vec::new(),
        })
    }

    /// The event titled `title` that happened at `happened_at`. A title is
    /// one line whatever TAP put in its parts (a click URL, a recipient, an
    /// id): ThreatQ lists events by title, and a line break or an escape
    /// sequence there would forge or garble a line of that list. Folding it
    /// here, the one way an event is made, keeps every title one line
    /// (docs/mapping.md, "Conventions").
    pub fn event(&mut self, type_name: &str, title: &str, happened_at: &str) -> ObjectId {
        let title = &super::values::one_line(title);
        let identity = Identity::Event { title, happened_at };
        self.upsert(identity, || ThreatqObject {
            kind: ObjectKind::Event,
            value: title.to_string(),
            type_name: Some(type_name.to_string()),
            happened_at: Some(happened_at.to_string()),
            description: None,
            attributes: Vec::new(),
        })
    }

    /// A campaign, malware, adversary or attack pattern, named `value`.
    pub fn named(&mut self, kind: ObjectKind, value: &str) -> ObjectId {
        let identity = Identity::Named { kind, value };
        self.upsert(identity, || ThreatqObject {
            kind,
            value: value.to_string(),
            type_name: None,
            happened_at: None,
            description: None,
            attributes: Vec::new(),
        })
    }

    /// Adds `name: value` unless the value is blank or the pair is there.
    pub fn attribute(&mut self, id: ObjectId, name: &str, value: &str) {
        let value = value.trim();
        if value.is_empty() {
            return;
        }
        let Graph {
            objects,
            hasher,
            attributes,
            ..
        } = self;
        let hash = hasher.hash_one((id, name, value));
        let seen = attributes.find(hash, |entry| {
            entry.hash == hash && attribute_at(objects, entry.at) == Some((id, name, value))
        });
        if seen.is_some() {
            return;
        }
        let Some(object) = objects.get_mut(id.index()) else {
            return;
        };
        let at = u32::try_from(object.attributes.len()).unwrap_or(u32::MAX);
        object.attributes.push(Attribute {
            name: name.to_string(),
            value: value.to_string(),
        });
        attributes.insert_unique(hash, Hashed { hash, at: (id, at) }, |entry| entry.hash);
    }

    /// Sets the description unless one is already set or `text` is blank.
    pub fn describe(&mut self, id: ObjectId, text: &str) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        if let Some(object) = self.objects.get_mut(id.index())
            && object.description.is_none()
        {
            object.description = Some(text.to_string());
        }
    }

    /// Relates `a` and `b` once, in either direction; never an object with
    /// itself.
    pub fn relate(&mut self, a: ObjectId, b: ObjectId) {
        if a == b {
            return;
        }
        let relation = Relation {
            a: a.0.min(b.0),
            b: a.0.max(b.0),
        };
        if self.relation_set.insert(relation) {
            self.relations.push(relation);
        }
    }

    pub fn get(&self, id: ObjectId) -> Option<&ThreatqObject> {
        self.objects.get(id.index())
    }

    /// The (name, value) pairs of an object's attributes, for tests.
    #[cfg(test)]
    pub fn attribute_pairs(&self, id: ObjectId) -> Vec<(String, String)> {
        self.get(id)
            .map(|o| {
                o.attributes
                    .iter()
                    .map(|a| (a.name.clone(), a.value.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every object's id, in insertion order.
    pub fn ids(&self) -> impl Iterator<Item = ObjectId> + use<> {
        (0..u32::try_from(self.objects.len()).unwrap_or(u32::MAX)).map(ObjectId)
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    pub fn finish(self) -> (Vec<ThreatqObject>, Vec<Relation>) {
        (self.objects, self.relations)
    }
}

/// The attribute an index entry points at, as `(object, name, value)`.
fn attribute_at(
    objects: &[ThreatqObject],
    (owner, at): (ObjectId, u32),
) -> Option<(ObjectId, &str, &str)> {
    objects
        .get(owner.index())
        .and_then(|object| object.attributes.get(at as usize))
        .map(|a| (owner, a.name.as_str(), a.value.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_indicator_is_one_object() {
        let mut g = Graph::new();
        let a = g.indicator("URL", "http://x.test/");
        let b = g.indicator("URL", "http://x.test/");
        let c = g.indicator("FQDN", "http://x.test/");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(g.len(), 2);
    }

    #[test]
    fn events_are_identified_by_title_and_time() {
        let mut g = Graph::new();
        let a = g.event("Spearphish", "T", "2026-01-01 00:00:00");
        let b = g.event("Spearphish", "T", "2026-01-01 00:00:00");
        let c = g.event("Spearphish", "T", "2026-01-01 00:00:01");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn named_objects_of_different_kinds_do_not_merge() {
        let mut g = Graph::new();
        let a = g.named(ObjectKind::Malware, "Emotet");
        let b = g.named(ObjectKind::Adversary, "Emotet");
        assert_ne!(a, b);
    }

    #[test]
    fn attributes_dedupe_on_name_and_value_keeping_first_order() {
        let mut g = Graph::new();
        let id = g.indicator("URL", "u");
        g.attribute(id, "Recipient", "b@x");
        g.attribute(id, "Recipient", "a@x");
        g.attribute(id, "Recipient", "b@x");
        g.attribute(id, "Recipient", "  ");
        g.attribute(id, "Sender", "b@x");
        let values: Vec<_> = g
            .get(id)
            .unwrap()
            .attributes
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(
            values,
            [
                ("Recipient", "b@x"),
                ("Recipient", "a@x"),
                ("Sender", "b@x")
            ]
        );
    }

    #[test]
    fn relations_appear_once_per_pair_and_never_to_self() {
        let mut g = Graph::new();
        let a = g.indicator("URL", "a");
        let b = g.indicator("URL", "b");
        g.relate(a, b);
        g.relate(b, a);
        g.relate(a, a);
        let (_, relations) = g.finish();
        assert_eq!(relations, [Relation { a: 0, b: 1 }]);
    }

    #[test]
    fn the_first_description_wins() {
        let mut g = Graph::new();
        let id = g.named(ObjectKind::Campaign, "C");
        g.describe(id, " ");
        g.describe(id, "first");
        g.describe(id, "second");
        assert_eq!(g.get(id).unwrap().description.as_deref(), Some("first"));
    }

    /// The indexes against the obvious model (a scan of everything made
    /// so far), over enough objects and attributes that the tables grow
    /// and rehash many times: an entry that pointed at the wrong position
    /// after a rehash would show as a duplicate or a lost merge.
    mod against_a_scan {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Indicator(u8, u16),
            Event(u16, u8),
            Named(u8, u16),
            Attribute(u16, u8, u16),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (0u8..3, 0u16..400).prop_map(|(t, v)| Op::Indicator(t, v)),
                (0u16..300, 0u8..3).prop_map(|(t, h)| Op::Event(t, h)),
                (0u8..4, 0u16..50).prop_map(|(k, v)| Op::Named(k, v)),
                (0u16..u16::MAX, 0u8..3, 0u16..40).prop_map(|(o, n, v)| Op::Attribute(o, n, v)),
            ]
        }

        /// The model's record of one object made: what its identity is
        /// read from, and its attributes in order.
        struct Made {
            kind: ObjectKind,
            value: String,
            type_name: Option<String>,
            happened_at: Option<String>,
            attributes: Vec<(String, String)>,
        }

        impl Made {
            fn new(kind: ObjectKind, value: String) -> Made {
                Made {
                    kind,
                    value,
                    type_name: None,
                    happened_at: None,
                    attributes: Vec::new(),
                }
            }
        }

        const KINDS: [ObjectKind; 4] = [
            ObjectKind::Campaign,
            ObjectKind::Malware,
            ObjectKind::Adversary,
            ObjectKind::AttackPattern,
        ];

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            #[test]
            fn merges_exactly_like_a_scan(ops in proptest::collection::vec(op(), 1..3000)) {
                let mut g = Graph::new();
                let mut model: Vec<Made> = Vec::new();
                for op in ops {
                    match op {
                        Op::Indicator(t, v) => {
                            let (t, v) = (format!("T{t}"), format!("v{v}"));
                            let id = g.indicator(&t, &v);
                            let want = model.iter().position(|o| o.kind == ObjectKind::Indicator && o.type_name.as_deref() == Some(&t) && o.value == v);
                            let want = want.unwrap_or_else(|| {
                                model.push(Made { type_name: Some(t), ..Made::new(ObjectKind::Indicator, v) });
                                model.len() - 1
                            });
                            prop_assert_eq!(id.index(), want);
                        }
                        Op::Event(t, h) => {
                            let (t, h) = (format!("title {t}"), format!("2026-01-01 00:00:0{h}"));
                            // The type is not part of an event's identity.
                            let id = g.event(if h.ends_with('0') { "A" } else { "B" }, &t, &h);
                            let want = model.iter().position(|o| o.kind == ObjectKind::Event && o.value == t && o.happened_at.as_deref() == Some(&h));
                            let want = want.unwrap_or_else(|| {
                                model.push(Made { happened_at: Some(h), ..Made::new(ObjectKind::Event, t) });
                                model.len() - 1
                            });
                            prop_assert_eq!(id.index(), want);
                        }
                        Op::Named(k, v) => {
                            let (kind, v) = (KINDS[k as usize], format!("v{v}"));
                            let id = g.named(kind, &v);
                            let want = model.iter().position(|o| o.kind == kind && o.value == v);
                            let want = want.unwrap_or_else(|| {
                                model.push(Made::new(kind, v));
                                model.len() - 1
                            });
                            prop_assert_eq!(id.index(), want);
                        }
                        Op::Attribute(o, n, v) => {
                            if model.is_empty() {
                                continue;
                            }
                            let at = o as usize % model.len();
                            let (n, v) = (format!("N{n}"), format!("a{v}"));
                            g.attribute(ObjectId(at as u32), &n, &format!(" {v} "));
                            let attributes = &mut model[at].attributes;
                            if !attributes.iter().any(|(an, av)| *an == n && *av == v) {
                                attributes.push((n, v));
                            }
                        }
                    }
                }
                prop_assert_eq!(g.len(), model.len());
                for (i, want) in model.iter().enumerate() {
                    let got = g.get(ObjectId(i as u32)).unwrap();
                    let attributes: Vec<(String, String)> = got
                        .attributes
                        .iter()
                        .map(|a| (a.name.clone(), a.value.clone()))
                        .collect();
                    prop_assert_eq!(&attributes, &want.attributes);
                    prop_assert_eq!(got.kind, want.kind);
                }
            }
        }
    }
}
