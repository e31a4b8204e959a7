//! The enrichment ledger and queue, on the run's side (docs/sync.md,
//! "Across windows and runs"): what the component is told about campaigns
//! and threats enriched earlier (so each is fetched once per refresh
//! period) and about what an allowance could not cover before (served
//! first), and what a forwarded result adds to the ledger and the queue.
//! The tables themselves are the state store's.

use std::collections::{BTreeSet, HashMap};

use tap_runtime::{CampaignRef, SyncResult};
use threatq_client::{Batch, Collection, ObjectKey, TqObject};
use tracing::debug;

use crate::state::{Enriched, EnrichmentPlan, Store};

/// What the ledger and queue add to the component's settings.
pub(super) struct EnrichmentSettings {
    pub known_campaigns: Vec<CampaignRef>,
    pub fresh_threats: Vec<String>,
    pub queued_campaigns: Vec<String>,
    pub queued_threats: Vec<String>,
}

/// Campaigns and threats enriched earlier in this run, named to later
/// windows so each is fetched once even when nothing is committed (a dry
/// run).
#[derive(Debug, Default)]
pub(super) struct EnrichedThisRun {
    campaigns: Vec<CampaignRef>,
    threats: Vec<String>,
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
        campaign_allowance: u32,
        threat_allowance: u32,
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
        let serve = |mut queued: Vec<String>, allowance: u32| {
            if queue == Queue::Leave {
                return Vec::new();
            }
            queued.truncate(allowance as usize);
            queued
        };
        EnrichmentSettings {
            known_campaigns,
            fresh_threats,
            queued_campaigns: serve(plan.queued_campaigns, campaign_allowance),
            queued_threats: serve(plan.queued_threats, threat_allowance),
        }
    }
}

/// What a forwarded result adds to the ledger and the queue.
pub(super) struct LedgerEntries {
    /// (kind, id, name): fetched now, fresh for the refresh period.
    pub enriched: Vec<(Enriched, String, String)>,
    /// (kind, id): deferred by an allowance, served first later.
    pub deferred: Vec<(Enriched, String)>,
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
        .collect();
    let deferred = enrichment
        .campaigns_deferred
        .iter()
        .map(|id| (Enriched::Campaign, id.clone()))
        .chain(
            enrichment
                .threats_deferred
                .iter()
                .map(|id| (Enriched::Threat, id.clone())),
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
/// to it: each goes into the batch again as its bare identity, which
/// ThreatQ's upsert matches to the object it holds, with the relation.
/// Returns how many were related.
pub(super) fn link_late_campaigns(
    store: &Store,
    result: &SyncResult,
    batch: &mut Batch,
) -> anyhow::Result<u64> {
    let fetched = fetched_campaign_objects(result, batch);
    if fetched.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = fetched.iter().map(|(id, _)| id.as_str()).collect();
    let mentions = store.campaign_mentions(&ids)?;
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
    for (id, campaign) in &fetched {
        for object in mentions.get(id).into_iter().flatten() {
            let at = *index.entry(object.key()).or_insert_with(|| {
                batch.objects.push(object.bare());
                batch.objects.len() - 1
            });
            batch.relations.push((at, *campaign));
            linked += 1;
        }
    }
    debug!(linked, "earlier objects related to campaigns fetched late");
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
    let mentions = result
        .unresolved_campaigns
        .iter()
        .filter_map(|link| {
            let object = batch.objects.get(link.object as usize)?;
            (!refused.contains(&object.key())).then(|| (link.campaign_id.clone(), object.bare()))
        })
        .collect();
    let related = fetched_campaign_objects(result, batch)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    (mentions, related)
}
