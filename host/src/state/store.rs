//! The run state in an SQLite database beside the config
//! (`tq-conn-proofpoint-tap.state.db`).
//!
//! SQLite rather than a file rewritten per window: every change is one
//! transaction (a crash leaves the last committed state, never a torn one),
//! the dead letters and the quarantine grow without rewriting everything,
//! and an operator can read them with the `sqlite3` shell. The library is
//! compiled in (rusqlite's `bundled`), so the host needs no system package.
//!
//! This file opens the database: it checks its integrity, sets up or
//! upgrades the schema and migrates an old JSON state once. Each table,
//! with its rows, reads and writes, is a module of `tables/`:
//! [`Store::commit`] is one transaction that calls each table's write, and
//! the reads are thin accessors over the tables' own.
//!
//! What changes when (docs/sync.md, "Checkpoints"):
//! - [`Store::spend`]: TAP requests, as soon as they are made, whatever
//!   happens to the window: the budget is spent either way;
//! - [`Store::commit`]: everything a window (or a replay) settles, in one
//!   transaction, only after ThreatQ answered for it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use tap_runtime::RequestCounts;
use threatq_client::TqObject;
use time::OffsetDateTime;

use super::tables::{
    self, Commit, Entry, campaign_mentions, dead_letters, enrichment, message_index, meta, people,
    quarantine, sent_keys, tap_requests, verdicts,
};
use super::{
    BUDGET_PERIOD, DeadLetter, EnrichmentPlan, IndexedMessage, LEGACY_STATE_FILE_NAME, PeopleState,
    PeopleUpdate, Pool, Quarantined, Refresh, State, VerdictRow, legacy, unix_ms,
};

