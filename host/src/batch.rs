//! Turns the component's result (the WIT contract's types) into the ThreatQ
//! client's batch. The component already gives every object once with its
//! relations merged; this only renames (and moves: nothing is copied).

use tap_runtime::{ObjectKind, SyncResult};
use threatq_client::{Batch, Collection, ObjectKey, TqObject};

/// Moves the result's objects and relations into a batch, leaving both
/// empty in `result`: they are most of a window's memory, so each string is
/// held once, not once in the result and again in the batch (figure 3's
/// peak RSS, docs/performance.md). The rest of the result (record keys,
/// verdicts, rejections, enrichment) stays for the commit.
pub fn take_batch(result: &mut SyncResult) -> Batch {
    let objects = std::mem::take(&mut result.objects)
        .into_iter()
        .map(|object| TqObject {
            collection: collection_of(object.kind),
            value: object.value,
            type_name: object.type_name,
            happened_at: object.happened_at,
            description: object.description,
            attributes: object
                .attributes
                .into_iter()
                .map(|a| (a.name, a.value))
                .collect(),
        })
        .collect::<Vec<_>>();
    let len = objects.len();
    let relations = std::mem::take(&mut result.relations)
        .into_iter()
        .map(|r| (r.a as usize, r.b as usize))
        // The contract promises valid indices; a component that breaks it
        // must not make the host index out of bounds.
        .filter(|&(a, b)| a < len && b < len && a != b)
        .collect();
    Batch { objects, relations }
}

pub fn collection_of(kind: ObjectKind) -> Collection {
    match kind {
        ObjectKind::Indicator => Collection::Indicators,
        ObjectKind::Event => Collection::Events,
        ObjectKind::Campaign => Collection::Campaign,
        ObjectKind::Malware => Collection::Malware,
        ObjectKind::Adversary => Collection::Adversaries,
        ObjectKind::AttackPattern => Collection::AttackPattern,
    }
}

/// The letter kept for `batch.objects[index]` when ThreatQ refused it: the
/// object first, then its direct neighbours, with the relations between
/// it and them, so that sending the letter again restores its links too.
pub fn letter_for(batch: &Batch, index: usize) -> Batch {
    let mut objects = vec![batch.objects[index].clone()];
    let mut relations = Vec::new();
    for &(a, b) in &batch.relations {
        let other = match (a == index, b == index) {
            (true, false) => b,
            (false, true) => a,
            _ => continue,
        };
        relations.push((0, objects.len()));
        objects.push(batch.objects[other].clone());
    }
    Batch { objects, relations }
}

/// Adds `other` into `into`: objects of the same identity become one (with
/// the attributes of both), relations are remapped and kept once.
pub fn merge(into: &mut Batch, other: &Batch) {
    let mut position: std::collections::HashMap<ObjectKey, usize> = into
        .objects
        .iter()
        .enumerate()
        .map(|(index, object)| (object.key(), index))
        .collect();
    let mut remap = Vec::with_capacity(other.objects.len());
    for object in &other.objects {
        let index = *position.entry(object.key()).or_insert_with(|| {
            into.objects.push(TqObject {
                attributes: Vec::new(),
                ..object.clone()
            });
            into.objects.len() - 1
        });
        let target = &mut into.objects[index];
        for attribute in &object.attributes {
            if !target.attributes.contains(attribute) {
                target.attributes.push(attribute.clone());
            }
        }
        if target.description.is_none() {
            target.description.clone_from(&object.description);
        }
        remap.push(index);
    }
    let mut seen: std::collections::BTreeSet<(usize, usize)> = into
        .relations
        .iter()
        .map(|&(a, b)| (a.min(b), a.max(b)))
        .collect();
    for &(a, b) in &other.relations {
        let (a, b) = (remap[a], remap[b]);
        if a != b && seen.insert((a.min(b), a.max(b))) {
            into.relations.push((a, b));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(value: &str, attributes: &[(&str, &str)]) -> TqObject {
        TqObject {
            collection: Collection::Indicators,
            value: value.to_owned(),
            type_name: Some("URL".to_owned()),
            happened_at: None,
            description: None,
            attributes: attributes
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn a_letter_holds_the_object_first_and_its_neighbours_with_their_links() {
        let batch = Batch {
            objects: vec![object("a", &[]), object("b", &[]), object("c", &[])],
            relations: vec![(1, 0), (1, 2), (0, 2)],
        };
        let letter = letter_for(&batch, 1);
        let values: Vec<&str> = letter.objects.iter().map(|o| o.value.as_str()).collect();
        assert_eq!(values, ["b", "a", "c"]);
        assert_eq!(letter.relations, [(0, 1), (0, 2)]);
    }

    #[test]
    fn merging_keeps_each_object_and_relation_once_with_all_attributes() {
        let mut into = Batch {
            objects: vec![object("a", &[("x", "1")]), object("b", &[])],
            relations: vec![(0, 1)],
        };
        let other = Batch {
            objects: vec![
                object("a", &[("x", "1"), ("y", "2")]),
                object("b", &[]),
                object("c", &[]),
            ],
            relations: vec![(1, 0), (0, 2)],
        };
        merge(&mut into, &other);
        assert_eq!(into.objects.len(), 3);
        assert_eq!(into.objects[0].attributes.len(), 2);
        assert_eq!(into.relations, [(0, 1), (0, 2)]);
    }
}
