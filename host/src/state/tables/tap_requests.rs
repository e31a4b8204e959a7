//! `tap_requests`: the TAP requests this connector made, by pool, time and
//! count: the rows behind the rolling 24-hour budgets (docs/sync.md, "TAP
//! budgets and pools"). Written as soon as a call returns, not by the
//! window's commit: a request spends budget whether or not its window is
//! ever accepted.

use rusqlite::{Connection, Row, Transaction, params};
use tap_runtime::RequestCounts;

use crate::state::{Budgets, Pool, from_unix_ms};

pub(in crate::state) const SCHEMA: &str = "
CREATE TABLE tap_requests (
    pool  TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    count INTEGER NOT NULL
);
CREATE INDEX tap_requests_at ON tap_requests (at_ms);
";

/// One row: (pool label, Unix ms, how many requests).
fn request(row: &Row<'_>) -> rusqlite::Result<(String, i64, u32)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

/// The budgets the rows add up to, oldest first.
pub(in crate::state) fn read(conn: &Connection) -> rusqlite::Result<Budgets> {
    let mut budgets = Budgets::default();
    let mut requests =
        conn.prepare("SELECT pool, at_ms, count FROM tap_requests ORDER BY at_ms")?;
    for row in requests.query_map([], request)? {
        let (pool, at, count) = row?;
        // A pool a later version added is not ours to count.
        if let Some(pool) = Pool::from_label(&pool) {
            budgets.record(pool, from_unix_ms(at), count);
        }
    }
    Ok(budgets)
}

fn insert(tx: &Transaction<'_>, pool: Pool, at_ms: i64, count: u32) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO tap_requests (pool, at_ms, count) VALUES (?1, ?2, ?3)")?
        .execute(params![pool.label(), at_ms, count])?;
    Ok(())
}

/// The requests of one call, made at `at_ms`; rows at or before `cutoff`
/// (24 hours earlier) are forgotten.
pub(in crate::state) fn spend(
    tx: &Transaction<'_>,
    requests: &RequestCounts,
    at_ms: i64,
    cutoff: i64,
) -> rusqlite::Result<()> {
    for (pool, count) in requests.by_pool() {
        if count > 0 {
            insert(tx, pool, at_ms, count)?;
        }
    }
    tx.execute("DELETE FROM tap_requests WHERE at_ms <= ?1", [cutoff])?;
    Ok(())
}

/// The budgets of a migrated JSON state, into a new database.
pub(in crate::state) fn migrate(tx: &Transaction<'_>, budgets: &Budgets) -> rusqlite::Result<()> {
    for (pool, at_ms, count) in budgets.entries() {
        insert(tx, pool, at_ms, count)?;
    }
    Ok(())
}
