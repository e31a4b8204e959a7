//! One run, in steps (docs/sync.md):
//!
//! 1. [`prepare`]: config, bounds, the lock, ThreatQ (login, the names it
//!    must know), the TAP settings, the sandbox, the state store, the plan;
//! 2. [`deliver::replay`]: what earlier runs could not deliver (dead
//!    letters, and quarantined records a newer version may map) goes first;
//! 3. per window: [`fetch`] (the sandboxed TAP component) ->
//!    [`deliver::forward`] (ThreatQ) -> commit (one store transaction).
//!
//! A [`Pipeline`] owns what a failure must clean up (the progress bar; the
//! state is in the store, committed or not), so every failure leaves through
//! [`Pipeline::abandon`] with every earlier window's checkpoint intact.

mod across;
mod deliver;
mod fetch;
mod limits;
mod prepare;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration as StdDuration, Instant};

use anyhow::anyhow;
use tap_runtime::{CampaignRef, ComponentSource, Limits, SyncResult};
use threatq_client::RetryPolicy;
use time::{Duration, OffsetDateTime};
use tracing::{info, warn};

use crate::batch::take_batch;
use crate::plan::Window;
use crate::report::{Progress, RunSummary, rfc3339};
use crate::state::{Commit, LockHolder, Store};

pub use limits::DEFAULT_RUN_DEADLINE;
use prepare::Prepared;

/// The source every object and attribute carries in ThreatQ.
pub const SOURCE_NAME: &str = "Proofpoint TAP";
/// Where compiled copies of the component are cached, inside the config directory.
pub const CACHE_DIR_NAME: &str = "tq-conn-proofpoint-tap.cache";
/// Record keys are kept this much longer than the overlap, for safety.
const KEY_HORIZON_SLACK: Duration = Duration::minutes(10);

pub use crate::http::NetworkFlags;

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
            limits: Limits::default(),
            retry: RetryPolicy::default(),
            now: None,
            show_progress: true,
            deadline: DEFAULT_RUN_DEADLINE,
            tap_max_response_bytes: limits::TAP_MAX_RESPONSE_BYTES,
        }
    }

    /// The clock of this run: the fixed "now" of tests, else the system's.
    fn clock(&self) -> OffsetDateTime {
        self.now.unwrap_or_else(OffsetDateTime::now_utc)
    }
}

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
    /// ThreatQ refused a window's objects systemically (every object of a
    /// kind, or most for one reason): a setting or a rule on ThreatQ's
    /// side, not bad data. The window's checkpoint is kept.
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

/// Runs the connector once against the config directory in `options`.
pub async fn run(options: &RunOptions) -> Result<RunOutcome, RunFailure> {
    let started = Instant::now();
    let mut summary = RunSummary::default();
    summary.dry_run = options.dry_run;
    let result = run_steps(options, &mut summary).await;
    summary.elapsed = started.elapsed();
    match result {
        Ok(Some(())) => Ok(RunOutcome::Completed(summary)),
        Ok(None) => Ok(RunOutcome::Disabled),
        Err(Stop::AlreadyRunning(holder)) => Ok(RunOutcome::AlreadyRunning(holder)),
        Err(Stop::TooLarge(error)) => Err(RunFailure {
            kind: FailureKind::Sandbox,
            error,
            summary,
        }),
        Err(Stop::Failed(kind, error)) => Err(RunFailure {
            kind,
            error,
            summary,
        }),
    }
}

/// Why a step did not go on.
enum Stop {
    AlreadyRunning(Option<LockHolder>),
    /// The window was too large for the sandbox (its memory cap, or the
    /// response size cap) and can be split: the loop retries its halves.
    TooLarge(anyhow::Error),
    Failed(FailureKind, anyhow::Error),
}

impl Stop {
    fn from(kind: FailureKind) -> impl FnOnce(anyhow::Error) -> Stop {
        move |e| Stop::Failed(kind, e)
    }
}

