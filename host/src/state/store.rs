//! The run state in an SQLite database beside the config
//! (`tq-conn-proofpoint-tap.state.db`).
//!
//! SQLite rather than a file rewritten per window: every change is one
//! transaction (a crash leaves the last committed state, never a torn one),
//! the dead letters and the quarantine grow without rewriting everything,
//! and an operator can read them with the `sqlite3` shell. The library is
//! compiled in (rusqlite's `bundled`), so the host needs no system package.
//!
//! What changes when (docs/sync.md, "Checkpoints"):
//! - [`Store::spend`]: TAP requests, as soon as they are made, whatever
//!   happens to the window: the budget is spent either way;
//! - [`Store::commit`]: everything a window (or a replay) settles, in one
//!   transaction, only after ThreatQ answered for it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use tap_runtime::RequestCounts;
use threatq_client::{Batch, Collection};
use time::{Duration, OffsetDateTime};

use super::across::{self, Enriched, EnrichmentPlan, IndexedMessage, Refresh, VerdictRow};
use super::{BUDGET_PERIOD, LEGACY_STATE_FILE_NAME, Pool, State, from_unix_ms, legacy, unix_ms};
use crate::batch;

pub const STATE_DB_NAME: &str = "tq-conn-proofpoint-tap.state.db";
/// `PRAGMA user_version` of the schema; 0 is a database not yet set up.
/// Version 1 is `SCHEMA`; version 2 adds `across::SCHEMA_V2`.
const SCHEMA_VERSION: i64 = 2;
/// What a migrated JSON state file is renamed to: kept as a backup.
const LEGACY_BACKUP_SUFFIX: &str = ".migrated";

const SCHEMA: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE sent_keys (
    key        TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL
);
CREATE TABLE tap_requests (
    pool  TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    count INTEGER NOT NULL
);
CREATE INDEX tap_requests_at ON tap_requests (at_ms);
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
}

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
    /// Enrichment queue: (kind, id) needed but not fetched, deferred to
    /// later calls.
    pub deferred: Vec<(Enriched, String)>,
    /// Verdicts applied (or refused, with the reason).
    pub verdicts: Vec<VerdictRow>,
}

