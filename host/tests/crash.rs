//! The crash test: the built binary is killed with SIGKILL at random points
//! of a multi-window run, run again, and ThreatQ must then hold exactly what
//! a fault-free run gives it: nothing missing, nothing twice.
//!
//! Each kill point gets fresh simulators and a fresh config directory (so
//! TAP's and the connector's request budgets start where the clean run's
//! did), the run is killed after a delay drawn uniformly in (0, T), T being
//! the clean run's wall time, and the rerun must exit 0 at once (the OS
//! releases the run lock of a killed process). Only kills that hit a run
//! still running count; points are drawn until `CRASH_POINTS` (default 30)
//! have. `CRASH_SEED` replays a sequence of delays.
//!
//! The comparison has to be about crashes, not about where windows fall. A
//! run plans its windows from the real clock and a resumed run from its
//! checkpoint minus the overlap, so the two cut time differently; and some
//! mapping is per window (the false-positive rule; a click is related to
//! its message only when both are in one window, docs/mapping.md). So the
//! tenant is made of small tenants, each inside one half-hour slot kept
//! 7 minutes clear of every half-hour mark from the start of the history:
//! the clean run (hour windows from `now - 6 h`) and every resumed run
//! (windows from `checkpoint - 30 min`) then see each slot whole, in one
//! window, as long as the clock has moved less than 7 minutes since the
//! tenant was generated (it is regenerated, with a new clean run, after 5).
//! False positives are off. Two clean runs are compared first.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tap_sim::{TapSim, TapSimConfig, Tenant, TenantSpec};
use threatq_sim::{Snapshot, ThreatqSim, ThreatqSimConfig};
use time::OffsetDateTime;

const BIN: &str = env!("CARGO_BIN_EXE_tq-conn-proofpoint-tap");
const SIGKILL: i32 = 9;

const HISTORY_HOURS: i64 = 6;
/// Half-hour slots holding data: slot `i` is `[B + 30 min * i + 7 min,
/// B + 30 min * i + 23 min)` with `B = now - 6 h`; the last half hour is
/// left empty (it ends inside the safety margin).
const SLOTS: i64 = 11;
const SLOT_MARGIN_MINUTES: i64 = 7;
/// A baseline (tenant and clean run) is rebuilt when this much older.
const STALE_AFTER: Duration = Duration::from_secs(5 * 60);
/// How slow ThreatQ's consume requests are, so a run spends a fair share
/// of its time forwarding.
const CONSUME_DELAY: Duration = Duration::from_millis(10);
/// Longest a run may take before the test gives up on it.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
const TENANT_SEED: u64 = 0xC4A5_4000;

/// What ThreatQ holds, by object identity, independent of ids and order.
type Holdings = BTreeMap<Identity, Held>;

/// (collection, type, value, happened_at).
type Identity = (String, String, String, String);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    attributes: BTreeSet<(String, String)>,
    /// The identities of the related objects.
    relations: BTreeSet<Identity>,
}

/// The simulator's objects as [`Holdings`], or what is there twice.
fn holdings(snapshot: &Snapshot) -> Result<Holdings, String> {
    let mut problems = Vec::new();
    let identity_of = |object: &threatq_sim::StoredObject| -> Identity {
        (
            object.collection.clone(),
            object.type_name.clone().unwrap_or_default(),
            object.value.clone(),
            object.happened_at.clone().unwrap_or_default(),
        )
    };
    let mut by_id = BTreeMap::new();
    let mut by_value: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for object in &snapshot.objects {
        by_id.insert((object.collection.as_str(), object.id), identity_of(object));
        *by_value
            .entry((object.collection.as_str(), object.value.as_str()))
            .or_default() += 1;
    }
    for ((collection, value), count) in &by_value {
        if *count > 1 {
            problems.push(format!("{collection} `{value}` is there {count} times"));
        }
    }
    let mut held = Holdings::new();
    for object in &snapshot.objects {
        let mut attributes = BTreeSet::new();
        for attribute in &object.attributes {
            if !attributes.insert((attribute.name.clone(), attribute.value.clone())) {
                problems.push(format!(
                    "{} `{}` has attribute {} = `{}` twice",
                    object.collection, object.value, attribute.name, attribute.value
                ));
            }
        }
        let mut relations = BTreeSet::new();
        for (collection, id) in &object.relations {
            match by_id.get(&(collection.as_str(), *id)) {
                Some(related) => {
                    if !relations.insert(related.clone()) {
                        problems.push(format!(
                            "{} `{}` is related to {collection} `{}` twice",
                            object.collection, object.value, related.2
                        ));
                    }
                }
                None => problems.push(format!(
                    "{} `{}` is related to {collection} {id}, which does not exist",
                    object.collection, object.value
                )),
            }
        }
        held.insert(
            identity_of(object),
            Held {
                attributes,
                relations,
            },
        );
    }
    if problems.is_empty() {
        Ok(held)
    } else {
        problems.truncate(20);
        Err(problems.join("\n"))
    }
}

