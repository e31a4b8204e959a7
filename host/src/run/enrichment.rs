//! The enrichment ledger and queue, on the run's side (docs/sync.md,
//! "Across windows and runs"): what the component is told about campaigns,
//! threats and threat summaries enriched earlier (so each is fetched once per refresh
//! period) and about what an allowance could not cover before (served
//! first), and what a forwarded result adds to the ledger and the queue.
//! The tables themselves are the state store's.

use std::collections::{BTreeSet, HashMap};

use tap_runtime::{CampaignRef, NamedRef, ObjectKind, SummaryRef, SyncResult, ThreatRef};
use threatq_client::{Batch, Collection, ObjectKey, TqObject};
use tracing::debug;

use crate::state::{Enriched, EnrichmentPlan, Owed, Store};

/// What the ledger and queue add to the component's settings.
pub(super) struct EnrichmentSettings {
    pub known_campaigns: Vec<CampaignRef>,
    pub fresh_threats: Vec<String>,
    pub queued_campaigns: Vec<String>,
    pub queued_threats: Vec<String>,
    pub summarised_threats: Vec<SummaryRef>,
    pub queued_summaries: Vec<ThreatRef>,
}

/// The allowances the queue is cut to.
#[derive(Debug, Clone, Copy)]
pub(super) struct QueueAllowances {
    pub campaigns: u32,
    pub threats: u32,
    pub summaries: u32,
}

/// Campaigns, threats and summaries enriched earlier in this run, named to
/// later windows so each is fetched once even when nothing is committed (a
/// dry run).
#[derive(Debug, Default)]
pub(super) struct EnrichedThisRun {
    campaigns: Vec<CampaignRef>,
    threats: Vec<String>,
    summaries: Vec<SummaryRef>,
}

impl EnrichedThisRun {
    /// Adds what a window's call enriched.
    pub fn remember(&mut self, result: &SyncResult) {
        for campaign in &result.campaigns_fetched {
            if !self.campaigns.iter().any(|c| c.id == campaign.id) {
                self.campaigns.push(campaign.clone());
            }
        }
        self.threats
            .extend(result.enrichment.threats_enriched.iter().cloned());
        self.summaries
            .extend(result.enrichment.threats_summarised.iter().cloned());
    }
}

/// Whether a call may take entries off the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Queue {
    Serve,
    /// A dry run commits nothing, so it could not take anything off the
    /// queue: it serves none.
    Leave,
}

impl EnrichmentSettings {
    /// The ledger's fresh campaigns and threats and this run's, and the
    /// oldest of the queue, as many as the allowances can serve: the whole
    /// queue would only come back deferred.
    pub fn of(
        plan: EnrichmentPlan,
        this_run: &EnrichedThisRun,
        queue: Queue,
        allowances: QueueAllowances,
    ) -> EnrichmentSettings {
        let mut known_campaigns: Vec<CampaignRef> = plan
            .fresh_campaigns
            .into_iter()
            .map(|(id, name)| CampaignRef { id, name })
            .collect();
        for campaign in &this_run.campaigns {
            if !known_campaigns.iter().any(|c| c.id == campaign.id) {
                known_campaigns.push(campaign.clone());
            }
        }
        let mut fresh_threats = plan.fresh_threats;
        fresh_threats.extend(this_run.threats.iter().cloned());
        let mut summarised_threats: Vec<SummaryRef> = plan
            .fresh_summaries
            .into_iter()
            .map(|(threat_id, named)| SummaryRef {
                threat_id,
                named: decode_named(&named),
            })
            .collect();
        summarised_threats.extend(this_run.summaries.iter().cloned());
        fn serve<T>(queue: Queue, mut queued: Vec<T>, allowance: u32) -> Vec<T> {
            if queue == Queue::Leave {
                return Vec::new();
            }
            queued.truncate(allowance as usize);
            queued
        }
        let queued_summaries = plan
            .queued_summaries
            .into_iter()
            .map(|(threat_id, indicator_type, indicator_value)| ThreatRef {
                threat_id,
                indicator_type,
                indicator_value,
            })
            .collect();
        EnrichmentSettings {
            known_campaigns,
            fresh_threats,
            queued_campaigns: serve(queue, plan.queued_campaigns, allowances.campaigns),
            queued_threats: serve(queue, plan.queued_threats, allowances.threats),
            summarised_threats,
            queued_summaries: serve(queue, queued_summaries, allowances.summaries),
        }
    }
}

/// The ledger keeps what a summary named in its `name` column, as JSON
/// `[["adversary", "TA505"], ...]`: a later call relates its events to
/// those objects without asking TAP again.
fn encode_named(named: &[NamedRef]) -> String {
    let pairs: Vec<(&str, &str)> = named
        .iter()
        .filter_map(|n| Some((kind_label(n.kind)?, n.name.as_str())))
        .collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".to_owned())
}