/// The state database of one config directory; see the module doc.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    state: State,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (or creates) the state database in `dir`. A JSON state file
    /// of an earlier version is migrated into a new database once and kept,
    /// renamed, as a backup. A damaged or newer database is refused with
    /// the way out; it is never reset.
    pub fn open(dir: &Path) -> Result<Store> {
        let path = dir.join(STATE_DB_NAME);
        create_private(&path)?;
        let mut conn = Connection::open(&path)
            .map_err(|e| damaged(&path, &e))
            .with_context(|| format!("cannot open the run state {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| damaged(&path, &e))?;
        // FULL: a committed window survives a power cut, not just a crash.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| damaged(&path, &e))?;
        check_integrity(&conn, &path)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| damaged(&path, &e))?;
        let legacy_path = dir.join(LEGACY_STATE_FILE_NAME);
        match version {
            0..SCHEMA_VERSION => set_up(&mut conn, &path, &legacy_path)?,
            SCHEMA_VERSION => {
                if legacy_path.exists() {
                    tracing::warn!(
                        file = %legacy_path.display(),
                        database = %path.display(),
                        "an old JSON run state lies beside the state database and is ignored; \
                         the database is the run state"
                    );
                }
            }
            newer => bail!(
                "the run state {} was written by a newer version of this connector (schema \
                 version {newer}, this one knows {SCHEMA_VERSION}); run that version, or move \
                 the file aside to start again from the configured hours of history",
                path.display()
            ),
        }
        let state = read_state(&conn).map_err(|e| damaged(&path, &e))?;
        Ok(Store { conn, path, state })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state as of the last commit.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Records the TAP requests of one call, made at `at`, at once and in their own
    /// transaction: a request spends budget whether or not its window is
    /// ever accepted. Requests older than 24 hours are forgotten.
    pub fn spend(&mut self, requests: &RequestCounts, at: OffsetDateTime) -> Result<()> {
        let requests = requests.by_pool();
        let at_ms = unix_ms(at);
        let cutoff = unix_ms(at - BUDGET_PERIOD);
        let write = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            for (pool, count) in requests.iter().filter(|(_, count)| *count > 0) {
                tx.execute(
                    "INSERT INTO tap_requests (pool, at_ms, count) VALUES (?1, ?2, ?3)",
                    params![pool.label(), at_ms, count],
                )?;
            }
            tx.execute("DELETE FROM tap_requests WHERE at_ms <= ?1", [cutoff])?;
            tx.commit()
        };
        write(&mut self.conn).map_err(|e| self.write_error(&e))?;
        for (pool, count) in &requests {
            self.state.budgets.record(*pool, at, *count);
        }
        self.state.budgets.prune(at);
        Ok(())
    }

    /// Writes what a window or a replay settled, in one transaction.
    pub fn commit(&mut self, commit: &Commit, at: OffsetDateTime) -> Result<()> {
        let checkpoint = commit
            .checkpoint
            .map(|end| self.state.advanced_checkpoint(end));
        let key_cutoff = match (checkpoint.or(self.state.checkpoint), commit.key_horizon) {
            (Some(checkpoint), Some(horizon)) => Some(unix_ms(checkpoint - horizon)),
            _ => None,
        };
        let at_ms = unix_ms(at);
        let tx = self
            .conn
            .transaction()
            .map_err(|e| damaged(&self.path, &e))?;
        write_commit(&tx, commit, checkpoint, key_cutoff, at_ms)
            .and_then(|()| tx.commit().map_err(anyhow::Error::from))
            .with_context(|| {
                format!(
                    "cannot write the run state {}; nothing of this window was recorded, so the \
                     next run sends it again",
                    self.path.display()
                )
            })?;
        if let Some(checkpoint) = checkpoint {
            self.state.checkpoint = Some(checkpoint);
        }
        self.state.sent.extend(commit.sent.iter().cloned());
        if let Some(cutoff) = key_cutoff {
            self.state.sent.retain(|_, created| *created >= cutoff);
        }
        let (dead_letters, quarantined) =
            count_undelivered(&self.conn).map_err(|e| damaged(&self.path, &e))?;
        self.state.dead_letters = dead_letters;
        self.state.quarantined = quarantined;
        (self.state.enrichment_queue, self.state.pending_verdicts) =
            across::count_waiting(&self.conn).map_err(|e| damaged(&self.path, &e))?;
        Ok(())
    }

    /// The message events ThreatQ accepted for these GUIDs, as indexed.
    pub fn indexed_messages(&self, guids: &[&str]) -> Result<Vec<IndexedMessage>> {
        across::indexed_messages(&self.conn, guids)
            .with_context(|| format!("cannot read the message index in {}", self.path.display()))
    }

    /// What is fresh and what is queued for enrichment, as of `now`.
    pub fn enrichment_plan(&self, now: OffsetDateTime, refresh: Refresh) -> Result<EnrichmentPlan> {
        across::enrichment_plan(&self.conn, now, refresh).with_context(|| {
            format!(
                "cannot read the enrichment ledger in {}",
                self.path.display()
            )
        })
    }

    /// The verdict last applied to each of these (type, value) indicators.
    pub fn applied_verdicts(
        &self,
        indicators: &[(&str, &str)],
    ) -> Result<std::collections::HashMap<(String, String), String>> {
        across::applied_verdicts(&self.conn, indicators)
            .with_context(|| format!("cannot read the verdicts in {}", self.path.display()))
    }

    /// Verdicts ThreatQ refused earlier, to be tried again.
    pub fn pending_verdicts(&self) -> Result<Vec<VerdictRow>> {
        across::pending_verdicts(&self.conn)
            .with_context(|| format!("cannot read the verdicts in {}", self.path.display()))
    }

    /// Every dead letter, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT id, collection, identity, relations_only, status, reason, batch, window,
                        first_refused_ms, last_tried_ms, attempts
                 FROM dead_letters ORDER BY id",
            )
            .map_err(|e| damaged(&self.path, &e))?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, bool>(3)?,
                    row.get::<_, Option<u16>>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, String>(6)?,
                    row.get::<_, String>(7)?,
                    row.get::<_, i64>(8)?,
                    row.get::<_, i64>(9)?,
                    row.get::<_, u32>(10)?,
                ))
            })
            .map_err(|e| damaged(&self.path, &e))?;
        let mut letters = Vec::new();
        for row in rows {
            let (
                id,
                collection,
                identity,
                relations_only,
                status,
                reason,
                batch,
                window,
                first,
                last,
                attempts,
            ) = row.map_err(|e| damaged(&self.path, &e))?;
            let collection = collection_named(&collection).ok_or_else(|| {
                anyhow!(
                    "dead letter {id} in {} names an unknown collection '{collection}'",
                    self.path.display()
                )
            })?;
            let batch: Batch = serde_json::from_str(&batch).with_context(|| {
                format!("dead letter {id} in {} cannot be read", self.path.display())
            })?;
            letters.push(DeadLetter {
                id,
                collection,
                identity,
                relations_only,
                status,
                reason,
                batch,
                window,
                first_refused: from_unix_ms(first),
                last_tried: from_unix_ms(last),
                attempts,
            });
        }
        Ok(letters)
    }

    /// Every quarantined TAP record, oldest first.
    pub fn quarantined(&self) -> Result<Vec<Quarantined>> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT id, record_key, section, raw, reason, window, version,
                        first_seen_ms, last_tried_ms, attempts
                 FROM quarantine ORDER BY id",
            )
            .map_err(|e| damaged(&self.path, &e))?;
        let rows = statement
            .query_map([], |row| {
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
            })
            .map_err(|e| damaged(&self.path, &e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| damaged(&self.path, &e))
    }

    /// Removes one dead letter (`kind` "dead-letter") or quarantined record
    /// (`kind` "quarantine") on the operator's word. Returns whether it
    /// existed.
    pub fn discard(&mut self, entry: Entry) -> Result<bool> {
        let (table, id) = match entry {
            Entry::DeadLetter(id) => ("dead_letters", id),
            Entry::Quarantined(id) => ("quarantine", id),
        };
        let removed = self
            .conn
            .execute(&format!("DELETE FROM {table} WHERE id = ?1"), [id])
            .map_err(|e| self.write_error(&e))?;
        let (dead_letters, quarantined) =
            count_undelivered(&self.conn).map_err(|e| damaged(&self.path, &e))?;
        self.state.dead_letters = dead_letters;
        self.state.quarantined = quarantined;
        Ok(removed > 0)
    }

    fn write_error(&self, error: &rusqlite::Error) -> anyhow::Error {
        anyhow!(
            "cannot write the run state {}: {error}; check the disk has room and the file is \
             writable by this user",
            self.path.display()
        )
    }
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

