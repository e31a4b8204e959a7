//! What a caller asks of a run: the config directory and the run's
//! choices (mode, dry run, network flags, limits, a fixed clock for tests).

use std::path::PathBuf;
use std::time::Duration as StdDuration;

use tap_runtime::{ComponentSource, Limits};
use threatq_client::RetryPolicy;
use time::OffsetDateTime;

use super::limits;
pub use crate::http::NetworkFlags;
pub use limits::DEFAULT_RUN_DEADLINE;

/// What a run does once prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunMode {
    /// Replay what is undelivered, then fetch and forward the planned windows.
    #[default]
    Sync,
    /// `replay`: send every dead letter and re-map every quarantined record
    /// now, whatever version quarantined it; fetch no window.
    Replay,
}

/// Everything a run needs besides the config directory's files.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub config_dir: PathBuf,
    pub mode: RunMode,
    pub dry_run: bool,
    pub export: Option<PathBuf>,
    pub component: ComponentSource,
    pub network: NetworkFlags,
    pub limits: Limits,
    pub retry: RetryPolicy,
    /// The run's "now"; `None` is the system clock. Tests and the demo fix it.
    pub now: Option<OffsetDateTime>,
    pub show_progress: bool,
    /// The run stops at the first window boundary past this, checkpoint
    /// intact; a lock held longer than this is reported as a stuck run.
    pub deadline: StdDuration,
    /// Bound on one TAP answer (decompressed); a SIEM answer over it splits
    /// its window.
    pub tap_max_response_bytes: usize,
}

impl RunOptions {
    pub fn new(config_dir: PathBuf) -> RunOptions {
        RunOptions {
            config_dir,
            mode: RunMode::Sync,
            dry_run: false,
            export: None,
            component: ComponentSource::Embedded,
            network: NetworkFlags::default(),
            limits: Limits {
                memory_bytes: limits::MEMORY_BYTES,
                ..Limits::default()
            },
            retry: RetryPolicy::default(),
            now: None,
            show_progress: true,
            deadline: DEFAULT_RUN_DEADLINE,
            tap_max_response_bytes: limits::TAP_MAX_RESPONSE_BYTES,
        }
    }

    /// The clock of this run: the fixed "now" of tests, else the system's.
    pub(super) fn clock(&self) -> OffsetDateTime {
        self.now.unwrap_or_else(OffsetDateTime::now_utc)
    }
}
