//! `dead_letters`: objects (or objects' relations) ThreatQ refused, each
//! with ThreatQ's answer and what to send again (docs/sync.md, "Nothing
//! refused is lost").

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use threatq_client::{Batch, Collection};
use time::OffsetDateTime;

use crate::batch;
use crate::state::from_unix_ms;
use crate::state::store::damaged;

pub(in crate::state) const SCHEMA: &str = "
CREATE TABLE dead_letters (
    id               INTEGER PRIMARY KEY,
    collection       TEXT NOT NULL,
    identity         TEXT NOT NULL,
    relations_only   INTEGER NOT NULL,
    status           INTEGER,
    reason           TEXT NOT NULL,
    batch            TEXT NOT NULL,
    window           TEXT NOT NULL,
    first_refused_ms INTEGER NOT NULL,
    last_tried_ms    INTEGER NOT NULL,
    attempts         INTEGER NOT NULL,
    UNIQUE (collection, identity, relations_only)
);
";

/// What schema version 3 adds: the message GUID of a refused message
/// event, so the event enters the message index once it is delivered.
pub(in crate::state) const SCHEMA_V3: &str = "
ALTER TABLE dead_letters ADD COLUMN message_guid TEXT;
";

/// An object (or an object's relations) ThreatQ refused, kept to be sent
/// again: the object with its direct neighbours and the relations between
/// them, so sending the letter also restores its links.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub id: i64,
    pub collection: Collection,
    pub identity: String,
    /// ThreatQ stored the object but refused its relations.
    pub relations_only: bool,
    /// ThreatQ's HTTP status; none when the object could not be sent at all.
    pub status: Option<u16>,
    /// ThreatQ's answer, or why it could not be sent.
    pub reason: String,
    /// `objects[0]` is the refused object.
    pub batch: Batch,
    /// The window it came from, for the operator.
    pub window: String,
    pub first_refused: OffsetDateTime,
    pub last_tried: OffsetDateTime,
    pub attempts: u32,
    /// For a refused message event, its message GUID: once delivered, the
    /// event enters the message index (docs/sync.md, "The message index").
    pub message_guid: Option<String>,
}

/// A refusal to keep, as a window or replay found it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDeadLetter {
    pub collection: Collection,
    pub identity: String,
    pub relations_only: bool,
    pub status: Option<u16>,
    pub reason: String,
    pub batch: Batch,
    pub window: String,
    /// See [`DeadLetter::message_guid`].
    pub message_guid: Option<String>,
}

/// A row as SQLite holds it: the collection and the batch still text.
struct StoredLetter {
    id: i64,
    collection: String,
    identity: String,
    relations_only: bool,
    status: Option<u16>,
    reason: String,
    batch: String,
    window: String,
    first_refused_ms: i64,
    last_tried_ms: i64,
    attempts: u32,
    message_guid: Option<String>,
}

/// Reads the columns of [`read_all`]'s `SELECT`, in its order.
fn stored_letter(row: &Row<'_>) -> rusqlite::Result<StoredLetter> {
    Ok(StoredLetter {
        id: row.get(0)?,
        collection: row.get(1)?,
        identity: row.get(2)?,
        relations_only: row.get(3)?,
        status: row.get(4)?,
        reason: row.get(5)?,
        batch: row.get(6)?,
        window: row.get(7)?,
        first_refused_ms: row.get(8)?,
        last_tried_ms: row.get(9)?,
        attempts: row.get(10)?,
        message_guid: row.get(11)?,
    })
}

impl StoredLetter {
    /// The letter, or an error naming it and the database at `path`.
    fn parse(self, path: &Path) -> Result<DeadLetter> {
        let id = self.id;
        let collection = collection_named(&self.collection).ok_or_else(|| {
            anyhow!(
                "dead letter {id} in {} names an unknown collection '{}'",
                path.display(),
                self.collection
            )
        })?;
        let batch: Batch = serde_json::from_str(&self.batch)
            .with_context(|| format!("dead letter {id} in {} cannot be read", path.display()))?;
        Ok(DeadLetter {
            id,
            collection,
            identity: self.identity,
            relations_only: self.relations_only,
            status: self.status,
            reason: self.reason,
            batch,
            window: self.window,
            first_refused: from_unix_ms(self.first_refused_ms),
            last_tried: from_unix_ms(self.last_tried_ms),
            attempts: self.attempts,
            message_guid: self.message_guid,
        })
    }
}

fn collection_named(name: &str) -> Option<Collection> {
    Collection::ALL
        .into_iter()
        .find(|collection| collection.api_name() == name)
}