/// The database file is created owner-only before SQLite opens it; SQLite
/// gives its journal the same mode.
fn create_private(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| {
            format!(
                "cannot create the run state {}; check that the config directory is writable by \
                 this user",
                path.display()
            )
        }),
    }
}

fn damaged(path: &Path, error: &rusqlite::Error) -> anyhow::Error {
    anyhow!(
        "the run state {} is damaged or not a state database ({error}). It is not reset, so \
         nothing is lost silently: keep a copy, then either repair it (`sqlite3 {0} .recover`) \
         or move it aside; the next run then starts again from the configured hours of history \
         (ThreatQ upserts, so nothing is duplicated) but forgets its dead letters and quarantine",
        path.display()
    )
}

/// The tables `quick_check` reads at every open: all but the message
/// index, which on a big tenant holds millions of rows (its pages would make
/// every start-up read the whole file). A damaged index still shows, as an
/// error of the lookup that reads it.
const CHECKED_TABLES: [&str; 8] = [
    "meta",
    "sent_keys",
    "tap_requests",
    "dead_letters",
    "quarantine",
    "enrichment",
    "enrichment_queue",
    "verdicts",
];

fn check_integrity(conn: &Connection, path: &Path) -> Result<()> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
        .and_then(|mut statement| {
            statement
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(|e| damaged(path, &e))?;
    let checks: Vec<String> = if tables.is_empty() {
        // A new or unreadable file: check it whole (it is small).
        vec!["PRAGMA quick_check".to_owned()]
    } else {
        CHECKED_TABLES
            .iter()
            .filter(|table| tables.iter().any(|t| t == *table))
            .map(|table| format!("PRAGMA quick_check({table})"))
            .collect()
    };
    for check in checks {
        verify(conn, path, &check)?;
    }
    Ok(())
}

fn verify(conn: &Connection, path: &Path, check: &str) -> Result<()> {
    let verdict: String = conn
        .query_row(check, [], |row| row.get(0))
        .map_err(|e| damaged(path, &e))?;
    if verdict != "ok" {
        return Err(damaged(
            path,
            &rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(verdict),
            ),
        ));
    }
    Ok(())
}

