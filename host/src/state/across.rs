//! What the state store keeps so data stays right across windows and runs
//! (docs/sync.md, "Across windows and runs"):
//!
//! - `message_index`: each forwarded message event's identity by GUID, so a
//!   click that arrives days later is related to its message;
//! - `enrichment`: when each threat's forensics and each campaign's details
//!   were last fetched, so each is fetched once per refresh period;
//! - `enrichment_queue`: what an allowance could not cover, served first by
//!   later calls;
//! - `verdicts`: the last verdict applied to each indicator, so a verdict
//!   is applied once, and one ThreatQ refused is tried again.
//!
//! Reads are by key, never the whole table: the message index of a big
//! tenant holds millions of rows. Writes happen in the window's commit.

use std::collections::HashMap;

use anyhow::Result;
use rusqlite::{Connection, Transaction, params, params_from_iter};
use time::{Duration, OffsetDateTime};

use super::unix_ms;

/// Schema version 2: the tables of this module.
pub(super) const SCHEMA_V2: &str = "
CREATE TABLE message_index (
    guid        TEXT NOT NULL,
    title       TEXT NOT NULL,
    happened_at TEXT NOT NULL,
    type_name   TEXT NOT NULL,
    indexed_ms  INTEGER NOT NULL,
    PRIMARY KEY (guid, title, happened_at)
);
CREATE INDEX message_index_at ON message_index (indexed_ms);
CREATE TABLE enrichment (
    kind        TEXT NOT NULL,
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    enriched_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE TABLE enrichment_queue (
    kind      TEXT NOT NULL,
    id        TEXT NOT NULL,
    queued_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
);
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

/// SQLite's default bound on `?` parameters is 32766; lookups go in
/// chunks well under it.
const LOOKUP_CHUNK: usize = 500;
/// A queued enrichment older than this is dropped, with a warning: TAP's
/// forensics of a month-old threat are rarely worth the scarce budget, and
/// a tenant with more new threats than budget would grow the queue forever.
const QUEUE_HORIZON_MS: i64 = 30 * 24 * 3600 * 1000;

/// A message event ThreatQ accepted, by the GUID of its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedMessage {
    pub guid: String,
    /// The event's identity in ThreatQ: title, type and `happened_at`.
    pub title: String,
    pub type_name: String,
    pub happened_at: String,
}

/// What is enriched: a campaign (details and forensics) or a threat
/// (forensics by threat id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Enriched {
    Campaign,
    Threat,
}

impl Enriched {
    fn label(self) -> &'static str {
        match self {
            Enriched::Campaign => "campaign",
            Enriched::Threat => "threat",
        }
    }
}

/// How long an enrichment stays fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refresh {
    pub threats: Duration,
    pub campaigns: Duration,
}

/// What the ledger and the queue tell the component for one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnrichmentPlan {
    /// (campaign id, name) fetched within the campaign refresh period.
    pub fresh_campaigns: Vec<(String, String)>,
    /// Threat ids whose forensics were fetched within the threat refresh period.
    pub fresh_threats: Vec<String>,
    pub queued_campaigns: Vec<String>,
    pub queued_threats: Vec<String>,
}

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

/// The indexed message events of these GUIDs.
pub(super) fn indexed_messages(conn: &Connection, guids: &[&str]) -> Result<Vec<IndexedMessage>> {
    let mut found = Vec::new();
    for chunk in guids.chunks(LOOKUP_CHUNK) {
        let marks = vec!["?"; chunk.len()].join(",");
        let mut statement = conn.prepare(&format!(
            "SELECT guid, title, type_name, happened_at FROM message_index
             WHERE guid IN ({marks}) ORDER BY guid, happened_at, title"
        ))?;
        let rows = statement.query_map(params_from_iter(chunk.iter()), |row| {
            Ok(IndexedMessage {
                guid: row.get(0)?,
                title: row.get(1)?,
                type_name: row.get(2)?,
                happened_at: row.get(3)?,
            })
        })?;
        for row in rows {
            found.push(row?);
        }
    }
    Ok(found)
}

