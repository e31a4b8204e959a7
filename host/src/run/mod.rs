//! One run: plan the windows, and for each window in order call the
//! sandboxed TAP component, forward its objects to ThreatQ, and only then
//! move the checkpoint. A window that fails stops the run with every earlier
//! window's checkpoint intact, so the next run starts exactly there
//! (docs/sync.md, "Checkpoints" and "Failures").

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration as StdDuration, Instant};

use anyhow::anyhow;
use tap_runtime::{
    CampaignRef, ComponentSource, Counters, Limits, OutboundPolicy, RequestCounts, Runtime,
    RuntimeConfig, RuntimeError, Settings, SyncError, SyncResult, TapFailure, Window as WitWindow,
};
use threatq_client::{Client, ForwardOptions, RetryPolicy, ThreatqConfig, ThreatqError};
use time::{Duration, OffsetDateTime};
use tracing::{debug, info, warn};

use crate::batch::to_batch;
use crate::config::{self, Config};
use crate::http::{self, ProxyChoice, ProxyUrl};
use crate::plan::{self, PlanInput, Window};
use crate::report::{Export, Progress, RunSummary, rfc3339};
use crate::settings::{self, CONNECTOR_NAME, Resolved, TapSettings};
use crate::state::{LockAttempt, LockHolder, Pool, RunLock, StateFile};

/// The source every object and attribute carries in ThreatQ.
pub const SOURCE_NAME: &str = "Proofpoint TAP";
/// Where compiled copies of the component are cached, inside the config directory.
pub const CACHE_DIR_NAME: &str = "tq-conn-proofpoint-tap.cache";
/// Attempts per window for failures worth retrying (TAP 5xx, transport).
const WINDOW_ATTEMPTS: u32 = 3;
/// TAP answers a busy hour in one body (no paging): generous limits.
const TAP_REQUEST_TIMEOUT: StdDuration = StdDuration::from_secs(120);
/// A consume request of 500 objects takes seconds; five minutes means
/// ThreatQ has stopped answering (the client then retries it).
const THREATQ_REQUEST_TIMEOUT: StdDuration = StdDuration::from_secs(300);
const TAP_MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;
/// Default bound on a whole run: below one hourly cron period, so a stuck
/// run is noticed by the next one (docs/sync.md, "Deadlines").
pub const DEFAULT_RUN_DEADLINE: StdDuration = StdDuration::from_secs(50 * 60);
/// Record keys are kept this much longer than the overlap, for safety.
const KEY_HORIZON_SLACK: Duration = Duration::minutes(10);

/// The operator's network flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetworkFlags {
    /// `-ep`: TAP traffic goes through the proxy configured in ThreatQ.
    pub external_proxy: bool,
    /// `-ds`: no TLS certificate checks, on either side.
    pub disable_ssl: bool,
    /// `-dp`: no proxy at all, on either side.
    pub disable_proxy: bool,
}

/// Everything a run needs besides the config directory's files.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub config_dir: PathBuf,
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
            dry_run: false,
            export: None,
            component: ComponentSource::Embedded,
            network: NetworkFlags::default(),
            limits: Limits::default(),
            retry: RetryPolicy::default(),
            now: None,
            show_progress: true,
            deadline: DEFAULT_RUN_DEADLINE,
            tap_max_response_bytes: TAP_MAX_RESPONSE_BYTES,
        }
    }
}

/// How a run that did not fail ended.
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
    /// The config file or settings are missing or wrong.
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
    /// Local I/O (state file, export file).
    Local,
    /// The run reached its deadline and stopped at a window boundary.
    Deadline,
    /// Another run has held the lock for longer than the deadline: it is
    /// stuck, and the feed with it.
    StuckRun,
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
        }
    }
}

/// A run that stopped early. Every window before the failed one was
/// forwarded and checkpointed.
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
    let result = run_inner(options, &mut summary).await;
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

enum Stop {
    AlreadyRunning(Option<LockHolder>),
    /// The window was too large for the sandbox (its memory cap, or the
    /// response size cap) and can be split: the loop retries its halves.
    /// Never leaves `run_inner`.
    TooLarge(anyhow::Error),
    Failed(FailureKind, anyhow::Error),
}

impl Stop {
    fn from(kind: FailureKind) -> impl FnOnce(anyhow::Error) -> Stop {
        move |e| Stop::Failed(kind, e)
    }
}