/// Creates the schema, or adds what a database of an earlier schema
/// version lacks, and, for a new database beside an old JSON state,
/// migrates that, all in one transaction; only then is the JSON file
/// renamed to its backup name. A crash before the rename leaves a set-up
/// database and the JSON file: the next open sees the current version and
/// only warns.
fn set_up(conn: &mut Connection, path: &Path, legacy_path: &Path) -> Result<()> {
    let current: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| damaged(path, &e))?;
    let migrated = if current == 0 && legacy_path.exists() {
        Some(legacy::read(legacy_path)?)
    } else {
        None
    };
    // IMMEDIATE takes the write lock first, so two processes opening a new
    // store at once (a run and `replay --list`) set it up once.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| damaged(path, &e))?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| damaged(path, &e))?;
    if version >= SCHEMA_VERSION {
        return Ok(());
    }
    let migrated = migrated.filter(|_| version == 0);
    let write = |tx: &Transaction<'_>| -> rusqlite::Result<()> {
        if version < 1 {
            tx.execute_batch(SCHEMA)?;
        }
        tx.execute_batch(across::SCHEMA_V2)?;
        if let Some(state) = &migrated {
            if let Some(checkpoint) = state.checkpoint {
                set_checkpoint(tx, checkpoint)?;
            }
            for (key, created) in &state.sent {
                tx.prepare_cached("INSERT INTO sent_keys (key, created_ms) VALUES (?1, ?2)")?
                    .execute(params![key, created])?;
            }
            for (pool, at, count) in state.budgets.entries() {
                tx.execute(
                    "INSERT INTO tap_requests (pool, at_ms, count) VALUES (?1, ?2, ?3)",
                    params![pool.label(), at, count],
                )?;
            }
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('migrated_from', ?1)",
                [legacy_path.display().to_string()],
            )?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
    };
    write(&tx)
        .and_then(|()| tx.commit())
        .map_err(|e| anyhow!("cannot set up the run state {}: {e}", path.display()))?;
    if migrated.is_some() {
        let backup = backup_name(legacy_path);
        std::fs::rename(legacy_path, &backup).with_context(|| {
            format!(
                "migrated {} into {} but cannot rename it to {}",
                legacy_path.display(),
                path.display(),
                backup.display()
            )
        })?;
        tracing::info!(
            from = %legacy_path.display(),
            to = %path.display(),
            backup = %backup.display(),
            "migrated the run state into the state database; the old file is kept as a backup"
        );
    }
    Ok(())
}

