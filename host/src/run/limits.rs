//! The run's bounds: deadlines, timeouts and the sandbox's limits, from
//! the options' defaults with `[run]` of the config file on top
//! (docs/sync.md, "Deadlines" and "Windows that fit").

use std::time::{Duration as StdDuration, Instant};

use anyhow::anyhow;
use tap_runtime::Limits;

use super::options::RunOptions;
use super::outcome::{FailureKind, Position, Stop};
use crate::config::keys::{
    RUN_DEADLINE_MINUTES, RUN_MEMORY_MIB, RUN_RETRY_MAX_AGE_DAYS, RUN_RETRY_MAX_ATTEMPTS,
    RUN_TAP_REQUEST_TIMEOUT_SECONDS, RUN_TAP_RESPONSE_MIB, RUN_THREATQ_REQUEST_TIMEOUT_SECONDS,
};
use crate::config::{Config, RunSection};

const MIB: usize = 1024 * 1024;
// The defaults are the `[run]` keys' (config/keys.rs, where each says why).
const TAP_REQUEST_TIMEOUT: StdDuration =
    StdDuration::from_secs(RUN_TAP_REQUEST_TIMEOUT_SECONDS.value.default as u64);
const THREATQ_REQUEST_TIMEOUT: StdDuration =
    StdDuration::from_secs(RUN_THREATQ_REQUEST_TIMEOUT_SECONDS.value.default as u64);
pub(super) const TAP_MAX_RESPONSE_BYTES: usize = RUN_TAP_RESPONSE_MIB.value.default as usize * MIB;
pub(super) const MEMORY_BYTES: usize = RUN_MEMORY_MIB.value.default as usize * MIB;
pub const DEFAULT_RUN_DEADLINE: StdDuration =
    StdDuration::from_secs(RUN_DEADLINE_MINUTES.value.default as u64 * 60);

/// The run's bounds: the options' defaults (or a test's choices), with
/// whatever `[run]` in the config file sets on top.
pub(super) struct Bounds {
    pub deadline: StdDuration,
    pub limits: Limits,
    pub tap_max_response_bytes: usize,
    pub tap_request_timeout: StdDuration,
    pub threatq_request_timeout: StdDuration,
    pub retry: RetryLimits,
}

/// When scheduled runs stop retrying what earlier runs left undelivered, a
/// dead letter or a waiting verdict (docs/sync.md, "Nothing refused is
/// lost"): it stays in the store, undelivered and listed, for the
/// operator's `replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryLimits {
    pub max_attempts: u32,
    pub max_age: time::Duration,
}

impl RetryLimits {
    /// The limits `[run]` sets, or their defaults.
    pub fn of(run: &RunSection) -> RetryLimits {
        RetryLimits {
            max_attempts: run
                .retry_max_attempts
                .unwrap_or(RUN_RETRY_MAX_ATTEMPTS.value.default),
            max_age: time::Duration::days(i64::from(
                run.retry_max_age_days
                    .unwrap_or(RUN_RETRY_MAX_AGE_DAYS.value.default),
            )),
        }
    }

    /// Whether an entry tried `attempts` times, waiting since `since`, is
    /// past the limits at `now`.
    pub fn passed(
        &self,
        attempts: u32,
        since: time::OffsetDateTime,
        now: time::OffsetDateTime,
    ) -> bool {
        attempts >= self.max_attempts || now - since >= self.max_age
    }
}

impl Default for RetryLimits {
    fn default() -> Self {
        RetryLimits::of(&RunSection::default())
    }
}

impl Bounds {
    pub fn of(config: &Config, options: &RunOptions) -> Bounds {
        let run = &config.run;
        let seconds = |value: u32| StdDuration::from_secs(u64::from(value));
        let mut limits = options.limits;
        if let Some(mib) = run.memory_mib {
            limits.memory_bytes = mib as usize * MIB;
        }
        Bounds {
            deadline: run
                .deadline_minutes
                .map_or(options.deadline, |minutes| seconds(minutes * 60)),
            limits,
            tap_max_response_bytes: run
                .tap_response_mib
                .map_or(options.tap_max_response_bytes, |mib| mib as usize * MIB),
            tap_request_timeout: run
                .tap_request_timeout_seconds
                .map_or(TAP_REQUEST_TIMEOUT, seconds),
            threatq_request_timeout: run
                .threatq_request_timeout_seconds
                .map_or(THREATQ_REQUEST_TIMEOUT, seconds),
            retry: RetryLimits::of(run),
        }
    }
}

