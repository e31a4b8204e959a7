//! The result being built: every object once (by its ThreatQ identity),
//! attributes merged without repeats, relations merged without repeats.
//!
//! Order is insertion order everywhere, so the same TAP answer always
//! produces the same result, byte for byte.

use std::collections::{HashMap, HashSet};

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
/// `object-kind` docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Identity {
    Indicator { type_name: String, value: String },
    Event { title: String, happened_at: String },
    Named { kind: ObjectKind, value: String },
}

#[derive(Debug, Default)]
pub struct Graph {
    objects: Vec<ThreatqObject>,
    attribute_sets: Vec<HashSet<Attribute>>,
    by_identity: HashMap<Identity, ObjectId>,
    relations: Vec<Relation>,
    relation_set: HashSet<Relation>,
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    fn upsert(&mut self, identity: Identity, make: impl FnOnce() -> ThreatqObject) -> ObjectId {
        if let Some(id) = self.by_identity.get(&identity) {
            return *id;
        }
        // A window yields thousands of objects at most; u32 is the WIT index.
        let id = ObjectId(u32::try_from(self.objects.len()).unwrap_or(u32::MAX));
        self.objects.push(make());
        self.attribute_sets.push(HashSet::new());
        self.by_identity.insert(identity, id);
        id
    }

    /// The indicator `(type_name, value)`; the caller has normalised the
    /// value (see `map::values`).
    pub fn indicator(&mut self, type_name: &str, value: &str) -> ObjectId {
        let identity = Identity::Indicator {
            type_name: type_name.to_string(),
            value: value.to_string(),
        };
        self.upsert(identity, || ThreatqObject {
            kind: ObjectKind::Indicator,
            value: value.to_string(),
            type_name: Some(type_name.to_string()),
            happened_at: None,
            description: None,
            attributes: Vec::new(),
        })
    }

    /// The event titled `title` that happened at `happened_at`.
    pub fn event(&mut self, type_name: &str, title: &str, happened_at: &str) -> ObjectId {
        let identity = Identity::Event {
            title: title.to_string(),
            happened_at: happened_at.to_string(),
        };
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
        let identity = Identity::Named {
            kind,
            value: value.to_string(),
        };
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
        let attribute = Attribute {
            name: name.to_string(),
            value: value.to_string(),
        };
        let (Some(object), Some(seen)) = (
            self.objects.get_mut(id.index()),
            self.attribute_sets.get_mut(id.index()),
        ) else {
            return;
        };
        if seen.insert(attribute.clone()) {
            object.attributes.push(attribute);
        }
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
}
