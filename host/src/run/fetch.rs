//! Step 3a: one window from the sandboxed TAP component. This module
//! knows how to call the component and what its answer means; the run
//! loop (`run/mod.rs`) decides whether to retry, and spends every TAP
//! request against the budgets as it is made.

use anyhow::anyhow;
use tap_runtime::{
    CallOutcome, Counters, OutboundPolicy, PersonMark, QuarantinedRecord, RequestCounts, Runtime,
    RuntimeError, SandboxLimit, Settings, SyncError, SyncResult, TapFailure, Window as WitWindow,
};
use time::OffsetDateTime;
use tracing::debug;

use super::enrichment::EnrichmentSettings;
use super::limits::Deadline;
use super::outcome::{FailureKind, Position, Stop, describe};
use crate::plan::Window;
use crate::report::rfc3339;
use crate::settings::TapSettings;
use crate::state::{Allowances, Pool, State};

/// At most this many attempts per window for failures worth retrying (TAP
/// 5xx, transport), fewer if the retry policy says so: each attempt fetches
/// the whole window again and spends SIEM budget.
pub(super) const WINDOW_ATTEMPTS: u32 = 3;

/// The sandbox a run fetches through: the compiled TAP component, and the
/// one outbound capability it is granted (the TAP origin; the hook adds
/// the credentials, which the component never sees).
pub(super) struct Sandbox {
    pub runtime: Runtime,
    pub outbound: OutboundPolicy,
}

/// Fails when a `sync` call could not make its one SIEM request: the SIEM
/// budget is spent. `map-records` makes no SIEM request and skips this.
pub(super) fn check_siem_budget(
    state: &State,
    allowances: &Allowances,
    now: OffsetDateTime,
) -> Result<(), Stop> {
    if allowances.siem > 0 {
        return Ok(());
    }
    let release = state
        .budgets
        .next_release(Pool::Siem, now)
        .map(rfc3339)
        .unwrap_or_else(|| "within 24 hours".into());
    Err(Stop::Failed(
        FailureKind::TapRateLimited,
        anyhow!(
            "the TAP SIEM budget (1800 requests in 24 hours) is spent; the next request is \
             free at {release}. The checkpoint is kept; run again after that"
        ),
    ))
}

/// Threat summaries one call may ask for. TAP answers each on its own, one
/// after another inside the call's wall-clock limit (300 s by default):
/// at a few hundred milliseconds each, 100 take well under a minute, and
/// the rest of the day's allowance goes to later windows and runs.
pub(super) const SUMMARIES_PER_CALL: u32 = 100;

/// The component's settings for one call: the TAP side's settings, what
/// is left of the budgets, the records already sent, and what the
/// enrichment ledger and queue say.
pub(super) fn component_settings(
    tap: &TapSettings,
    state: &State,
    allowances: &Allowances,
    enrichment: EnrichmentSettings,
    people: &[PersonMark],
) -> Settings {
    Settings {
        tap_base_url: tap.origin.base_url(),
        create_incidents: tap.create_incidents,
        known_campaigns: enrichment.known_campaigns,
        already_sent: state.sent_keys(),
        fresh_threats: enrichment.fresh_threats,
        queued_campaigns: enrichment.queued_campaigns,
        queued_threats: enrichment.queued_threats,
        campaign_allowance: allowances.campaigns,
        threat_forensics_allowance: allowances.threat_forensics,
        // Our outbound hook adds `Authorization`; the secret stays out of
        // the sandbox.
        credentials: None,
        summarised_threats: enrichment.summarised_threats,
        queued_summaries: enrichment.queued_summaries,
        threat_summary_allowance: allowances.threat_summaries,
        people: people.to_vec(),
    }
}

/// One attempt at a window: the component's `sync` call, within the run's
/// deadline. The outcome carries the host's count of the TAP requests it
/// made, whatever ended it.
pub(super) async fn fetch(
    sandbox: &Sandbox,
    deadline: &Deadline,
    settings: &Settings,
    at: &Position<'_>,
) -> Result<CallOutcome, Stop> {
    let window = WitWindow {
        start: rfc3339(at.window.start),
        end: rfc3339(at.window.end),
    };
    deadline
        .bound(
            at,
            sandbox.runtime.sync(&sandbox.outbound, settings, &window),
        )
        .await
}