/// The whole-run time bound: checked before each window, and bounding each
/// window's TAP call and ThreatQ forward, so a stalled side ends the run at
/// a window boundary with the checkpoint of the last accepted window.
#[derive(Debug, Clone)]
pub(super) struct Deadline {
    at: Instant,
    limit: StdDuration,
}

impl Deadline {
    pub fn starting_at(now: Instant, limit: StdDuration) -> Deadline {
        Deadline {
            at: now
                .checked_add(limit)
                .unwrap_or(now + StdDuration::from_secs(86_400 * 365)),
            limit,
        }
    }

    fn stop(&self, at: &Position<'_>) -> Stop {
        Stop::Failed(
            FailureKind::Deadline,
            anyhow!(
                "the run reached its deadline of {} after {} of {} windows; window {} was \
                 not committed and the checkpoint stays at {}. The next run continues from there; \
                 if this repeats, see why windows are slow (-v3) or raise `[run] deadline_minutes`",
                human(self.limit),
                at.windows_done,
                at.windows_planned,
                at.window(),
                at.checkpoint()
            ),
        )
    }

    /// Bounds a step before the first window (reading ThreatQ's settings),
    /// where there is nothing to save: the checkpoint is as it was.
    pub async fn bound_preparation<T>(&self, work: impl Future<Output = T>) -> Result<T, Stop> {
        tokio::time::timeout_at(self.at.into(), work)
            .await
            .map_err(|_elapsed| {
                Stop::Failed(
                    FailureKind::Deadline,
                    anyhow!(
                        "the run reached its deadline of {} before its first window (reading \
                         the settings from ThreatQ, or replaying); the checkpoint is unchanged. Check that \
                         ThreatQ answers (-v3 shows the last request)",
                        human(self.limit)
                    ),
                )
            })
    }

    /// The deadline of a step that may take only the first `share` of the
    /// run's time (a fraction from 0 to 1): the replay of what earlier runs
    /// left ends there, so the windows, the new data, always get the rest.
    pub fn share(&self, share: f64) -> Deadline {
        let rest = self.limit.mul_f64((1.0 - share).clamp(0.0, 1.0));
        Deadline {
            at: self.at.checked_sub(rest).unwrap_or(self.at),
            limit: self.limit,
        }
    }

    pub fn check(&self, at: &Position<'_>) -> Result<(), Stop> {
        if Instant::now() >= self.at {
            return Err(self.stop(at));
        }
        Ok(())
    }

    /// Whether the deadline has come.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    /// `work` to its end, or None when the deadline comes first (then
    /// `work` is dropped wherever it stood): for steps that keep what they
    /// did not finish, such as applying verdicts.
    pub async fn within<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        tokio::time::timeout_at(self.at.into(), work).await.ok()
    }

    /// The stop of a run whose deadline came while it applied TAP's
    /// verdicts: what `settled` says was committed, and the verdicts
    /// `waiting` in the store, which the next run applies first.
    pub fn verdicts_stop(&self, settled: &str, waiting: u64) -> Stop {
        Stop::Failed(
            FailureKind::Deadline,
            anyhow!(
                "the run reached its deadline of {} while applying TAP's verdicts; {settled}, \
                 and the verdicts not yet applied ({waiting} in all) wait in the state store: \
                 the next run applies them first. If this repeats, see why ThreatQ is slow \
                 (-v3) or raise `[run] deadline_minutes`",
                human(self.limit)
            ),
        )
    }

    pub async fn bound<T>(
        &self,
        at: &Position<'_>,
        work: impl Future<Output = T>,
    ) -> Result<T, Stop> {
        tokio::time::timeout_at(self.at.into(), work)
            .await
            .map_err(|_elapsed| self.stop(at))
    }
}

/// "50 minutes", or "3 s" for the short deadlines of tests.
pub(super) fn human(duration: StdDuration) -> String {
    let secs = duration.as_secs();
    if secs >= 120 && secs.is_multiple_of(60) {
        format!("{} minutes", secs / 60)
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn an_entry_passes_its_retry_limits_by_attempts_or_by_age() {
        let limits = RetryLimits::of(&RunSection {
            retry_max_attempts: Some(3),
            retry_max_age_days: Some(2),
            ..RunSection::default()
        });
        let since = datetime!(2026-12-01 00:00 UTC);
        let now = since + time::Duration::days(1);
        assert!(!limits.passed(2, since, now));
        assert!(limits.passed(3, since, now));
        assert!(limits.passed(0, since, since + time::Duration::days(2)));
        assert_eq!(
            RetryLimits::default(),
            RetryLimits {
                max_attempts: 72,
                max_age: time::Duration::days(7)
            }
        );
    }
}