/// What is fresh and what is queued, as of `now`.
pub(super) fn enrichment_plan(
    conn: &Connection,
    now: OffsetDateTime,
    refresh: Refresh,
) -> Result<EnrichmentPlan> {
    let mut plan = EnrichmentPlan::default();
    let mut fresh = conn.prepare(
        "SELECT id, name FROM enrichment WHERE kind = ?1 AND enriched_ms >= ?2 ORDER BY id",
    )?;
    for row in fresh.query_map(
        params![Enriched::Campaign.label(), unix_ms(now - refresh.campaigns)],
        |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
    )? {
        plan.fresh_campaigns.push(row?);
    }
    for row in fresh.query_map(
        params![Enriched::Threat.label(), unix_ms(now - refresh.threats)],
        |row| row.get::<_, String>(0),
    )? {
        plan.fresh_threats.push(row?);
    }
    let mut queued =
        conn.prepare("SELECT id FROM enrichment_queue WHERE kind = ?1 ORDER BY queued_ms, id")?;
    for row in queued.query_map([Enriched::Campaign.label()], |row| row.get(0))? {
        plan.queued_campaigns.push(row?);
    }
    for row in queued.query_map([Enriched::Threat.label()], |row| row.get(0))? {
        plan.queued_threats.push(row?);
    }
    Ok(plan)
}

/// The status last applied to each of these indicators, by (type, value).
pub(super) fn applied_verdicts(
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
pub(super) fn pending_verdicts(conn: &Connection) -> Result<Vec<VerdictRow>> {
    let mut statement = conn.prepare(
        "SELECT indicator_type, indicator_value, threat_id, status, last_error FROM verdicts
         WHERE applied_ms IS NULL ORDER BY seen_ms",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(VerdictRow {
            indicator_type: row.get(0)?,
            indicator_value: row.get(1)?,
            threat_id: row.get(2)?,
            status: row.get(3)?,
            error: row.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// (queued enrichments, verdicts waiting to be applied).
pub(super) fn count_waiting(conn: &Connection) -> rusqlite::Result<(u64, u64)> {
    let queued = conn.query_row("SELECT COUNT(*) FROM enrichment_queue", [], |row| {
        row.get(0)
    })?;
    let verdicts = conn.query_row(
        "SELECT COUNT(*) FROM verdicts WHERE applied_ms IS NULL",
        [],
        |row| row.get(0),
    )?;
    Ok((queued, verdicts))
}

pub(super) fn write(tx: &Transaction<'_>, commit: &super::Commit, at_ms: i64) -> Result<()> {
    for m in &commit.messages {
        tx.prepare_cached(
            "INSERT INTO message_index (guid, title, happened_at, type_name, indexed_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (guid, title, happened_at) DO UPDATE SET indexed_ms = excluded.indexed_ms",
        )?
        .execute(params![m.guid, m.title, m.happened_at, m.type_name, at_ms])?;
    }
    if let Some(horizon) = commit.message_horizon {
        tx.execute(
            "DELETE FROM message_index WHERE indexed_ms < ?1",
            [at_ms - horizon.whole_milliseconds() as i64],
        )?;
    }
    for (kind, id, name) in &commit.enriched {
        tx.prepare_cached(
            "INSERT INTO enrichment (kind, id, name, enriched_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (kind, id) DO UPDATE SET name = excluded.name,
                                                  enriched_ms = excluded.enriched_ms",
        )?
        .execute(params![kind.label(), id, name, at_ms])?;
        tx.prepare_cached("DELETE FROM enrichment_queue WHERE kind = ?1 AND id = ?2")?
            .execute(params![kind.label(), id])?;
    }
    for (kind, id) in &commit.deferred {
        tx.prepare_cached(
            "INSERT INTO enrichment_queue (kind, id, queued_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (kind, id) DO NOTHING",
        )?
        .execute(params![kind.label(), id, at_ms])?;
    }
    let expired = tx.execute(
        "DELETE FROM enrichment_queue WHERE queued_ms < ?1",
        [at_ms - QUEUE_HORIZON_MS],
    )?;
    if expired > 0 {
        tracing::warn!(
            expired,
            "campaigns and threats queued for enrichment for over 30 days were dropped from the \
             queue; their SIEM data was forwarded without them"
        );
    }
    for v in &commit.verdicts {
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
