//! Forwarding a batch: pass 1 upserts the objects collection by collection
//! and learns their ids; pass 2 links related objects by consuming one side
//! again with the other side's id under its relationship key.
//!
//! A consume request that ThreatQ refuses for what it holds is split in
//! halves and resent until each bad object stands alone, so one bad object
//! costs only itself: finding k bad objects among n costs O(k log n)
//! requests. "For what it holds" is any 4xx but those about who asks or
//! when ([`refuses_the_body`]): ThreatQ's own 400/413/422, and equally a
//! 403 from a web firewall in front of ThreatQ that blocks a body for one
//! phishing URL in it. When ThreatQ refuses everything it is sent (a
//! status it does not know, a role that may not write, a firewall that
//! blocks every body), bisecting would cost two requests per object; after
//! as many objects refused alone as [`SystemicRule`] takes, with none of
//! the forward accepted before them, the forward stops with
//! [`ThreatqError::SystemicRefusal`] instead.
//!
//! Every request is an idempotent upsert, so the caller may repeat a whole
//! forward after a failure, and the requests of one collection may be in
//! flight together.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use reqwest::Method;
use serde_json::Value;

use crate::error::ThreatqError;
use crate::model::{
    Batch, Collection, ForwardOptions, ForwardReport, ObjectKey, RejectedObject, TqObject,
};
use crate::payload;
use crate::session::{ApiRequest, Client};
use crate::systemic::SystemicRule;

/// Consume requests of one collection in flight at once. Upserts of one
/// collection do not depend on each other, so their order does not matter;
/// collections still go one after another, and relations only after every
/// object has its id. Four keeps a busy window's requests overlapping
/// without crowding a ThreatQ appliance (docs/performance.md).
const REQUESTS_IN_FLIGHT: usize = 4;
/// Objects per consume request (threatqsdk's batch size).
const MAX_OBJECTS_PER_REQUEST: usize = 500;
/// Request body bytes, so 500 long descriptions do not make one huge body.
const MAX_BYTES_PER_REQUEST: usize = 8 * 1024 * 1024;

/// One object's serialised consume element.
struct Element {
    /// Index into the batch's objects.
    index: usize,
    json: Bytes,
}

/// Which pass a consume request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Pass 1: the objects themselves.
    Sending,
    /// Pass 2: objects already stored, sent again with their relations.
    Linking,
}

impl Pass {
    fn verb(self) -> &'static str {
        match self {
            Pass::Sending => "sending",
            Pass::Linking => "linking",
        }
    }
}

/// An element ThreatQ refused: alone, or with its whole collection (404).
struct Refusal {
    index: usize,
    status: u16,
    reason: String,
}

/// What ThreatQ made of a set of elements.
#[derive(Default)]
struct ConsumeOutcome {
    /// Groups ThreatQ stored: their batch indices and the rows it returned.
    stored: Vec<(Vec<usize>, Vec<Value>)>,
    rejected: Vec<Refusal>,
}

/// Whether a refusal with `status` is about the request's body, so that
/// halves of it may fare better: any 4xx except 401 (the token; the session
/// has already logged in again once), 404 (the collection is missing;
/// handled on its own), 407 (proxy credentials) and 408/429 (transient:
/// the session retries them, and they never arrive here as `Refused`).
fn refuses_the_body(status: u16) -> bool {
    (400..500).contains(&status) && !matches!(status, 401 | 404 | 407 | 408 | 429)
}

impl Client {
    /// Upserts every object of `batch` and then its relations; see the
    /// module doc. Objects ThreatQ refuses are reported, not fatal; an
    /// error means ThreatQ could not be used at all (credentials, outage
    /// outlasting the retry policy, an answer that cannot be read, or a
    /// collection it refuses as a whole: [`ThreatqError::SystemicRefusal`]),
    /// and the caller should keep the window for a later run.
    pub async fn forward(
        &self,
        batch: &Batch,
        options: &ForwardOptions,
    ) -> Result<ForwardReport, ThreatqError> {
        self.forward_under(batch, options, SystemicRule::DEFAULT)
            .await
    }

