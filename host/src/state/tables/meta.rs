//! `meta`: the store's own key-value rows: the checkpoint, and where a
//! migrated JSON state came from.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction};
use time::OffsetDateTime;

use crate::state::{from_unix_ms, unix_ms};

pub(in crate::state) const SCHEMA: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// The checkpoint, if a window was ever accepted (an unreadable value
/// counts as none).
pub(in crate::state) fn checkpoint(conn: &Connection) -> rusqlite::Result<Option<OffsetDateTime>> {
    let checkpoint: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'checkpoint_ms'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    Ok(checkpoint.and_then(|ms| ms.parse().ok()).map(from_unix_ms))
}

pub(in crate::state) fn set_checkpoint(
    tx: &Transaction<'_>,
    checkpoint: OffsetDateTime,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('checkpoint_ms', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [unix_ms(checkpoint).to_string()],
    )?;
    Ok(())
}

/// Notes the JSON state file a new database was migrated from.
pub(in crate::state) fn set_migrated_from(
    tx: &Transaction<'_>,
    legacy_path: &Path,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('migrated_from', ?1)",
        [legacy_path.display().to_string()],
    )?;
    Ok(())
}