/// What differs between two holdings, for a person; empty when equal.
fn difference(got: &Holdings, want: &Holdings) -> String {
    let mut lines = Vec::new();
    let show = |identity: &Identity| format!("{} `{}` {}", identity.0, identity.2, identity.3);
    for identity in want.keys().filter(|k| !got.contains_key(*k)) {
        lines.push(format!("missing: {}", show(identity)));
    }
    for identity in got.keys().filter(|k| !want.contains_key(*k)) {
        lines.push(format!("extra: {}", show(identity)));
    }
    for (identity, held) in got {
        let Some(wanted) = want.get(identity) else {
            continue;
        };
        for attribute in wanted.attributes.difference(&held.attributes) {
            lines.push(format!(
                "{}: attribute missing: {} = `{}`",
                show(identity),
                attribute.0,
                attribute.1
            ));
        }
        for attribute in held.attributes.difference(&wanted.attributes) {
            lines.push(format!(
                "{}: attribute extra: {} = `{}`",
                show(identity),
                attribute.0,
                attribute.1
            ));
        }
        for related in wanted.relations.difference(&held.relations) {
            lines.push(format!(
                "{}: relation missing to {}",
                show(identity),
                show(related)
            ));
        }
        for related in held.relations.difference(&wanted.relations) {
            lines.push(format!(
                "{}: relation extra to {}",
                show(identity),
                show(related)
            ));
        }
    }
    let total = lines.len();
    lines.truncate(30);
    if total > lines.len() {
        lines.push(format!("... {} more", total - lines.len()));
    }
    lines.join("\n")
}

/// The small tenants, one per slot (see the module doc).
fn tenant_parts(now: OffsetDateTime) -> Vec<Tenant> {
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let base = now - time::Duration::hours(HISTORY_HOURS);
    (0..SLOTS)
        .map(|slot| {
            let half_hour = base + time::Duration::minutes(30 * slot);
            let mut spec = TenantSpec::new(
                TENANT_SEED + slot as u64,
                half_hour + time::Duration::minutes(SLOT_MARGIN_MINUTES),
                half_hour + time::Duration::minutes(30 - SLOT_MARGIN_MINUTES),
            );
            spec.messages_per_hour = 90;
            spec.clicks_per_hour = 45;
            spec.campaigns = 1;
            spec.threats_without_campaign = 3;
            spec.false_positive_fraction = 0.0;
            tap_sim::generator::generate(&spec)
        })
        .collect()
}

/// Fresh simulators with the tenant loaded and a fresh config directory.
struct World {
    tap: TapSim,
    threatq: ThreatqSim,
    dir: tempfile::TempDir,
}

impl World {
    fn start(runtime: &tokio::runtime::Runtime, parts: &[Tenant]) -> World {
        let (tap, threatq) = runtime.block_on(async {
            let tap = TapSim::start(TapSimConfig::default()).await.unwrap();
            let threatq = ThreatqSim::start(ThreatqSimConfig::default())
                .await
                .unwrap();
            (tap, threatq)
        });
        for part in parts {
            tap.load_tenant(part);
        }
        threatq.faults().set_consume_delay(Some(CONSUME_DELAY));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("log")).unwrap();
        let config = sim_config::simulator_config(
            &threatq.base_url(),
            &ThreatqSimConfig::default(),
            Some((&tap.base_url(), &TapSimConfig::default())),
            &format!("history_hours = {HISTORY_HOURS}\ncreate_incidents = true\n"),
        );
        assert!(config.contains("127.0.0.1"), "{config}");
        let config_file = dir.path().join(tq_conn::config::CONFIG_FILE_NAME);
        std::fs::write(&config_file, config).unwrap();
        // It holds the ThreatQ password: owner-only, as setup writes it.
        std::fs::set_permissions(&config_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        World { tap, threatq, dir }
    }

    fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    fn log_dir(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_dir().join(tq_conn::logging::LOG_FILE_NAME))
            .unwrap_or_default()
    }

    /// The connector as cron runs it, with the precompiled component and
    /// no proxy: it talks to the simulators on 127.0.0.1 and nothing else.
    fn connector(&self, precompiled: &Path) -> Command {
        let mut command = Command::new(BIN);
        command
            .current_dir(self.config_dir())
            .env("RUST_BACKTRACE", "0")
            .env_remove("TQ_CONN_LOG")
            .stdin(Stdio::null())
            .arg("-c")
            .arg(self.config_dir())
            .arg("-ll")
            .arg(self.log_dir())
            .args(["-v", "2", "-dp", "--precompiled"])
            .arg(precompiled);
        for proxy in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            command.env_remove(proxy);
        }
        command
            .env("NO_PROXY", "127.0.0.1")
            .env("no_proxy", "127.0.0.1");
        command
    }

    /// Runs the connector to its end; panics unless it exits 0.
    fn run_to_completion(&self, precompiled: &Path, what: &str) -> Duration {
        let out = self.dir.path().join("log").join("stderr.txt");
        let started = Instant::now();
        let mut child = KillOnDrop(
            self.connector(precompiled)
                .stdout(Stdio::null())
                .stderr(File::create(&out).unwrap())
                .spawn()
                .unwrap(),
        );
        let status = loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < RUN_TIMEOUT,
                "{what}: still running after {RUN_TIMEOUT:?}\nlog:\n{}",
                tail(&self.log())
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        let elapsed = started.elapsed();
        assert!(
            status.success(),
            "{what}: exit {status:?}\nstderr:\n{}\nlog:\n{}",
            std::fs::read_to_string(&out).unwrap_or_default(),
            tail(&self.log())
        );
        elapsed
    }

    /// TAP never refused a request: no budget bound, nothing was illegal.
    fn assert_tap_never_refused(&self, what: &str) {
        let refused: Vec<String> = self
            .tap
            .requests()
            .iter()
            .filter(|r| r.status >= 400)
            .map(|r| format!("{} {}?{} -> {}", r.method, r.path, r.query, r.status))
            .collect();
        assert!(
            refused.is_empty(),
            "{what}: TAP refused requests (a budget bound?), so the comparison \
             would not be about crashes:\n{}",
            refused.join("\n")
        );
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(25)..].join("\n")
}

/// A child process that is killed and reaped however the test ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The tenant and what a fault-free run of it leaves in ThreatQ.
struct Baseline {
    generated: Instant,
    parts: Vec<Tenant>,
    holdings: Holdings,
    /// Wall time of the clean run, spawn to exit.
    wall: Duration,
    summary: String,
}

fn baseline(runtime: &tokio::runtime::Runtime, precompiled: &Path) -> Baseline {
    let generated = Instant::now();
    let parts = tenant_parts(OffsetDateTime::now_utc());
    let mut clean = Vec::new();
    for which in ["first clean run", "second clean run"] {
        let world = World::start(runtime, &parts);
        let wall = world.run_to_completion(precompiled, which);
        world.assert_tap_never_refused(which);
        let log = world.log();
        let deferred: Vec<&str> = log
            .lines()
            .filter(|line| {
                line.contains("threat_forensics_deferred")
                    && !line.contains("threat_forensics_deferred=0")
            })
            .collect();
        assert!(
            deferred.is_empty(),
            "{which}: forensics were deferred (a budget bound), so the comparison would \
             not be about crashes:\n{}",
            deferred.join("\n")
        );
        let summary = log
            .lines()
            .rev()
            .find(|line| line.contains("summary:"))
            .unwrap_or_default()
            .to_owned();
        assert!(summary.contains("summary: windows"), "{which}: {log}");
        let holdings = holdings(&world.threatq.snapshot())
            .unwrap_or_else(|problem| panic!("{which} left things twice:\n{problem}"));
        clean.push((holdings, wall, summary));
    }
    let (second, _, _) = clean.pop().unwrap();
    let (holdings, wall, summary) = clean.pop().unwrap();
    assert!(
        holdings == second,
        "two clean runs a few seconds apart differ, so the crash comparison would not be \
         about crashes:\n{}",
        difference(&second, &holdings)
    );
    for collection in ["events", "indicators", "campaign", "malware", "adversaries"] {
        assert!(
            holdings.keys().any(|k| k.0 == collection),
            "the clean run sent no {collection}"
        );
    }
    assert!(
        holdings.iter().any(|(k, held)| k.2.starts_with("TAP Click")
            && held
                .relations
                .iter()
                .any(|r| r.2.starts_with("TAP Message"))),
        "no click is related to its message: the tenant does not test that"
    );
    Baseline {
        generated,
        parts,
        holdings,
        wall,
        summary,
    }
}