/// What [`encode_named`] wrote; an entry that does not read (written by
/// another version) is left out, which costs only its relations.
fn decode_named(text: &str) -> Vec<NamedRef> {
    let pairs: Vec<(String, String)> = serde_json::from_str(text).unwrap_or_default();
    pairs
        .into_iter()
        .filter_map(|(kind, name)| {
            let kind = [
                ObjectKind::Adversary,
                ObjectKind::Malware,
                ObjectKind::AttackPattern,
            ]
            .into_iter()
            .find(|k| kind_label(*k) == Some(kind.as_str()))?;
            Some(NamedRef { kind, name })
        })
        .collect()
}

fn kind_label(kind: ObjectKind) -> Option<&'static str> {
    match kind {
        ObjectKind::Adversary => Some("adversary"),
        ObjectKind::Malware => Some("malware"),
        ObjectKind::AttackPattern => Some("attack-pattern"),
        _ => None,
    }
}

/// What a forwarded result adds to the ledger and the queue.
pub(super) struct LedgerEntries {
    /// (kind, id, name): fetched now, fresh for the refresh period.
    pub enriched: Vec<(Enriched, String, String)>,
    /// Deferred by an allowance (or a failure), served first later.
    pub deferred: Vec<Owed>,
}

pub(super) fn ledger_entries(result: &SyncResult) -> LedgerEntries {
    let enrichment = &result.enrichment;
    let enriched = result
        .campaigns_fetched
        .iter()
        .map(|c| (Enriched::Campaign, c.id.clone(), c.name.clone()))
        .chain(
            enrichment
                .threats_enriched
                .iter()
                .map(|id| (Enriched::Threat, id.clone(), String::new())),
        )
        .chain(enrichment.threats_summarised.iter().map(|s| {
            (
                Enriched::Summary,
                s.threat_id.clone(),
                encode_named(&s.named),
            )
        }))
        .collect();
    let deferred = enrichment
        .campaigns_deferred
        .iter()
        .map(|id| Owed::new(Enriched::Campaign, id.clone()))
        .chain(
            enrichment
                .threats_deferred
                .iter()
                .map(|id| Owed::new(Enriched::Threat, id.clone())),
        )
        .chain(
            enrichment
                .summaries_deferred
                .iter()
                .map(|r| Owed::summary(&r.threat_id, &r.indicator_type, &r.indicator_value)),
        )
        .collect();
    LedgerEntries { enriched, deferred }
}

/// The campaigns `result` fetched whose campaign object is in `batch`, by
/// id, with that object's index: those an earlier object's mention can be
/// related to now.
fn fetched_campaign_objects(result: &SyncResult, batch: &Batch) -> Vec<(String, usize)> {
    result
        .campaigns_fetched
        .iter()
        .filter_map(|campaign| {
            let index = batch
                .objects
                .iter()
                .position(|o| o.collection == Collection::Campaign && o.value == campaign.name)?;
            Some((campaign.id.clone(), index))
        })
        .collect()
}

/// Relates the objects of earlier windows and runs that named a campaign
/// this call fetched (it was deferred, or its look-up failed, back then)
/// to it. Returns how many were related.
pub(super) fn link_late_campaigns(
    store: &Store,
    result: &SyncResult,
    batch: &mut Batch,
) -> anyhow::Result<u64> {
    let targets = fetched_campaign_objects(result, batch)
        .into_iter()
        .map(|(id, campaign)| (id, vec![campaign]))
        .collect();
    let linked = relate_kept_mentions(store, batch, targets)?;
    debug!(linked, "earlier objects related to campaigns fetched late");
    Ok(linked)
}

/// The one mechanism behind [`link_late_campaigns`] and
/// [`link_late_summaries`]: for each (mention key, objects of the batch),
/// the objects the mentions table keeps under the key go into the batch
/// again as their bare identity, which ThreatQ's upsert matches to the
/// object it holds, each related to those objects. Returns how many kept
/// objects were related.
fn relate_kept_mentions(
    store: &Store,
    batch: &mut Batch,
    targets: Vec<(String, Vec<usize>)>,
) -> anyhow::Result<u64> {
    if targets.is_empty() {
        return Ok(0);
    }
    let keys: Vec<&str> = targets.iter().map(|(key, _)| key.as_str()).collect();
    let mentions = store.campaign_mentions(&keys)?;
    if mentions.is_empty() {
        return Ok(0);
    }
    let mut index: HashMap<ObjectKey, usize> = batch
        .objects
        .iter()
        .enumerate()
        .map(|(i, o)| (o.key(), i))
        .collect();
    let mut linked = 0;
    for (key, objects) in &targets {
        for kept in mentions.get(key).into_iter().flatten() {
            let at = *index.entry(kept.key()).or_insert_with(|| {
                batch.objects.push(kept.bare());
                batch.objects.len() - 1
            });
            for object in objects {
                batch.relations.push((at, *object));
            }
            linked += 1;
        }
    }
    Ok(linked)
}

