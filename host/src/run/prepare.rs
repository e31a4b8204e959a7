//! Step 1 of a run: everything before the first TAP request. Each check
//! that can fail without TAP fails here, before any TAP budget is spent on
//! data that could not be delivered.

use std::time::{Duration as StdDuration, Instant};

use anyhow::anyhow;
use tap_runtime::{OutboundPolicy, Runtime, RuntimeConfig};
use threatq_client::{Client, ForwardOptions, ThreatqError};
use time::{Duration, OffsetDateTime};
use tracing::{debug, info, warn};

use super::fetch::Sandbox;
use super::limits::{Bounds, Deadline, RetryLimits, human};
use super::options::RunOptions;
use super::outcome::{FailureKind, Stop};
use super::verdicts::VerdictPolicy;
use super::{CACHE_DIR_NAME, SOURCE_NAME};
use crate::config::{self, Config};
use crate::http::{self, ProxyChoice, ProxyUrl, RouteSource};
use crate::plan::{self, Plan, PlanInput};
use crate::report::{Export, rfc3339};
use crate::settings::{self, CONNECTOR_NAME, Resolved, TapSettings};
use crate::state::{LockAttempt, Pool, RunLock, Store};

/// What the later steps run with.
pub(super) struct Prepared {
    pub deadline: Deadline,
    pub retry_limits: RetryLimits,
    pub threatq: Client,
    pub forward_options: ForwardOptions,
    pub tap: TapSettings,
    pub sandbox: Sandbox,
    pub store: Store,
    pub plan: Plan,
    pub export: Option<Export>,
    /// What a later verdict does to indicators the connector made.
    pub verdicts: VerdictPolicy,
    /// Held for the whole run; released by the OS even on SIGKILL.
    _lock: RunLock,
}