/// The component's `map-records` call for records an earlier run could
/// not map, bounded like the steps before the first window.
pub(super) async fn map_records(
    sandbox: &Sandbox,
    deadline: &Deadline,
    settings: &Settings,
    records: &[QuarantinedRecord],
) -> Result<CallOutcome, Stop> {
    deadline
        .bound_preparation(
            sandbox
                .runtime
                .map_records(&sandbox.outbound, settings, records),
        )
        .await
}

/// What one attempt at a window came to.
pub(super) enum Attempt {
    Fetched(Box<SyncResult>),
    /// More than the sandbox takes: the window is split, not retried.
    TooLarge(anyhow::Error),
    Failed {
        kind: FailureKind,
        error: anyhow::Error,
        /// Worth another attempt (TAP 5xx, transport).
        transient: bool,
    },
}

/// Reads an attempt's outcome. The component's own request counters,
/// when it answered, are only cross-checked: the host's count is spent.
pub(super) fn judge(outcome: CallOutcome, window: &Window) -> Attempt {
    if let Ok(Ok(result)) = &outcome.answer {
        cross_check(&outcome.requests, &result.counters);
    }
    if let Some(why) = too_large(&outcome) {
        return Attempt::TooLarge(why);
    }
    let (kind, error, transient) = match outcome.answer {
        Ok(Ok(result)) => return Attempt::Fetched(Box::new(result)),
        Ok(Err(error)) => classify_tap_error(error, window),
        Err(error) => (FailureKind::Sandbox, sandbox_failure(error), false),
    };
    Attempt::Failed {
        kind,
        error,
        transient,
    }
}

fn cross_check(sent: &RequestCounts, guest: &Counters) {
    let said = (
        guest.siem_requests,
        guest.campaign_requests,
        guest.campaign_forensics_requests,
        guest.threat_forensics_requests,
    );
    let counted = (
        sent.siem,
        sent.campaign,
        sent.campaign_forensics,
        sent.threat_forensics,
    );
    if said != counted {
        debug!(
            host_counted = ?counted,
            component_said = ?said,
            "the TAP component's request counters (siem, campaign, campaign forensics, threat forensics) differ from the host's; the host's count"
        );
    }
}

/// Whether a failed call failed because the window holds more than the
/// sandbox takes: its memory cap, or a SIEM answer over the response size
/// cap (the component then fails the window; a large enrichment answer is
/// only skipped). Such a window is split, not retried as it is.
fn too_large(outcome: &CallOutcome) -> Option<anyhow::Error> {
    match &outcome.answer {
        Ok(Ok(_)) => None,
        Err(error) if error.limit() == Some(SandboxLimit::Memory) => Some(anyhow!(
            with_fix(error).unwrap_or_else(|| error.to_string())
        )),
        Ok(Err(error)) if outcome.requests.oversized > 0 => Some(anyhow!(
            "the SIEM answer exceeded the TAP response size cap ({error:?})"
        )),
        Err(error) if outcome.requests.oversized > 0 => Some(anyhow!(
            "a TAP answer exceeded the response size cap ({error})"
        )),
        _ => None,
    }
}

/// A failed call as the run's error: the sandbox's own message, with the
/// fix for a limit `[run]` sets.
fn sandbox_failure(error: RuntimeError) -> anyhow::Error {
    match with_fix(&error) {
        Some(text) => anyhow!(text),
        None => anyhow!(error),
    }
}

/// The sandbox's message for a limit `[run]` sets, with the key to raise:
/// the sandbox speaks of its limits, and only the host knows the config
/// that sets them. `None` for anything else.
fn with_fix(error: &RuntimeError) -> Option<String> {
    let key = run_key(error.limit()?)?;
    Some(format!(
        "{error}; windows too large for it are split in halves; if even 30 s is too large, \
         raise `{key}` under [run]"
    ))
}

/// The `[run]` key that sets a sandbox limit, for those the config sets
/// (run/limits.rs); the others are fixed.
fn run_key(limit: SandboxLimit) -> Option<&'static str> {
    match limit {
        SandboxLimit::Memory => Some("memory_mib"),
        SandboxLimit::ResponseSize => Some("tap_response_mib"),
        SandboxLimit::CpuTime
        | SandboxLimit::WallTime
        | SandboxLimit::TableElements
        | SandboxLimit::Instances
        | SandboxLimit::ResourceHandles => None,
    }
}

