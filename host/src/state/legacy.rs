//! The JSON state file that versions before the database wrote
//! (`tq-conn-proofpoint-tap.state.json`, state version 1). Read once, to
//! migrate it into the database; never written.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{Budgets, Pool, State, from_unix_ms};

const LEGACY_VERSION: u32 = 1;

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