/// `Ok(None)` when the connector is disabled.
async fn run_inner(options: &RunOptions, summary: &mut RunSummary) -> Result<Option<()>, Stop> {
    let dir = &options.config_dir;
    let deadline_started = Instant::now();

    let config = config::load(dir)
        .map_err(|e| Stop::Failed(FailureKind::Config, anyhow!(e)))?
        .ok_or_else(|| {
            Stop::Failed(
                FailureKind::Config,
                anyhow!(
                    "no config file in {}: run tq-conn-proofpoint-tap once in a terminal to set it up, \
                     or use `tq-conn-proofpoint-tap setup`",
                    dir.display()
                ),
            )
        })?;

    let bounds = Bounds::of(&config, options);
    let deadline = Deadline::starting_at(deadline_started, bounds.deadline);
    let _lock = acquire_lock(dir, bounds.deadline)?;

    // Registered before the first request, so even the login is covered;
    // the TAP secret and proxy password follow once they are resolved.
    register_threatq_password(&config);
    let threatq =
        threatq_client(&config, options, &bounds).map_err(Stop::from(FailureKind::Config))?;
    let local_complete = settings::local_is_complete(&config.tap);
    let ui = deadline
        .bound_preparation(connector_entry(&threatq, local_complete))
        .await??;
    let tap = match settings::resolve(&config.tap, ui.as_ref())
        .map_err(Stop::from(FailureKind::Config))?
    {
        Resolved::Run(tap) => *tap,
        Resolved::Disabled => {
            info!("the connector is switched off (ThreatQ UI or `enabled = false`): nothing to do");
            return Ok(None);
        }
    };

    let (tap_http, tap_proxy) = deadline
        .bound_preparation(tap_http_client(&config, &tap, options, &threatq))
        .await??;
    register_secrets(&tap, &tap_proxy);
    let runtime = Runtime::new(RuntimeConfig {
        component: options.component.clone(),
        cache_dir: Some(dir.join(CACHE_DIR_NAME)),
        limits: bounds.limits,
    })
    .map_err(|e| Stop::Failed(FailureKind::Sandbox, anyhow!(e)))?;
    let outbound = OutboundPolicy {
        origin: tap.origin.clone(),
        principal: tap.principal.clone(),
        secret: tap.secret.clone(),
        http: tap_http,
        request_timeout: bounds.tap_request_timeout,
        max_response_bytes: bounds.tap_max_response_bytes,
    };

    let state_file = StateFile::in_dir(dir);
    let mut state = state_file.load().map_err(Stop::from(FailureKind::Local))?;
    let now = options.now.unwrap_or_else(OffsetDateTime::now_utc);
    state.budgets.prune(now);

    let plan = plan::plan(&PlanInput {
        now,
        cursor: state.checkpoint,
        history_hours: tap.history_hours,
        overlap: tap.overlap,
        safety_margin: tap.safety_margin,
    });
    summary.windows_planned = plan.windows.len();
    summary.checkpoint = state.checkpoint;
    if let Some(gap) = plan.clamped_gap {
        summary.gap_seconds = gap.len().whole_seconds();
        warn!(
            from = %rfc3339(gap.start),
            to = %rfc3339(gap.end),
            "the checkpoint is older than TAP's 7-day look-back: this span can no longer be fetched"
        );
    }
    info!(
        windows = plan.windows.len(),
        from = %plan.windows.first().map(|w| rfc3339(w.start)).unwrap_or_default(),
        to = %plan.windows.last().map(|w| rfc3339(w.end)).unwrap_or_default(),
        dry_run = options.dry_run,
        "run planned"
    );

    let mut export = match (&options.export, options.dry_run) {
        (Some(path), _) => Some(Export::to_file(path).map_err(Stop::from(FailureKind::Local))?),
        (None, true) => Some(Export::to_stdout()),
        (None, false) => None,
    };
    let forward_options = ForwardOptions {
        source: SOURCE_NAME.to_owned(),
        tlp_id: None,
        indicator_status: config.threatq.status.clone(),
    };
    let progress = Progress::new(plan.windows.len(), options.show_progress);
    let mut known_campaigns: Vec<CampaignRef> = Vec::new();
    let key_horizon = tap.overlap + KEY_HORIZON_SLACK;

    // A queue rather than the plan itself: a window too large for the
    // sandbox is replaced by its two halves, in place.
    let mut pending: std::collections::VecDeque<Window> = plan.windows.iter().copied().collect();
    while let Some(window) = pending.pop_front() {
        let window = &window;
        deadline
            .check(window, summary)
            .map_err(|stop| abandon(&state_file, &state, &progress, stop))?;
        let clock = options.now.unwrap_or_else(OffsetDateTime::now_utc);
        let settings = component_settings(&tap, &state, &known_campaigns, clock)?;
        let result = deadline
            .bound(
                window,
                summary,
                fetch_window(
                    &runtime, &outbound, &settings, window, options, &mut state, summary,
                ),
            )
            .await
            .and_then(|fetched| fetched);
        // Budgets are facts whatever happened next: keep them even when the
        // window failed.
        summary.budgets_left = budgets_left(&state, clock);
        let result = match result {
            Ok(result) => result,
            Err(Stop::TooLarge(why)) if window.halves().is_some() => {
                let Some((first, second)) = window.halves() else {
                    unreachable!("checked by the guard")
                };
                warn!(
                    window = %describe(window),
                    reason = %format!("{why:#}"),
                    "the window is too large for the sandbox; retrying it as two halves"
                );
                summary.windows_planned += 1;
                summary.windows_split += 1;
                progress.add_window();
                pending.push_front(second);
                pending.push_front(first);
                save_state(&state_file, &state);
                continue;
            }
            Err(Stop::TooLarge(why)) => {
                let stop = Stop::Failed(
                    FailureKind::Sandbox,
                    why.context(format!(
                        "window {} is too large for the sandbox even at TAP's shortest \
                         window (30 s); raise the limit named above under [run] (memory_mib, tap_response_mib)",
                        describe(window)
                    )),
                );
                return Err(abandon(&state_file, &state, &progress, stop));
            }
            Err(stop) => return Err(abandon(&state_file, &state, &progress, stop)),
        };

        let batch = to_batch(&result);
        for rejection in &result.rejections {
            warn!(record = %rejection.key, reason = %rejection.reason, "TAP record quarantined");
        }
        summary.rejected_records += result.rejections.len() as u64;
        let counters = &result.counters;
        summary.messages += u64::from(counters.messages_delivered + counters.messages_blocked);
        summary.clicks += u64::from(counters.clicks_permitted + counters.clicks_blocked);
        summary.already_sent_skipped += u64::from(counters.already_sent_skipped);

        let mut rejected = BTreeSet::new();
        if !options.dry_run {
            let forwarded = match deadline
                .bound(window, summary, threatq.forward(&batch, &forward_options))
                .await
            {
                Ok(Ok(report)) => Ok(report),
                Ok(Err(e)) => Err(Stop::Failed(
                    FailureKind::Threatq,
                    anyhow!(e).context(format!(
                        "ThreatQ did not accept window {}; the checkpoint stays at {}",
                        describe(window),
                        state
                            .checkpoint
                            .map(rfc3339)
                            .unwrap_or_else(|| "the start".into())
                    )),
                )),
                Err(stop) => Err(stop),
            };
            let report = forwarded.map_err(|stop| abandon(&state_file, &state, &progress, stop))?;
            for object in &report.rejected {
                warn!(
                    collection = %object.collection.api_name(),
                    object = %object.identity,
                    reason = %object.reason,
                    "ThreatQ rejected an object"
                );
                rejected.insert((object.collection, object.identity.clone()));
            }
            summary.rejected_objects += report.rejected.len() as u64;
        }
        if let Some(export) = export.as_mut() {
            export
                .write_batch(&batch)
                .map_err(Stop::from(FailureKind::Local))?;
        }
        summary.count_accepted(&batch, &rejected);

        let query_end = checkpoint_for(&result, window);
        if !options.dry_run {
            state.accept_window(
                query_end,
                result
                    .record_keys
                    .iter()
                    .map(|k| (k.key.clone(), k.created_ms)),
                key_horizon,
            );
            summary.checkpoint = state.checkpoint;
        }
        state_file
            .save(&state)
            .map_err(Stop::from(FailureKind::Local))?;
        for campaign in &result.campaigns_fetched {
            if !known_campaigns.iter().any(|c| c.id == campaign.id) {
                known_campaigns.push(campaign.clone());
            }
        }
        summary.windows_done += 1;
        info!(
            window = %describe(window),
            messages = counters.messages_delivered + counters.messages_blocked,
            clicks = counters.clicks_permitted + counters.clicks_blocked,
            objects = batch.objects.len(),
            relations = batch.relations.len(),
            rejected = result.rejections.len() + rejected.len(),
            checkpoint = %rfc3339(query_end),
            "window forwarded"
        );
        progress.window_done(summary.objects_sent());
    }
    progress.finish();
    summary.budgets_left =
        budgets_left(&state, options.now.unwrap_or_else(OffsetDateTime::now_utc));
    Ok(Some(()))
}

