//! The message index, on the run's side (docs/sync.md, "Across windows and
//! runs"): a click whose message came in an earlier window or run is
//! related to that message event, and each message event ThreatQ accepted
//! is indexed for later clicks. The table is the state store's.

use std::collections::{BTreeSet, HashMap};

use tap_runtime::SyncResult;
use threatq_client::{Batch, Collection, ObjectKey, TqObject};
use tracing::{debug, warn};

use crate::state::{DeadLetter, IndexedMessage, NewDeadLetter, Store};

/// Relates the click and incident events the component could not resolve
/// to the message events the index holds for their GUID: each such message
/// event goes into the batch again as its bare identity (title, type,
/// time, no attributes), which ThreatQ's upsert matches to the event it
/// already holds, with the relation. A GUID the index does not hold stays
/// a Message GUID attribute. Returns how many clicks and incidents were
/// related.
pub(super) fn link_earlier_messages(
    store: &Store,
    result: &SyncResult,
    batch: &mut Batch,
) -> anyhow::Result<u64> {
    if result.unresolved_messages.is_empty() {
        return Ok(0);
    }
    let guids: BTreeSet<&str> = result
        .unresolved_messages
        .iter()
        .map(|link| link.guid.as_str())
        .collect();
    let guids: Vec<&str> = guids.into_iter().collect();
    let mut by_guid: HashMap<String, Vec<IndexedMessage>> = HashMap::new();
    for message in store.indexed_messages(&guids)? {
        by_guid
            .entry(message.guid.clone())
            .or_default()
            .push(message);
    }
    let own = batch.objects.len();
    let mut stubs: HashMap<(String, String), usize> = HashMap::new();
    let mut linked = 0;
    for link in &result.unresolved_messages {
        let click = link.object as usize;
        let Some(messages) = by_guid.get(&link.guid) else {
            continue;
        };
        if batch.objects[..own]
            .get(click)
            .is_none_or(|o| o.collection != Collection::Events)
        {
            warn!(
                index = link.object,
                "the component named a click that is not an event of its result"
            );
            continue;
        }
        for message in messages {
            let key = (message.title.clone(), message.happened_at.clone());
            let stub = *stubs.entry(key).or_insert_with(|| {
                batch.objects.push(TqObject {
                    collection: Collection::Events,
                    value: message.title.clone(),
                    type_name: Some(message.type_name.clone()),
                    happened_at: Some(message.happened_at.clone()),
                    description: None,
                    attributes: Vec::new(),
                });
                batch.objects.len() - 1
            });
            batch.relations.push((click, stub));
        }
        linked += 1;
    }
    if linked > 0 {
        debug!(
            linked,
            messages = stubs.len(),
            "clicks related to message events of earlier windows"
        );
    }
    Ok(linked)
}

/// The message events of `result` ThreatQ accepted, for the index.
pub(super) fn accepted_messages(
    result: &SyncResult,
    batch: &Batch,
    refused: &BTreeSet<ObjectKey>,
) -> Vec<IndexedMessage> {
    result
        .message_events
        .iter()
        .filter_map(|link| {
            let object = batch.objects.get(link.object as usize)?;
            if refused.contains(&object.key()) {
                return None;
            }
            Some(IndexedMessage {
                guid: link.guid.clone(),
                title: object.value.clone(),
                type_name: object.type_name.clone()?,
                happened_at: object.happened_at.clone()?,
            })
        })
        .collect()
}

/// Names the message GUID of each refused message event among `letters`,
/// so the event enters the index once its letter is delivered
/// ([`delivered_messages`]).
pub(super) fn name_refused_messages(
    result: &SyncResult,
    batch: &Batch,
    letters: &mut [NewDeadLetter],
) {
    if letters.is_empty() {
        return;
    }
    let guid_of: HashMap<ObjectKey, &str> = result
        .message_events
        .iter()
        .filter_map(|link| {
            let object = batch.objects.get(link.object as usize)?;
            Some((object.key(), link.guid.as_str()))
        })
        .collect();
    for letter in letters.iter_mut().filter(|letter| !letter.relations_only) {
        if let Some(guid) = letter
            .batch
            .objects
            .first()
            .and_then(|o| guid_of.get(&o.key()))
        {
            letter.message_guid = Some((*guid).to_owned());
        }
    }
}

/// The message events among the dead letters ThreatQ has now accepted, for
/// the index: a message event refused in its window is indexed once it is
/// delivered, so later clicks on it are related to it.
pub(super) fn delivered_messages(letters: &[DeadLetter], delivered: &[i64]) -> Vec<IndexedMessage> {
    letters
        .iter()
        .filter(|letter| delivered.contains(&letter.id))
        .filter_map(|letter| {
            let guid = letter.message_guid.clone()?;
            let event = letter.batch.objects.first()?;
            Some(IndexedMessage {
                guid,
                title: event.value.clone(),
                type_name: event.type_name.clone()?,
                happened_at: event.happened_at.clone()?,
            })
        })
        .collect()
}
