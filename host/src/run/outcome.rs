//! How a run ends (completed, disabled, already running, or failed with a
//! kind that becomes its exit status), and how a step says it did not go on.

use time::OffsetDateTime;

use crate::plan::Window;
use crate::report::{RunSummary, rfc3339};
use crate::state::LockHolder;

/// How a run that did not fail ended.
// One per run, read once: boxing the summary would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum RunOutcome {
    Completed(RunSummary),
    /// The connector is switched off: nothing fetched, checkpoint unchanged.
    Disabled,
    /// Another run holds the lock on this config directory, and has not yet
    /// outlived the deadline (cron periods may overlap a little).
    AlreadyRunning(Option<LockHolder>),
}

/// What failed, for the exit status and the operator's next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The config file or settings are missing or wrong, or ThreatQ does
    /// not know a name the config gives (the indicator status).
    Config,
    /// TAP refused the principal or secret (401/403).
    TapCredentials,
    /// A TAP request budget is spent (429, or our own count says so).
    TapRateLimited,
    /// TAP failed otherwise (5xx, bad request, bad body, transport).
    Tap,
    /// ThreatQ could not be reached, refused the login, or failed.
    Threatq,
    /// The sandbox stopped the component (memory, CPU, time, trap).
    Sandbox,
    /// Local I/O (state store, export file).
    Local,
    /// The run reached its deadline and stopped at a window boundary.
    Deadline,
    /// Another run has held the lock for longer than the deadline: it is
    /// stuck, and the feed with it.
    StuckRun,
    /// Every window was forwarded, but something ThreatQ refused or TAP
    /// records the component could not map are kept undelivered in the
    /// state store (retried by every run; `replay --list` shows them).
    Undelivered,
    /// ThreatQ refused a window's objects systemically (eight or more
    /// refused one by one and none stored): a setting or a rule on
    /// ThreatQ's side, not bad data. The window's checkpoint is kept.
    Refused,
}

impl FailureKind {
    pub fn exit_code(self) -> u8 {
        match self {
            FailureKind::Local => 1,
            FailureKind::Config => 3,
            FailureKind::TapCredentials => 4,
            FailureKind::TapRateLimited => 5,
            FailureKind::Tap => 6,
            FailureKind::Threatq => 7,
            FailureKind::Sandbox => 8,
            FailureKind::Deadline => 9,
            FailureKind::StuckRun => 10,
            FailureKind::Undelivered => 11,
            FailureKind::Refused => 12,
        }
    }
}

/// A run that stopped early, or that finished with something undelivered.
/// Every window before the failed one was forwarded and checkpointed.
#[derive(Debug)]
pub struct RunFailure {
    pub kind: FailureKind,
    pub error: anyhow::Error,
    pub summary: RunSummary,
}

impl std::fmt::Display for RunFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

/// Why a step did not go on.
pub(super) enum Stop {
    AlreadyRunning(Option<LockHolder>),
    /// The window was too large for the sandbox (its memory cap, or the
    /// response size cap) and can be split: the loop retries its halves.
    TooLarge(anyhow::Error),
    Failed(FailureKind, anyhow::Error),
}

impl Stop {
    pub(super) fn from(kind: FailureKind) -> impl FnOnce(anyhow::Error) -> Stop {
        move |e| Stop::Failed(kind, e)
    }
}

/// Where the run stands when a step fails, for the words of its error:
/// the window, how many of the planned windows are done, and the
/// checkpoint the run keeps. A step is given this, not the run's summary.
#[derive(Debug, Clone, Copy)]
pub(super) struct Position<'w> {
    pub window: &'w Window,
    pub windows_done: usize,
    pub windows_planned: usize,
    pub checkpoint: Option<OffsetDateTime>,
}

impl Position<'_> {
    /// The window as the operator reads it.
    pub fn window(&self) -> String {
        describe(self.window)
    }

    /// The checkpoint as the operator reads it in an error.
    pub fn checkpoint(&self) -> String {
        self.checkpoint
            .map(rfc3339)
            .unwrap_or_else(|| "unset (first run)".into())
    }
}

pub(super) fn describe(window: &Window) -> String {
    format!("{} .. {}", rfc3339(window.start), rfc3339(window.end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn exit_codes_are_distinct_per_failure_kind() {
        let kinds = [
            FailureKind::Config,
            FailureKind::TapCredentials,
            FailureKind::TapRateLimited,
            FailureKind::Tap,
            FailureKind::Threatq,
            FailureKind::Sandbox,
            FailureKind::Local,
            FailureKind::Deadline,
            FailureKind::StuckRun,
            FailureKind::Undelivered,
            FailureKind::Refused,
        ];
        let codes: BTreeSet<u8> = kinds.iter().map(|k| k.exit_code()).collect();
        assert_eq!(codes.len(), kinds.len());
        assert!(!codes.contains(&0) && !codes.contains(&2));
    }
}