/// Takes the run lock. A run holding it for longer than the deadline is
/// stuck (a hung ThreatQ, a stopped process): that is a failure with its
/// pid, not a quiet "another run is busy".
fn acquire_lock(dir: &std::path::Path, deadline: StdDuration) -> Result<RunLock, Stop> {
    let now = OffsetDateTime::now_utc();
    match RunLock::try_acquire(dir, now).map_err(Stop::from(FailureKind::Local))? {
        LockAttempt::Acquired(lock) => Ok(lock),
        LockAttempt::Busy(Some(holder))
            if now - holder.since > Duration::try_from(deadline).unwrap_or(Duration::MAX) =>
        {
            Err(Stop::Failed(
                FailureKind::StuckRun,
                anyhow!(
                    "another run (pid {}) has held the lock on {} since {}, longer than the run \
                     deadline of {}: it is stuck and the feed has stopped. Find out why \
                     (its log), stop it (`kill {}`), and the next run continues from the checkpoint",
                    holder.pid,
                    dir.display(),
                    rfc3339(holder.since),
                    human(deadline),
                    holder.pid
                ),
            ))
        }
        LockAttempt::Busy(holder) => Err(Stop::AlreadyRunning(holder)),
    }
}

/// The run's bounds: the options' defaults (or a test's choices), with
/// whatever `[run]` in the config file sets on top.
struct Bounds {
    deadline: StdDuration,
    limits: Limits,
    tap_max_response_bytes: usize,
    tap_request_timeout: StdDuration,
    threatq_request_timeout: StdDuration,
}

