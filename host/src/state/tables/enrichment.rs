//! The enrichment ledger and queue (docs/sync.md, "The enrichment ledger
//! and queue"):
//!
//! - `enrichment` (the ledger): when each threat's forensics, each threat's
//!   summary and each campaign's details were last fetched, so each is
//!   fetched once per refresh period;
//! - `enrichment_queue`: what an allowance could not cover, served first by
//!   later calls. A summary keeps the indicator it belongs to (schema 4), so
//!   a later call maps it there without the threat's records.

use anyhow::Result;
use rusqlite::{Connection, Transaction, params};
use time::{Duration, OffsetDateTime};

use crate::state::unix_ms;

pub(in crate::state) const SCHEMA: &str = "
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
";

/// What schema version 4 adds: the indicator a queued summary belongs to
/// (empty for campaigns and forensics).
pub(in crate::state) const SCHEMA_V4: &str = "
ALTER TABLE enrichment_queue ADD COLUMN indicator_type TEXT NOT NULL DEFAULT '';
ALTER TABLE enrichment_queue ADD COLUMN indicator_value TEXT NOT NULL DEFAULT '';
";

/// A queued enrichment older than this is dropped, with a warning: TAP's
/// forensics of a month-old threat are rarely worth the scarce budget, and
/// a tenant with more new threats than budget would grow the queue forever.
const QUEUE_HORIZON_MS: i64 = 30 * 24 * 3600 * 1000;

/// What is enriched: a campaign (details and forensics), a threat
/// (forensics by threat id) or a threat's summary (Threat API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Enriched {
    Campaign,
    Threat,
    Summary,
}

impl Enriched {
    fn label(self) -> &'static str {
        match self {
            Enriched::Campaign => "campaign",
            Enriched::Threat => "threat",
            Enriched::Summary => "summary",
        }
    }
}

/// One entry for the queue: what is owed, and for a summary the indicator
/// (type, value) it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owed {
    pub kind: Enriched,
    pub id: String,
    pub indicator: Option<(String, String)>,
}

impl Owed {
    pub fn new(kind: Enriched, id: impl Into<String>) -> Owed {
        Owed {
            kind,
            id: id.into(),
            indicator: None,
        }
    }

    pub fn summary(threat_id: &str, indicator_type: &str, indicator_value: &str) -> Owed {
        Owed {
            kind: Enriched::Summary,
            id: threat_id.to_string(),
            indicator: Some((indicator_type.to_string(), indicator_value.to_string())),
        }
    }
}

/// How long an enrichment stays fresh. Summaries follow the threats'
/// period: both are what TAP knows of a threat.
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
    /// (threat id, what its summary named, as the run wrote it) fetched
    /// within the threat refresh period.
    pub fresh_summaries: Vec<(String, String)>,
    /// (threat id, indicator type, indicator value), oldest first.
    pub queued_summaries: Vec<(String, String, String)>,
}

/// What is fresh and what is queued, as of `now`.
pub(in crate::state) fn plan(
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
    for row in fresh.query_map(
        params![Enriched::Summary.label(), unix_ms(now - refresh.threats)],
        |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
    )? {
        plan.fresh_summaries.push(row?);
    }
    let mut queued =
        conn.prepare("SELECT id FROM enrichment_queue WHERE kind = ?1 ORDER BY queued_ms, id")?;
    for row in queued.query_map([Enriched::Campaign.label()], |row| row.get(0))? {
        plan.queued_campaigns.push(row?);
    }
    for row in queued.query_map([Enriched::Threat.label()], |row| row.get(0))? {
        plan.queued_threats.push(row?);
    }
    let mut summaries = conn.prepare(
        "SELECT id, indicator_type, indicator_value FROM enrichment_queue WHERE kind = ?1
         ORDER BY queued_ms, id",
    )?;
    for row in summaries.query_map([Enriched::Summary.label()], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
    })? {
        plan.queued_summaries.push(row?);
    }
    Ok(plan)
}

/// How many campaigns and threats wait in the queue.
pub(in crate::state) fn count_queued(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT COUNT(*) FROM enrichment_queue", [], |row| {
        row.get(0)
    })
}

/// The commit's share: what was enriched goes into the ledger and off the
/// queue, what was deferred onto the queue (once: it keeps its place), and
/// what waited past `QUEUE_HORIZON_MS` is dropped.
pub(in crate::state) fn write(
    tx: &Transaction<'_>,
    enriched: &[(Enriched, String, String)],
    deferred: &[Owed],
    at_ms: i64,
) -> rusqlite::Result<()> {
    for (kind, id, name) in enriched {
        tx.prepare_cached(
            "INSERT INTO enrichment (kind, id, name, enriched_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (kind, id) DO UPDATE SET name = excluded.name,
                                                  enriched_ms = excluded.enriched_ms",
        )?
        .execute(params![kind.label(), id, name, at_ms])?;
        tx.prepare_cached("DELETE FROM enrichment_queue WHERE kind = ?1 AND id = ?2")?
            .execute(params![kind.label(), id])?;
    }
    for owed in deferred {
        let (indicator_type, indicator_value) = owed
            .indicator
            .as_ref()
            .map_or(("", ""), |(t, v)| (t.as_str(), v.as_str()));
        tx.prepare_cached(
            "INSERT INTO enrichment_queue (kind, id, queued_ms, indicator_type, indicator_value)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (kind, id) DO NOTHING",
        )?
        .execute(params![
            owed.kind.label(),
            owed.id,
            at_ms,
            indicator_type,
            indicator_value
        ])?;
    }
    let expired = tx.execute(
        "DELETE FROM enrichment_queue WHERE queued_ms < ?1",
        [at_ms - QUEUE_HORIZON_MS],
    )?;
    if expired > 0 {
        tracing::warn!(
            expired,
            "campaigns, forensics and summaries queued for enrichment for over 30 days were \
             dropped from the queue; their SIEM data was forwarded without them"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Commit, Store};
    use time::macros::datetime;

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
                        Owed::new(Enriched::Threat, "t2"),
                        Owed::new(Enriched::Campaign, "c2"),
                        Owed::summary("t3", "URL", "http://bad.example/"),
                    ],
                    ..Commit::default()
                },
                t,
            )
            .unwrap();
        assert_eq!(store.state().enrichment_queue, 3);
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
        assert_eq!(
            plan.queued_summaries,
            [("t3".into(), "URL".into(), "http://bad.example/".into())]
        );
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
                    enriched: vec![
                        (Enriched::Threat, "t2".into(), String::new()),
                        (Enriched::Summary, "t3".into(), "[]".into()),
                    ],
                    deferred: vec![Owed::new(Enriched::Campaign, "c2")],
                    ..Commit::default()
                },
                t + Duration::days(1),
            )
            .unwrap();
        let plan = store
            .enrichment_plan(t + Duration::days(1), refresh)
            .unwrap();
        assert!(plan.queued_threats.is_empty());
        assert!(plan.queued_summaries.is_empty());
        assert_eq!(
            plan.fresh_summaries,
            [("t3".to_owned(), "[]".to_owned())],
            "a summary is fresh as a threat is"
        );
        assert_eq!(
            plan.fresh_threats,
            ["t1", "t2"],
            "a summary is not forensics"
        );
        assert_eq!(plan.queued_campaigns, ["c2"], "queued once, not twice");
        assert_eq!(store.state().enrichment_queue, 1);
    }
}
