//! The state database's tables, one module each: its rows, its reads, the
//! writes a commit makes to it and its `CREATE` statements. `store.rs`
//! creates them in the order of [`SCHEMA_V1`] to [`SCHEMA_V4`], and
//! [`Store::commit`](super::Store::commit) writes a [`Commit`] by calling
//! each module's write in one transaction.
//!
//! - [`meta`]: the checkpoint (docs/sync.md, "Checkpoints");
//! - [`sent_keys`]: keys of TAP records already forwarded, kept while an
//!   overlap can bring them back ("Sent-record keys");
//! - [`tap_requests`]: every TAP request made, by pool: the rows behind the
//!   rolling 24-hour budgets ("TAP budgets and pools");
//! - [`dead_letters`]: objects ThreatQ refused, to be sent again, and
//!   [`quarantine`]: TAP records the component could not map, kept raw
//!   ("Nothing refused is lost");
//! - [`message_index`]: each forwarded message event by GUID, so a later
//!   click is related to it ("The message index");
//! - [`enrichment`]: when each campaign and threat was last enriched (the
//!   ledger), and what an allowance could not cover (the queue) ("The
//!   enrichment ledger and queue");
//! - [`campaign_mentions`]: objects naming a campaign not yet fetched, to
//!   relate to it once it is (same section);
//! - [`people`]: TAP's Very Attacked People and top clickers as last read
//!   ("People lists");
//! - [`verdicts`]: TAP's latest verdict on each indicator, applied or
//!   waiting, and the status applying it set (docs/mapping.md, "Verdict
//!   changes").
//!
//! The per-row statements of a commit are `prepare_cached`: a first run's
//! window writes thousands of sent keys and message-index rows, and
//! `execute` would parse and plan the same SQL again for each of them.
//! rusqlite's cache keeps 16 statements; a commit uses 14 and a spend one
//! more, so a new per-row statement past that evicts one the next window
//! needs.

pub(super) mod campaign_mentions;
pub(super) mod dead_letters;
pub(super) mod enrichment;
pub(super) mod message_index;
pub(super) mod meta;
pub(super) mod people;
pub(super) mod quarantine;
pub(super) mod sent_keys;
pub(super) mod tap_requests;
pub(super) mod verdicts;

use rusqlite::Connection;
use threatq_client::TqObject;
use time::{Duration, OffsetDateTime};

use super::State;

use dead_letters::NewDeadLetter;
use enrichment::{Enriched, Owed};
use message_index::IndexedMessage;
use quarantine::NewQuarantined;
use verdicts::VerdictRow;

/// Schema version 1, in the order its tables were always created (the
/// order decides where SQLite puts them in the file).
pub(super) const SCHEMA_V1: [&str; 5] = [
    meta::SCHEMA,
    sent_keys::SCHEMA,
    tap_requests::SCHEMA,
    dead_letters::SCHEMA,
    quarantine::SCHEMA,
];
/// What schema version 2 adds: the tables that span windows and runs.
pub(super) const SCHEMA_V2: [&str; 3] =
    [message_index::SCHEMA, enrichment::SCHEMA, verdicts::SCHEMA];
/// What schema version 3 adds: the verdicts' time, the status they set and
/// their retry counts, a dead letter's message GUID, and the campaign
/// mentions.
pub(super) const SCHEMA_V3: [&str; 3] = [
    verdicts::SCHEMA_V3,
    dead_letters::SCHEMA_V3,
    campaign_mentions::SCHEMA,
];

/// What schema version 4 adds: the indicator of a queued summary, and the
/// people lists.
pub(super) const SCHEMA_V4: [&str; 2] = [enrichment::SCHEMA_V4, people::SCHEMA];