impl Bounds {
    fn of(config: &Config, options: &RunOptions) -> Bounds {
        const MIB: usize = 1024 * 1024;
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
        }
    }
}

/// The whole-run time bound: checked before each window, and bounding each
/// window's TAP call and ThreatQ forward, so a stalled side ends the run at
/// a window boundary with the checkpoint of the last accepted window.
struct Deadline {
    at: Instant,
    limit: StdDuration,
}

impl Deadline {
    fn starting_at(now: Instant, limit: StdDuration) -> Deadline {
        Deadline {
            at: now
                .checked_add(limit)
                .unwrap_or(now + StdDuration::from_secs(86_400 * 365)),
            limit,
        }
    }

    fn stop(&self, window: &Window, summary: &RunSummary) -> Stop {
        Stop::Failed(
            FailureKind::Deadline,
            anyhow!(
                "the run reached its deadline of {} after {} of {} windows; window {} was \
                 not committed and the checkpoint stays at {}. The next run continues from there; \
                 if this repeats, see why windows are slow (-v3) or raise `[run] deadline_minutes`",
                human(self.limit),
                summary.windows_done,
                summary.windows_planned,
                describe(window),
                summary
                    .checkpoint
                    .map(rfc3339)
                    .unwrap_or_else(|| "unset (first run)".into())
            ),
        )
    }

    /// Bounds a step before the first window (reading ThreatQ's settings),
    /// where there is nothing to save: the checkpoint is as it was.
    async fn bound_preparation<T>(&self, work: impl Future<Output = T>) -> Result<T, Stop> {
        tokio::time::timeout_at(self.at.into(), work)
            .await
            .map_err(|_elapsed| {
                Stop::Failed(
                    FailureKind::Deadline,
                    anyhow!(
                        "the run reached its deadline of {} before its first window (reading \
                         the settings from ThreatQ); the checkpoint is unchanged. Check that \
                         ThreatQ answers (-v3 shows the last request)",
                        human(self.limit)
                    ),
                )
            })
    }

    fn check(&self, window: &Window, summary: &RunSummary) -> Result<(), Stop> {
        if Instant::now() >= self.at {
            return Err(self.stop(window, summary));
        }
        Ok(())
    }