pub const STATE_DB_NAME: &str = "tq-conn-proofpoint-tap.state.db";
/// `PRAGMA user_version` of the schema; 0 is a database not yet set up.
/// Version 1 is `tables::SCHEMA_V1`; version 2 adds `tables::SCHEMA_V2`,
/// version 3 `tables::SCHEMA_V3`, version 4 `tables::SCHEMA_V4`.
const SCHEMA_VERSION: i64 = 4;

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
        let state = tables::read_state(&conn).map_err(|e| damaged(&path, &e))?;
        Ok(Store { conn, path, state })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state as of the last commit.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Holds `pool` to `limit` requests a day instead of its default: the
    /// limits that are ours rather than TAP's (the threat summaries).
    pub fn set_daily_limit(&mut self, pool: Pool, limit: u32) {
        self.state.budgets.set_limit(pool, limit);
    }

    /// Records the TAP requests of one call, made at `at`, at once and in
    /// their own transaction: a request spends budget whether or not its
    /// window is ever accepted. Requests older than 24 hours are forgotten.
    pub fn spend(&mut self, requests: &RequestCounts, at: OffsetDateTime) -> Result<()> {
        let at_ms = unix_ms(at);
        let cutoff = unix_ms(at - BUDGET_PERIOD);
        let write = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            tap_requests::spend(&tx, requests, at_ms, cutoff)?;
            tx.commit()
        };
        write(&mut self.conn).map_err(|e| self.write_error(&e))?;
        for (pool, count) in requests.by_pool() {
            self.state.budgets.record(pool, at, count);
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
        (self.state.dead_letters, self.state.quarantined) =
            tables::undelivered(&self.conn).map_err(|e| damaged(&self.path, &e))?;
        (self.state.enrichment_queue, self.state.pending_verdicts) =
            tables::waiting(&self.conn).map_err(|e| damaged(&self.path, &e))?;
        Ok(())
    }

    /// The message events ThreatQ accepted for these GUIDs, as indexed.
    pub fn indexed_messages(&self, guids: &[&str]) -> Result<Vec<IndexedMessage>> {
        message_index::find(&self.conn, guids)
            .with_context(|| self.cannot_read("the message index"))
    }

    /// What is fresh and what is queued for enrichment, as of `now`.
    pub fn enrichment_plan(&self, now: OffsetDateTime, refresh: Refresh) -> Result<EnrichmentPlan> {
        enrichment::plan(&self.conn, now, refresh)
            .with_context(|| self.cannot_read("the enrichment ledger"))
    }

    /// The people lists as last read, and when they were last asked for.
    pub fn people(&self) -> Result<PeopleState> {
        people::read(&self.conn).with_context(|| self.cannot_read("the people lists"))
    }

    /// Records one reading of the people lists, in its own transaction.
    pub fn save_people(&mut self, update: &PeopleUpdate, at: OffsetDateTime) -> Result<()> {
        let write = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            people::write(&tx, update, at)?;
            tx.commit()
        };
        write(&mut self.conn).map_err(|e| self.write_error(&e))
    }

    /// TAP's latest verdict the store holds on each of these (type, value)
    /// indicators, applied or waiting.
    pub fn latest_verdicts(
        &self,
        indicators: &[(&str, &str)],
    ) -> Result<HashMap<(String, String), VerdictRow>> {
        verdicts::latest(&self.conn, indicators).with_context(|| self.cannot_read("the verdicts"))
    }

    /// The objects kept as naming each of these campaigns, by campaign id.
    pub fn campaign_mentions(
        &self,
        campaign_ids: &[&str],
    ) -> Result<HashMap<String, Vec<TqObject>>> {
        campaign_mentions::read(&self.conn, campaign_ids)
            .with_context(|| self.cannot_read("the campaign mentions"))
    }

    /// Verdicts not applied yet, to be tried again.
    pub fn pending_verdicts(&self) -> Result<Vec<VerdictRow>> {
        verdicts::pending(&self.conn).with_context(|| self.cannot_read("the verdicts"))
    }

    /// Which of these indicator identities are dead letters.
    pub fn dead_lettered_indicators(&self, identities: &[String]) -> Result<HashSet<String>> {
        verdicts::dead_lettered(&self.conn, identities)
            .with_context(|| self.cannot_read("the dead letters"))
    }

    /// Every dead letter, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        dead_letters::read_all(&self.conn, &self.path)
    }

    /// Every quarantined TAP record, oldest first.
    pub fn quarantined(&self) -> Result<Vec<Quarantined>> {
        quarantine::read_all(&self.conn, &self.path)
    }

    /// Removes one dead letter or quarantined record on the operator's
    /// word. Returns whether it existed.
    pub fn discard(&mut self, entry: Entry) -> Result<bool> {
        let removed = tables::discard(&self.conn, entry).map_err(|e| self.write_error(&e))?;
        (self.state.dead_letters, self.state.quarantined) =
            tables::undelivered(&self.conn).map_err(|e| damaged(&self.path, &e))?;
        Ok(removed)
    }

    fn cannot_read(&self, what: &str) -> String {
        format!("cannot read {what} in {}", self.path.display())
    }

    fn write_error(&self, error: &rusqlite::Error) -> anyhow::Error {
        anyhow!(
            "cannot write the run state {}: {error}; check the disk has room and the file is \
             writable by this user",
            self.path.display()
        )
    }
}

/// The database file is created owner-only before SQLite opens it; SQLite
/// gives its journal the same mode. One that exists already (made by an
/// earlier version, copied in, restored from a backup) is made owner-only
/// too, with a warning: it holds what TAP reported and ThreatQ refused.
fn create_private(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, crate::files::OWNER_ONLY);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // SQLite would open a link's target, wherever it points, and
            // make one that points nowhere with the umask's mode.
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
                bail!(
                    "the run state {} is a symbolic link; it is not followed, so nobody who can \
                     write the config directory can redirect it. Replace the link with the \
                     database itself (or remove it to start afresh)",
                    path.display()
                );
            }
            tighten(path);
            Ok(())
        }
        Err(e) => Err(e).with_context(|| {
            format!(
                "cannot create the run state {}; check that the config directory is writable by \
                 this user",
                path.display()
            )
        }),
    }
}

