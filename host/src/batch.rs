//! Turns the component's result (the WIT contract's types) into the ThreatQ
//! client's batch. The component already gives every object once with its
//! relations merged; this only renames.

use tap_runtime::{ObjectKind, SyncResult};
use threatq_client::{Batch, Collection, TqObject};

pub fn to_batch(result: &SyncResult) -> Batch {
    let objects = result
        .objects
        .iter()
        .map(|object| TqObject {
            collection: collection_of(object.kind),
            value: object.value.clone(),
            type_name: object.type_name.clone(),
            happened_at: object.happened_at.clone(),
            description: object.description.clone(),
            attributes: object
                .attributes
                .iter()
                .map(|a| (a.name.clone(), a.value.clone()))
                .collect(),
        })
        .collect::<Vec<_>>();
    let len = objects.len();
    let relations = result
        .relations
        .iter()
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