    async fn bound<T>(
        &self,
        window: &Window,
        summary: &RunSummary,
        work: impl Future<Output = T>,
    ) -> Result<T, Stop> {
        tokio::time::timeout_at(self.at.into(), work)
            .await
            .map_err(|_elapsed| self.stop(window, summary))
    }
}

fn threatq_client(
    config: &Config,
    options: &RunOptions,
    bounds: &Bounds,
) -> anyhow::Result<Client> {
    if options.network.disable_ssl {
        // Once per run, naming both sides: -ds is the one switch that
        // reaches across them.
        warn!("{}", http::DISABLE_SSL_WARNING);
    }
    let mut network = http::threatq_network(&config.threatq, &options.network);
    // Without it, a ThreatQ that accepts and never answers holds a request
    // (and the run) until the run deadline.
    network.request_timeout = Some(bounds.threatq_request_timeout);
    let http = http::build_client(&network)?;
    Ok(Client::new(
        ThreatqConfig {
            base_url: config.threatq.host.url().clone(),
            client_id: config.threatq.client_id.clone(),
            username: config.threatq.username.clone(),
            password: config.threatq.password.clone(),
        },
        http,
        options.retry.clone(),
    ))
}

/// The run's secrets are registered with the log redactor once each, in
/// these two functions: ThreatQ's password as soon as the config is read
/// (so the login is covered), then the resolved TAP secret (from the file
/// or ThreatQ's UI) and the TAP proxy's password. The secret types keep
/// them out of log lines already; this is the safety net.
fn register_threatq_password(config: &Config) {
    use crate::config::ExposeSecret as _;
    crate::logging::register_secret(config.threatq.password.expose_secret());
}

fn register_secrets(tap: &TapSettings, tap_proxy: &ProxyChoice) {
    use crate::config::ExposeSecret as _;
    crate::logging::register_secret(tap.secret.expose_secret());
    if let ProxyChoice::Explicit(proxy) = tap_proxy
        && let Some(password) = proxy.password()
    {
        crate::logging::register_secret(password);
    }
}

/// Reads the connector's entry in ThreatQ's UI. When the local file sets
/// every TAP setting, the entry is optional: a failure is logged and the run
/// goes on with the local values.
async fn connector_entry(
    threatq: &Client,
    local_complete: bool,
) -> Result<Option<threatq_client::ConnectorSettings>, Stop> {
    match threatq.connector_settings(CONNECTOR_NAME).await {
        Ok(Some(entry)) => Ok(Some(entry)),
        Ok(None) if local_complete => {
            info!(
                "ThreatQ has no connector entry; using the TAP settings of the local config file"
            );
            Ok(None)
        }
        Ok(None) => Err(Stop::Failed(
            FailureKind::Config,
            anyhow!(
                "ThreatQ has no settings for {CONNECTOR_NAME}: set them in ThreatQ's UI \
                 (Incoming Feeds, Labs) or under [tap] in the config file"
            ),
        )),
        // ThreatQ itself is unusable (login refused, down): say so now,
        // before any TAP budget is spent on data that could not be sent.
        Err(
            e @ (ThreatqError::BadCredentials { .. }
            | ThreatqError::Unauthorized { .. }
            | ThreatqError::Unreachable { .. }
            | ThreatqError::Unavailable { .. }
            | ThreatqError::GaveUp { .. }
            | ThreatqError::InvalidBaseUrl { .. }),
        ) => Err(Stop::Failed(FailureKind::Threatq, anyhow!(e))),
        // Only the connector entry is unreadable (our guess at its API does
        // not match this ThreatQ): the local settings are enough.
        Err(e) if local_complete => {
            info!(error = %e, "cannot read the connector entry from ThreatQ; using the local TAP settings");
            Ok(None)
        }
        Err(e) => Err(Stop::Failed(FailureKind::Threatq, anyhow!(e))),
    }
}

