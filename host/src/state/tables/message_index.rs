//! `message_index`: each forwarded message event's identity in ThreatQ by
//! the GUID of its message, so a click that arrives days later is related
//! to its message (docs/sync.md, "The message index"). Read by GUID, never
//! whole: the index of a big tenant holds millions of rows.

use anyhow::Result;
use rusqlite::{Connection, Row, Transaction, params, params_from_iter};
use time::Duration;

pub(in crate::state) const SCHEMA: &str = "
CREATE TABLE message_index (
    guid        TEXT NOT NULL,
    title       TEXT NOT NULL,
    happened_at TEXT NOT NULL,
    type_name   TEXT NOT NULL,
    indexed_ms  INTEGER NOT NULL,
    PRIMARY KEY (guid, title, happened_at)
);
CREATE INDEX message_index_at ON message_index (indexed_ms);
";

/// SQLite's default bound on `?` parameters is 32766; lookups go in
/// chunks well under it.
const LOOKUP_CHUNK: usize = 500;

/// A message event ThreatQ accepted, by the GUID of its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedMessage {
    pub guid: String,
    /// The event's identity in ThreatQ: title, type and `happened_at`.
    pub title: String,
    pub type_name: String,
    pub happened_at: String,
}

/// Reads the columns of [`find`]'s `SELECT`, in its order.
fn indexed_message(row: &Row<'_>) -> rusqlite::Result<IndexedMessage> {
    Ok(IndexedMessage {
        guid: row.get(0)?,
        title: row.get(1)?,
        type_name: row.get(2)?,
        happened_at: row.get(3)?,
    })
}

/// The indexed message events of these GUIDs.
pub(in crate::state) fn find(conn: &Connection, guids: &[&str]) -> Result<Vec<IndexedMessage>> {
    let mut found = Vec::new();
    for chunk in guids.chunks(LOOKUP_CHUNK) {
        let marks = vec!["?"; chunk.len()].join(",");
        let mut statement = conn.prepare(&format!(
            "SELECT guid, title, type_name, happened_at FROM message_index
             WHERE guid IN ({marks}) ORDER BY guid, happened_at, title"
        ))?;
        for row in statement.query_map(params_from_iter(chunk.iter()), indexed_message)? {
            found.push(row?);
        }
    }
    Ok(found)
}

/// The commit's share: the window's accepted message events (one seen
/// again is indexed anew), then the entries indexed more than `horizon`
/// before `at_ms` are forgotten.
pub(in crate::state) fn write(
    tx: &Transaction<'_>,
    messages: &[IndexedMessage],
    horizon: Option<Duration>,
    at_ms: i64,
) -> rusqlite::Result<()> {
    for m in messages {
        tx.prepare_cached(
            "INSERT INTO message_index (guid, title, happened_at, type_name, indexed_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (guid, title, happened_at) DO UPDATE SET indexed_ms = excluded.indexed_ms",
        )?
        .execute(params![m.guid, m.title, m.happened_at, m.type_name, at_ms])?;
    }
    if let Some(horizon) = horizon {
        tx.execute(
            "DELETE FROM message_index WHERE indexed_ms < ?1",
            [at_ms - horizon.whole_milliseconds() as i64],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Commit, Store};
    use time::macros::datetime;

    fn message(guid: &str, title: &str) -> IndexedMessage {
        IndexedMessage {
            guid: guid.to_owned(),
            title: title.to_owned(),
            type_name: "Spearphish".to_owned(),
            happened_at: "2026-11-28 10:00:00".to_owned(),
        }
    }

    #[test]
    fn the_message_index_finds_events_by_guid_and_forgets_them_past_its_horizon() {
        let dir = tempfile::tempdir().unwrap();
        let t = datetime!(2026-11-28 12:00:00 UTC);
        let mut store = Store::open(dir.path()).unwrap();
        let commit = |messages: Vec<IndexedMessage>| Commit {
            messages,
            message_horizon: Some(Duration::days(14)),
            ..Commit::default()
        };
        store
            .commit(
                &commit(vec![message("g1", "delivered"), message("g1", "blocked")]),
                t,
            )
            .unwrap();
        store
            .commit(
                &commit(vec![message("g2", "later")]),
                t + Duration::days(10),
            )
            .unwrap();
        let found = store.indexed_messages(&["g1", "g2", "unknown"]).unwrap();
        let titles: Vec<&str> = found.iter().map(|m| m.title.as_str()).collect();
        assert_eq!(titles, ["blocked", "delivered", "later"]);
        store
            .commit(&commit(Vec::new()), t + Duration::days(15))
            .unwrap();
        let found = store.indexed_messages(&["g1", "g2"]).unwrap();
        assert_eq!(found, [message("g2", "later")], "g1 is past the 14 days");
        let many: Vec<String> = (0..1200).map(|n| format!("g{n}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            store.indexed_messages(&many).unwrap().len(),
            1,
            "looked up in chunks"
        );
    }
}
