//! The one place a [`Commit`] is built: whatever a window, a replay of dead
//! letters, a re-mapping of quarantined records or a retry of pending
//! verdicts settled becomes one store transaction here. A new table is
//! added to [`settle`] once, and every path that settles data writes it.

use tap_runtime::SyncResult;
use threatq_client::Batch;
use time::{Duration, OffsetDateTime};

use super::deliver::Delivery;
use super::enrichment;
use super::message_index;
use super::outcome::describe;
use crate::plan::Window;
use crate::state::{Commit, IndexedMessage, NewQuarantined, VerdictRow};

/// A component result and the batch forwarded from it; what ThreatQ made
/// of the batch is the [`Delivery`] given beside it.
pub(super) struct Mapped<'a> {
    pub result: &'a SyncResult,
    pub batch: &'a Batch,
}

/// What was settled, by the path that settled it.
pub(super) enum Settled<'a> {
    /// A forwarded window: its checkpoint moves to `checkpoint`.
    Window {
        window: &'a Window,
        mapped: Mapped<'a>,
        checkpoint: OffsetDateTime,
        /// Record keys older than the checkpoint minus this are forgotten.
        key_horizon: Duration,
        /// Message events older than this leave the index.
        message_horizon: Duration,
    },
    /// Quarantined records mapped again and forwarded: the ids now mapped,
    /// and those still unmappable with the component's reason.
    Remapped {
        mapped: Mapped<'a>,
        remapped: Vec<i64>,
        still_quarantined: Vec<(i64, String)>,
    },
    /// Dead letters sent again: the ids ThreatQ has now accepted, and the
    /// message events among them, for the index.
    Redelivered {
        delivered: Vec<i64>,
        messages: Vec<IndexedMessage>,
    },
    /// Verdicts of earlier runs tried again.
    PendingVerdicts,
}

/// Everything one step settled, as one commit: what the path itself
/// settled, the dead letters of what ThreatQ refused, and the verdicts
/// applied or still waiting.
pub(super) fn settle(
    settled: Settled<'_>,
    delivery: Delivery,
    verdicts: Vec<VerdictRow>,
) -> Commit {
    let mut commit = Commit {
        verdicts,
        ..Commit::default()
    };
    let mapped = match settled {
        Settled::Window {
            window,
            mapped,
            checkpoint,
            key_horizon,
            message_horizon,
        } => {
            commit.checkpoint = Some(checkpoint);
            commit.key_horizon = Some(key_horizon);
            commit.message_horizon = Some(message_horizon);
            commit.quarantined = quarantine(mapped.result, window);
            mapped
        }
        Settled::Remapped {
            mapped,
            remapped,
            still_quarantined,
        } => {
            commit.remapped = remapped;
            commit.still_quarantined = still_quarantined;
            mapped
        }
        Settled::Redelivered {
            delivered,
            messages,
        } => {
            commit.delivered = delivered;
            commit.messages = messages;
            commit.dead_letters = delivery.dead_letters;
            return commit;
        }
        Settled::PendingVerdicts => {
            commit.dead_letters = delivery.dead_letters;
            return commit;
        }
    };
    // What every forwarded result settles, whichever path mapped it: the
    // keys of its records, its accepted message events for the index, and
    // its enrichment for the ledger and the queue.
    commit.sent = mapped
        .result
        .record_keys
        .iter()
        .map(|k| (k.key.clone(), k.created_ms))
        .collect();
    commit.messages = message_index::accepted_messages(
        mapped.result,
        mapped.batch,
        delivery.refused_identities(),
    );
    let ledger = enrichment::ledger_entries(mapped.result);
    commit.enriched = ledger.enriched;
    commit.deferred = ledger.deferred;
    (commit.campaign_mentions, commit.campaigns_related) =
        enrichment::campaign_mentions(mapped.result, mapped.batch, delivery.refused_identities());
    commit.dead_letters = delivery.dead_letters;
    message_index::name_refused_messages(mapped.result, mapped.batch, &mut commit.dead_letters);
    commit
}

/// The quarantined records of a window, raw as TAP sent them.
fn quarantine(result: &SyncResult, window: &Window) -> Vec<NewQuarantined> {
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