/// Makes an existing state database owner-only, saying so in the log; a
/// database that cannot be changed (another owner) is a warning, not a
/// failure: the run still works.
#[cfg(unix)]
fn tighten(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(metadata) = std::fs::metadata(path) else {
        return;
    };
    let mode = metadata.permissions().mode() & 0o777;
    if !metadata.is_file() || mode & 0o077 == 0 {
        return;
    }
    let owner_only = std::fs::Permissions::from_mode(crate::files::OWNER_ONLY);
    match std::fs::set_permissions(path, owner_only) {
        Ok(()) => tracing::warn!(
            file = %path.display(),
            "the run state was accessible by other users (mode {mode:04o}); it is now owner-only \
             (0600)"
        ),
        Err(e) => tracing::warn!(
            file = %path.display(),
            "the run state is accessible by other users (mode {mode:04o}) and cannot be made \
             owner-only ({e}); run `chmod 600 {}`",
            path.display()
        ),
    }
}

#[cfg(not(unix))]
fn tighten(_path: &Path) {}

/// The error for a database SQLite cannot read, with the way out.
pub(super) fn damaged(path: &Path, error: &rusqlite::Error) -> anyhow::Error {
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
const CHECKED_TABLES: [&str; 12] = [
    "meta",
    "sent_keys",
    "tap_requests",
    "dead_letters",
    "quarantine",
    "enrichment",
    "enrichment_queue",
    "verdicts",
    "campaign_mentions",
    "people",
    "people_lists",
    "people_reads",
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
        let verdict: String = conn
            .query_row(&check, [], |row| row.get(0))
            .map_err(|e| damaged(path, &e))?;
        if verdict != "ok" {
            let corrupt = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT);
            return Err(damaged(
                path,
                &rusqlite::Error::SqliteFailure(corrupt, Some(verdict)),
            ));
        }
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
            for sql in tables::SCHEMA_V1 {
                tx.execute_batch(sql)?;
            }
        }
        if version < 2 {
            for sql in tables::SCHEMA_V2 {
                tx.execute_batch(sql)?;
            }
        }
        if version < 3 {
            for sql in tables::SCHEMA_V3 {
                tx.execute_batch(sql)?;
            }
        }
        for sql in tables::SCHEMA_V4 {
            tx.execute_batch(sql)?;
        }
        if let Some(state) = &migrated {
            if let Some(checkpoint) = state.checkpoint {
                meta::set_checkpoint(tx, checkpoint)?;
            }
            sent_keys::migrate(tx, &state.sent)?;
            tap_requests::migrate(tx, &state.budgets)?;
            meta::set_migrated_from(tx, legacy_path)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
    };
    write(&tx)
        .and_then(|()| tx.commit())
        .map_err(|e| anyhow!("cannot set up the run state {}: {e}", path.display()))?;
    if migrated.is_some() {
        legacy::keep_as_backup(legacy_path, path)?;
    }
    Ok(())
}

