//! `sent_keys`: the keys of TAP records already forwarded, with TAP's
//! creation time, kept while they can still come back in an overlap
//! (docs/sync.md, "Sent-record keys"). The whole table is read at open:
//! it holds only the overlap's keys.

use std::collections::BTreeMap;

use rusqlite::{Connection, Transaction, params};

pub(in crate::state) const SCHEMA: &str = "
CREATE TABLE sent_keys (
    key        TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL
);
";

/// Every key with its creation time (Unix ms).
pub(in crate::state) fn read(conn: &Connection) -> rusqlite::Result<BTreeMap<String, i64>> {
    let mut keys = conn.prepare("SELECT key, created_ms FROM sent_keys")?;
    keys.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect()
}

/// The keys of a migrated JSON state, into a new database.
pub(in crate::state) fn migrate(
    tx: &Transaction<'_>,
    sent: &BTreeMap<String, i64>,
) -> rusqlite::Result<()> {
    for (key, created) in sent {
        tx.prepare_cached("INSERT INTO sent_keys (key, created_ms) VALUES (?1, ?2)")?
            .execute(params![key, created])?;
    }
    Ok(())
}

/// The commit's share: the window's keys (a key sent again takes its new
/// creation time), then the keys created before `cutoff` are forgotten.
pub(in crate::state) fn write(
    tx: &Transaction<'_>,
    sent: &[(String, i64)],
    cutoff: Option<i64>,
) -> rusqlite::Result<()> {
    for (key, created) in sent {
        tx.prepare_cached(
            "INSERT INTO sent_keys (key, created_ms) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET created_ms = excluded.created_ms",
        )?
        .execute(params![key, created])?;
    }
    if let Some(cutoff) = cutoff {
        tx.execute("DELETE FROM sent_keys WHERE created_ms < ?1", [cutoff])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::state::{Commit, Pool, Store, unix_ms};
    use tap_runtime::RequestCounts;
    use time::Duration;
    use time::macros::datetime;

    #[test]
    fn a_commit_survives_reopening_and_the_checkpoint_never_moves_back() {
        let dir = tempfile::tempdir().unwrap();
        let t = datetime!(2026-11-28 12:00:00 UTC);
        let mut store = Store::open(dir.path()).unwrap();
        store
            .commit(
                &Commit {
                    checkpoint: Some(t),
                    sent: vec![
                        ("old".into(), unix_ms(t - Duration::hours(3))),
                        ("new".into(), unix_ms(t - Duration::minutes(1))),
                    ],
                    key_horizon: Some(Duration::hours(2)),
                    ..Commit::default()
                },
                t,
            )
            .unwrap();
        store
            .commit(
                &Commit {
                    checkpoint: Some(t - Duration::hours(1)),
                    ..Commit::default()
                },
                t,
            )
            .unwrap();
        let requests = RequestCounts {
            siem: 3,
            ..RequestCounts::default()
        };
        store.spend(&requests, t).unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.state().checkpoint, Some(t));
        assert_eq!(store.state().sent_keys(), ["new"]);
        assert_eq!(store.state().budgets.remaining(Pool::Siem, t), 1797);
    }
}