/// The TAP side's HTTP client, and the route it takes (for the redactor).
/// TLS comes from `[tap]` alone (`http::tap_network`).
async fn tap_http_client(
    config: &Config,
    tap: &TapSettings,
    options: &RunOptions,
    threatq: &Client,
) -> Result<(reqwest::Client, ProxyChoice), Stop> {
    let proxy = if options.network.disable_proxy {
        ProxyChoice::Direct
    } else if options.network.external_proxy {
        let from_ui = threatq
            .proxy_setting()
            .await
            .map_err(|e| Stop::Failed(FailureKind::Threatq, anyhow!(e)))?
            .map(|text| {
                ProxyUrl::parse(&text).map_err(|problem| {
                    Stop::Failed(
                        FailureKind::Config,
                        anyhow!(
                            "the proxy configured in ThreatQ is not usable for -ep: {problem}; \
                             correct it in ThreatQ, or leave out -ep to use [threatq] proxy"
                        ),
                    )
                })
            })
            .transpose()?;
        match from_ui.or_else(|| config.threatq.proxy.clone()) {
            Some(proxy) => ProxyChoice::Explicit(proxy),
            None => {
                warn!(
                    "-ep was given but neither ThreatQ nor the config file names a proxy; using the system's"
                );
                ProxyChoice::System
            }
        }
    } else {
        config
            .threatq
            .proxy
            .clone()
            .map_or(ProxyChoice::System, ProxyChoice::Explicit)
    };
    // ProxyUrl's Debug shows `user:***@`, never the proxy's password.
    debug!(tap = %tap.origin, ?proxy, "TAP network route");
    let client = http::build_client(&http::tap_network(
        &config.tap,
        &options.network,
        proxy.clone(),
    ))
    .map_err(Stop::from(FailureKind::Config))?;
    Ok((client, proxy))
}

