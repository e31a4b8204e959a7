//! What a window needs from earlier windows and runs, and leaves for later
//! ones (docs/sync.md, "Across windows and runs"). The component maps one
//! call; the host, which keeps the state, does what spans calls:
//!
//! - the message index: a click whose message came in an earlier window is
//!   related to that message event ([`link_earlier_messages`]), and each
//!   forwarded message event is indexed for later clicks;
//! - the enrichment ledger and queue: what is fresh is not fetched again,
//!   what an allowance could not cover is served first later
//!   ([`EnrichmentSettings`]; both written by [`across_commit`]);
//! - later verdicts: a threat TAP now calls `cleared` or `falsePositive`
//!   updates the indicator an earlier sighting made ([`apply_verdicts`]).

use std::collections::{BTreeSet, HashMap};

use anyhow::anyhow;
use tap_runtime::{CampaignRef, SyncResult, Verdict, VerdictStatus};
use threatq_client::{Batch, Collection, ObjectKey, ThreatqError, TqObject};
use tracing::{debug, info, warn};

use super::{FailureKind, Pipeline, SOURCE_NAME, Stop};
use crate::state::{AcrossCommit, Enriched, IndexedMessage, Store, VerdictRow};

/// The attribute that shows TAP's verdict on an indicator.
const THREAT_STATUS: &str = "Threat Status";

/// What the ledger and queue add to the component's settings.
pub(super) struct EnrichmentSettings {
    pub known_campaigns: Vec<CampaignRef>,
    pub fresh_threats: Vec<String>,
    pub queued_campaigns: Vec<String>,
    pub queued_threats: Vec<String>,
}

impl EnrichmentSettings {
    /// The ledger's fresh campaigns and threats and this run's (a dry run
    /// commits nothing, but still fetches each once), and the oldest of the
    /// queue, as many as the allowances can serve: the whole queue would
    /// only come back deferred. A dry run serves no queue, since it could
    /// not take anything off it.
    pub fn of(
        pipeline: &Pipeline<'_>,
        campaign_allowance: u32,
        threat_allowance: u32,
    ) -> Result<EnrichmentSettings, Stop> {
        let plan = pipeline
            .prepared
            .store
            .enrichment_plan(pipeline.options.clock(), pipeline.prepared.tap.refresh)
            .map_err(Stop::from(FailureKind::Local))?;
        let mut known_campaigns: Vec<CampaignRef> = plan
            .fresh_campaigns
            .into_iter()
            .map(|(id, name)| CampaignRef { id, name })
            .collect();
        for campaign in &pipeline.known_campaigns {
            if !known_campaigns.iter().any(|c| c.id == campaign.id) {
                known_campaigns.push(campaign.clone());
            }
        }
        let mut fresh_threats = plan.fresh_threats;
        fresh_threats.extend(pipeline.enriched_threats.iter().cloned());
        let serve = |mut queue: Vec<String>, allowance: u32| {
            if pipeline.options.dry_run {
                return Vec::new();
            }
            queue.truncate(allowance as usize);
            queue
        };
        Ok(EnrichmentSettings {
            known_campaigns,
            fresh_threats,
            queued_campaigns: serve(plan.queued_campaigns, campaign_allowance),
            queued_threats: serve(plan.queued_threats, threat_allowance),
        })
    }
}

/// Relates the click and incident events the component could not resolve
/// to the message events the index holds for their GUID: each such message
/// event goes into the batch again as its bare identity (title, type,
/// time, no attributes), which ThreatQ's upsert matches to the event it
/// already holds, with the relation. A GUID the index does not hold stays
/// a Message GUID attribute. Returns how many clicks and incidents were
/// related.
pub(super) fn link_earlier_messages(
    store: &Store,
    result: &SyncResult,
    batch: &mut Batch,
) -> anyhow::Result<u64> {
    if result.unresolved_messages.is_empty() {
        return Ok(0);
    }
    let guids: BTreeSet<&str> = result
        .unresolved_messages
        .iter()
        .map(|link| link.guid.as_str())
        .collect();
    let guids: Vec<&str> = guids.into_iter().collect();
    let mut by_guid: HashMap<String, Vec<IndexedMessage>> = HashMap::new();
    for message in store.indexed_messages(&guids)? {
        by_guid
            .entry(message.guid.clone())
            .or_default()
            .push(message);
    }
    let own = batch.objects.len();
    let mut stubs: HashMap<(String, String), usize> = HashMap::new();
    let mut linked = 0;
    for link in &result.unresolved_messages {
        let click = link.object as usize;
        let Some(messages) = by_guid.get(&link.guid) else {
            continue;
        };
        if batch.objects[..own]
            .get(click)
            .is_none_or(|o| o.collection != Collection::Events)
        {
            warn!(
                index = link.object,
                "the component named a click that is not an event of its result"
            );
            continue;
        }
        for message in messages {
            let key = (message.title.clone(), message.happened_at.clone());
            let stub = *stubs.entry(key).or_insert_with(|| {
                batch.objects.push(TqObject {
                    collection: Collection::Events,
                    value: message.title.clone(),
                    type_name: Some(message.type_name.clone()),
                    happened_at: Some(message.happened_at.clone()),
                    description: None,
                    attributes: Vec::new(),
                });
                batch.objects.len() - 1
            });
            batch.relations.push((click, stub));
        }
        linked += 1;
    }
    if linked > 0 {
        debug!(
            linked,
            messages = stubs.len(),
            "clicks related to message events of earlier windows"
        );
    }
    Ok(linked)
}

