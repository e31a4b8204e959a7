//! Step 3a: one window from the sandboxed TAP component, retried when
//! worth it, with every TAP request spent against the budgets as it is made.

use anyhow::anyhow;
use tap_runtime::{
    CallOutcome, Counters, RequestCounts, RuntimeError, SandboxLimit, Settings, SyncError,
    SyncResult, TapFailure, Window as WitWindow,
};
use time::OffsetDateTime;
use tracing::{debug, warn};

use super::across::EnrichmentSettings;
use super::{FailureKind, Pipeline, Stop, checkpoint_text, describe};
use crate::plan::Window;
use crate::report::rfc3339;
use crate::state::{Pool, requests_by_pool};

/// At most this many attempts per window for failures worth retrying (TAP
/// 5xx, transport), fewer if the retry policy says so: each attempt fetches
/// the whole window again and spends SIEM budget.
const WINDOW_ATTEMPTS: u32 = 3;

/// The component's settings for one call, with what is left of the budgets.
/// A `sync` call needs SIEM budget; `map-records` makes no SIEM request.
pub(super) fn component_settings(pipeline: &Pipeline<'_>, siem: bool) -> Result<Settings, Stop> {
    let now = pipeline.options.clock();
    let state = pipeline.prepared.store.state();
    let allowances = state.allowances(now);
    if siem && allowances.siem == 0 {
        let release = state
            .budgets
            .next_release(Pool::Siem, now)
            .map(rfc3339)
            .unwrap_or_else(|| "within 24 hours".into());
        return Err(Stop::Failed(
            FailureKind::TapRateLimited,
            anyhow!(
                "the TAP SIEM budget (1800 requests in 24 hours) is spent; the next request is \
                 free at {release}. The checkpoint is kept; run again after that"
            ),
        ));
    }
    let tap = &pipeline.prepared.tap;
    let enrichment =
        EnrichmentSettings::of(pipeline, allowances.campaigns, allowances.threat_forensics)?;
    Ok(Settings {
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
    })
}

/// Calls the component for one window, retrying what is worth retrying,
/// within the run's deadline.
pub(super) async fn fetch(
    pipeline: &mut Pipeline<'_>,
    window: &Window,
) -> Result<SyncResult, Stop> {
    let wit_window = WitWindow {
        start: rfc3339(window.start),
        end: rfc3339(window.end),
    };
    let attempts = WINDOW_ATTEMPTS.min(pipeline.options.retry.max_attempts.max(1));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let settings = component_settings(pipeline, true)?;
        let prepared = &pipeline.prepared;
        let outcome = prepared
            .deadline
            .bound(
                window,
                pipeline.summary,
                prepared
                    .runtime
                    .sync(&prepared.outbound, &settings, &wit_window),
            )
            .await?;
        spend(pipeline, &outcome)?;
        if let Some(why) = too_large(&outcome) {
            return Err(Stop::TooLarge(why));
        }
        let (kind, error, transient) = match outcome.answer {
            Ok(Ok(result)) => return Ok(result),
            Ok(Err(error)) => classify_tap_error(error, window),
            Err(error) => (FailureKind::Sandbox, sandbox_failure(error), false),
        };
        if transient && attempt < attempts {
            // The same backoff as every ThreatQ request: one policy.
            let delay = pipeline.options.retry.backoff(attempt);
            warn!(
                window = %describe(window),
                attempt,
                retry_in_ms = delay.as_millis() as u64,
                error = %format!("{error:#}"),
                "TAP window failed; retrying"
            );
            tokio::time::sleep(delay).await;
            continue;
        }
        return Err(Stop::Failed(
            kind,
            error.context(format!(
                "window {} failed; the checkpoint stays at {}",
                describe(window),
                checkpoint_text(pipeline.summary)
            )),
        ));
    }
}

/// Spends the budgets by what the host sent to TAP for one call, whatever
/// ended it: a trap or a limit spends TAP budget as surely as an answer.
/// The component's own counters, when it answered, are only a cross-check.
pub(super) fn spend(pipeline: &mut Pipeline<'_>, outcome: &CallOutcome) -> Result<(), Stop> {
    if let Ok(Ok(result)) = &outcome.answer {
        cross_check(&outcome.requests, &result.counters);
    }
    let now = pipeline.options.clock();
    pipeline
        .store()
        .spend(&requests_by_pool(&outcome.requests), now)
        .map_err(Stop::from(FailureKind::Local))?;
    pipeline.summary.budgets_left = pipeline.budgets_left();
    Ok(())
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