/// What was going on when the run was killed: the last activity seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Before the first TAP answer: config, ThreatQ login, component load.
    Startup,
    /// Last seen: a TAP answer (the window's fetch and mapping).
    Fetch,
    /// Last seen: a ThreatQ request (the window's forward).
    Forward,
    /// Last seen: the state written (the save, or the next window's start).
    StateSaved,
}

impl Phase {
    fn label(self) -> &'static str {
        match self {
            Phase::Startup => "during startup",
            Phase::Fetch => "during fetch",
            Phase::Forward => "during forward",
            Phase::StateSaved => "just after a state save",
        }
    }
}

/// When each simulator was last seen answering, by polling.
#[derive(Default)]
struct Activity {
    tap_requests: usize,
    threatq_requests: usize,
    last_tap: Option<SystemTime>,
    last_threatq: Option<SystemTime>,
}

impl Activity {
    fn sample(&mut self, world: &World) {
        let now = SystemTime::now();
        let tap = world.tap.requests().len();
        if tap != self.tap_requests {
            self.tap_requests = tap;
            self.last_tap = Some(now);
        }
        let threatq = world.threatq.requests().len();
        if threatq != self.threatq_requests {
            self.threatq_requests = threatq;
            self.last_threatq = Some(now);
        }
    }

    fn phase(&self, state_written: Option<SystemTime>) -> Phase {
        let Some(tap) = self.last_tap else {
            return Phase::Startup;
        };
        let threatq = self.last_threatq.filter(|t| *t > tap);
        let state = state_written.filter(|t| *t > tap && threatq.is_none_or(|q| *t > q));
        match (threatq, state) {
            (_, Some(_)) => Phase::StateSaved,
            (Some(_), None) => Phase::Forward,
            (None, None) => Phase::Fetch,
        }
    }
}

/// When the run state was last written: the newest file in the config
/// directory other than the config and the lock.
fn state_written(dir: &Path) -> Option<SystemTime> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name != tq_conn::config::CONFIG_FILE_NAME && !name.ends_with(".lock")
        })
        .filter_map(|entry| entry.metadata().ok())
        .filter(|metadata| metadata.is_file())
        .filter_map(|metadata| metadata.modified().ok())
        .max()
}

enum Point {
    /// The run had ended before the kill: not a crash point.
    Missed,
    /// Killed while running; `resumed` when the rerun started from a
    /// checkpoint the killed run had saved (its overlap then held records
    /// already sent), not from the beginning.
    Killed { phase: Phase, resumed: bool },
}

/// How many records the last run's summary line says were already sent.
fn already_sent(log: &str) -> Option<u64> {
    let summary = log
        .lines()
        .rev()
        .find(|line| line.contains("summary: windows"))?;
    let before = &summary[..summary.find(" already sent")?];
    let digits = before.rsplit(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

/// One kill point: start a run, SIGKILL it after `delay`, run again to
/// completion, compare ThreatQ with the clean run.
fn kill_at(
    runtime: &tokio::runtime::Runtime,
    baseline: &Baseline,
    precompiled: &Path,
    delay: Duration,
    case: &str,
) -> Point {
    let world = World::start(runtime, &baseline.parts);
    let started = Instant::now();
    let mut child = KillOnDrop(
        world
            .connector(precompiled)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut activity = Activity::default();
    let mut ended = false;
    loop {
        if child.0.try_wait().unwrap().is_some() {
            ended = true;
            break;
        }
        activity.sample(&world);
        let elapsed = started.elapsed();
        if elapsed >= delay {
            break;
        }
        std::thread::sleep((delay - elapsed).min(Duration::from_millis(1)));
    }
    let mut phase = None;
    if !ended {
        let seen = activity.phase(state_written(world.config_dir()));
        child.0.kill().unwrap(); // SIGKILL
        let status = child.0.wait().unwrap();
        // A run that ended on its own between the check and the kill exits
        // normally; only a SIGKILL status is a crash.
        if status.signal() == Some(SIGKILL) {
            phase = Some(seen);
        }
    }
    drop(child);
    let case = match phase {
        Some(phase) => format!(
            "{case}: killed {} ms into the run {} (TAP answers {}, ThreatQ requests {})",
            delay.as_millis(),
            phase.label(),
            activity.tap_requests,
            activity.threatq_requests
        ),
        None => format!(
            "{case}: the run ended before its kill at {} ms",
            delay.as_millis()
        ),
    };

    let mut resumed = false;
    if phase.is_some() {
        world.run_to_completion(precompiled, &format!("{case}; the rerun"));
        let log = world.log();
        let skipped = already_sent(&log)
            .unwrap_or_else(|| panic!("{case}: the rerun logged no summary:\n{}", tail(&log)));
        resumed = skipped > 0;
    }
    world.assert_tap_never_refused(&case);
    let held = holdings(&world.threatq.snapshot()).unwrap_or_else(|problem| {
        panic!("{case}; then rerun: ThreatQ holds things twice:\n{problem}")
    });
    let difference = difference(&held, &baseline.holdings);
    assert!(
        difference.is_empty(),
        "{case}; then rerun: ThreatQ differs from the clean run:\n{difference}\nlog:\n{}",
        tail(&world.log())
    );
    match phase {
        Some(phase) => Point::Killed { phase, resumed },
        None => Point::Missed,
    }
}

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text} is not a number")),
    )
}

