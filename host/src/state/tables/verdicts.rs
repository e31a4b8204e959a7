//! `verdicts`: TAP's latest verdict on each indicator, applied or waiting,
//! with what applying it did to the indicator's status, so a verdict is
//! applied once, a later one replaces it, and one not yet applied is tried
//! again by the next run (docs/mapping.md, "Verdict changes").

use std::collections::{HashMap, HashSet};

use anyhow::Result;
use rusqlite::{Connection, Row, Transaction, params};
use time::OffsetDateTime;

use crate::state::{from_unix_ms, unix_ms};

pub(in crate::state) const SCHEMA: &str = "
CREATE TABLE verdicts (
    indicator_type  TEXT NOT NULL,
    indicator_value TEXT NOT NULL,
    threat_id       TEXT NOT NULL,
    status          TEXT NOT NULL,
    seen_ms         INTEGER NOT NULL,
    applied_ms      INTEGER,
    last_error      TEXT,
    PRIMARY KEY (indicator_type, indicator_value)
);
";

/// What schema version 3 adds: when TAP gave the verdict, so an older word
/// never replaces a newer one (0 for rows written before: any verdict is
/// later), the status this connector set on the indicator for it
/// (unknown, so none, for rows written before), and for a verdict that
/// waits, how often it was tried and since when it waits, for the retry
/// limits (`[run] retry_max_attempts`, `retry_max_age_days`).
pub(in crate::state) const SCHEMA_V3: &str = "
ALTER TABLE verdicts ADD COLUMN verdict_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE verdicts ADD COLUMN status_set TEXT;
ALTER TABLE verdicts ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE verdicts ADD COLUMN waiting_since_ms INTEGER;
";

/// A verdict as the store keeps it: TAP's latest on the indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictRow {
    pub indicator_type: String,
    pub indicator_value: String,
    pub threat_id: String,
    /// `active`, `cleared` or `falsePositive`, as TAP spells it.
    pub status: String,
    /// When TAP gave it (Unix ms: the threat's `threatTime`).
    pub verdict_ms: i64,
    /// The status this connector moved the indicator to for a false
    /// positive and has not moved back: when TAP calls the threat active or
    /// cleared again, an indicator that still has it returns to the
    /// connector's own status.
    pub status_set: Option<String>,
    /// Why the verdict is not applied yet (ThreatQ's refusal, an answer we
    /// cannot read, a dead letter not yet delivered, the run's deadline);
    /// such a verdict is tried again by later runs.
    pub error: Option<String>,
    /// How often a waiting verdict was tried and left waiting (a run the
    /// deadline cut off before it does not count); 0 once applied.
    pub attempts: u32,
    /// Since when it waits; `None` for an applied verdict, and for a new
    /// one, which the store gives the time of the commit that first keeps
    /// it waiting.
    pub waiting_since: Option<OffsetDateTime>,
}

const COLUMNS: &str = "indicator_type, indicator_value, threat_id, status, verdict_ms, \
                       status_set, last_error, attempts, waiting_since_ms";

/// Reads the [`COLUMNS`] of a `SELECT`, in their order.
fn verdict_row(row: &Row<'_>) -> rusqlite::Result<VerdictRow> {
    Ok(VerdictRow {
        indicator_type: row.get(0)?,
        indicator_value: row.get(1)?,
        threat_id: row.get(2)?,
        status: row.get(3)?,
        verdict_ms: row.get(4)?,
        status_set: row.get(5)?,
        error: row.get(6)?,
        attempts: row.get(7)?,
        waiting_since: row.get::<_, Option<i64>>(8)?.map(from_unix_ms),
    })
}

/// The latest verdict held for each of these indicators, applied or not,
/// by (type, value).
pub(in crate::state) fn latest(
    conn: &Connection,
    indicators: &[(&str, &str)],
) -> Result<HashMap<(String, String), VerdictRow>> {
    let mut statement = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM verdicts WHERE indicator_type = ?1 AND indicator_value = ?2"
    ))?;
    let mut latest = HashMap::new();
    for (type_name, value) in indicators {
        let mut rows = statement.query_map(params![type_name, value], verdict_row)?;
        if let Some(row) = rows.next() {
            latest.insert(((*type_name).to_owned(), (*value).to_owned()), row?);
        }
    }
    Ok(latest)
}