/// Where the mentions table keeps the events of a threat whose summary was
/// deferred: beside the campaign ids, under a key no campaign UUID has.
fn summary_mention_key(threat_id: &str) -> String {
    format!("threat:{threat_id}")
}

fn collection_of(kind: ObjectKind) -> Option<Collection> {
    match kind {
        ObjectKind::Adversary => Some(Collection::Adversaries),
        ObjectKind::Malware => Some(Collection::Malware),
        ObjectKind::AttackPattern => Some(Collection::AttackPattern),
        _ => None,
    }
}

/// The events ThreatQ accepted that carry a threat whose summary this call
/// deferred: the batch's events related to the threat's indicator, as
/// their bare identity, keyed for [`link_late_summaries`].
fn summary_mentions(
    result: &SyncResult,
    batch: &Batch,
    refused: &BTreeSet<ObjectKey>,
) -> Vec<(String, TqObject)> {
    let mut mentions = Vec::new();
    for owed in &result.enrichment.summaries_deferred {
        let Some(indicator) = batch.objects.iter().position(|o| {
            o.collection == Collection::Indicators
                && o.value == owed.indicator_value
                && o.type_name.as_deref() == Some(owed.indicator_type.as_str())
        }) else {
            continue;
        };
        let key = summary_mention_key(&owed.threat_id);
        for &(a, b) in &batch.relations {
            let other = match (a == indicator, b == indicator) {
                (true, _) => b,
                (_, true) => a,
                _ => continue,
            };
            if let Some(event) = batch.objects.get(other)
                && event.collection == Collection::Events
                && !refused.contains(&event.key())
            {
                mentions.push((key.clone(), event.bare()));
            }
        }
    }
    mentions
}

/// Relates the events of earlier windows and runs that carried a threat
/// whose summary was deferred then, and this call fetched, to what the
/// summary named. Returns how many events were related;
/// [`campaign_mentions`] forgets the mentions of every summary fetched.
pub(super) fn link_late_summaries(
    store: &Store,
    result: &SyncResult,
    batch: &mut Batch,
) -> anyhow::Result<u64> {
    let targets = result
        .enrichment
        .threats_summarised
        .iter()
        .filter(|s| !s.named.is_empty())
        .map(|summary| {
            let named = summary
                .named
                .iter()
                .filter_map(|n| {
                    let collection = collection_of(n.kind)?;
                    batch
                        .objects
                        .iter()
                        .position(|o| o.collection == collection && o.value == n.name)
                })
                .collect();
            (summary_mention_key(&summary.threat_id), named)
        })
        .collect();
    let linked = relate_kept_mentions(store, batch, targets)?;
    debug!(
        linked,
        "earlier events related to threat summaries fetched late"
    );
    Ok(linked)
}

/// What a forwarded result adds to the campaign mentions: the objects
/// ThreatQ accepted that name a campaign the call could not fetch (as
/// their bare identity), and the campaigns it fetched, whose mentions
/// [`link_late_campaigns`] related in this batch.
pub(super) fn campaign_mentions(
    result: &SyncResult,
    batch: &Batch,
    refused: &BTreeSet<ObjectKey>,
) -> (Vec<(String, TqObject)>, Vec<String>) {
    let mentions: Vec<(String, TqObject)> = result
        .unresolved_campaigns
        .iter()
        .filter_map(|link| {
            let object = batch.objects.get(link.object as usize)?;
            (!refused.contains(&object.key())).then(|| (link.campaign_id.clone(), object.bare()))
        })
        .collect();
    let mut related: Vec<String> = fetched_campaign_objects(result, batch)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    // The same table keeps the events of threats whose summary waits, and
    // forgets those of the summaries this result fetched.
    let mut mentions = mentions;
    mentions.extend(summary_mentions(result, batch, refused));
    related.extend(
        result
            .enrichment
            .threats_summarised
            .iter()
            .map(|s| summary_mention_key(&s.threat_id)),
    );
    (mentions, related)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_summary_named_survives_the_ledger() {
        let named = vec![
            NamedRef {
                kind: ObjectKind::Adversary,
                name: "TA505 \"x\"".into(),
            },
            NamedRef {
                kind: ObjectKind::AttackPattern,
                name: "XL4 macros".into(),
            },
        ];
        // The generated types compare by their Debug form only.
        let text = |named: &[NamedRef]| format!("{named:?}");
        assert_eq!(text(&decode_named(&encode_named(&named))), text(&named));
        assert!(decode_named("not json").is_empty());
        assert_eq!(
            text(&decode_named(r#"[["campaign","c"],["malware","Ursnif"]]"#)),
            text(&[NamedRef {
                kind: ObjectKind::Malware,
                name: "Ursnif".into()
            }])
        );
    }
}
