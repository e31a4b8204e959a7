//! What a run remembers for the next one, and the lock that keeps two cron
//! runs apart (docs/sync.md, "Checkpoints" and "Nothing refused is lost").
//!
//! [`State`] is the in-memory view a run works from; [`Store`] keeps it in
//! an SQLite database in the config directory and changes it only in
//! transactions, one per accepted window, so a crash at any point leaves
//! the state of the last accepted window and never a torn one.
//!
//! - `store.rs`: opening the database (integrity check, schema set-up and
//!   upgrade), [`Store::commit`] and [`Store::spend`], the reads;
//! - `tables/`: one module per table, each with its rows, its reads and
//!   its share of a commit: the checkpoint (`meta`), the keys of TAP
//!   records already forwarded inside the overlap (`sent_keys`), the TAP
//!   requests behind the rolling 24-hour budgets (`tap_requests`), the dead
//!   letters (objects ThreatQ refused, with its answer, to be sent again),
//!   the quarantine (TAP records the component could not map, kept raw),
//!   the message index, the enrichment ledger and queue, and the verdicts
//!   applied;
//! - `legacy.rs`: the JSON state file of earlier versions, migrated once;
//! - `lock.rs`: the run lock;
//! - here: [`State`], the [`Budgets`] of each TAP [`Pool`] and what a call
//!   may spend of them.

mod legacy;
mod lock;
mod store;
mod tables;

use std::collections::BTreeMap;

use time::{Duration, OffsetDateTime};

pub use lock::{LOCK_FILE_NAME, LockAttempt, LockHolder, RunLock};
pub use store::{STATE_DB_NAME, Store};
pub use tables::dead_letters::{DeadLetter, NewDeadLetter};
pub use tables::enrichment::{Enriched, EnrichmentPlan, Owed, Refresh};
pub use tables::message_index::IndexedMessage;
pub use tables::people::{ListedAddress, PeopleKind, PeopleState, PeopleUpdate, StoredPeople};
pub use tables::quarantine::{NewQuarantined, Quarantined};
pub use tables::verdicts::VerdictRow;
pub use tables::{Commit, Entry};
// The pools are defined where the outbound hook counts requests by them;
// the budgets here spend what it counted, under the same type.
pub use tap_runtime::Pool;

/// The JSON state file of versions before the database; migrated once.
pub const LEGACY_STATE_FILE_NAME: &str = "tq-conn-proofpoint-tap.state.json";
const BUDGET_PERIOD: Duration = Duration::hours(24);

/// Requests made in each pool over the last 24 hours.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Budgets {
    /// (Unix ms, how many requests at that time), oldest first.
    requests: BTreeMap<Pool, Vec<(i64, u32)>>,
    /// Daily limits set by the config instead of [`Pool::daily_limit`].
    limits: BTreeMap<Pool, u32>,
}

impl Budgets {
    /// Holds `pool` to `limit` requests in any 24 hours.
    pub fn set_limit(&mut self, pool: Pool, limit: u32) {
        self.limits.insert(pool, limit);
    }

    /// The requests `pool` allows in any 24 hours.
    pub fn limit(&self, pool: Pool) -> u32 {
        self.limits
            .get(&pool)
            .copied()
            .unwrap_or_else(|| pool.daily_limit())
    }

    pub fn record(&mut self, pool: Pool, at: OffsetDateTime, count: u32) {
        if count > 0 {
            self.requests
                .entry(pool)
                .or_default()
                .push((unix_ms(at), count));
        }
    }

    /// Requests left in `pool` at `now`.
    pub fn remaining(&self, pool: Pool, now: OffsetDateTime) -> u32 {
        let cutoff = unix_ms(now - BUDGET_PERIOD);
        let used: u64 = self.requests.get(&pool).map_or(0, |times| {
            times
                .iter()
                .filter(|(at, _)| *at > cutoff)
                .map(|(_, count)| u64::from(*count))
                .sum()
        });
        self.limit(pool)
            .saturating_sub(u32::try_from(used).unwrap_or(u32::MAX))
    }

    /// When the oldest counted request of `pool` leaves the 24-hour window.
    pub fn next_release(&self, pool: Pool, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let cutoff = unix_ms(now - BUDGET_PERIOD);
        self.requests
            .get(&pool)?
            .iter()
            .map(|(at, _)| *at)
            .filter(|at| *at > cutoff)
            .min()
            .map(|oldest| from_unix_ms(oldest) + BUDGET_PERIOD)
    }

    /// Forgets requests older than 24 hours.
    pub fn prune(&mut self, now: OffsetDateTime) {
        let cutoff = unix_ms(now - BUDGET_PERIOD);
        for times in self.requests.values_mut() {
            times.retain(|(at, _)| *at > cutoff);
        }
    }