/// Verdicts not applied yet, oldest first.
pub(in crate::state) fn pending(conn: &Connection) -> Result<Vec<VerdictRow>> {
    let mut statement = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM verdicts WHERE applied_ms IS NULL ORDER BY seen_ms"
    ))?;
    let rows = statement.query_map([], verdict_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Which of these indicator identities (as `dead_letters.identity` holds
/// an indicator: `<value> (<type>)`) are dead letters: a verdict for one
/// waits until the letter is delivered.
pub(in crate::state) fn dead_lettered(
    conn: &Connection,
    identities: &[String],
) -> Result<HashSet<String>> {
    let mut statement = conn.prepare(
        "SELECT 1 FROM dead_letters
         WHERE collection = 'indicators' AND identity = ?1 AND relations_only = 0",
    )?;
    let mut held = HashSet::new();
    for identity in identities {
        if statement.exists(params![identity])? {
            held.insert(identity.clone());
        }
    }
    Ok(held)
}

/// How many verdicts wait to be applied.
pub(in crate::state) fn count_pending(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT COUNT(*) FROM verdicts WHERE applied_ms IS NULL",
        [],
        |row| row.get(0),
    )
}

/// The commit's share: each verdict (applied, or waiting with the reason)
/// replaces the indicator's last one.
pub(in crate::state) fn write(
    tx: &Transaction<'_>,
    verdicts: &[VerdictRow],
    at_ms: i64,
) -> rusqlite::Result<()> {
    for v in verdicts {
        let applied = v.error.is_none().then_some(at_ms);
        tx.prepare_cached(
            "INSERT INTO verdicts (indicator_type, indicator_value, threat_id, status, seen_ms,
                                   applied_ms, last_error, verdict_ms, status_set, attempts,
                                   waiting_since_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (indicator_type, indicator_value) DO UPDATE SET
                 threat_id = excluded.threat_id, status = excluded.status,
                 applied_ms = excluded.applied_ms, last_error = excluded.last_error,
                 verdict_ms = excluded.verdict_ms, status_set = excluded.status_set,
                 attempts = excluded.attempts, waiting_since_ms = excluded.waiting_since_ms",
        )?
        .execute(params![
            v.indicator_type,
            v.indicator_value,
            v.threat_id,
            v.status,
            at_ms,
            applied,
            v.error,
            v.verdict_ms,
            v.status_set,
            if v.error.is_some() { v.attempts } else { 0 },
            v.error
                .as_ref()
                .map(|_| v.waiting_since.map_or(at_ms, unix_ms)),
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Commit, Store};
    use time::macros::datetime;

    fn row(value: &str, status: &str, verdict_ms: i64, error: Option<&str>) -> VerdictRow {
        VerdictRow {
            indicator_type: "URL".into(),
            indicator_value: value.into(),
            threat_id: "t".into(),
            status: status.into(),
            verdict_ms,
            status_set: None,
            error: error.map(str::to_owned),
            attempts: 0,
            waiting_since: None,
        }
    }

    #[test]
    fn the_latest_verdict_per_indicator_is_kept_applied_or_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let t = datetime!(2026-11-28 12:00:00 UTC);
        let mut store = Store::open(dir.path()).unwrap();
        let whitelisted = VerdictRow {
            status_set: Some("Whitelisted".into()),
            ..row("http://a/", "falsePositive", 10, None)
        };
        store
            .commit(
                &Commit {
                    verdicts: vec![
                        whitelisted.clone(),
                        row("http://b/", "cleared", 20, Some("HTTP 422: no")),
                    ],
                    ..Commit::default()
                },
                t,
            )
            .unwrap();
        let latest = store
            .latest_verdicts(&[
                ("URL", "http://a/"),
                ("URL", "http://b/"),
                ("URL", "http://c/"),
            ])
            .unwrap();
        assert_eq!(latest.len(), 2);
        let key = |value: &str| ("URL".to_owned(), value.to_owned());
        assert_eq!(latest[&key("http://a/")], whitelisted);
        // A verdict that waits waits since the commit that kept it.
        let waiting = VerdictRow {
            waiting_since: Some(t),
            ..row("http://b/", "cleared", 20, Some("HTTP 422: no"))
        };
        assert_eq!(latest[&key("http://b/")], waiting);
        assert_eq!(
            store.pending_verdicts().unwrap(),
            std::slice::from_ref(&waiting)
        );

        // Tried again and still waiting: one more attempt, the same start.
        let again = VerdictRow {
            attempts: 1,
            ..waiting.clone()
        };
        store
            .commit(
                &Commit {
                    verdicts: vec![again.clone()],
                    ..Commit::default()
                },
                t + time::Duration::hours(1),
            )
            .unwrap();
        assert_eq!(store.pending_verdicts().unwrap(), [again]);
        assert_eq!(store.state().pending_verdicts, 1);

        // A later verdict replaces the row, status set and all.
        store
            .commit(
                &Commit {
                    verdicts: vec![row("http://a/", "active", 30, None)],
                    ..Commit::default()
                },
                t,
            )
            .unwrap();
        let latest = store.latest_verdicts(&[("URL", "http://a/")]).unwrap();
        assert_eq!(
            latest[&key("http://a/")],
            row("http://a/", "active", 30, None)
        );
        drop(store);
        assert_eq!(Store::open(dir.path()).unwrap().state().pending_verdicts, 1);
    }
}