/// (kind, error for the operator, worth retrying)
fn classify_tap_error(error: SyncError, window: &Window) -> (FailureKind, anyhow::Error, bool) {
    let said = |f: &TapFailure| {
        if f.message.is_empty() {
            format!("HTTP {} from {}", f.status, f.endpoint)
        } else {
            format!("HTTP {} from {}: {}", f.status, f.endpoint, f.message)
        }
    };
    match error {
        SyncError::Unauthorized(f) => (
            FailureKind::TapCredentials,
            anyhow!(
                "TAP refused the credentials ({}): check the API Principal and Secret in ThreatQ's UI or [tap] in the config",
                said(&f)
            ),
            false,
        ),
        SyncError::Forbidden(f) => (
            FailureKind::TapCredentials,
            anyhow!(
                "TAP says this principal is not entitled to the data ({}): ask your Proofpoint admin to grant the service credential SIEM, Campaign and Forensics access",
                said(&f)
            ),
            false,
        ),
        SyncError::RateLimited(f) => (
            FailureKind::TapRateLimited,
            anyhow!(
                "TAP throttled this credential ({}): its rolling 24-hour budget is spent. The checkpoint is kept; the next run continues from it",
                said(&f)
            ),
            false,
        ),
        SyncError::BadRequest(f) => {
            let hint = if f.message.contains("still current") {
                ": TAP's clock is behind this machine's; check NTP on this host or raise safety_margin_seconds under [tap]"
            } else if f.message.contains("too far into the past") {
                ": the window is older than TAP keeps data (7 days)"
            } else {
                ""
            };
            (
                FailureKind::Tap,
                anyhow!(
                    "TAP rejected the request for {} ({}){hint}",
                    describe(window),
                    said(&f)
                ),
                false,
            )
        }
        SyncError::ServerError(f) => (FailureKind::Tap, anyhow!("TAP failed ({})", said(&f)), true),
        SyncError::BadResponse(what) => (
            FailureKind::Tap,
            anyhow!("TAP answered with a body we cannot read: {what}"),
            false,
        ),
        SyncError::Transport(what) => (FailureKind::Tap, anyhow!("cannot reach TAP: {what}"), true),
        SyncError::InvalidInput(what) => (
            FailureKind::Config,
            anyhow!("the TAP component refused its input: {what}"),
            false,
        ),
    }
}

/// The checkpoint a forwarded window earns: TAP's `queryEndTime`, but never
/// past the end we asked for (a later value would skip data).
pub(super) fn checkpoint_for(result: &SyncResult, window: &Window) -> OffsetDateTime {
    OffsetDateTime::parse(
        &result.query_end_time,
        &time::format_description::well_known::Rfc3339,
    )
    .map(|t| t.min(window.end))
    .unwrap_or(window.end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    #[test]
    fn a_memory_limit_names_the_run_key_that_raises_it() {
        let error = RuntimeError::MemoryLimit {
            limit_bytes: 32 * 1024 * 1024,
        };
        assert_eq!(
            format!("{:#}", sandbox_failure(error)),
            "the TAP component exceeded its memory limit of 32 MiB; windows too large for it \
             are split in halves; if even 30 s is too large, raise `memory_mib` under [run]"
        );
        let cpu = RuntimeError::CpuLimit {
            limit: std::time::Duration::from_secs(60),
        };
        let text = format!("{:#}", sandbox_failure(cpu));
        assert!(!text.contains("[run]"), "{text}");
    }

    #[test]
    fn still_current_answer_points_at_the_clock() {
        let window = Window {
            start: OffsetDateTime::UNIX_EPOCH,
            end: OffsetDateTime::UNIX_EPOCH + Duration::hours(1),
        };
        let (kind, error, transient) = classify_tap_error(
            SyncError::BadRequest(TapFailure {
                endpoint: "/v2/siem/all".into(),
                status: 400,
                message: "The requested interval is still current.".into(),
            }),
            &window,
        );
        assert_eq!(kind, FailureKind::Tap);
        assert!(!transient);
        let text = format!("{error:#}");
        assert!(
            text.contains("still current") && text.contains("NTP"),
            "{text}"
        );
    }
}