/// `Ok(None)` when the connector is disabled.
async fn run_steps(options: &RunOptions, summary: &mut RunSummary) -> Result<Option<()>, Stop> {
    let Some(prepared) = prepare::prepare(options, summary).await? else {
        return Ok(None);
    };
    let windows = match options.mode {
        RunMode::Sync => prepared.plan.windows.clone(),
        RunMode::Replay => {
            summary.windows_planned = 0;
            Vec::new()
        }
    };
    let mut pipeline = Pipeline {
        progress: Progress::new(windows.len(), options.show_progress),
        prepared,
        options,
        summary,
        known_campaigns: Vec::new(),
        enriched_threats: Vec::new(),
        settled_verdicts: Default::default(),
    };
    pipeline
        .replay()
        .await
        .map_err(|stop| pipeline.abandon(stop))?;

    // A queue rather than the plan itself: a window too large for the
    // sandbox is replaced by its two halves, in place.
    let mut pending: VecDeque<Window> = windows.into_iter().collect();
    while let Some(window) = pending.pop_front() {
        match pipeline.window(&window).await {
            Ok(()) => {}
            Err(Stop::TooLarge(why)) if window.halves().is_some() => {
                let Some((first, second)) = window.halves() else {
                    unreachable!("checked by the guard")
                };
                pipeline.split(&window, &why);
                pending.push_front(second);
                pending.push_front(first);
            }
            Err(Stop::TooLarge(why)) => {
                let stop = Stop::Failed(
                    FailureKind::Sandbox,
                    why.context(format!(
                        "window {} is too large for the sandbox even at TAP's shortest \
                         window (30 s); raise the limit named above under [run] (memory_mib, tap_response_mib)",
                        describe(&window)
                    )),
                );
                return Err(pipeline.abandon(stop));
            }
            Err(stop) => return Err(pipeline.abandon(stop)),
        }
    }
    pipeline.finish()
}

/// The run once prepared: what it fetches with, where it forwards, the
/// store it commits to, and what it tells the operator.
struct Pipeline<'r> {
    prepared: Prepared,
    options: &'r RunOptions,
    summary: &'r mut RunSummary,
    progress: Progress,
    /// Campaigns and threats enriched earlier in this run, named to later
    /// windows so each is fetched once even when nothing is committed (a
    /// dry run).
    known_campaigns: Vec<CampaignRef>,
    enriched_threats: Vec<String>,
    /// (type, value, verdict) settled in this run, applied or with no
    /// indicator to apply it to: not looked up again by later windows.
    settled_verdicts: std::collections::HashSet<(String, String, String)>,
}

