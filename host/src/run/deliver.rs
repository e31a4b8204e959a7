//! Step 3b, and step 2: delivering to ThreatQ so that nothing refused is
//! lost (docs/sync.md, "Nothing refused is lost").
//!
//! - Each object ThreatQ refuses (for any reason but authentication; the
//!   client isolates it by bisection) becomes a dead letter in the same
//!   transaction as the window's checkpoint, with ThreatQ's answer.
//! - Refusals that are systemic (every object of a kind, or most of a
//!   window for one reason) are a setting or a rule on ThreatQ's side, not
//!   bad data: the window fails and keeps its checkpoint.
//! - TAP records the component could not map are quarantined, raw.
//! - Every run first sends the dead letters again, and re-maps quarantined
//!   records when this is a newer version than the one that quarantined
//!   them (`replay` does both on demand).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::anyhow;
use tap_runtime::{QuarantinedRecord, SyncResult};
use threatq_client::{Batch, ForwardReport, ObjectKey, RejectedObject, SystemicRule, ThreatqError};
use tracing::{info, warn};

use super::{FailureKind, Pipeline, RunMode, Stop, checkpoint_text, describe, fetch};
use crate::batch::{self, take_batch};
use crate::plan::Window;
use crate::state::{Commit, NewDeadLetter, NewQuarantined, Quarantined};

/// What ThreatQ made of a batch, as the commit needs it.
#[derive(Debug, Default)]
pub(super) struct Delivery {
    pub dead_letters: Vec<NewDeadLetter>,
    /// Objects refused (relations-only refusals not counted).
    pub refused: usize,
    refused_identities: BTreeSet<ObjectKey>,
}

impl Delivery {
    /// Every object ThreatQ did not store, for the summary's counts.
    pub fn refused_identities(&self) -> &BTreeSet<ObjectKey> {
        &self.refused_identities
    }
}

/// Forwards one window's batch, within the run's deadline.
pub(super) async fn forward(
    pipeline: &mut Pipeline<'_>,
    window: &Window,
    batch: &Batch,
) -> Result<Delivery, Stop> {
    let prepared = &pipeline.prepared;
    let answer = prepared
        .deadline
        .bound(
            window,
            pipeline.summary,
            prepared.threatq.forward(batch, &prepared.forward_options),
        )
        .await?;
    let context = || {
        format!(
            "ThreatQ did not accept window {}; the checkpoint stays at {}",
            describe(window),
            checkpoint_text(pipeline.summary)
        )
    };
    let report = answer.map_err(|e| forward_failure(e).context(context()))?;
    if let Some(why) = SystemicRule::DEFAULT.judge(&report, batch.objects.len()) {
        return Err(Stop::Failed(
            FailureKind::Refused,
            anyhow!(
                "{why}: that is a setting or a rule on ThreatQ's side, not bad data, so window {} \
                 is not committed and the checkpoint stays at {}. Fix the cause (the answer is \
                 quoted above); the next run sends the window again",
                describe(window),
                checkpoint_text(pipeline.summary)
            ),
        ));
    }
    let delivery = dead_letters(&report, batch, &describe(window));
    pipeline.summary.rejected_objects += delivery.refused as u64;
    Ok(delivery)
}

/// A forward that failed as a whole, as the run's failure.
fn forward_failure(error: ThreatqError) -> StopError {
    let kind = match error {
        ThreatqError::SystemicRefusal { .. } => FailureKind::Refused,
        _ => FailureKind::Threatq,
    };
    StopError(kind, anyhow!(error))
}

/// A failure kind with its error, to add context before it becomes a Stop.
struct StopError(FailureKind, anyhow::Error);

impl StopError {
    fn context(self, context: String) -> Stop {
        Stop::Failed(self.0, self.1.context(context))
    }
}