    /// [`Client::forward`], with bisection stopped early only as `rule`
    /// says: [`SystemicRule::OFF`] bisects every refusal to the single
    /// objects ThreatQ refuses, for what is already known to be refused
    /// (dead letters sent again), where stopping early would tell nothing.
    pub async fn forward_under(
        &self,
        batch: &Batch,
        options: &ForwardOptions,
        rule: SystemicRule,
    ) -> Result<ForwardReport, ThreatqError> {
        let objects = &batch.objects;
        if let Some((a, b)) = batch
            .relations
            .iter()
            .find(|(a, b)| *a >= objects.len() || *b >= objects.len())
        {
            return Err(ThreatqError::InvalidBatch {
                detail: format!(
                    "relation ({a}, {b}) names an object beyond the {} in the batch",
                    objects.len()
                ),
            });
        }
        let counter = AtomicUsize::new(0);
        let mut report = ForwardReport::default();
        let mut ids: Vec<Option<u64>> = vec![None; objects.len()];
        // Objects of earlier collections ThreatQ stored: once there is one,
        // what a later collection has refused is about those objects, not
        // about ThreatQ refusing everything (docs/sync.md, "Nothing refused
        // is lost").
        let mut stored_before = 0;

        for collection in Collection::ALL {
            let mut elements = Vec::new();
            for (index, object) in objects.iter().enumerate() {
                if object.collection != collection {
                    continue;
                }
                match payload::unsendable_because(object) {
                    Some(reason) => {
                        report
                            .rejected
                            .push(rejection(index, object, None, false, reason));
                    }
                    None => elements.push(element(index, &payload::full(object, options))?),
                }
            }
            if elements.is_empty() {
                continue;
            }
            let outcome = self
                .consume(
                    collection,
                    elements,
                    Pass::Sending,
                    rule,
                    stored_before,
                    &counter,
                )
                .await?;
            let mut accepted = 0;
            for (group, rows) in &outcome.stored {
                accepted += group.len();
                assign_ids(group, rows, objects, &mut ids);
            }
            stored_before += accepted;
            report.accepted.insert(collection, accepted);
            report
                .rejected
                .extend(outcome.rejected.into_iter().map(|refusal| {
                    rejection(
                        refusal.index,
                        &objects[refusal.index],
                        Some(refusal.status),
                        false,
                        refusal.reason,
                    )
                }));
        }

        let (anchors, skipped) = plan_links(batch, &ids);
        report.relations_skipped = skipped;
        for collection in Collection::ALL {
            let mut elements = Vec::new();
            for (&anchor, others) in &anchors {
                if objects[anchor].collection != collection {
                    continue;
                }
                let links: Vec<(Collection, u64)> = others
                    .iter()
                    .filter_map(|&other| Some((objects[other].collection, ids[other]?)))
                    .collect();
                let json = payload::with_links(&objects[anchor], options, &links);
                elements.push(element(anchor, &json)?);
            }
            if elements.is_empty() {
                continue;
            }
            let outcome = self
                // Relations are judged on their own: every object of the
                // batch was stored or refused by now.
                .consume(collection, elements, Pass::Linking, rule, 0, &counter)
                .await?;
            for (group, _) in &outcome.stored {
                report.relations += group
                    .iter()
                    .map(|anchor| anchors[anchor].len())
                    .sum::<usize>();
            }
            for Refusal {
                index: anchor,
                status,
                reason,
            } in outcome.rejected
            {
                report.relations_skipped += anchors[&anchor].len();
                let reason = format!("its relations were not stored: {reason}");
                report.rejected.push(rejection(
                    anchor,
                    &objects[anchor],
                    Some(status),
                    true,
                    reason,
                ));
            }
        }

        report.requests = counter.load(Ordering::Relaxed);
        tracing::info!(
            "ThreatQ stored {} objects and {} relations; {} rejected; {} requests",
            report.accepted_total(),
            report.relations,
            report.rejected.len(),
            report.requests
        );
        Ok(report)
    }