/// `Ok(None)` when the connector is switched off.
pub(super) async fn prepare(options: &RunOptions) -> Result<Option<Prepared>, Stop> {
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

    // `-ep` beside `[tap] proxy` is a contradiction of the config and the
    // command line: refused before any request, ThreatQ's login included.
    http::tap_route(&options.network, config.tap.proxy.as_ref(), None, None)
        .map_err(|problem| Stop::Failed(FailureKind::Config, anyhow!(problem)))?;

    let bounds = Bounds::of(&config, options);
    let deadline = Deadline::starting_at(deadline_started, bounds.deadline);
    let lock = acquire_lock(dir, bounds.deadline)?;
    // Before any request: a damaged store is the operator's to look at, and
    // nothing should be fetched that could not be recorded.
    let mut store = Store::open(dir).map_err(Stop::from(FailureKind::Local))?;

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
    // TAP throttles no summaries; the config's politeness is the limit.
    store.set_daily_limit(Pool::ThreatSummary, tap.threat_summaries_per_day);
    let verdicts = if options.dry_run {
        VerdictPolicy {
            connector_status: config.threatq.status.clone(),
            false_positive_status: None,
        }
    } else {
        deadline
            .bound_preparation(check_names(&threatq, &config))
            .await??
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

    let plan = plan_windows(&tap, &store, options);
    let export = match (&options.export, options.dry_run) {
        (Some(path), _) => Some(Export::to_file(path).map_err(Stop::from(FailureKind::Local))?),
        (None, true) => Some(Export::to_stdout()),
        (None, false) => None,
    };
    let forward_options = ForwardOptions {
        source: SOURCE_NAME.to_owned(),
        tlp_id: None,
        indicator_status: config.threatq.status.clone(),
    };
    Ok(Some(Prepared {
        deadline,
        retry_limits: bounds.retry,
        threatq,
        forward_options,
        tap,
        sandbox: Sandbox { runtime, outbound },
        store,
        plan,
        export,
        verdicts,
        _lock: lock,
    }))
}

fn plan_windows(tap: &TapSettings, store: &Store, options: &RunOptions) -> Plan {
    let state = store.state();
    let plan = plan::plan(&PlanInput {
        now: options.clock(),
        cursor: state.checkpoint,
        history_hours: tap.history_hours,
        overlap: tap.overlap,
        safety_margin: tap.safety_margin,
    });
    if let Some(gap) = plan.clamped_gap {
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
    plan
}

/// Checks the names the config gives that ThreatQ must know before anything
/// is fetched: an unknown indicator status makes ThreatQ refuse every
/// indicator (422 "The selected status is invalid."), which would otherwise
/// be found only after a window's TAP budget was spent. The same holds for
/// `[threatq] false_positive_status` when the file sets it; its default
/// (`Whitelisted`, which newer ThreatQ releases may call otherwise) only
/// warns and leaves statuses alone.
async fn check_names(threatq: &Client, config: &Config) -> Result<VerdictPolicy, Stop> {
    let wanted = &config.threatq.status;
    let configured_fp = config.threatq.false_positive_status.as_deref();
    let false_positive = configured_fp.unwrap_or(config::DEFAULT_FALSE_POSITIVE_STATUS);
    let mut policy = VerdictPolicy {
        connector_status: wanted.clone(),
        false_positive_status: Some(false_positive.to_owned()),
    };
    let known = match threatq.indicator_statuses().await {
        Ok(known) => known,
        // An instance that does not list statuses (an older API): the
        // refusals, if any, are caught per window instead.
        Err(ThreatqError::Refused { status: 404, .. }) => {
            warn!(
                "ThreatQ does not list indicator statuses; cannot check [threatq] status before the run"
            );
            return Ok(policy);
        }
        Err(e) => return Err(Stop::Failed(FailureKind::Threatq, anyhow!(e))),
    };
    let unknown = |key: &str, name: &str, consequence: &str| {
        let hint = known
            .iter()
            .find(|k| k.eq_ignore_ascii_case(name) || strsim::jaro_winkler(k, name) > 0.85)
            .map(|k| format!(" Did you mean `{k}`?"))
            .unwrap_or_default();
        Stop::Failed(
            FailureKind::Config,
            anyhow!(
                "[threatq] {key} = \"{name}\" is not an indicator status this ThreatQ knows \
                 (it has: {}), so {consequence}.{hint} Set one of them in \
                 tq-conn-proofpoint-tap.toml; nothing was fetched and the checkpoint is unchanged",
                known.join(", ")
            ),
        )
    };
    if !known.iter().any(|name| name == wanted) {
        return Err(unknown(
            "status",
            wanted,
            "ThreatQ would refuse every indicator",
        ));
    }
    if !known.iter().any(|name| name == false_positive) {
        if configured_fp.is_some() {
            return Err(unknown(
                "false_positive_status",
                false_positive,
                "the indicators of threats TAP later judges false positives could not be moved to it",
            ));
        }
        warn!(
            status = false_positive,
            known = %known.join(", "),
            "ThreatQ has no indicator status `Whitelisted`: indicators of threats TAP later judges \
             false positives keep their status (their Threat Status attribute still changes); set \
             [threatq] false_positive_status to one of the known statuses"
        );
        policy.false_positive_status = None;
    }
    Ok(policy)
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
    // The request timeout: without it, a ThreatQ that accepts and never
    // answers holds a request (and the run) until the run deadline.
    http::threatq_client(
        &config.threatq,
        &options.network,
        Some(bounds.threatq_request_timeout),
        options.retry.clone(),
    )
}

/// The run's secrets are registered with the log redactor once each, in
/// these two functions: ThreatQ's password and its proxy's as soon as the
/// config is read (so the login is covered), then the resolved TAP secret
/// (from the file or ThreatQ's UI) and the TAP proxy's password. The
/// secret types keep them out of log lines already; this is the safety
/// net.
fn register_threatq_password(config: &Config) {
    use crate::config::ExposeSecret as _;
    crate::logging::register_secret(config.threatq.password.expose_secret());
    // The ThreatQ connection's proxy carries it from the login on.
    if let Some(password) = config.threatq.proxy.as_ref().and_then(ProxyUrl::password) {
        crate::logging::register_secret(password);
    }
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

/// The TAP side's HTTP client, and the proxy it takes (for the redactor).
/// The proxy is `http::tap_route`'s choice; ThreatQ's UI is asked for its
/// proxy only when that choice depends on it (`-ep`). TLS comes from
/// `[tap]` alone (`http::tap_network`).
async fn tap_http_client(
    config: &Config,
    tap: &TapSettings,
    options: &RunOptions,
    threatq: &Client,
) -> Result<(reqwest::Client, ProxyChoice), Stop> {
    let flags = &options.network;
    if flags.external_proxy && flags.disable_proxy {
        warn!("-ep has no effect beside -dp: neither TAP nor ThreatQ traffic goes through a proxy");
    }
    let threatq_setting =
        if flags.external_proxy && !flags.disable_proxy && config.tap.proxy.is_none() {
            threatq_proxy_setting(threatq).await?
        } else {
            None
        };
    let route = http::tap_route(
        flags,
        config.tap.proxy.as_ref(),
        config.threatq.proxy.as_ref(),
        threatq_setting.as_ref(),
    )
    .map_err(|problem| Stop::Failed(FailureKind::Config, anyhow!(problem)))?;
    let plain_http = tap.origin.scheme() == "http" && !config.tap.allow_plain_http;
    let proxied = route.proxy != ProxyChoice::Direct;
    let route = http::direct_for_plain_http(route, plain_http);
    if proxied && route.source == RouteSource::PlainHttpToThisMachine {
        warn!(
            tap = %tap.origin,
            "TAP is reached over plain http on this machine, so its traffic takes no proxy: \
             through one the TAP credentials would cross the network in clear text. Set \
             `allow_plain_http = true` under [tap] if the proxy's connection is protected \
             otherwise"
        );
    }
    if route.source == RouteSource::ExternalProxyNamedNone {
        warn!(
            "-ep was given but neither ThreatQ nor [threatq] proxy names a proxy; TAP traffic \
             takes the environment's (HTTPS_PROXY, NO_PROXY)"
        );
    }
    // ProxyUrl's Debug shows `user:***@`, never the proxy's password.
    debug!(tap = %tap.origin, proxy = ?route.proxy, why = %route.source, "TAP network route");
    let client = http::build_client(&http::tap_network(
        &config.tap,
        &options.network,
        route.proxy.clone(),
    ))
    .map_err(Stop::from(FailureKind::Config))?;
    Ok((client, route.proxy))
}

/// The proxy ThreatQ's UI configures, for `-ep`.
async fn threatq_proxy_setting(threatq: &Client) -> Result<Option<ProxyUrl>, Stop> {
    threatq
        .proxy_setting()
        .await
        .map_err(|e| Stop::Failed(FailureKind::Threatq, anyhow!(e)))?
        .map(|text| {
            ProxyUrl::parse(&text).map_err(|problem| {
                Stop::Failed(
                    FailureKind::Config,
                    anyhow!(
                        "the proxy configured in ThreatQ is not usable for -ep: {problem}; \
                         correct it in ThreatQ, or leave out -ep (TAP traffic then takes \
                         [tap] proxy, or the environment's)"
                    ),
                )
            })
        })
        .transpose()
}