/// A dead letter for each refusal in `report`, logged with ThreatQ's answer.
fn dead_letters(report: &ForwardReport, batch: &Batch, window: &str) -> Delivery {
    let mut delivery = Delivery::default();
    for rejected in &report.rejected {
        warn!(
            collection = %rejected.collection.api_name(),
            object = %rejected.identity,
            status = rejected.status.map(|s| s.to_string()).unwrap_or_else(|| "not sent".into()),
            reason = %rejected.reason,
            relations_only = rejected.relations_only,
            "ThreatQ refused {}; kept as a dead letter to send again",
            if rejected.relations_only { "an object's relations" } else { "an object" }
        );
        if !rejected.relations_only {
            delivery.refused += 1;
            delivery.refused_identities.insert(rejected.key());
        }
        if rejected.index >= batch.objects.len() {
            // The client's index is into the batch it was given; one outside
            // it is a bug, but the refusal is still not dropped in silence.
            warn!(
                index = rejected.index,
                "a refusal names no object of the batch"
            );
            continue;
        }
        delivery.dead_letters.push(NewDeadLetter {
            collection: rejected.collection,
            identity: rejected.identity.clone(),
            relations_only: rejected.relations_only,
            status: rejected.status,
            reason: rejected.reason.clone(),
            batch: batch::letter_for(batch, rejected.index),
            window: window.to_owned(),
        });
    }
    delivery
}

/// The quarantined records of a window, raw as TAP sent them.
pub(super) fn quarantine(result: &SyncResult, window: &Window) -> Vec<NewQuarantined> {
    result
        .rejections
        .iter()
        .map(|rejection| NewQuarantined {
            record_key: rejection.key.clone(),
            section: rejection.section.clone(),
            raw: rejection.raw.clone(),
            reason: rejection.reason.clone(),
            window: describe(window),
        })
        .collect()
}

/// Step 2: dead letters first, then quarantined records a newer version
/// (or `replay`) may now map.
pub(super) async fn replay(pipeline: &mut Pipeline<'_>) -> Result<(), Stop> {
    replay_dead_letters(pipeline).await?;
    super::across::replay_verdicts(pipeline).await?;
    replay_quarantine(pipeline).await
}

async fn replay_dead_letters(pipeline: &mut Pipeline<'_>) -> Result<(), Stop> {
    let letters = pipeline
        .prepared
        .store
        .dead_letters()
        .map_err(Stop::from(FailureKind::Local))?;
    if letters.is_empty() {
        return Ok(());
    }
    info!(
        count = letters.len(),
        "sending the dead letters of earlier runs again"
    );
    let mut merged = Batch::default();
    for letter in &letters {
        batch::merge(&mut merged, &letter.batch);
    }
    let report = send_again(
        pipeline,
        &merged,
        "ThreatQ could not be used to send the dead letters again; they are kept and the \
         checkpoint is unchanged",
    )
    .await?;
    let still: BTreeSet<ObjectKey> = report.rejected.iter().map(RejectedObject::key).collect();
    let delivered: Vec<i64> = letters
        .iter()
        .filter(|letter| !still.contains(&ObjectKey::new(letter.collection, &letter.identity)))
        .map(|letter| letter.id)
        .collect();
    let delivery = dead_letters(&report, &merged, "replay");
    info!(
        delivered = delivered.len(),
        refused_again = letters.len() - delivered.len(),
        "dead letters sent again"
    );
    pipeline.summary.redelivered += delivered.len() as u64;
    pipeline.commit(&Commit {
        delivered,
        dead_letters: delivery.dead_letters,
        ..Commit::default()
    })
}

/// Forwards what an earlier run left (dead letters, re-mapped records),
/// within the run's deadline; `failed` says what a failure leaves behind.
async fn send_again(
    pipeline: &Pipeline<'_>,
    batch: &Batch,
    failed: &str,
) -> Result<ForwardReport, Stop> {
    let prepared = &pipeline.prepared;
    prepared
        .deadline
        .bound_preparation(prepared.threatq.forward(batch, &prepared.forward_options))
        .await?
        .map_err(|e| forward_failure(e).context(failed.to_owned()))
}

