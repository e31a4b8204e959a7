//! `verdicts`: the last verdict applied to each indicator, so a verdict is
//! applied once, and one ThreatQ refused is tried again by every run
//! (docs/mapping.md, "Verdict changes").

use std::collections::HashMap;

use anyhow::Result;
use rusqlite::{Connection, Row, Transaction, params};

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

/// A verdict as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictRow {
    pub indicator_type: String,
    pub indicator_value: String,
    pub threat_id: String,
    /// `cleared` or `falsePositive`, as TAP spells it.
    pub status: String,
    /// ThreatQ's refusal, when the verdict could not be applied; such a
    /// verdict is tried again by later runs.
    pub error: Option<String>,
}

/// Reads the columns of [`pending`]'s `SELECT`, in its order.
fn verdict_row(row: &Row<'_>) -> rusqlite::Result<VerdictRow> {
    Ok(VerdictRow {
        indicator_type: row.get(0)?,
        indicator_value: row.get(1)?,
        threat_id: row.get(2)?,
        status: row.get(3)?,
        error: row.get(4)?,
    })
}

/// The status last applied to each of these indicators, by (type, value).
pub(in crate::state) fn applied(
    conn: &Connection,
    indicators: &[(&str, &str)],
) -> Result<HashMap<(String, String), String>> {
    let mut statement = conn.prepare(
        "SELECT status FROM verdicts
         WHERE indicator_type = ?1 AND indicator_value = ?2 AND applied_ms IS NOT NULL",
    )?;
    let mut applied = HashMap::new();
    for (type_name, value) in indicators {
        let mut rows = statement.query(params![type_name, value])?;
        if let Some(row) = rows.next()? {
            applied.insert(((*type_name).to_owned(), (*value).to_owned()), row.get(0)?);
        }
    }
    Ok(applied)
}

/// Verdicts ThreatQ refused earlier, oldest first.
pub(in crate::state) fn pending(conn: &Connection) -> Result<Vec<VerdictRow>> {
    let mut statement = conn.prepare(
        "SELECT indicator_type, indicator_value, threat_id, status, last_error FROM verdicts
         WHERE applied_ms IS NULL ORDER BY seen_ms",
    )?;
    let rows = statement.query_map([], verdict_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How many verdicts wait to be applied.
pub(in crate::state) fn count_pending(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT COUNT(*) FROM verdicts WHERE applied_ms IS NULL",
        [],
        |row| row.get(0),
    )
}

/// The commit's share: each verdict applied (or refused, with the reason)
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
                                   applied_ms, last_error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (indicator_type, indicator_value) DO UPDATE SET
                 threat_id = excluded.threat_id, status = excluded.status,
                 applied_ms = excluded.applied_ms, last_error = excluded.last_error",
        )?
        .execute(params![
            v.indicator_type,
            v.indicator_value,
            v.threat_id,
            v.status,
            at_ms,
            applied,
            v.error
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Commit, Store};
    use time::macros::datetime;

    #[test]
    fn verdicts_are_remembered_once_applied_and_kept_pending_when_refused() {
        let dir = tempfile::tempdir().unwrap();
        let t = datetime!(2026-11-28 12:00:00 UTC);
        let row = |value: &str, status: &str, error: Option<&str>| VerdictRow {
            indicator_type: "URL".into(),
            indicator_value: value.into(),
            threat_id: "t".into(),
            status: status.into(),
            error: error.map(str::to_owned),
        };
        let mut store = Store::open(dir.path()).unwrap();
        store
            .commit(
                &Commit {
                    verdicts: vec![
                        row("http://a/", "falsePositive", None),
                        row("http://b/", "cleared", Some("HTTP 422: no")),
                    ],
                    ..Commit::default()
                },
                t,
            )
            .unwrap();
        let applied = store
            .applied_verdicts(&[("URL", "http://a/"), ("URL", "http://b/")])
            .unwrap();
        assert_eq!(applied.len(), 1);
        assert_eq!(
            applied
                .get(&("URL".to_owned(), "http://a/".to_owned()))
                .map(String::as_str),
            Some("falsePositive")
        );
        assert_eq!(
            store.pending_verdicts().unwrap(),
            [row("http://b/", "cleared", Some("HTTP 422: no"))]
        );
        assert_eq!(store.state().pending_verdicts, 1);
        drop(store);
        assert_eq!(Store::open(dir.path()).unwrap().state().pending_verdicts, 1);
    }
}