#[test]
fn killed_at_random_points_and_rerun_threatq_holds_what_a_clean_run_gives() {
    let test_started = Instant::now();
    let points = env_number("CRASH_POINTS").unwrap_or(30) as usize;
    assert!(points > 0, "CRASH_POINTS must be at least 1");
    let seed = env_number("CRASH_SEED").unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64 % 1_000_000)
            .unwrap_or(1)
    });
    println!("crash test: seed {seed} (CRASH_SEED={seed} replays the kill delays)");
    let mut rng = StdRng::seed_from_u64(seed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // Compiled once; every run then loads it in milliseconds. Its file and
    // directory belong to us and only we can write them (a tempdir is 0700,
    // `precompile` writes 0600), as `--precompiled` demands.
    let artifacts = tempfile::tempdir().unwrap();
    let precompiled = artifacts.path().join("tap-component.cwasm");
    let status = Command::new(BIN)
        .current_dir(artifacts.path())
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .arg("-c")
        .arg(artifacts.path())
        .arg("precompile")
        .arg("--out")
        .arg(&precompiled)
        .status()
        .unwrap();
    assert!(status.success(), "precompile: {status:?}");

    let mut base = baseline(&runtime, &precompiled);
    let mut baselines = 1;
    println!(
        "crash test: clean run {} ms, {} objects in ThreatQ; {}",
        base.wall.as_millis(),
        base.holdings.len(),
        base.summary.trim()
    );
    let mut by_phase: BTreeMap<Phase, usize> = BTreeMap::new();
    let mut killed = 0;
    let mut missed = 0;
    let mut drawn = 0;
    let mut resumed_runs = 0;
    while killed < points {
        assert!(
            drawn < points * 3 + 10,
            "{drawn} kill points drawn and only {killed} hit a running run: the clean \
             run's time ({} ms) does not match the crashed runs'",
            base.wall.as_millis()
        );
        if base.generated.elapsed() > STALE_AFTER {
            base = baseline(&runtime, &precompiled);
            baselines += 1;
        }
        drawn += 1;
        let delay = Duration::from_secs_f64(rng.random_range(0.0..base.wall.as_secs_f64()));
        let case = format!("kill point {drawn} (seed {seed})");
        match kill_at(&runtime, &base, &precompiled, delay, &case) {
            Point::Killed { phase, resumed } => {
                killed += 1;
                *by_phase.entry(phase).or_default() += 1;
                resumed_runs += usize::from(resumed);
            }
            Point::Missed => missed += 1,
        }
    }

    // A kill before the first checkpoint only tests starting over; with
    // delays uniform over the run, most kills come later.
    assert!(
        points < 10 || resumed_runs > 0,
        "none of {killed} reruns resumed from a checkpoint (seed {seed})"
    );
    let phases: Vec<String> = by_phase
        .iter()
        .map(|(phase, count)| format!("{count} {}", phase.label()))
        .collect();
    println!(
        "crash test: {killed} kill points (seed {seed}): {}; {drawn} drawn, {missed} after the \
         run had ended (not counted); {resumed_runs} reruns resumed from a checkpoint; every \
         rerun exited 0 and ThreatQ matched the clean run ({} objects), nothing missing, \
         nothing twice; {baselines} baseline(s), {} s in all",
        phases.join(", "),
        base.holdings.len(),
        test_started.elapsed().as_secs()
    );
}
