//! Step 3b, and step 2's sending: delivering to ThreatQ so that nothing refused is
//! lost (docs/sync.md, "Nothing refused is lost").
//!
//! - Each object ThreatQ refuses (for any reason but authentication; the
//!   client isolates it by bisection) becomes a dead letter in the same
//!   transaction as the window's checkpoint, with ThreatQ's answer.
//! - Refusals that are systemic (eight or more of the window's new data
//!   refused one by one, and nothing stored: `SystemicRule`) are a setting
//!   or a rule on ThreatQ's side, not bad data: the window fails and keeps
//!   its checkpoint. Anything less is kept as dead letters, so refusals an
//!   attacker can cause by email never stop the feed.
//! - TAP records the component could not map are quarantined, raw.
//! - Every run first sends the dead letters again, and re-maps quarantined
//!   records when this is a newer version than the one that quarantined
//!   them (`replay` does both on demand).

use std::collections::BTreeSet;

use anyhow::anyhow;
use threatq_client::{
    Batch, Client, ForwardOptions, ForwardReport, ObjectKey, RejectedObject, SystemicRule,
    ThreatqError,
};
use tracing::{info, warn};

use super::limits::Deadline;
use super::outcome::{FailureKind, Position, Stop};
use crate::batch;
use crate::state::{DeadLetter, NewDeadLetter};

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

/// Forwards one window's batch, within the run's deadline. Its first `own`
/// objects are the window's new data; what follows are earlier message
/// events sent again only to carry a click's relation.
pub(super) async fn forward(
    threatq: &Client,
    options: &ForwardOptions,
    deadline: &Deadline,
    batch: &Batch,
    own: usize,
    at: &Position<'_>,
) -> Result<Delivery, Stop> {
    let answer = deadline.bound(at, threatq.forward(batch, options)).await?;
    let context = || {
        format!(
            "ThreatQ did not accept window {}; the checkpoint stays at {}",
            at.window(),
            at.checkpoint()
        )
    };
    let report = answer.map_err(|e| forward_failure(e).context(context()))?;
    if let Some(why) = judge_new_data(&report, own) {
        return Err(Stop::Failed(
            FailureKind::Refused,
            anyhow!(
                "{why}: that is a setting or a rule on ThreatQ's side, not bad data, so window {} \
                 is not committed and the checkpoint stays at {}. Fix the cause (the answer is \
                 quoted above); the next run sends the window again",
                at.window(),
                at.checkpoint()
            ),
        ));
    }
    Ok(dead_letters(&report, batch, &at.window()))
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

/// Whether a window's refusals are systemic, judged on its new data only
/// (the first `own` objects of its batch), by the one rule. What ThreatQ
/// stored counts whole: an earlier event sent again and stored shows as
/// well as a new object that ThreatQ does not refuse everything.
fn judge_new_data(report: &ForwardReport, own: usize) -> Option<String> {
    let new_data = ForwardReport {
        accepted: report.accepted.clone(),
        rejected: report
            .rejected
            .iter()
            .filter(|r| r.index < own)
            .cloned()
            .collect(),
        ..ForwardReport::default()
    };
    SystemicRule::DEFAULT.judge(&new_data, own)
}

/// A dead letter for each refusal in `report`, logged with ThreatQ's answer.
pub(super) fn dead_letters(report: &ForwardReport, batch: &Batch, window: &str) -> Delivery {
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
            // Known to the path that mapped the batch: `settle` names it.
            message_guid: None,
        });
    }
    delivery
}

/// What sending the dead letters again came to.
pub(super) struct Redelivered {
    /// The ids of the letters ThreatQ has now accepted.
    pub delivered: Vec<i64>,
    /// What it refused again, as new letters that merge into their rows.
    pub delivery: Delivery,
}

/// Sends dead letters of earlier runs again, as one batch, within
/// `deadline` (a scheduled run's share for what earlier runs left). Their
/// refusals are never taken as systemic: each was refused alone before, and
/// what is refused again stays a dead letter with ThreatQ's new answer, so a
/// body a firewall refuses on every run cannot stop the feed. An error
/// (ThreatQ could not be used for the batch, or did not answer in time)
/// leaves every letter of the batch as it was: the caller keeps them with
/// one more attempt ([`tried_again`]) and goes on to the windows.
pub(super) async fn redeliver(
    threatq: &Client,
    options: &ForwardOptions,
    deadline: &Deadline,
    letters: &[DeadLetter],
) -> anyhow::Result<Redelivered> {
    let mut merged = Batch::default();
    for letter in letters {
        batch::merge(&mut merged, &letter.batch);
    }
    let report = deadline
        .within(threatq.forward_under(&merged, options, SystemicRule::OFF))
        .await
        .ok_or_else(|| anyhow!("ThreatQ did not answer within the time the replay may take"))??;
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
    Ok(Redelivered {
        delivered,
        delivery,
    })
}

/// The letters of a batch [`redeliver`] could not send, kept as they were
/// with one more attempt and `why` as their latest answer, so the retry
/// limits see them tried.
pub(super) fn tried_again(letters: &[DeadLetter], why: &str) -> Delivery {
    Delivery {
        dead_letters: letters
            .iter()
            .map(|letter| NewDeadLetter {
                collection: letter.collection,
                identity: letter.identity.clone(),
                relations_only: letter.relations_only,
                status: letter.status,
                reason: why.to_owned(),
                batch: letter.batch.clone(),
                window: letter.window.clone(),
                message_guid: letter.message_guid.clone(),
            })
            .collect(),
        ..Delivery::default()
    }
}

/// Forwards what an earlier run left (dead letters, re-mapped records),
/// within the run's deadline; `failed` says what a failure leaves behind.
pub(super) async fn send_again(
    threatq: &Client,
    options: &ForwardOptions,
    deadline: &Deadline,
    batch: &Batch,
    failed: &str,
) -> Result<ForwardReport, Stop> {
    deadline
        .bound_preparation(threatq.forward(batch, options))
        .await?
        .map_err(|e| forward_failure(e).context(failed.to_owned()))
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