impl Pipeline<'_> {
    fn store(&mut self) -> &mut Store {
        &mut self.prepared.store
    }

    /// Writes what a window or a replay settled, in one transaction.
    fn commit(&mut self, commit: &Commit) -> Result<(), Stop> {
        let now = self.options.clock();
        self.store()
            .commit(commit, now)
            .map_err(Stop::from(FailureKind::Local))
    }

    /// Step 2: what earlier runs left undelivered goes first.
    async fn replay(&mut self) -> Result<(), Stop> {
        if self.options.dry_run {
            return Ok(());
        }
        deliver::replay(self).await
    }

    /// Step 3, one window: fetch -> forward -> commit.
    async fn window(&mut self, window: &Window) -> Result<(), Stop> {
        self.prepared.deadline.check(window, self.summary)?;
        let mut result = fetch::fetch(self, window).await?;
        self.count_fetched(&result);
        let mut batch = take_batch(&mut result);
        // The window's own objects; what follows are earlier message
        // events, sent again only to carry a click's relation.
        let own = batch.objects.len();
        self.summary.clicks_linked_to_earlier_messages +=
            across::link_earlier_messages(&self.prepared.store, &result, &mut batch)
                .map_err(Stop::from(FailureKind::Local))?;
        let delivery = if self.options.dry_run {
            deliver::Delivery::default()
        } else {
            deliver::forward(self, window, &batch).await?
        };
        if let Some(export) = self.prepared.export.as_mut() {
            export
                .write_batch(&batch)
                .map_err(Stop::from(FailureKind::Local))?;
        }
        self.summary
            .count_accepted(&batch.objects[..own], delivery.refused_identities());
        let query_end = fetch::checkpoint_for(&result, window);
        if !self.options.dry_run {
            let verdicts =
                across::apply_verdicts(self, across::verdict_rows(&result.verdicts), true).await?;
            let across = across::across_commit(
                &result,
                &batch,
                delivery.refused_identities(),
                Some(self.prepared.tap.message_horizon),
                verdicts,
            );
            let commit = Commit {
                checkpoint: Some(query_end),
                sent: result
                    .record_keys
                    .iter()
                    .map(|k| (k.key.clone(), k.created_ms))
                    .collect(),
                key_horizon: Some(self.prepared.tap.overlap + KEY_HORIZON_SLACK),
                dead_letters: delivery.dead_letters,
                quarantined: deliver::quarantine(&result, window),
                ..across
            };
            self.commit(&commit)?;
            self.summary.checkpoint = self.prepared.store.state().checkpoint;
        }
        for campaign in &result.campaigns_fetched {
            if !self.known_campaigns.iter().any(|c| c.id == campaign.id) {
                self.known_campaigns.push(campaign.clone());
            }
        }
        self.enriched_threats
            .extend(result.enrichment.threats_enriched.iter().cloned());
        self.summary.windows_done += 1;
        let counters = &result.counters;
        info!(
            window = %describe(window),
            messages = counters.messages_delivered + counters.messages_blocked,
            clicks = counters.clicks_permitted + counters.clicks_blocked,
            objects = batch.objects.len(),
            relations = batch.relations.len(),
            quarantined = result.rejections.len(),
            refused = delivery.refused,
            checkpoint = %rfc3339(query_end),
            "window forwarded"
        );
        self.progress.window_done(self.summary.objects_sent());
        Ok(())
    }

    fn count_fetched(&mut self, result: &SyncResult) {
        for rejection in &result.rejections {
            warn!(record = %rejection.key, reason = %rejection.reason, "TAP record quarantined");
        }
        self.summary.rejected_records += result.rejections.len() as u64;
        let counters = &result.counters;
        self.summary.messages += u64::from(counters.messages_delivered + counters.messages_blocked);
        self.summary.clicks += u64::from(counters.clicks_permitted + counters.clicks_blocked);
        self.summary.already_sent_skipped += u64::from(counters.already_sent_skipped);
    }

    fn split(&mut self, window: &Window, why: &anyhow::Error) {
        warn!(
            window = %describe(window),
            reason = %format!("{why:#}"),
            "the window is too large for the sandbox; retrying it as two halves"
        );
        self.summary.windows_planned += 1;
        self.summary.windows_split += 1;
        self.progress.add_window();
    }

    /// The one way a failed run leaves: the progress bar is cleared and the
    /// summary shows the budgets. Nothing needs saving: TAP requests were
    /// recorded as they were made, and the failed window was never
    /// committed.
    fn abandon(&mut self, stop: Stop) -> Stop {
        self.progress.finish();
        self.summary.budgets_left = self.budgets_left();
        stop
    }

    /// A run that forwarded every window still fails if anything is left
    /// undelivered in the store: cron mail must say so until it is dealt with.
    fn finish(self) -> Result<Option<()>, Stop> {
        self.progress.finish();
        self.summary.budgets_left = self.budgets_left();
        let state = self.prepared.store.state();
        self.summary.undelivered_objects = state.dead_letters;
        self.summary.quarantined_records = state.quarantined;
        self.summary.enrichment_queue = state.enrichment_queue;
        self.summary.verdicts_pending = state.pending_verdicts;
        if state.undelivered() > 0 && !self.options.dry_run {
            return Err(Stop::Failed(
                FailureKind::Undelivered,
                anyhow!(
                    "every window was forwarded, but {} refused by ThreatQ and {} TAP records \
                     that could not be mapped are kept undelivered in {}. Every run sends them \
                     again first; `tq-conn-proofpoint-tap replay --list` shows each with \
                     ThreatQ's answer, and `replay` sends them now once the cause is fixed",
                    plural(state.dead_letters, "object"),
                    state.quarantined,
                    self.prepared.store.path().display()
                ),
            ));
        }
        Ok(Some(()))
    }

    fn budgets_left(&self) -> std::collections::BTreeMap<crate::state::Pool, u32> {
        self.prepared
            .store
            .state()
            .budgets_left(self.options.clock())
    }
}

fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn describe(window: &Window) -> String {
    format!("{} .. {}", rfc3339(window.start), rfc3339(window.end))
}

/// The checkpoint as the operator reads it in an error.
fn checkpoint_text(summary: &RunSummary) -> String {
    summary
        .checkpoint
        .map(rfc3339)
        .unwrap_or_else(|| "unset (first run)".into())
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