/// The message events of `result` ThreatQ accepted, for the index.
fn indexed(
    result: &SyncResult,
    batch: &Batch,
    refused: &BTreeSet<ObjectKey>,
) -> Vec<IndexedMessage> {
    result
        .message_events
        .iter()
        .filter_map(|link| {
            let object = batch.objects.get(link.object as usize)?;
            if refused.contains(&object.key()) {
                return None;
            }
            Some(IndexedMessage {
                guid: link.guid.clone(),
                title: object.value.clone(),
                type_name: object.type_name.clone()?,
                happened_at: object.happened_at.clone()?,
            })
        })
        .collect()
}

/// What a forwarded result settles across runs, for its commit: its
/// accepted message events for the index, its enrichment for the ledger and
/// queue, and the verdicts applied.
pub(super) fn across_commit(
    result: &SyncResult,
    batch: &Batch,
    refused: &BTreeSet<ObjectKey>,
    message_horizon: Option<time::Duration>,
    verdicts: Vec<VerdictRow>,
) -> AcrossCommit {
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
    AcrossCommit {
        messages: indexed(result, batch, refused),
        message_horizon,
        enriched,
        deferred,
        verdicts,
    }
}

/// How TAP spells a verdict, as the Threat Status attribute shows it.
fn spelled(status: VerdictStatus) -> &'static str {
    match status {
        VerdictStatus::Cleared => "cleared",
        VerdictStatus::FalsePositive => "falsePositive",
    }
}

/// The verdicts of one window, as rows to apply.
pub(super) fn verdict_rows(verdicts: &[Verdict]) -> Vec<VerdictRow> {
    verdicts
        .iter()
        .map(|v| VerdictRow {
            indicator_type: v.indicator_type.clone(),
            indicator_value: v.indicator_value.clone(),
            threat_id: v.threat_id.clone(),
            status: spelled(v.status).to_owned(),
            error: None,
        })
        .collect()
}

/// Applies each verdict to the indicator ThreatQ holds for it, after the
/// window's objects were accepted (so a cleared threat's indicator exists).
/// A verdict already applied is skipped; an indicator ThreatQ does not hold
/// (the threat was never active) is left alone, nothing is created. A
/// verdict ThreatQ refuses is returned with the reason, kept, and tried
/// again by later runs; a ThreatQ that cannot be used fails the window.
pub(super) async fn apply_verdicts(
    pipeline: &mut Pipeline<'_>,
    rows: Vec<VerdictRow>,
    skip_applied: bool,
) -> Result<Vec<VerdictRow>, Stop> {
    if rows.is_empty() {
        return Ok(rows);
    }
    let applied = if skip_applied {
        let keys: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.indicator_type.as_str(), r.indicator_value.as_str()))
            .collect();
        pipeline
            .prepared
            .store
            .applied_verdicts(&keys)
            .map_err(Stop::from(FailureKind::Local))?
    } else {
        HashMap::new()
    };
    let mut settled = Vec::new();
    for mut row in rows {
        let key = (row.indicator_type.clone(), row.indicator_value.clone());
        if applied.get(&key) == Some(&row.status) {
            continue;
        }
        let in_run = (key.0, key.1, row.status.clone());
        if pipeline.settled_verdicts.contains(&in_run) {
            continue;
        }
        let outcome = apply_one(pipeline, &row).await;
        if matches!(outcome, Ok(Applied::Done | Applied::NoIndicator)) {
            pipeline.settled_verdicts.insert(in_run);
        }
        match outcome {
            // Not recorded in a window: a threat never active may become
            // active, and its indicator then takes a later verdict. From the
            // pending list, it is settled: there is nothing left to change.
            Ok(Applied::NoIndicator) if skip_applied => continue,
            Ok(Applied::NoIndicator) => row.error = None,
            Ok(Applied::Done) => {
                pipeline.summary.verdicts_applied += 1;
                row.error = None;
            }
            Ok(Applied::Unreadable(why)) => {
                warn!(
                    indicator = %row.indicator_value,
                    verdict = %row.status,
                    reason = %why,
                    "TAP's verdict cannot be applied yet; kept, and tried again by the next run"
                );
                row.error = Some(why);
            }
            // This one indicator's answer or refusal: the verdict waits,
            // the feed goes on.
            Err(
                error @ (ThreatqError::Refused { .. }
                | ThreatqError::UnexpectedResponse { .. }
                | ThreatqError::ErrorsInSuccess { .. }),
            ) => {
                warn!(
                    indicator = %row.indicator_value,
                    verdict = %row.status,
                    error = %error,
                    "ThreatQ refused to apply TAP's verdict to the indicator; kept, and tried again by the next run"
                );
                row.error = Some(error.to_string());
            }
            Err(error) => {
                return Err(Stop::Failed(
                    FailureKind::Threatq,
                    anyhow!(error).context(format!(
                        "applying TAP's verdict `{}` to indicator {} failed; the window is not \
                         committed, so the next run sends it again",
                        row.status, row.indicator_value
                    )),
                ));
            }
        }
        settled.push(row);
    }
    Ok(settled)
}