fn backup_name(legacy_path: &Path) -> PathBuf {
    let mut name = legacy_path.as_os_str().to_owned();
    name.push(LEGACY_BACKUP_SUFFIX);
    PathBuf::from(name)
}

fn set_checkpoint(tx: &Transaction<'_>, checkpoint: OffsetDateTime) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('checkpoint_ms', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [unix_ms(checkpoint).to_string()],
    )?;
    Ok(())
}

/// Writes one accepted window. The per-row statements are
/// `prepare_cached`: a first run's window writes thousands of sent keys
/// and message-index rows, and `execute` would parse and plan the same
/// SQL again for each of them.
fn write_commit(
    tx: &Transaction<'_>,
    commit: &Commit,
    checkpoint: Option<OffsetDateTime>,
    key_cutoff: Option<i64>,
    at_ms: i64,
) -> Result<()> {
    if let Some(checkpoint) = checkpoint {
        set_checkpoint(tx, checkpoint)?;
    }
    for (key, created) in &commit.sent {
        tx.execute(
            "INSERT INTO sent_keys (key, created_ms) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET created_ms = excluded.created_ms",
            params![key, created],
        )?;
    }
    if let Some(cutoff) = key_cutoff {
        tx.execute("DELETE FROM sent_keys WHERE created_ms < ?1", [cutoff])?;
    }
    for id in &commit.delivered {
        tx.prepare_cached("DELETE FROM dead_letters WHERE id = ?1")?
            .execute([id])?;
    }
    for letter in &commit.dead_letters {
        add_dead_letter(tx, letter, at_ms)?;
    }
    for id in &commit.remapped {
        tx.prepare_cached("DELETE FROM quarantine WHERE id = ?1")?
            .execute([id])?;
    }
    for (id, reason) in &commit.still_quarantined {
        tx.prepare_cached(
            "UPDATE quarantine SET reason = ?2, version = ?3, last_tried_ms = ?4,
                    attempts = attempts + 1
             WHERE id = ?1",
        )?
        .execute(params![id, reason, env!("CARGO_PKG_VERSION"), at_ms])?;
    }
    across::write(tx, commit, at_ms)?;
    for record in &commit.quarantined {
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

/// Keeps one letter per refused object: a second refusal of the same
/// object merges into the first (its neighbours and links too), so the
/// store never holds it twice and no link is forgotten.
fn add_dead_letter(tx: &Transaction<'_>, letter: &NewDeadLetter, at_ms: i64) -> Result<()> {
    let existing: Option<(i64, String)> = tx
        .query_row(
            "SELECT id, batch FROM dead_letters
             WHERE collection = ?1 AND identity = ?2 AND relations_only = ?3",
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
            tx.execute(
                "UPDATE dead_letters SET batch = ?2, status = ?3, reason = ?4,
                        last_tried_ms = ?5, attempts = attempts + 1
                 WHERE id = ?1",
                params![
                    id,
                    serde_json::to_string(&merged)?,
                    letter.status,
                    letter.reason,
                    at_ms
                ],
            )?;
        }
        None => {
            tx.execute(
                "INSERT INTO dead_letters (collection, identity, relations_only, status, reason,
                                           batch, window, first_refused_ms, last_tried_ms,
                                           attempts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, 1)",
                params![
                    letter.collection.api_name(),
                    letter.identity,
                    letter.relations_only,
                    letter.status,
                    letter.reason,
                    serde_json::to_string(&letter.batch)?,
                    letter.window,
                    at_ms
                ],
            )?;
        }
    }
    Ok(())
}

