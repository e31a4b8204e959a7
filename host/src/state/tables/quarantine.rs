//! `quarantine`: TAP records the component could not map, kept exactly as
//! TAP sent them and mapped again by later runs (docs/sync.md, "Nothing
//! refused is lost").

use std::path::Path;

use anyhow::Result;
use rusqlite::{Connection, Row, Transaction, params};
use time::OffsetDateTime;

use crate::state::from_unix_ms;
use crate::state::store::damaged;

pub(in crate::state) const SCHEMA: &str = "
CREATE TABLE quarantine (
    id            INTEGER PRIMARY KEY,
    record_key    TEXT NOT NULL UNIQUE,
    section       TEXT NOT NULL,
    raw           TEXT NOT NULL,
    reason        TEXT NOT NULL,
    window        TEXT NOT NULL,
    version       TEXT NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_tried_ms INTEGER NOT NULL,
    attempts      INTEGER NOT NULL
);
";

/// A TAP record the component could not map, kept as TAP sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Quarantined {
    pub id: i64,
    /// The component's name for the record (`message GUID=... id=...`).
    pub record_key: String,
    /// The SIEM array it came from (`messagesDelivered`, ...).
    pub section: String,
    /// The record's JSON exactly as TAP sent it.
    pub raw: String,
    pub reason: String,
    pub window: String,
    /// The connector version that last tried to map it: a later version
    /// tries again by itself.
    pub version: String,
    pub first_seen: OffsetDateTime,
    pub last_tried: OffsetDateTime,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewQuarantined {
    pub record_key: String,
    pub section: String,
    pub raw: String,
    pub reason: String,
    pub window: String,
}

/// Reads the columns of [`read_all`]'s `SELECT`, in its order.
fn quarantined(row: &Row<'_>) -> rusqlite::Result<Quarantined> {
    Ok(Quarantined {
        id: row.get(0)?,
        record_key: row.get(1)?,
        section: row.get(2)?,
        raw: row.get(3)?,
        reason: row.get(4)?,
        window: row.get(5)?,
        version: row.get(6)?,
        first_seen: from_unix_ms(row.get(7)?),
        last_tried: from_unix_ms(row.get(8)?),
        attempts: row.get(9)?,
    })
}

/// Every quarantined record, oldest first, from the database at `path`.
pub(in crate::state) fn read_all(conn: &Connection, path: &Path) -> Result<Vec<Quarantined>> {
    let mut statement = conn
        .prepare(
            "SELECT id, record_key, section, raw, reason, window, version,
                    first_seen_ms, last_tried_ms, attempts
             FROM quarantine ORDER BY id",
        )
        .map_err(|e| damaged(path, &e))?;
    let rows = statement
        .query_map([], quarantined)
        .map_err(|e| damaged(path, &e))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| damaged(path, &e))
}

pub(in crate::state) fn count(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT COUNT(*) FROM quarantine", [], |row| row.get(0))
}

/// Removes one record; returns how many rows went (0 or 1).
pub(in crate::state) fn remove(conn: &Connection, id: i64) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM quarantine WHERE id = ?1")?
        .execute([id])
}

/// The commit's share: records now mapped go, records tried again and
/// still unmappable keep their row with the new reason, and new records
/// are kept (one row per record key: a record quarantined again counts
/// one more attempt). Each row notes this connector's version.
pub(in crate::state) fn write(
    tx: &Transaction<'_>,
    remapped: &[i64],
    still_quarantined: &[(i64, String)],
    quarantined: &[NewQuarantined],
    at_ms: i64,
) -> rusqlite::Result<()> {
    for id in remapped {
        remove(tx, *id)?;
    }
    for (id, reason) in still_quarantined {
        tx.prepare_cached(
            "UPDATE quarantine SET reason = ?2, version = ?3, last_tried_ms = ?4,
                    attempts = attempts + 1
             WHERE id = ?1",
        )?
        .execute(params![id, reason, env!("CARGO_PKG_VERSION"), at_ms])?;
    }
    for record in quarantined {
        tx.prepare_cached(
            "INSERT INTO quarantine (record_key, section, raw, reason, window, version,
                                     first_seen_ms, last_tried_ms, attempts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, 1)
             ON CONFLICT (record_key) DO UPDATE SET
                 raw = excluded.raw, reason = excluded.reason, version = excluded.version,
                 last_tried_ms = excluded.last_tried_ms, attempts = attempts + 1",
        )?
        .execute(params![
            record.record_key,
            record.section,
            record.raw,
            record.reason,
            record.window,
            env!("CARGO_PKG_VERSION"),
            at_ms
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Commit, Entry, Store};
    use time::macros::datetime;

    #[test]
    fn a_quarantined_record_is_kept_raw_and_can_be_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let t = datetime!(2026-11-28 12:00:00 UTC);
        let mut store = Store::open(dir.path()).unwrap();
        let raw = r#"{"GUID": "g", "messageTime": "not a time"}"#;
        let record = NewQuarantined {
            record_key: "message GUID=g".into(),
            section: "messagesDelivered".into(),
            raw: raw.into(),
            reason: "messageTime is not a time".into(),
            window: "w".into(),
        };
        store
            .commit(
                &Commit {
                    quarantined: vec![record.clone(), record],
                    ..Commit::default()
                },
                t,
            )
            .unwrap();
        let kept = store.quarantined().unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].raw, raw);
        assert_eq!(kept[0].version, env!("CARGO_PKG_VERSION"));
        assert!(store.discard(Entry::Quarantined(kept[0].id)).unwrap());
        assert!(!store.discard(Entry::Quarantined(kept[0].id)).unwrap());
        assert_eq!(store.state().quarantined, 0);
    }
}