enum Applied {
    Done,
    NoIndicator,
    /// The indicator's status could not be read, so whether an analyst
    /// set it cannot be told: the verdict waits.
    Unreadable(String),
}

async fn apply_one(pipeline: &mut Pipeline<'_>, row: &VerdictRow) -> Result<Applied, ThreatqError> {
    let threatq = &pipeline.prepared.threatq;
    let Some(indicator) = threatq
        .find_indicator(&row.indicator_type, &row.indicator_value)
        .await?
    else {
        debug!(
            indicator = %row.indicator_value,
            verdict = %row.status,
            "TAP's verdict names an indicator ThreatQ does not hold; nothing to change"
        );
        return Ok(Applied::NoIndicator);
    };
    threatq
        .set_indicator_attribute(&indicator, THREAT_STATUS, &row.status, SOURCE_NAME)
        .await?;
    if row.status != spelled(VerdictStatus::FalsePositive) {
        info!(indicator = %row.indicator_value, verdict = %row.status, "indicator's Threat Status updated");
        return Ok(Applied::Done);
    }
    let policy = &pipeline.prepared.verdicts;
    let Some(target) = policy.false_positive_status.as_deref() else {
        return Ok(Applied::Done);
    };
    let Some(current) = indicator.status.as_deref() else {
        return Ok(Applied::Unreadable(
            "ThreatQ's answer names the indicator's status by neither name nor a readable \
             field, so whether an analyst chose it cannot be told"
                .to_owned(),
        ));
    };
    if current == target {
        return Ok(Applied::Done);
    }
    if current == policy.connector_status {
        threatq.set_indicator_status(indicator.id, target).await?;
        pipeline.summary.statuses_changed += 1;
        info!(
            indicator = %row.indicator_value,
            threat_id = %row.threat_id,
            from = %policy.connector_status,
            to = target,
            "TAP now judges the threat a false positive: indicator status changed"
        );
    } else {
        pipeline.summary.statuses_left_alone += 1;
        info!(
            indicator = %row.indicator_value,
            threat_id = %row.threat_id,
            status = current,
            connector_status = %policy.connector_status,
            "TAP now judges the threat a false positive, but the indicator's status was set by \
             someone else: status left alone, Threat Status attribute updated"
        );
    }
    Ok(Applied::Done)
}

/// Step 2's share: verdicts ThreatQ refused in earlier runs, tried again.
pub(super) async fn replay_verdicts(pipeline: &mut Pipeline<'_>) -> Result<(), Stop> {
    let pending = pipeline
        .prepared
        .store
        .pending_verdicts()
        .map_err(Stop::from(FailureKind::Local))?;
    if pending.is_empty() {
        return Ok(());
    }
    info!(
        count = pending.len(),
        "applying TAP's verdicts ThreatQ refused earlier"
    );
    let settled = apply_verdicts(pipeline, pending, false).await?;
    pipeline.commit(&crate::state::Commit {
        across: AcrossCommit {
            verdicts: settled,
            ..AcrossCommit::default()
        },
        ..Default::default()
    })
}