    /// Every (pool, Unix ms, count) entry, for the store.
    fn entries(&self) -> impl Iterator<Item = (Pool, i64, u32)> + '_ {
        self.requests
            .iter()
            .flat_map(|(pool, times)| times.iter().map(|(at, count)| (*pool, *at, *count)))
    }
}

/// The run state as a run works from it; see the module doc.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    /// `queryEndTime` of the last window ThreatQ accepted.
    pub checkpoint: Option<OffsetDateTime>,
    /// Keys of TAP records already forwarded, with TAP's creation time
    /// (Unix ms), kept while they can still come back in an overlap.
    pub sent: BTreeMap<String, i64>,
    pub budgets: Budgets,
    /// How many dead letters and quarantined records are waiting.
    pub dead_letters: u64,
    pub quarantined: u64,
    /// Campaigns and threats waiting for enrichment budget.
    pub enrichment_queue: u64,
    /// Verdicts ThreatQ refused, tried again by every run.
    pub pending_verdicts: u64,
}

impl State {
    /// The checkpoint after accepting a window that ended at `query_end`:
    /// it never moves backwards.
    pub fn advanced_checkpoint(&self, query_end: OffsetDateTime) -> OffsetDateTime {
        match self.checkpoint {
            Some(old) if old > query_end => old,
            _ => query_end,
        }
    }

    /// The keys to hand the component so the overlap sends nothing twice.
    pub fn sent_keys(&self) -> Vec<String> {
        self.sent.keys().cloned().collect()
    }

    /// Everything the store holds that the run has not delivered.
    pub fn undelivered(&self) -> u64 {
        self.dead_letters + self.quarantined
    }
}

/// What a window may spend of each TAP pool, from the rolling budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowances {
    pub siem: u32,
    /// Campaign look-ups, each followed by a forensics-by-campaign request:
    /// the smaller of the two pools.
    pub campaigns: u32,
    pub threat_forensics: u32,
    pub threat_summaries: u32,
    /// Pages of each people list.
    pub people_vap: u32,
    pub people_top_clickers: u32,
}

impl State {
    /// Requests left in every pool at `now`, and its daily limit, for the
    /// summary.
    pub fn budgets_left(&self, now: OffsetDateTime) -> BTreeMap<Pool, (u32, u32)> {
        Pool::ALL
            .into_iter()
            .map(|pool| {
                (
                    pool,
                    (self.budgets.remaining(pool, now), self.budgets.limit(pool)),
                )
            })
            .collect()
    }

    /// What the next call may spend. Threats are served in time order,
    /// first come first served, out of what is left: the result then does
    /// not depend on where a run was cut into windows or interrupted (a
    /// share per window would pick different threats).
    pub fn allowances(&self, now: OffsetDateTime) -> Allowances {
        Allowances {
            siem: self.budgets.remaining(Pool::Siem, now),
            campaigns: self
                .budgets
                .remaining(Pool::Campaign, now)
                .min(self.budgets.remaining(Pool::CampaignForensics, now)),
            threat_forensics: self.budgets.remaining(Pool::ThreatForensics, now),
            threat_summaries: self.budgets.remaining(Pool::ThreatSummary, now),
            people_vap: self.budgets.remaining(Pool::PeopleVap, now),
            people_top_clickers: self.budgets.remaining(Pool::PeopleTopClickers, now),
        }
    }
}

pub fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub fn from_unix_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn budget_counts_only_the_last_24_hours() {
        let now = datetime!(2026-11-28 12:00:00 UTC);
        let mut b = Budgets::default();
        b.record(Pool::ThreatForensics, now - Duration::hours(25), 10);
        b.record(Pool::ThreatForensics, now - Duration::hours(1), 30);
        assert_eq!(b.remaining(Pool::ThreatForensics, now), 20);
        assert_eq!(b.remaining(Pool::Siem, now), 1800);
        assert_eq!(
            b.next_release(Pool::ThreatForensics, now),
            Some(now + Duration::hours(23))
        );
        b.prune(now);
        assert_eq!(
            b.requests[&Pool::ThreatForensics],
            [(unix_ms(now) - 3_600_000, 30)]
        );
    }

    #[test]
    fn the_checkpoint_never_moves_backwards() {
        let t = datetime!(2026-11-28 12:00:00 UTC);
        let state = State {
            checkpoint: Some(t),
            ..State::default()
        };
        assert_eq!(state.advanced_checkpoint(t - Duration::hours(1)), t);
        assert_eq!(
            state.advanced_checkpoint(t + Duration::hours(1)),
            t + Duration::hours(1)
        );
    }
}
