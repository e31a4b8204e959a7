//! Later verdicts (docs/mapping.md, "Verdict changes"): a threat TAP now
//! calls `cleared` or `falsePositive` updates the indicator an earlier
//! sighting made. The component reports the verdicts of a window; this
//! module applies them to ThreatQ under the verdict policy and says what it
//! did. Which verdicts were applied, and which wait, is the state store's
//! `verdicts` table.

use std::collections::{HashMap, HashSet};

use anyhow::anyhow;
use tap_runtime::{Verdict, VerdictStatus};
use threatq_client::{Client, ThreatqError};
use tracing::{debug, info, warn};

use super::SOURCE_NAME;
use super::outcome::{FailureKind, Stop};
use crate::report::Tally;
use crate::state::VerdictRow;

/// The attribute that shows TAP's verdict on an indicator.
const THREAT_STATUS: &str = "Threat Status";

/// The statuses a verdict change works with (docs/mapping.md, "Verdict
/// changes").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct VerdictPolicy {
    /// The status the connector gives new indicators: only an indicator
    /// that still has it is moved.
    pub connector_status: String,
    /// Where a false positive's indicator is moved; `None` when ThreatQ
    /// does not know the default status (the attribute still changes).
    pub false_positive_status: Option<String>,
}

/// (type, value, verdict) settled in this run, applied or with no
/// indicator to apply it to: not looked up again by later windows.
#[derive(Debug, Default)]
pub(super) struct SettledThisRun(HashSet<(String, String, String)>);

/// Where the verdicts to apply come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// A window (or re-mapped records): a verdict already applied is
    /// skipped, and one with no indicator is not kept.
    Window,
    /// Verdicts ThreatQ refused in earlier runs, tried again.
    Pending,
}

/// How TAP spells a verdict, as the Threat Status attribute shows it.
fn spelled(status: VerdictStatus) -> &'static str {
    match status {
        VerdictStatus::Cleared => "cleared",
        VerdictStatus::FalsePositive => "falsePositive",
    }
}

/// The verdicts of one window, as rows to apply.
pub(super) fn rows(verdicts: &[Verdict]) -> Vec<VerdictRow> {
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
/// `applied` is the verdict last applied to each indicator, as the store
/// holds it: from a window, a verdict already applied is skipped. An
/// indicator ThreatQ does not hold (the threat was never active) is left
/// alone, nothing is created. A verdict ThreatQ refuses is returned with
/// the reason, kept, and tried again by later runs; a ThreatQ that cannot
/// be used fails the window. Returns the rows to record and what was done;
/// a failure still says what was done before it, for the summary.
pub(super) async fn apply(
    threatq: &Client,
    policy: &VerdictPolicy,
    settled_this_run: &mut SettledThisRun,
    applied: &HashMap<(String, String), String>,
    rows: Vec<VerdictRow>,
    source: Source,
) -> Result<(Vec<VerdictRow>, Tally), (Stop, Tally)> {
    let mut tally = Tally::default();
    let mut settled = Vec::new();
    for mut row in rows {
        let key = (row.indicator_type.clone(), row.indicator_value.clone());
        if applied.get(&key) == Some(&row.status) {
            continue;
        }
        let in_run = (key.0, key.1, row.status.clone());
        if settled_this_run.0.contains(&in_run) {
            continue;
        }
        let outcome = apply_one(threatq, policy, &row).await;
        if matches!(outcome, Ok(Applied::Done(_) | Applied::NoIndicator)) {
            settled_this_run.0.insert(in_run);
        }
        match outcome {
            // Not recorded in a window: a threat never active may become
            // active, and its indicator then takes a later verdict. From the
            // pending list, it is settled: there is nothing left to change.
            Ok(Applied::NoIndicator) if source == Source::Window => continue,
            Ok(Applied::NoIndicator) => row.error = None,
            Ok(Applied::Done(status)) => {
                tally.verdicts_applied += 1;
                match status {
                    Status::Changed => tally.statuses_changed += 1,
                    Status::LeftAlone => tally.statuses_left_alone += 1,
                    Status::Untouched => {}
                }
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
                let stop = Stop::Failed(
                    FailureKind::Threatq,
                    anyhow!(error).context(format!(
                        "applying TAP's verdict `{}` to indicator {} failed; the window is not \
                         committed, so the next run sends it again",
                        row.status, row.indicator_value
                    )),
                );
                return Err((stop, tally));
            }
        }
        settled.push(row);
    }
    Ok((settled, tally))
}

enum Applied {
    Done(Status),
    NoIndicator,
    /// The indicator's status could not be read, so whether an analyst
    /// set it cannot be told: the verdict waits.
    Unreadable(String),
}

/// What a verdict did to the indicator's status.
enum Status {
    /// Not a status change (a cleared threat, no target status, or the
    /// indicator already has it).
    Untouched,
    Changed,
    /// An analyst had set another status: left as it is.
    LeftAlone,
}

async fn apply_one(
    threatq: &Client,
    policy: &VerdictPolicy,
    row: &VerdictRow,
) -> Result<Applied, ThreatqError> {
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
        return Ok(Applied::Done(Status::Untouched));
    }
    let Some(target) = policy.false_positive_status.as_deref() else {
        return Ok(Applied::Done(Status::Untouched));
    };
    let Some(current) = indicator.status.as_deref() else {
        return Ok(Applied::Unreadable(
            "ThreatQ's answer names the indicator's status by neither name nor a readable \
             field, so whether an analyst chose it cannot be told"
                .to_owned(),
        ));
    };
    if current == target {
        return Ok(Applied::Done(Status::Untouched));
    }
    if current == policy.connector_status {
        threatq.set_indicator_status(indicator.id, target).await?;
        info!(
            indicator = %row.indicator_value,
            threat_id = %row.threat_id,
            from = %policy.connector_status,
            to = target,
            "TAP now judges the threat a false positive: indicator status changed"
        );
        Ok(Applied::Done(Status::Changed))
    } else {
        info!(
            indicator = %row.indicator_value,
            threat_id = %row.threat_id,
            status = current,
            connector_status = %policy.connector_status,
            "TAP now judges the threat a false positive, but the indicator's status was set by \
             someone else: status left alone, Threat Status attribute updated"
        );
        Ok(Applied::Done(Status::LeftAlone))
    }
}
