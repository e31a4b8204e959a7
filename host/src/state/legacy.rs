//! The JSON state file that versions before the database wrote
//! (`tq-conn-proofpoint-tap.state.json`, state version 1). Read once, to
//! migrate it into the database (`store.rs`, `set_up`), then kept, renamed,
//! as a backup; never written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{Budgets, Pool, State, from_unix_ms};

const LEGACY_VERSION: u32 = 1;
/// What a migrated JSON state file is renamed to: kept as a backup.
const LEGACY_BACKUP_SUFFIX: &str = ".migrated";

#[derive(Deserialize)]
struct LegacyState {
    version: u32,
    #[serde(with = "time::serde::rfc3339::option", default)]
    checkpoint: Option<OffsetDateTime>,
    #[serde(default)]
    sent: BTreeMap<String, i64>,
    #[serde(default)]
    budgets: LegacyBudgets,
}

#[derive(Deserialize, Default)]
struct LegacyBudgets {
    /// Unix ms of each request, one entry per request.
    #[serde(default)]
    requests: BTreeMap<Pool, Vec<i64>>,
}

/// The state in the legacy file at `path`. A damaged file is an error that
/// names it: migrating a guess would silently lose the checkpoint.
pub(super) fn read(path: &Path) -> Result<State> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the old run state {}", path.display()))?;
    let legacy: LegacyState = serde_json::from_str(&text).with_context(|| {
        format!(
            "the old run state {} is damaged and cannot be migrated; move it aside and the \
             next run starts again from the configured hours of history (ThreatQ upserts, so \
             nothing is duplicated)",
            path.display()
        )
    })?;
    if legacy.version > LEGACY_VERSION {
        bail!(
            "the old run state {} has state version {}, which this connector does not know; \
             move it aside",
            path.display(),
            legacy.version
        );
    }
    let mut budgets = Budgets::default();
    for (pool, times) in legacy.budgets.requests {
        for at in times {
            budgets.record(pool, from_unix_ms(at), 1);
        }
    }
    Ok(State {
        checkpoint: legacy.checkpoint,
        sent: legacy.sent,
        budgets,
        ..State::default()
    })
}

/// Renames the file at `path`, now migrated into the database at
/// `database`, to its backup name.
pub(super) fn keep_as_backup(path: &Path, database: &Path) -> Result<()> {
    let backup = backup_name(path);
    std::fs::rename(path, &backup).with_context(|| {
        format!(
            "migrated {} into {} but cannot rename it to {}",
            path.display(),
            database.display(),
            backup.display()
        )
    })?;
    tracing::info!(
        from = %path.display(),
        to = %database.display(),
        backup = %backup.display(),
        "migrated the run state into the state database; the old file is kept as a backup"
    );
    Ok(())
}

fn backup_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(LEGACY_BACKUP_SUFFIX);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{LEGACY_STATE_FILE_NAME, Store};
    use time::macros::datetime;

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
}