/// Every dead letter, oldest first, from the database at `path`.
pub(in crate::state) fn read_all(conn: &Connection, path: &Path) -> Result<Vec<DeadLetter>> {
    let mut statement = conn
        .prepare(
            "SELECT id, collection, identity, relations_only, status, reason, batch, window,
                    first_refused_ms, last_tried_ms, attempts, message_guid
             FROM dead_letters ORDER BY id",
        )
        .map_err(|e| damaged(path, &e))?;
    let rows = statement
        .query_map([], stored_letter)
        .map_err(|e| damaged(path, &e))?;
    let mut letters = Vec::new();
    for row in rows {
        letters.push(row.map_err(|e| damaged(path, &e))?.parse(path)?);
    }
    Ok(letters)
}

pub(in crate::state) fn count(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT COUNT(*) FROM dead_letters", [], |row| row.get(0))
}

/// Removes one letter; returns how many rows went (0 or 1).
pub(in crate::state) fn remove(conn: &Connection, id: i64) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM dead_letters WHERE id = ?1")?
        .execute([id])
}

/// The commit's share: the letters ThreatQ has now accepted go, then the
/// new refusals are kept.
pub(in crate::state) fn write(
    tx: &Transaction<'_>,
    delivered: &[i64],
    refused: &[NewDeadLetter],
    at_ms: i64,
) -> Result<()> {
    for id in delivered {
        remove(tx, *id)?;
    }
    for letter in refused {
        add(tx, letter, at_ms)?;
    }
    Ok(())
}

/// Keeps one letter per refused object: a second refusal of the same
/// object merges into the first (its neighbours and links too), so the
/// store never holds it twice and no link is forgotten.
fn add(tx: &Transaction<'_>, letter: &NewDeadLetter, at_ms: i64) -> Result<()> {
    let existing: Option<(i64, String)> = tx
        .prepare_cached(
            "SELECT id, batch FROM dead_letters
             WHERE collection = ?1 AND identity = ?2 AND relations_only = ?3",
        )?
        .query_row(
            params![
                letter.collection.api_name(),
                letter.identity,
                letter.relations_only
            ],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    match existing {
        Some((id, stored)) => {
            let mut merged: Batch = serde_json::from_str(&stored)
                .with_context(|| format!("dead letter {id} cannot be read"))?;
            batch::merge(&mut merged, &letter.batch);
            tx.prepare_cached(
                "UPDATE dead_letters SET batch = ?2, status = ?3, reason = ?4,
                        last_tried_ms = ?5, attempts = attempts + 1,
                        message_guid = COALESCE(?6, message_guid)
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                serde_json::to_string(&merged)?,
                letter.status,
                letter.reason,
                at_ms,
                letter.message_guid,
            ])?;
        }
        None => {
            tx.prepare_cached(
                "INSERT INTO dead_letters (collection, identity, relations_only, status, reason,
                                           batch, window, first_refused_ms, last_tried_ms,
                                           attempts, message_guid)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, 1, ?9)",
            )?
            .execute(params![
                letter.collection.api_name(),
                letter.identity,
                letter.relations_only,
                letter.status,
                letter.reason,
                serde_json::to_string(&letter.batch)?,
                letter.window,
                at_ms,
                letter.message_guid,
            ])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Commit, Store};
    use threatq_client::TqObject;
    use time::macros::datetime;

    fn indicator(value: &str) -> TqObject {
        TqObject {
            collection: Collection::Indicators,
            value: value.to_owned(),
            type_name: Some("URL".to_owned()),
            happened_at: None,
            description: None,
            attributes: vec![("Classification".to_owned(), "phish".to_owned())],
        }
    }

    fn letter(value: &str, neighbour: &str) -> NewDeadLetter {
        NewDeadLetter {
            collection: Collection::Indicators,
            identity: format!("{value} (URL)"),
            relations_only: false,
            status: Some(403),
            reason: "Request blocked".to_owned(),
            batch: Batch {
                objects: vec![indicator(value), indicator(neighbour)],
                relations: vec![(0, 1)],
            },
            window: "w".to_owned(),
            message_guid: None,
        }
    }

    #[test]
    fn a_refused_object_is_kept_once_and_its_letters_merge() {
        let dir = tempfile::tempdir().unwrap();
        let t = datetime!(2026-11-28 12:00:00 UTC);
        let mut store = Store::open(dir.path()).unwrap();
        let commit = Commit {
            dead_letters: vec![letter("https://a.example/", "https://b.example/")],
            ..Commit::default()
        };
        store.commit(&commit, t).unwrap();
        let commit = Commit {
            dead_letters: vec![letter("https://a.example/", "https://c.example/")],
            ..Commit::default()
        };
        store.commit(&commit, t).unwrap();
        let letters = store.dead_letters().unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].attempts, 2);
        assert_eq!(letters[0].batch.objects.len(), 3);
        assert_eq!(letters[0].batch.relations.len(), 2);
        assert_eq!(store.state().dead_letters, 1);

        let id = letters[0].id;
        store
            .commit(
                &Commit {
                    delivered: vec![id],
                    ..Commit::default()
                },
                t,
            )
            .unwrap();
        assert!(store.dead_letters().unwrap().is_empty());
        assert_eq!(store.state().undelivered(), 0);
    }
}