    /// Sends `elements` to `/api/<collection>/consume` in bounded requests,
    /// up to [`REQUESTS_IN_FLIGHT`] at a time, bisecting any request ThreatQ
    /// refuses for its body, until [`SystemicRule::stops_bisection`] says
    /// ThreatQ refuses everything; `stored_before` objects of the forward
    /// were stored before this collection.
    async fn consume(
        &self,
        collection: Collection,
        elements: Vec<Element>,
        pass: Pass,
        rule: SystemicRule,
        stored_before: usize,
        counter: &AtomicUsize,
    ) -> Result<ConsumeOutcome, ThreatqError> {
        let sent = elements.len();
        let mut accepted = 0;
        let mut refused_alone = 0;
        let mut outcome = ConsumeOutcome::default();
        // Processed from the end, so push groups in reverse to keep order.
        let mut pending: Vec<Vec<Element>> = chunk(elements);
        pending.reverse();
        let mut in_flight = FuturesUnordered::new();
        loop {
            while in_flight.len() < REQUESTS_IN_FLIGHT {
                let Some(group) = pending.pop() else { break };
                in_flight.push(self.send_group(collection, group, pass.verb(), counter));
            }
            // An error below returns at once; dropping `in_flight` cancels
            // the other requests, which is safe: every one is an idempotent
            // upsert that the caller's retry of the window sends again.
            let Some((group, answer)) = in_flight.next().await else {
                break;
            };
            let indices: Vec<usize> = group.iter().map(|element| element.index).collect();
            match answer {
                Ok(body) => {
                    let rows = match body.get("data") {
                        Some(Value::Array(rows)) => rows.clone(),
                        _ => Vec::new(),
                    };
                    accepted += indices.len();
                    outcome.stored.push((indices, rows));
                }
                Err(ThreatqError::Refused { status, reason, .. }) if refuses_the_body(status) => {
                    if group.len() == 1 {
                        refused_alone += 1;
                        if rule.stops_bisection(refused_alone, stored_before + accepted) {
                            tracing::warn!(
                                "ThreatQ refused {refused_alone} {collection} one by one and accepted none (HTTP {status}); stopping"
                            );
                            return Err(ThreatqError::SystemicRefusal {
                                collection,
                                status,
                                reason,
                                refused: refused_alone,
                                sent,
                                relations_only: pass == Pass::Linking,
                            });
                        }
                        outcome.rejected.push(Refusal {
                            index: indices[0],
                            status,
                            reason,
                        });
                    } else {
                        tracing::debug!(
                            "ThreatQ refused {} {collection} (HTTP {status}); splitting to find the refused ones",
                            group.len()
                        );
                        let mut first = group;
                        let second = first.split_off(first.len() / 2);
                        pending.push(second);
                        pending.push(first);
                    }
                }
                Err(ThreatqError::Refused { status: 404, .. }) => {
                    let reason = format!(
                        "ThreatQ has no '{}' collection (HTTP 404 on /api/{}/consume): install that object type in ThreatQ to store these",
                        collection.api_name(),
                        collection.api_name()
                    );
                    outcome
                        .rejected
                        .extend(indices.into_iter().map(|index| Refusal {
                            index,
                            status: 404,
                            reason: reason.clone(),
                        }));
                }
                Err(error) => return Err(error),
            }
        }
        // Answers arrive in any order; the report lists rejections in the
        // batch's order, so it is the same from run to run.
        outcome.rejected.sort_by_key(|refusal| refusal.index);
        Ok(outcome)
    }

    /// One consume request for `group`; the group comes back with the answer
    /// so the caller can bisect it.
    async fn send_group(
        &self,
        collection: Collection,
        group: Vec<Element>,
        verb: &str,
        counter: &AtomicUsize,
    ) -> (Vec<Element>, Result<Value, ThreatqError>) {
        let request = ApiRequest {
            method: Method::POST,
            path: format!("/api/{}/consume", collection.api_name()),
            query: Vec::new(),
            body: Some(json_array(&group)),
            what: format!("{verb} {} {collection}", group.len()),
        };
        let answer = self.call(&request, counter).await;
        (group, answer)
    }
}