fn read_state(conn: &Connection) -> rusqlite::Result<State> {
    let mut state = State::default();
    let checkpoint: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'checkpoint_ms'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    state.checkpoint = checkpoint.and_then(|ms| ms.parse().ok()).map(from_unix_ms);
    let mut keys = conn.prepare("SELECT key, created_ms FROM sent_keys")?;
    for row in keys.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))? {
        let (key, created): (String, i64) = row?;
        state.sent.insert(key, created);
    }
    let mut requests =
        conn.prepare("SELECT pool, at_ms, count FROM tap_requests ORDER BY at_ms")?;
    for row in requests.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, u32>(2)?,
        ))
    })? {
        let (pool, at, count) = row?;
        // A pool a later version added is not ours to count.
        if let Some(pool) = Pool::from_label(&pool) {
            state.budgets.record(pool, from_unix_ms(at), count);
        }
    }
    (state.dead_letters, state.quarantined) = count_undelivered(conn)?;
    (state.enrichment_queue, state.pending_verdicts) = across::count_waiting(conn)?;
    Ok(state)
}

fn count_undelivered(conn: &Connection) -> rusqlite::Result<(u64, u64)> {
    let dead: u64 = conn.query_row("SELECT COUNT(*) FROM dead_letters", [], |row| row.get(0))?;
    let quarantined: u64 =
        conn.query_row("SELECT COUNT(*) FROM quarantine", [], |row| row.get(0))?;
    Ok((dead, quarantined))
}