/// Everything one window or one replay settles, written in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// The window's `queryEndTime`; none leaves the checkpoint where it is.
    pub checkpoint: Option<OffsetDateTime>,
    /// Keys of the TAP records forwarded, with their creation time (ms).
    pub sent: Vec<(String, i64)>,
    /// Keys older than the checkpoint minus this are forgotten.
    pub key_horizon: Option<Duration>,
    /// Objects ThreatQ refused. A letter refused again comes back here and
    /// merges into its row (attempts + 1, ThreatQ's latest answer).
    pub dead_letters: Vec<NewDeadLetter>,
    /// Dead letters ThreatQ has now accepted.
    pub delivered: Vec<i64>,
    pub quarantined: Vec<NewQuarantined>,
    /// Quarantined records that have now been mapped (and forwarded).
    pub remapped: Vec<i64>,
    /// Quarantined records tried again and still not mappable: (id, reason).
    pub still_quarantined: Vec<(i64, String)>,
    /// Accepted message events for the message index: those ThreatQ
    /// accepted in this window.
    pub messages: Vec<IndexedMessage>,
    /// Index entries older than this are forgotten.
    pub message_horizon: Option<Duration>,
    /// Enrichment ledger: (kind, id, name) fetched now; the name is a
    /// campaign's, else empty.
    pub enriched: Vec<(Enriched, String, String)>,
    /// Enrichment queue: what was needed but not fetched, deferred to
    /// later calls.
    pub deferred: Vec<Owed>,
    /// Verdicts applied, or waiting with the reason.
    pub verdicts: Vec<VerdictRow>,
    /// Objects ThreatQ accepted that name a campaign not fetched yet:
    /// (campaign id, the object's bare identity).
    pub campaign_mentions: Vec<(String, TqObject)>,
    /// Campaigns fetched now, whose kept mentions the batch related.
    pub campaigns_related: Vec<String>,
}

/// One entry an operator names: `d12` for dead letter 12, `q3` for
/// quarantined record 3 (as `replay --list` prints them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    DeadLetter(i64),
    Quarantined(i64),
}

impl std::str::FromStr for Entry {
    type Err = String;

    fn from_str(text: &str) -> Result<Entry, String> {
        let bad = || {
            format!(
                "'{text}' is not an entry: write d<number> for a dead letter or q<number> for a \
                 quarantined record, as `replay --list` shows them"
            )
        };
        let (kind, number) = text.split_at_checked(1).ok_or_else(bad)?;
        let id: i64 = number.parse().map_err(|_| bad())?;
        match kind {
            "d" | "D" => Ok(Entry::DeadLetter(id)),
            "q" | "Q" => Ok(Entry::Quarantined(id)),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::DeadLetter(id) => write!(f, "d{id}"),
            Entry::Quarantined(id) => write!(f, "q{id}"),
        }
    }
}

/// The state as the tables hold it.
pub(super) fn read_state(conn: &Connection) -> rusqlite::Result<State> {
    let mut state = State {
        checkpoint: meta::checkpoint(conn)?,
        sent: sent_keys::read(conn)?,
        budgets: tap_requests::read(conn)?,
        ..State::default()
    };
    (state.dead_letters, state.quarantined) = undelivered(conn)?;
    (state.enrichment_queue, state.pending_verdicts) = waiting(conn)?;
    Ok(state)
}

/// (dead letters, quarantined records).
pub(super) fn undelivered(conn: &Connection) -> rusqlite::Result<(u64, u64)> {
    Ok((dead_letters::count(conn)?, quarantine::count(conn)?))
}

/// (queued enrichments, verdicts waiting to be applied).
pub(super) fn waiting(conn: &Connection) -> rusqlite::Result<(u64, u64)> {
    Ok((
        enrichment::count_queued(conn)?,
        verdicts::count_pending(conn)?,
    ))
}

/// Removes the row `entry` names; returns whether it existed.
pub(super) fn discard(conn: &Connection, entry: Entry) -> rusqlite::Result<bool> {
    let removed = match entry {
        Entry::DeadLetter(id) => dead_letters::remove(conn, id)?,
        Entry::Quarantined(id) => quarantine::remove(conn, id)?,
    };
    Ok(removed > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_as_replay_lists_them() {
        assert_eq!("d12".parse(), Ok(Entry::DeadLetter(12)));
        assert_eq!("q3".parse(), Ok(Entry::Quarantined(3)));
        assert!("x3".parse::<Entry>().is_err());
        assert!("d".parse::<Entry>().is_err());
        assert_eq!(Entry::DeadLetter(7).to_string(), "d7");
    }
}