/// Writes one accepted window: the checkpoint, then each table's share.
fn write_commit(
    tx: &Transaction<'_>,
    commit: &Commit,
    checkpoint: Option<OffsetDateTime>,
    key_cutoff: Option<i64>,
    at_ms: i64,
) -> Result<()> {
    if let Some(checkpoint) = checkpoint {
        meta::set_checkpoint(tx, checkpoint)?;
    }
    sent_keys::write(tx, &commit.sent, key_cutoff)?;
    dead_letters::write(tx, &commit.delivered, &commit.dead_letters, at_ms)?;
    quarantine::write(
        tx,
        &commit.remapped,
        &commit.still_quarantined,
        &commit.quarantined,
        at_ms,
    )?;
    message_index::write(tx, &commit.messages, commit.message_horizon, at_ms)?;
    enrichment::write(tx, &commit.enriched, &commit.deferred, at_ms)?;
    verdicts::write(tx, &commit.verdicts, at_ms)?;
    campaign_mentions::write(
        tx,
        &commit.campaign_mentions,
        &commit.campaigns_related,
        at_ms,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::from_unix_ms;
    use time::macros::datetime;

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

    #[cfg(unix)]
    #[cfg(unix)]
    #[test]
    fn a_state_database_that_is_a_symbolic_link_is_refused_and_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere.db");
        std::os::unix::fs::symlink(&elsewhere, dir.path().join(STATE_DB_NAME)).unwrap();
        let Err(error) = Store::open(dir.path()) else {
            panic!("a state database that is a link was opened");
        };
        let error = format!("{error:#}");
        assert!(error.contains("symbolic link"), "{error}");
        assert!(!elsewhere.exists(), "the link was followed");
    }

    #[test]
    fn an_existing_store_open_to_others_is_made_owner_only_with_a_warning() {
        use std::os::unix::fs::PermissionsExt;
        use std::sync::{Arc, Mutex};

        let dir = tempfile::tempdir().unwrap();
        let path = Store::open(dir.path()).unwrap().path().to_owned();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

        let log = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = Arc::clone(&log);
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || SharedBuffer(Arc::clone(&sink)))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            // A callsite first hit on another test's thread, with no
            // subscriber, may be cached as of no interest.
            tracing::callsite::rebuild_interest_cache();
            Store::open(dir.path()).unwrap()
        });

        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let log = String::from_utf8(log.lock().unwrap().clone()).unwrap();
        assert!(
            log.contains("WARN") && log.contains("mode 0644") && log.contains("owner-only"),
            "{log}"
        );
    }

    struct SharedBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for SharedBuffer {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
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
    fn a_store_of_schema_version_1_gains_the_tables_of_version_2_and_keeps_its_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_DB_NAME);
        let conn = Connection::open(&path).unwrap();
        for sql in tables::SCHEMA_V1 {
            conn.execute_batch(sql).unwrap();
        }
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

    #[test]
    fn a_store_of_schema_version_2_keeps_its_verdicts_and_gains_their_time_and_status_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_DB_NAME);
        let conn = Connection::open(&path).unwrap();
        for sql in tables::SCHEMA_V1.iter().chain(&tables::SCHEMA_V2) {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute(
            "INSERT INTO verdicts (indicator_type, indicator_value, threat_id, status, seen_ms,
                                   applied_ms, last_error)
             VALUES ('URL', 'http://a/', 't', 'falsePositive', 1, 1, NULL),
                    ('URL', 'http://b/', 't', 'cleared', 2, NULL, 'HTTP 422')",
            [],
        )
        .unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        drop(conn);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.state().pending_verdicts, 1);
        let latest = store.latest_verdicts(&[("URL", "http://a/")]).unwrap();
        let a = &latest[&("URL".to_owned(), "http://a/".to_owned())];
        assert_eq!(
            (
                a.status.as_str(),
                a.verdict_ms,
                a.status_set.as_deref(),
                a.error.as_deref()
            ),
            ("falsePositive", 0, None, None),
            "time 0: any later verdict replaces it"
        );
        drop(store);
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn a_version_3_database_gains_the_summary_queue_columns_and_the_people_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_DB_NAME);
        let conn = Connection::open(&path).unwrap();
        for sql in tables::SCHEMA_V1
            .iter()
            .chain(&tables::SCHEMA_V2)
            .chain(&tables::SCHEMA_V3)
        {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute(
            "INSERT INTO enrichment_queue (kind, id, queued_ms) VALUES ('campaign', 'c1', ?1)",
            [unix_ms(OffsetDateTime::now_utc())],
        )
        .unwrap();
        conn.pragma_update(None, "user_version", 3).unwrap();
        drop(conn);
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(store.state().enrichment_queue, 1);
        let now = OffsetDateTime::now_utc();
        let plan = store
            .enrichment_plan(
                now,
                Refresh {
                    threats: time::Duration::days(7),
                    campaigns: time::Duration::days(1),
                },
            )
            .unwrap();
        assert_eq!(plan.queued_campaigns, ["c1"]);
        assert!(plan.queued_summaries.is_empty());
        assert_eq!(store.people().unwrap(), PeopleState::default());
        store
            .save_people(
                &PeopleUpdate {
                    counts_as_attempt: true,
                    ..PeopleUpdate::default()
                },
                now,
            )
            .unwrap();
        assert!(store.people().unwrap().attempted.is_some());
    }
}