/// The component's settings for one window, with its share of the budgets.
fn component_settings(
    tap: &TapSettings,
    state: &crate::state::State,
    known_campaigns: &[CampaignRef],
    now: OffsetDateTime,
) -> Result<Settings, Stop> {
    let siem_left = state.budgets.remaining(Pool::Siem, now);
    if siem_left == 0 {
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
    // Threats are served in time order, first come first served: the result
    // then does not depend on where a run was cut into windows or
    // interrupted (a share per window would pick different threats).
    let threat_left = state.budgets.remaining(Pool::ThreatForensics, now);
    let campaign_left = state
        .budgets
        .remaining(Pool::Campaign, now)
        .min(state.budgets.remaining(Pool::CampaignForensics, now));
    Ok(Settings {
        tap_base_url: tap.origin.base_url(),
        create_incidents: tap.create_incidents,
        known_campaigns: known_campaigns.to_vec(),
        already_sent: state.sent_keys(),
        campaign_allowance: campaign_left,
        threat_forensics_allowance: threat_left,
        // Our outbound hook adds `Authorization`; the secret stays out of
        // the sandbox.
        credentials: None,
    })
}

/// Calls the component for one window, retrying what is worth retrying.
async fn fetch_window(
    runtime: &Runtime,
    outbound: &OutboundPolicy,
    settings: &Settings,
    window: &Window,
    options: &RunOptions,
    state: &mut crate::state::State,
    summary: &RunSummary,
) -> Result<SyncResult, Stop> {
    let wit_window = WitWindow {
        start: rfc3339(window.start),
        end: rfc3339(window.end),
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome = runtime.sync(outbound, settings, &wit_window).await;
        let clock = options.now.unwrap_or_else(OffsetDateTime::now_utc);
        // The host counted what it sent, whatever ended the call: a trap or
        // a limit spends TAP budget as surely as an answer does.
        let guest_counters = match &outcome.answer {
            Ok(Ok(result)) => Some(&result.counters),
            _ => None,
        };
        record_requests(state, &outcome.requests, guest_counters, clock);
        if let Some(why) = too_large(&outcome) {
            return Err(Stop::TooLarge(why));
        }
        let error = match outcome.answer {
            Ok(Ok(result)) => return Ok(result),
            Ok(Err(error)) => classify_tap_error(error, window),
            Err(error) => classify_runtime_error(error, window),
        };
        let (kind, error, transient) = error;
        if transient && attempt < WINDOW_ATTEMPTS {
            let delay = backoff(&options.retry, attempt);
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
        let checkpoint = summary
            .checkpoint
            .map(rfc3339)
            .unwrap_or_else(|| "unset (first run)".into());
        return Err(Stop::Failed(
            kind,
            error.context(format!(
                "window {} failed; the checkpoint stays at {checkpoint}",
                describe(window)
            )),
        ));
    }
}

/// Spends the budgets by what the host sent to TAP for one call. The
/// component's own counters, when it answered, are only a cross-check.
fn record_requests(
    state: &mut crate::state::State,
    sent: &RequestCounts,
    guest: Option<&Counters>,
    at: OffsetDateTime,
) {
    state.budgets.record(Pool::Siem, at, sent.siem);
    state.budgets.record(Pool::Campaign, at, sent.campaign);
    state
        .budgets
        .record(Pool::CampaignForensics, at, sent.campaign_forensics);
    state
        .budgets
        .record(Pool::ThreatForensics, at, sent.threat_forensics);
    if let Some(guest) = guest {
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
}

/// Whether a failed call failed because the window holds more than the
/// sandbox takes: its memory cap, or a SIEM answer over the response size
/// cap (the component then fails the window; a large enrichment answer is
/// only skipped). Such a window is split, not retried as it is.
fn too_large(outcome: &tap_runtime::CallOutcome) -> Option<anyhow::Error> {
    match &outcome.answer {
        Ok(Ok(_)) => None,
        Err(error @ RuntimeError::MemoryLimit { .. }) => Some(anyhow!("{error}")),
        Ok(Err(error)) if outcome.requests.oversized > 0 => Some(anyhow!(
            "the SIEM answer exceeded the TAP response size cap ({error:?})"
        )),
        Err(error) if outcome.requests.oversized > 0 => Some(anyhow!(
            "a TAP answer exceeded the response size cap ({error})"
        )),
        _ => None,
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

fn classify_runtime_error(
    error: RuntimeError,
    _window: &Window,
) -> (FailureKind, anyhow::Error, bool) {
    (FailureKind::Sandbox, anyhow!(error), false)
}

/// Exponential backoff with full jitter, bounded by the policy.
fn backoff(policy: &RetryPolicy, attempt: u32) -> StdDuration {
    let exp = policy
        .base_delay
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
    let cap = exp.min(policy.max_delay);
    let jitter = rand::random_range(0.0..=1.0);
    cap.mul_f64(jitter)
}

/// The checkpoint a forwarded window earns: TAP's `queryEndTime`, but never
/// past the end we asked for (a later value would skip data).
fn checkpoint_for(result: &SyncResult, window: &Window) -> OffsetDateTime {
    OffsetDateTime::parse(
        &result.query_end_time,
        &time::format_description::well_known::Rfc3339,
    )
    .map(|t| t.min(window.end))
    .unwrap_or(window.end)
}

fn budgets_left(
    state: &crate::state::State,
    now: OffsetDateTime,
) -> std::collections::BTreeMap<Pool, u32> {
    Pool::ALL
        .into_iter()
        .map(|pool| (pool, state.budgets.remaining(pool, now)))
        .collect()
}

/// Ends the run at a failed window, the one way every window failure
/// leaves: the state is saved (its budgets; its checkpoint is still the
/// last accepted window's) and the progress bar cleared.
fn abandon(file: &StateFile, state: &crate::state::State, progress: &Progress, stop: Stop) -> Stop {
    save_state(file, state);
    progress.finish();
    stop
}

/// Saves what we have when a window failed (budgets); the checkpoint in it
/// is the last accepted one. A failure to save is logged, not raised, since
/// the run is already failing for a better reason.
fn save_state(file: &StateFile, state: &crate::state::State) {
    if let Err(e) = file.save(state) {
        warn!(error = %format!("{e:#}"), "could not save the run state");
    }
}

/// "50 minutes", or "3 s" for the short deadlines of tests.
fn human(duration: StdDuration) -> String {
    let secs = duration.as_secs();
    if secs >= 120 && secs.is_multiple_of(60) {
        format!("{} minutes", secs / 60)
    } else {
        format!("{secs} s")
    }
}

fn describe(window: &Window) -> String {
    format!("{} .. {}", rfc3339(window.start), rfc3339(window.end))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ];
        let codes: BTreeSet<u8> = kinds.iter().map(|k| k.exit_code()).collect();
        assert_eq!(codes.len(), kinds.len());
        assert!(!codes.contains(&0) && !codes.contains(&2));
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

    #[test]
    fn backoff_never_exceeds_the_policy_cap() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base_delay: StdDuration::from_millis(100),
            max_delay: StdDuration::from_millis(250),
        };
        for attempt in 1..10 {
            assert!(backoff(&policy, attempt) <= StdDuration::from_millis(250));
        }
    }
}
