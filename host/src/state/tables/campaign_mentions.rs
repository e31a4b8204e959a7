//! `campaign_mentions`: objects ThreatQ accepted that name a campaign the
//! call could not fetch (its look-up deferred to the queue, or failed),
//! kept as their bare identity, so that when a later call fetches the
//! campaign the host relates them to it (docs/sync.md, "The enrichment
//! ledger and queue"). The events of a threat whose summary waits are kept
//! here too, under `threat:<threat id>`, and related to what the summary
//! names once a later call fetches it.

use std::collections::HashMap;

use anyhow::{Context, Result};
use rusqlite::{Connection, Transaction, params};
use threatq_client::TqObject;

pub(in crate::state) const SCHEMA: &str = "
CREATE TABLE campaign_mentions (
    campaign_id TEXT NOT NULL,
    object      TEXT NOT NULL,
    since_ms    INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, object)
);
";

/// A mention is kept as long as its campaign may still be served from the
/// enrichment queue, which drops an entry after 30 days.
const HORIZON_MS: i64 = 30 * 24 * 3600 * 1000;

/// The objects kept for each of these campaign ids (bare identities: no
/// attributes, no description), by campaign id.
pub(in crate::state) fn read(
    conn: &Connection,
    campaign_ids: &[&str],
) -> Result<HashMap<String, Vec<TqObject>>> {
    let mut statement = conn
        .prepare("SELECT object FROM campaign_mentions WHERE campaign_id = ?1 ORDER BY object")?;
    let mut mentions = HashMap::new();
    for id in campaign_ids {
        let objects: Vec<TqObject> = statement
            .query_map([id], |row| row.get::<_, String>(0))?
            .map(|text| -> Result<TqObject> {
                let text = text?;
                serde_json::from_str(&text)
                    .with_context(|| format!("a mention of campaign {id} cannot be read"))
            })
            .collect::<Result<_>>()?;
        if !objects.is_empty() {
            mentions.insert((*id).to_owned(), objects);
        }
    }
    Ok(mentions)
}

/// The commit's share: new mentions kept, those of the campaigns the
/// commit's call fetched (and so related) removed, old ones dropped.
pub(in crate::state) fn write(
    tx: &Transaction<'_>,
    new: &[(String, TqObject)],
    settled: &[String],
    at_ms: i64,
) -> Result<()> {
    for campaign_id in settled {
        tx.execute(
            "DELETE FROM campaign_mentions WHERE campaign_id = ?1",
            [campaign_id],
        )?;
    }
    for (campaign_id, object) in new {
        tx.prepare_cached(
            "INSERT INTO campaign_mentions (campaign_id, object, since_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (campaign_id, object) DO NOTHING",
        )?
        .execute(params![campaign_id, serde_json::to_string(object)?, at_ms])?;
    }
    if !new.is_empty() || !settled.is_empty() {
        tx.execute(
            "DELETE FROM campaign_mentions WHERE since_ms < ?1",
            [at_ms - HORIZON_MS],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::state::{Commit, Store};
    use threatq_client::{Collection, TqObject};
    use time::macros::datetime;

    fn indicator(value: &str) -> TqObject {
        TqObject {
            collection: Collection::Indicators,
            value: value.to_owned(),
            type_name: Some("URL".to_owned()),
            happened_at: None,
            description: None,
            attributes: Vec::new(),
        }
    }

    #[test]
    fn mentions_are_kept_once_until_their_campaign_is_fetched_or_thirty_days_pass() {
        let dir = tempfile::tempdir().unwrap();
        let t = datetime!(2026-12-01 00:00 UTC);
        let mut store = Store::open(dir.path()).unwrap();
        let mention = |value: &str| ("c-1".to_owned(), indicator(value));
        for _ in 0..2 {
            store
                .commit(
                    &Commit {
                        campaign_mentions: vec![mention("http://a/"), mention("http://b/")],
                        ..Commit::default()
                    },
                    t,
                )
                .unwrap();
        }
        let held = store.campaign_mentions(&["c-1", "c-2"]).unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(
            held["c-1"],
            [indicator("http://a/"), indicator("http://b/")]
        );

        store
            .commit(
                &Commit {
                    campaigns_related: vec!["c-1".to_owned()],
                    ..Commit::default()
                },
                t,
            )
            .unwrap();
        assert!(store.campaign_mentions(&["c-1"]).unwrap().is_empty());

        store
            .commit(
                &Commit {
                    campaign_mentions: vec![mention("http://old/")],
                    ..Commit::default()
                },
                t,
            )
            .unwrap();
        store
            .commit(
                &Commit {
                    campaign_mentions: vec![("c-2".to_owned(), indicator("http://new/"))],
                    ..Commit::default()
                },
                t + time::Duration::days(31),
            )
            .unwrap();
        assert!(store.campaign_mentions(&["c-1"]).unwrap().is_empty());
        assert_eq!(store.campaign_mentions(&["c-2"]).unwrap().len(), 1);
    }
}