fn element(index: usize, json: &Value) -> Result<Element, ThreatqError> {
    let bytes = serde_json::to_vec(json).map_err(|error| ThreatqError::InvalidBatch {
        detail: format!("object {index} cannot be written as JSON: {error}"),
    })?;
    Ok(Element {
        index,
        json: Bytes::from(bytes),
    })
}

fn rejection(
    index: usize,
    object: &TqObject,
    status: Option<u16>,
    relations_only: bool,
    reason: String,
) -> RejectedObject {
    let ObjectKey {
        collection,
        identity,
    } = object.key();
    RejectedObject {
        index,
        collection,
        identity,
        status,
        relations_only,
        reason,
    }
}

/// Cuts elements into requests of at most `MAX_OBJECTS_PER_REQUEST`
/// objects and (unless one object alone is larger) `MAX_BYTES_PER_REQUEST`.
fn chunk(elements: Vec<Element>) -> Vec<Vec<Element>> {
    let mut chunks = Vec::new();
    let mut current: Vec<Element> = Vec::new();
    let mut bytes = 0;
    for element in elements {
        let full = current.len() == MAX_OBJECTS_PER_REQUEST
            || (!current.is_empty() && bytes + element.json.len() + 1 > MAX_BYTES_PER_REQUEST);
        if full {
            chunks.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += element.json.len() + 1;
        current.push(element);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

fn json_array(elements: &[Element]) -> Bytes {
    let size = elements
        .iter()
        .map(|element| element.json.len() + 1)
        .sum::<usize>()
        + 1;
    let mut body = Vec::with_capacity(size);
    body.push(b'[');
    for (position, element) in elements.iter().enumerate() {
        if position > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&element.json);
    }
    body.push(b']');
    Bytes::from(body)
}

/// A returned row's identity: (value/name/title, type name or happened_at).
fn row_identity(row: &Value, collection: Collection) -> Option<(u64, String, Option<String>)> {
    let id = row.get("id").and_then(|id| {
        id.as_u64()
            .or_else(|| id.as_str().and_then(|text| text.parse().ok()))
    })?;
    let value = row.get(collection.identity_field())?.as_str()?.to_owned();
    let qualifier = match collection {
        Collection::Indicators => row
            .get("type")
            .and_then(|kind| kind.get("name").or(Some(kind)))
            .and_then(Value::as_str)
            .map(str::to_owned),
        Collection::Events => row
            .get("happened_at")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    };
    Some((id, value, qualifier))
}

/// Reads each sent object's id from the rows ThreatQ returned, matching by
/// identity as threatqsdk does: exactly first, then ignoring ASCII case (in
/// case ThreatQ normalised the value). A row without a type or time matches
/// on the value alone.
fn assign_ids(group: &[usize], rows: &[Value], objects: &[TqObject], ids: &mut [Option<u64>]) {
    let Some(first) = group.first() else {
        return;
    };
    let collection = objects[*first].collection;
    let mut exact: HashMap<String, Vec<(u64, Option<String>)>> = HashMap::new();
    let mut folded: HashMap<String, Vec<(u64, Option<String>)>> = HashMap::new();
    for (id, value, qualifier) in rows.iter().filter_map(|row| row_identity(row, collection)) {
        folded
            .entry(value.to_ascii_lowercase())
            .or_default()
            .push((id, qualifier.clone()));
        exact.entry(value).or_default().push((id, qualifier));
    }
    for &index in group {
        let object = &objects[index];
        let wanted = match collection {
            Collection::Indicators => object.type_name.as_deref(),
            Collection::Events => object.happened_at.as_deref(),
            _ => None,
        };
        let pick = |candidates: Option<&Vec<(u64, Option<String>)>>| {
            candidates?
                .iter()
                .find(|(_, qualifier)| {
                    qualifier.is_none() || wanted.is_none() || qualifier.as_deref() == wanted
                })
                .map(|(id, _)| *id)
        };
        let found = pick(exact.get(&object.value))
            .or_else(|| pick(folded.get(&object.value.to_ascii_lowercase())));
        match found {
            Some(id) => ids[index] = Some(id),
            None => tracing::warn!(
                "ThreatQ stored {} but returned no row for it; its relations are skipped",
                object.key()
            ),
        }
    }
}

/// Decides which side of each relation carries it: the side with more
/// relations, so a hub (an event with many indicators) is sent once with
/// all its links. Returns anchor -> other sides, and how many relations
/// cannot be sent because a side has no id.
fn plan_links(batch: &Batch, ids: &[Option<u64>]) -> (BTreeMap<usize, Vec<usize>>, usize) {
    let mut pairs = BTreeSet::new();
    let mut unsendable = BTreeSet::new();
    for &(a, b) in &batch.relations {
        if a == b {
            continue;
        }
        let pair = (a.min(b), a.max(b));
        if ids[a].is_none() || ids[b].is_none() {
            unsendable.insert(pair);
        } else {
            pairs.insert(pair);
        }
    }
    let mut degree = vec![0usize; batch.objects.len()];
    for &(a, b) in &pairs {
        degree[a] += 1;
        degree[b] += 1;
    }
    let mut anchors: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (a, b) in pairs {
        let (anchor, other) = if degree[b] > degree[a] {
            (b, a)
        } else {
            (a, b)
        };
        anchors.entry(anchor).or_default().push(other);
    }
    (anchors, unsendable.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(collection: Collection, value: &str, type_name: Option<&str>) -> TqObject {
        TqObject {
            collection,
            value: value.to_owned(),
            type_name: type_name.map(str::to_owned),
            happened_at: None,
            description: None,
            attributes: Vec::new(),
        }
    }

    #[test]
    fn chunks_hold_at_most_500_objects() {
        let elements = (0..1201)
            .map(|index| Element {
                index,
                json: Bytes::from_static(b"{}"),
            })
            .collect();
        let sizes: Vec<usize> = chunk(elements).iter().map(Vec::len).collect();
        assert_eq!(sizes, [500, 500, 201]);
    }

    #[test]
    fn chunks_stay_under_the_byte_cap_unless_one_object_is_bigger() {
        let big = Bytes::from(vec![b'x'; MAX_BYTES_PER_REQUEST / 2 - 10]);
        let elements = (0..3)
            .map(|index| Element {
                index,
                json: big.clone(),
            })
            .chain([Element {
                index: 3,
                json: Bytes::from(vec![b'y'; MAX_BYTES_PER_REQUEST * 2]),
            }])
            .collect();
        let sizes: Vec<usize> = chunk(elements).iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 1, 1]);
    }

    #[test]
    fn ids_are_matched_by_value_and_type_not_by_position() {
        let objects = vec![
            object(Collection::Indicators, "abc", Some("Filename")),
            object(Collection::Indicators, "abc", Some("String")),
            object(Collection::Indicators, "EVIL.example", Some("FQDN")),
        ];
        let rows = vec![
            json!({ "id": 7, "value": "abc", "type": { "name": "String" } }),
            json!({ "id": "8", "value": "evil.example", "type": "FQDN" }),
            json!({ "id": 6, "value": "abc", "type": { "name": "Filename" } }),
        ];
        let mut ids = vec![None; 3];
        assign_ids(&[0, 1, 2], &rows, &objects, &mut ids);
        assert_eq!(ids, [Some(6), Some(7), Some(8)]);
    }

    #[test]
    fn each_relation_is_carried_once_by_the_better_connected_side() {
        let objects = (0..4)
            .map(|index| object(Collection::Campaign, &index.to_string(), None))
            .collect();
        let batch = Batch {
            objects,
            relations: vec![(1, 0), (0, 2), (2, 0), (3, 3), (3, 0), (1, 2)],
        };
        let ids = vec![Some(1), Some(2), Some(3), Some(4)];
        let (anchors, skipped) = plan_links(&batch, &ids);
        assert_eq!(skipped, 0);
        assert_eq!(anchors[&0], [1, 2, 3]);
        let total: usize = anchors.values().map(Vec::len).sum();
        assert_eq!(total, 4);

        let (anchors, skipped) = plan_links(&batch, &[Some(1), None, Some(3), Some(4)]);
        assert_eq!(skipped, 2);
        assert_eq!(anchors.values().map(Vec::len).sum::<usize>(), 2);
    }
}
