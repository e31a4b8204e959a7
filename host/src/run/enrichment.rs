//! The enrichment ledger and queue, on the run's side (docs/sync.md,
//! "Across windows and runs"): what the component is told about campaigns
//! and threats enriched earlier (so each is fetched once per refresh
//! period) and about what an allowance could not cover before (served
//! first), and what a forwarded result adds to the ledger and the queue.
//! The tables themselves are the state store's.

use tap_runtime::{CampaignRef, SyncResult};

use crate::state::{Enriched, EnrichmentPlan};

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