async fn replay_quarantine(pipeline: &mut Pipeline<'_>) -> Result<(), Stop> {
    let force = pipeline.options.mode == RunMode::Replay;
    let waiting: Vec<_> = pipeline
        .prepared
        .store
        .quarantined()
        .map_err(Stop::from(FailureKind::Local))?
        .into_iter()
        // The same version maps a record the same way: only a newer one,
        // or the operator's `replay`, is worth a try (and its TAP budget).
        .filter(|record| force || record.version != env!("CARGO_PKG_VERSION"))
        .collect();
    if waiting.is_empty() {
        return Ok(());
    }
    info!(
        count = waiting.len(),
        "mapping quarantined TAP records again"
    );
    let records: Vec<QuarantinedRecord> = waiting
        .iter()
        .map(|record| QuarantinedRecord {
            section: record.section.clone(),
            raw: record.raw.clone(),
        })
        .collect();
    let settings = fetch::component_settings(pipeline, false)?;
    let prepared = &pipeline.prepared;
    let outcome = prepared
        .deadline
        .bound_preparation(
            prepared
                .runtime
                .map_records(&prepared.outbound, &settings, &records),
        )
        .await?;
    fetch::spend(pipeline, &outcome)?;
    let mut result = match outcome.answer {
        Ok(Ok(result)) => result,
        Ok(Err(error)) => {
            warn!(error = ?error, "could not map the quarantined records again; they are kept");
            return Ok(());
        }
        Err(error) => {
            warn!(error = %error, "could not map the quarantined records again; they are kept");
            return Ok(());
        }
    };
    let mut batch = take_batch(&mut result);
    pipeline.summary.clicks_linked_to_earlier_messages +=
        super::across::link_earlier_messages(&pipeline.prepared.store, &result, &mut batch)
            .map_err(Stop::from(FailureKind::Local))?;
    let report = send_again(
        pipeline,
        &batch,
        "ThreatQ could not be used to send the re-mapped quarantined records; they stay \
         quarantined",
    )
    .await?;
    let delivery = dead_letters(&report, &batch, "replay of quarantined records");
    // Matched on the record itself: `map-records` gives back the section
    // and raw text of a record it still cannot map exactly as it was given
    // (its key may differ, e.g. for a section it does not know).
    let unmapped: BTreeMap<(&str, &str), &str> = result
        .rejections
        .iter()
        .map(|r| ((r.section.as_str(), r.raw.as_str()), r.reason.as_str()))
        .collect();
    let still_unmapped = |record: &&Quarantined| {
        unmapped
            .get(&(record.section.as_str(), record.raw.as_str()))
            .copied()
    };
    let (still, remapped): (Vec<_>, Vec<_>) = waiting
        .iter()
        .partition(|record| still_unmapped(record).is_some());
    info!(
        mapped = remapped.len(),
        still_unmappable = still.len(),
        "quarantined TAP records mapped again"
    );
    pipeline.summary.redelivered += remapped.len() as u64;
    // What spans runs is kept as for a window; later verdicts in re-mapped
    // records are applied as well.
    let verdicts = super::across::apply_verdicts(
        pipeline,
        super::across::verdict_rows(&result.verdicts),
        true,
    )
    .await?;
    let across = super::across::across_commit(
        &result,
        &batch,
        delivery.refused_identities(),
        None,
        verdicts,
    );
    pipeline.commit(&Commit {
        across,
        sent: result
            .record_keys
            .iter()
            .map(|k| (k.key.clone(), k.created_ms))
            .collect(),
        dead_letters: delivery.dead_letters,
        remapped: remapped.iter().map(|record| record.id).collect(),
        still_quarantined: still
            .iter()
            .map(|record| {
                (
                    record.id,
                    still_unmapped(record).unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        ..Commit::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use threatq_client::Collection;

    fn refusal(collection: Collection, n: usize, reason: &str) -> RejectedObject {
        RejectedObject {
            collection,
            identity: format!("object {n}"),
            reason: reason.to_owned(),
            index: n,
            status: Some(422),
            relations_only: false,
        }
    }

    fn report(accepted: &[(Collection, usize)], rejected: Vec<RejectedObject>) -> ForwardReport {
        ForwardReport {
            accepted: accepted.iter().copied().collect(),
            rejected,
            ..ForwardReport::default()
        }
    }

    #[test]
    fn relations_only_refusals_are_kept_but_not_counted_as_refused_objects() {
        let batch = Batch {
            objects: vec![
                threatq_client::TqObject {
                    collection: Collection::Events,
                    value: "e".into(),
                    type_name: Some("Spearphish".into()),
                    happened_at: Some("2026-11-28 12:00:00".into()),
                    description: None,
                    attributes: Vec::new(),
                };
                2
            ],
            relations: vec![(0, 1)],
        };
        let mut rejected = refusal(Collection::Events, 0, "links refused");
        rejected.relations_only = true;
        let report = report(&[(Collection::Events, 2)], vec![rejected]);
        let delivery = dead_letters(&report, &batch, "w");
        assert_eq!(delivery.refused, 0);
        assert_eq!(delivery.dead_letters.len(), 1);
        assert!(delivery.dead_letters[0].relations_only);
        assert_eq!(delivery.dead_letters[0].batch.relations, [(0, 1)]);
    }
}