fn collection_named(name: &str) -> Option<Collection> {
    Collection::ALL
        .into_iter()
        .find(|collection| collection.api_name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;
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
        }
    }

    #[test]
    fn a_fresh_directory_gets_an_owner_only_empty_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.state(), &State::default());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

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

    #[test]
    fn a_json_state_is_migrated_once_and_kept_as_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = dir.path().join(LEGACY_STATE_FILE_NAME);
        std::fs::write(
            &legacy,
            r#"{
              "version": 1,
              "checkpoint": "2026-11-28T12:00:00Z",
              "sent": { "m:g:1": 1795867200000 },
              "budgets": { "requests": { "siem": [1795867200000, 1795867200000],
                                         "threat_forensics": [1795867200000] } }
            }"#,
        )
        .unwrap();
        let store = Store::open(dir.path()).unwrap();
        let now = datetime!(2026-11-28 13:00:00 UTC);
        assert_eq!(
            store.state().checkpoint,
            Some(datetime!(2026-11-28 12:00:00 UTC))
        );
        assert_eq!(store.state().sent_keys(), ["m:g:1"]);
        assert_eq!(store.state().budgets.remaining(Pool::Siem, now), 1798);
        assert_eq!(
            store.state().budgets.remaining(Pool::ThreatForensics, now),
            49
        );
        assert!(!legacy.exists());
        assert!(backup_name(&legacy).exists());
        drop(store);
        // A second open does not migrate again, even if the JSON came back.
        std::fs::copy(backup_name(&legacy), &legacy).unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.state().sent_keys(), ["m:g:1"]);
        assert!(legacy.exists(), "left alone, with a warning");
    }

    #[test]
    fn a_damaged_json_state_is_not_migrated_and_nothing_is_created_from_a_guess() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LEGACY_STATE_FILE_NAME), "{ not json").unwrap();
        let error = format!("{:#}", Store::open(dir.path()).unwrap_err());
        assert!(error.contains(LEGACY_STATE_FILE_NAME), "{error}");
        assert!(error.contains("move it aside"), "{error}");
        // The JSON is still there, and the next open still refuses.
        assert!(Store::open(dir.path()).is_err());
    }

    #[test]
    fn a_damaged_database_is_refused_with_the_way_out_and_not_reset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_DB_NAME);
        std::fs::write(&path, vec![b'x'; 8192]).unwrap();
        let error = format!("{:#}", Store::open(dir.path()).unwrap_err());
        assert!(error.contains(STATE_DB_NAME), "{error}");
        assert!(
            error.contains(".recover") && error.contains("move it aside"),
            "{error}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            vec![b'x'; 8192],
            "left as it was"
        );
    }

    #[test]
    fn a_truncated_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let t = datetime!(2026-11-28 12:00:00 UTC);
        let mut store = Store::open(dir.path()).unwrap();
        let many: Vec<(String, i64)> = (0..5000)
            .map(|i| (format!("key-{i:05}"), unix_ms(t)))
            .collect();
        store
            .commit(
                &Commit {
                    checkpoint: Some(t),
                    sent: many,
                    ..Commit::default()
                },
                t,
            )
            .unwrap();
        let path = store.path().to_path_buf();
        drop(store);
        let len = std::fs::metadata(&path).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len / 2).unwrap();
        drop(file);
        assert!(Store::open(dir.path()).is_err());
    }

    #[test]
    fn a_database_of_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join(STATE_DB_NAME)).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        let error = format!("{:#}", Store::open(dir.path()).unwrap_err());
        assert!(error.contains("newer version"), "{error}");
    }

    #[test]
    fn a_store_of_schema_version_1_gains_the_tables_across_runs_and_keeps_its_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_DB_NAME);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('checkpoint_ms', '1764331200000')",
            [],
        )
        .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        drop(conn);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.state().checkpoint,
            Some(from_unix_ms(1_764_331_200_000))
        );
        assert!(store.indexed_messages(&["g"]).unwrap().is_empty());
        drop(store);
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

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

    #[test]
    fn the_ledger_keeps_what_is_fresh_and_the_queue_what_is_owed() {
        let dir = tempfile::tempdir().unwrap();
        let t = datetime!(2026-11-28 12:00:00 UTC);
        let refresh = Refresh {
            threats: Duration::days(7),
            campaigns: Duration::days(1),
        };
        let mut store = Store::open(dir.path()).unwrap();
        store
            .commit(
                &Commit {
                    enriched: vec![
                        (Enriched::Campaign, "c1".into(), "Campaign One".into()),
                        (Enriched::Threat, "t1".into(), String::new()),
                    ],
                    deferred: vec![
                        (Enriched::Threat, "t2".into()),
                        (Enriched::Campaign, "c2".into()),
                    ],
                    ..Commit::default()
                },
                t,
            )
            .unwrap();
        assert_eq!(store.state().enrichment_queue, 2);
        let plan = store
            .enrichment_plan(t + Duration::hours(1), refresh)
            .unwrap();
        assert_eq!(
            plan.fresh_campaigns,
            [("c1".to_owned(), "Campaign One".to_owned())]
        );
        assert_eq!(plan.fresh_threats, ["t1"]);
        assert_eq!(plan.queued_threats, ["t2"]);
        assert_eq!(plan.queued_campaigns, ["c2"]);
        let later = store
            .enrichment_plan(t + Duration::days(2), refresh)
            .unwrap();
        assert!(
            later.fresh_campaigns.is_empty(),
            "a campaign is fresh for a day"
        );
        assert_eq!(later.fresh_threats, ["t1"], "a threat for a week");

        // Served later: off the queue, into the ledger.
        store
            .commit(
                &Commit {
                    enriched: vec![(Enriched::Threat, "t2".into(), String::new())],
                    deferred: vec![(Enriched::Campaign, "c2".into())],
                    ..Commit::default()
                },
                t + Duration::days(1),
            )
            .unwrap();
        let plan = store
            .enrichment_plan(t + Duration::days(1), refresh)
            .unwrap();
        assert!(plan.queued_threats.is_empty());
        assert_eq!(plan.queued_campaigns, ["c2"], "queued once, not twice");
        assert_eq!(store.state().enrichment_queue, 1);
    }

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

    #[test]
    fn entries_parse_as_replay_lists_them() {
        assert_eq!("d12".parse(), Ok(Entry::DeadLetter(12)));
        assert_eq!("q3".parse(), Ok(Entry::Quarantined(3)));
        assert!("x3".parse::<Entry>().is_err());
        assert!("d".parse::<Entry>().is_err());
        assert_eq!(Entry::DeadLetter(7).to_string(), "d7");
    }
}
