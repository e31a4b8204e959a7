//! The project's benchmark: `cargo bench -p tq-conn-proofpoint-tap --bench
//! pipeline` (what `just bench` runs). It prints a table and writes the same
//! figures as JSON to `target/bench.json`, so commits can be compared;
//! docs/performance.md records them against the targets.
//!
//! 1. Sandbox cost: one busy hour decoded and mapped by the TAP logic
//!    compiled natively and by the component in the sandbox, both fetching
//!    the same bodies from the same TAP simulator. Ratio sandboxed/native.
//! 2. Mapping vs the parse limit: the same bodies, in memory, through our
//!    decode+map and through a bare `serde_json::Value` parse.
//! 3. End to end: a 48-hour first run of a tenant with 10,000 SIEM records
//!    an hour, TAP and ThreatQ simulators on 127.0.0.1 in this process and
//!    the connector as the real release binary in a child process: wall
//!    time, objects/s, requests to each side, the child's peak RSS.
//! 4. Start-up: a run with nothing new to fetch, with the compiled-component
//!    cache and without it.
//! 5. Scaling: figure 3 at 1,000, 10,000 and 50,000 records an hour, over
//!    three hours each (`BENCH_SCALING_HOURS`), to see how cost grows; each
//!    in a fresh process of this benchmark, with simulators of its own.
//! 6. The release binary's size, and its build time. The binary measured,
//!    and the one figures 3 to 5 run, is the product as an operator builds
//!    it (`cargo build --release -p tq-conn-proofpoint-tap`, built by this
//!    benchmark before it measures): a bench target's own build enables
//!    the package's dev-dependencies, among them this package with `demo`,
//!    so `CARGO_BIN_EXE_*` would carry the simulators. `BENCH_CLEAN_BUILD=1`
//!    also times a clean build of it in an empty target directory (about
//!    eight minutes on two cores, so off by default).
//! 7. A Python floor: CPython 3, standard library only, parses the TAP
//!    bodies figure 3 fetched (`json.loads`) and serialises the ThreatQ
//!    bodies it sent (`json.dumps`), nothing else: the least any Python
//!    connector spends on the same data (`benches/python_floor.py`). The
//!    connector's own CPU in figure 3 is given over it. Figures 3 and 5
//!    give the connector's CPU (its rusage) and the simulators' (this
//!    process's) besides wall time, since both share the two cores.
//!
//! These machines are shared and noisy: timings are medians of several
//! runs, and ratios are taken pair by pair within one run. Set
//! `BENCH_SCALING_HOURS` to change the hours of the scaling runs, and
//! `BENCH_SKIP_SCALING=1` to leave them out; `BENCH_E2E_HOURS` shortens
//! figure 3 (48 by default) and `BENCH_ONLY=e2e` or `BENCH_ONLY=mapping`
//! runs one part, e.g. under a profiler (`mapping` builds no connector and
//! prints no figure 6). `BENCH_VERBOSITY=2` (or 3) runs the
//! connector at that `-v` and keeps each run's log as
//! `target/bench-run-<pid>-<n>.log`, to read where a run's time goes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

use serde_json::{Value, json};
use tap_runtime::{ComponentSource, Limits, OutboundPolicy, Runtime, RuntimeConfig};
use tap_sim::{TapSim, TapSimConfig, TenantSpec};
use threatq_sim::{ThreatqSim, ThreatqSimConfig};
use time::{Duration, OffsetDateTime};

const PRINCIPAL: &str = "sim-principal";
const SECRET: &str = "sim-secret";
/// Repetitions of the in-process measurements (figures 1 and 2).
const REPEATS: usize = 5;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Ok(case) = std::env::var(CASE_ENV) {
        runtime.block_on(run_case(&case));
        return;
    }
    let choices = Choices::from_env();
    let mut report = Report::default();
    report.note("machine", machine());
    // Figures 1 and 2 run the TAP logic in this process: a mapping-only
    // run needs no release build of the connector (minutes after a change
    // to the component, whose wasm the binary embeds).
    let product = choices
        .parts
        .end_to_end()
        .then(|| match Product::build(None) {
            Ok(product) => product,
            Err(err) => {
                eprintln!("cannot build the connector to measure: {err}");
                std::process::exit(1);
            }
        });
    runtime.block_on(async {
        if choices.parts.mapping() {
            sandbox_cost_and_parse_limit(&mut report).await;
        }
        if let Some(product) = &product {
            end_to_end(&mut report, &product.binary, &choices).await;
        }
    });
    if let Some(product) = &product {
        binary_and_build(&mut report, product);
    }
    report.finish();
}

/// What the environment asks of this run, read once before anything is
/// built or measured, so a mistyped setting stops it at once.
struct Choices {
    parts: Parts,
    /// Figure 3's first run (`BENCH_E2E_HOURS`).
    e2e_hours: i64,
    /// Figure 5's runs (`BENCH_SCALING_HOURS`); `None` with
    /// `BENCH_SKIP_SCALING`.
    scaling_hours: Option<i64>,
}

impl Choices {
    fn from_env() -> Choices {
        Choices {
            parts: Parts::from_env(),
            e2e_hours: hours_from_env("BENCH_E2E_HOURS", 48),
            // Three hours keeps the 50,000-an-hour run (150,000 records)
            // within the benchmark's time budget; cost per record is what
            // scales.
            scaling_hours: match std::env::var_os("BENCH_SKIP_SCALING") {
                Some(_) => None,
                None => Some(hours_from_env("BENCH_SCALING_HOURS", 3)),
            },
        }
    }
}

/// Which figures a run measures (`BENCH_ONLY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parts {
    All,
    /// `mapping`: figures 1 and 2, in this process.
    Mapping,
    /// `e2e`: figures 3 to 6, through the release binary.
    EndToEnd,
}

impl Parts {
    fn from_env() -> Parts {
        match std::env::var("BENCH_ONLY").as_deref() {
            Err(std::env::VarError::NotPresent) | Ok("") => Parts::All,
            Ok("mapping") => Parts::Mapping,
            Ok("e2e") => Parts::EndToEnd,
            Ok(other) => usage(&format!("BENCH_ONLY is {other:?}")),
            Err(std::env::VarError::NotUnicode(_)) => usage("BENCH_ONLY is not UTF-8"),
        }
    }

    fn mapping(self) -> bool {
        self != Parts::EndToEnd
    }

    fn end_to_end(self) -> bool {
        self != Parts::Mapping
    }
}

/// `name` as hours of TAP history (1 to 48, what the connector's
/// `history_hours` takes), or `default` when it is not set.
fn hours_from_env(name: &str, default: i64) -> i64 {
    let Some(text) = std::env::var_os(name) else {
        return default;
    };
    match text.to_str().map(|t| t.trim().parse::<i64>()) {
        Some(Ok(hours)) if (1..=48).contains(&hours) => hours,
        _ => usage(&format!(
            "{name} is {text:?}, not a number of hours from 1 to 48"
        )),
    }
}

/// Stops the benchmark on a setting it cannot use, naming the settings it
/// takes.
fn usage(problem: &str) -> ! {
    eprintln!(
        "{problem}. The benchmark takes BENCH_ONLY=mapping (figures 1 and 2) or \
         BENCH_ONLY=e2e (3 to 6), BENCH_E2E_HOURS and BENCH_SCALING_HOURS (1 to 48), \
         BENCH_SKIP_SCALING=1, BENCH_VERBOSITY=2 or 3, BENCH_CLEAN_BUILD=1; unset them \
         to measure everything"
    );
    std::process::exit(2);
}

// ---------------------------------------------------------------------------
// Figures 1 and 2.

/// A tenant shape with `per_hour` SIEM records an hour: three quarters
/// message records (1 or 2 recipients each), one quarter clicks.
fn tenant_spec(seed: u64, start: OffsetDateTime, end: OffsetDateTime, per_hour: u32) -> TenantSpec {
    let mut spec = TenantSpec::new(seed, start, end);
    spec.max_recipients = 2;
    spec.messages_per_hour = per_hour / 2;
    spec.clicks_per_hour = per_hour / 4;
    spec.campaigns = 8;
    spec.threats_without_campaign = 40;
    spec
}

async fn sandbox_cost_and_parse_limit(report: &mut Report) {
    let tap = TapSim::start(TapSimConfig::default())
        .await
        .expect("TAP simulator");
    let end = OffsetDateTime::now_utc() - Duration::minutes(5);
    let start = end - Duration::hours(1);
    let tenant = tap_sim::generator::generate(&tenant_spec(11, start, end, 10_000));
    tap.load_tenant(&tenant);
    // Exactly one hour: TAP refuses longer windows.
    let window_start = rfc3339(start);
    let window_end = rfc3339(end);
    let base = tap.base_url();

    let settings = tap_runtime::Settings {
        tap_base_url: base.clone(),
        create_incidents: true,
        known_campaigns: Vec::new(),
        already_sent: Vec::new(),
        fresh_threats: Vec::new(),
        queued_campaigns: Vec::new(),
        queued_threats: Vec::new(),
        campaign_allowance: 1000,
        // Forensics by threat are 50 a day per credential: leave them out
        // so every repetition makes the same requests.
        threat_forensics_allowance: 0,
        credentials: None,
        summarised_threats: Vec::new(),
        queued_summaries: Vec::new(),
        threat_summary_allowance: 0,
        people: Vec::new(),
    };
    let window = tap_runtime::Window {
        start: window_start.clone(),
        end: window_end.clone(),
    };
    let sandbox = Runtime::new(RuntimeConfig {
        component: ComponentSource::Embedded,
        cache_dir: None,
        limits: Limits::default(),
    })
    .expect("component loads");
    let outbound = OutboundPolicy {
        origin: tap_runtime::TapOrigin::parse(&base).expect("sim URL"),
        principal: PRINCIPAL.into(),
        secret: SECRET.into(),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        request_timeout: StdDuration::from_secs(120),
        max_response_bytes: OutboundPolicy::DEFAULT_MAX_RESPONSE_BYTES,
    };
    let native_settings = tap_component::Settings {
        tap_base_url: base.clone(),
        create_incidents: settings.create_incidents,
        known_campaigns: Vec::new(),
        already_sent: Vec::new(),
        fresh_threats: Vec::new(),
        queued_campaigns: Vec::new(),
        queued_threats: Vec::new(),
        campaign_allowance: settings.campaign_allowance,
        threat_forensics_allowance: settings.threat_forensics_allowance,
        credentials: None,
        summarised_threats: Vec::new(),
        queued_summaries: Vec::new(),
        threat_summary_allowance: 0,
        people: Vec::new(),
    };
    let native_window = tap_component::Window {
        start: window_start,
        end: window_end,
    };

    // Native over HTTP and sandboxed over HTTP, alternated so drift in the
    // machine's speed hits both alike; the first native run records the
    // bodies for figure 2.
    let handle = tokio::runtime::Handle::current();
    let mut recorded: Vec<(String, tap_component::TapResponse)> = Vec::new();
    let mut native_times = Vec::new();
    let mut sandbox_times = Vec::new();
    let mut ratios = Vec::new();
    let mut counters = None;
    let mut objects = 0;
    for round in 0..=REPEATS {
        let (native, responses, native_objects) = {
            let settings = native_settings.clone();
            let window = native_window.clone();
            let base = base.clone();
            let handle = handle.clone();
            tokio::task::spawn_blocking(move || {
                let mut transport = HttpTransport {
                    base,
                    client: reqwest::Client::new(),
                    handle,
                    recorded: Vec::new(),
                };
                let t = Instant::now();
                let result =
                    tap_component::sync(&settings, &window, |_| &mut transport, &mut QuietHost)
                        .expect("native sync");
                (t.elapsed(), transport.recorded, result.objects.len())
            })
            .await
            .expect("native thread")
        };
        let t = Instant::now();
        let result = sandbox
            .sync(&outbound, &settings, &window)
            .await
            .answer
            .expect("no sandbox failure")
            .expect("TAP answered");
        let sandboxed = t.elapsed();
        assert_eq!(
            result.objects.len(),
            native_objects,
            "same objects natively and sandboxed"
        );
        objects = native_objects;
        if round == 0 {
            // A warm-up: the first calls pay for connection set-up.
            recorded = responses;
            counters = Some(result.counters);
            continue;
        }
        native_times.push(native);
        sandbox_times.push(sandboxed);
        ratios.push(sandboxed.as_secs_f64() / native.as_secs_f64());
    }
    let counters = counters.expect("one round ran");
    let records = counters.messages_delivered
        + counters.messages_blocked
        + counters.clicks_permitted
        + counters.clicks_blocked;
    let body_bytes: usize = recorded.iter().map(|(_, r)| r.body.len()).sum();
    let mb = body_bytes as f64 / 1e6;
    let native = median(&mut native_times);
    let sandboxed = median(&mut sandbox_times);
    report.section(
        "figure_1_sandbox_cost",
        "1. sandbox cost (one busy hour over loopback HTTP)",
        json!({
            "siem_records": records,
            "requests": recorded.len(),
            "body_mb": round2(mb),
            "threatq_objects": objects,
            "native_ms": ms(native),
            "sandboxed_ms": ms(sandboxed),
            "native_records_per_s": per_s(records as f64, native),
            "sandboxed_records_per_s": per_s(records as f64, sandboxed),
            "native_mb_per_s": per_s(mb, native),
            "sandboxed_mb_per_s": per_s(mb, sandboxed),
            "ratio_sandboxed_over_native": round2(median_f64(&mut ratios)),
            "target_ratio_at_most": 1.3,
        }),
    );

    // Figure 2: the same bodies from memory.
    let replay: HashMap<String, tap_component::TapResponse> = recorded.iter().cloned().collect();
    let mut decode_map = Vec::new();
    let mut parse = Vec::new();
    let mut ratios = Vec::new();
    for _ in 0..REPEATS {
        let mut transport = ReplayTransport { bodies: &replay };
        let t = Instant::now();
        let result = tap_component::sync(
            &native_settings,
            &native_window,
            |_| &mut transport,
            &mut QuietHost,
        )
        .expect("replayed sync");
        let ours = t.elapsed();
        std::hint::black_box(result);
        let t = Instant::now();
        for (_, response) in &recorded {
            let value: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
            std::hint::black_box(value);
        }
        let bare = t.elapsed();
        decode_map.push(ours);
        parse.push(bare);
        ratios.push(ours.as_secs_f64() / bare.as_secs_f64());
    }
    let ours = median(&mut decode_map);
    let bare = median(&mut parse);
    report.section(
        "figure_2_decode_map_vs_parse",
        "2. decode+map vs a bare serde_json::Value parse (same bodies, in memory)",
        json!({
            "decode_map_ms": ms(ours),
            "value_parse_ms": ms(bare),
            "decode_map_mb_per_s": per_s(mb, ours),
            "value_parse_mb_per_s": per_s(mb, bare),
            "ratio_decode_map_over_parse": round2(median_f64(&mut ratios)),
            "target_ratio_at_most": 1.0,
        }),
    );
}

/// GETs from the simulator, remembering each answer.
struct HttpTransport {
    base: String,
    client: reqwest::Client,
    handle: tokio::runtime::Handle,
    recorded: Vec<(String, tap_component::TapResponse)>,
}

impl tap_component::Transport for HttpTransport {
    fn get(&mut self, path_and_query: &str) -> Result<tap_component::TapResponse, String> {
        let request = self
            .client
            .get(format!("{}{path_and_query}", self.base))
            .basic_auth(PRINCIPAL, Some(SECRET));
        let response = self.handle.block_on(async move {
            let response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let body = response.bytes().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(tap_component::TapResponse {
                status,
                body: body.to_vec(),
            })
        })?;
        self.recorded
            .push((path_and_query.to_owned(), response.clone()));
        Ok(response)
    }
}

/// Answers from recorded bodies: decode+map with no I/O at all.
struct ReplayTransport<'a> {
    bodies: &'a HashMap<String, tap_component::TapResponse>,
}

impl tap_component::Transport for ReplayTransport<'_> {
    fn get(&mut self, path_and_query: &str) -> Result<tap_component::TapResponse, String> {
        self.bodies
            .get(path_and_query)
            .cloned()
            .ok_or_else(|| format!("not recorded: {path_and_query}"))
    }
}

struct QuietHost;

impl tap_component::HostServices for QuietHost {
    fn log(&mut self, _: tap_component::LogLevel, _: &str, _: &[(&str, String)]) {}
    fn now_ms(&mut self) -> i64 {
        i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------
// Figures 3, 4 and 5: the real binary against simulators in this process
// (figure 5: in a child process of this benchmark, see `scaling_case`).

struct RunFigures {
    records: usize,
    wall: StdDuration,
    peak_rss_mib: f64,
    objects: usize,
    tap_requests: usize,
    threatq_requests: usize,
    largest_tap_body_mib: f64,
    exit: i32,
    /// The connector's own CPU (user + system), from its rusage.
    connector_cpu_s: f64,
    /// This process's CPU meanwhile: the two simulators, the RSS poller.
    simulators_cpu_s: f64,
}

impl RunFigures {
    fn json(&self) -> Value {
        // A failed run forwarded nothing: no throughput to speak of.
        let ok = self.exit == 0;
        let rate = |amount: f64| if ok { per_s(amount, self.wall) } else { 0.0 };
        json!({
            "siem_records": self.records,
            "wall_s": round2(self.wall.as_secs_f64()),
            "records_per_s": rate(self.records as f64),
            "threatq_objects": self.objects,
            "objects_per_s": rate(self.objects as f64),
            "tap_requests": self.tap_requests,
            "threatq_requests": self.threatq_requests,
            "largest_tap_body_mib": round2(self.largest_tap_body_mib),
            "connector_cpu_s": round2(self.connector_cpu_s),
            "simulators_cpu_s": round2(self.simulators_cpu_s),
            "connector_records_per_cpu_s": if ok && self.connector_cpu_s > 0.0 {
                (self.records as f64 / self.connector_cpu_s).round()
            } else {
                0.0
            },
            "connector_peak_rss_mib": round2(self.peak_rss_mib),
            "rss_target_mib": round2(3.0 * self.largest_tap_body_mib + 64.0),
            "exit_status": self.exit,
        })
    }
}

/// Simulators with a generated tenant and a config dir pointing at them.
struct Bench {
    tap: TapSim,
    threatq: ThreatqSim,
    dir: tempfile::TempDir,
    records: usize,
}

impl Bench {
    async fn start(per_hour: u32, hours: i64) -> Bench {
        let tap = TapSim::start(TapSimConfig::default())
            .await
            .expect("TAP simulator");
        let threatq_config = ThreatqSimConfig::default();
        let threatq = ThreatqSim::start(threatq_config.clone())
            .await
            .expect("ThreatQ simulator");
        let now = OffsetDateTime::now_utc();
        let spec = tenant_spec(
            21,
            now - Duration::hours(hours) + Duration::minutes(5),
            now - Duration::minutes(5),
            per_hour,
        );
        let tenant = tap_sim::generator::generate(&spec);
        tap.load_tenant(&tenant);
        let v = tenant.summary().visible;
        let records =
            v.messages_delivered + v.messages_blocked + v.clicks_permitted + v.clicks_blocked;
        let dir = tempfile::tempdir().expect("config dir");
        let bench = Bench {
            tap,
            threatq,
            dir,
            records,
        };
        bench.write_config(&format!(
            "history_hours = {hours}\ncreate_incidents = true\n"
        ));
        bench
    }

    fn write_config(&self, tap_extra: &str) {
        let text = sim_config::simulator_config(
            &self.threatq.base_url(),
            &ThreatqSimConfig::default(),
            Some((&self.tap.base_url(), &TapSimConfig::default())),
            tap_extra,
        );
        std::fs::write(
            self.dir.path().join(tq_conn::config::CONFIG_FILE_NAME),
            text,
        )
        .expect("config written");
    }

    /// Runs the real binary once, as cron would, and measures it.
    async fn run(&self, binary: &Path) -> RunFigures {
        self.tap.clear_requests();
        self.threatq.clear_requests();
        let before = self.threatq.snapshot().objects.len();
        let dir = self.dir.path().to_path_buf();
        let binary = binary.to_path_buf();
        let before_cpu = cpu_seconds();
        let (wall, exit, peak_rss_mib) =
            tokio::task::spawn_blocking(move || run_binary(&binary, &dir))
                .await
                .expect("runner thread");
        let after_cpu = cpu_seconds();
        if verbosity() != "1" {
            static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let kept = target_dir().join(format!("bench-run-{}-{run}.log", std::process::id()));
            if std::fs::copy(self.dir.path().join("bench-run.log"), &kept).is_ok() {
                eprintln!("the connector's log of this run: {}", kept.display());
            }
        }
        let tap_requests = self.tap.requests();
        let largest = tap_requests
            .iter()
            .filter_map(|r| r.body_bytes)
            .max()
            .unwrap_or(0);
        RunFigures {
            records: self.records,
            wall,
            peak_rss_mib,
            objects: self.threatq.snapshot().objects.len() - before,
            tap_requests: tap_requests.len(),
            threatq_requests: self.threatq.requests().len(),
            largest_tap_body_mib: largest as f64 / (1024.0 * 1024.0),
            exit,
            connector_cpu_s: after_cpu.children - before_cpu.children,
            simulators_cpu_s: after_cpu.own - before_cpu.own,
        }
    }
}

/// Runs the binary on `dir` and returns its wall time, exit status and peak
/// RSS. The peak is the child's own `VmHWM`, read while it runs: the
/// kernel's `ru_maxrss` would not do, because a child spawned from this
/// process (many GiB of simulated tenant) is charged the parent's pages it
/// shared until `exec`.
fn run_binary(binary: &Path, dir: &Path) -> (StdDuration, i32, f64) {
    let log = dir.join("bench-run.log");
    let out = std::fs::File::create(&log).expect("log file");
    let started = Instant::now();
    let mut child = Command::new(binary)
        .arg("-c")
        .arg(dir)
        .arg("-v")
        .arg(verbosity())
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log file"))
        .stderr(out)
        .spawn()
        .expect("the connector starts");
    let status_file = PathBuf::from(format!("/proc/{}/status", child.id()));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak_kib = 0_u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(hwm) = vm_hwm_kib(&status_file) {
                    peak_kib = peak_kib.max(hwm);
                }
                std::thread::sleep(StdDuration::from_millis(2));
            }
            peak_kib
        })
    };
    let status = child.wait().expect("wait for the connector");
    let wall = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak_kib = poller.join().expect("poller");
    let exit = status.code().unwrap_or(-1);
    if exit != 0 {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        eprintln!(
            "the connector exited with {exit}; last lines of its log:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    (wall, exit, peak_kib as f64 / 1024.0)
}

/// CPU seconds (user + system) of this process, and of its children that
/// have been waited for, from `/proc/self/stat` (fields 14 to 17, in
/// USER_HZ ticks, which are 100 a second on every Linux ABI). A run's
/// connector is the one child waited for while it runs, so the change in
/// `children` across a run is that connector's own rusage; zero where
/// there is no `/proc`.
#[derive(Debug, Clone, Copy, Default)]
struct CpuSeconds {
    own: f64,
    children: f64,
}

fn cpu_seconds() -> CpuSeconds {
    const USER_HZ: f64 = 100.0;
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return CpuSeconds::default();
    };
    // The command name (field 2) may hold spaces; the fields after it start
    // past its closing parenthesis, with the state (field 3).
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return CpuSeconds::default();
    };
    let field = |n: usize| -> f64 {
        rest.split_whitespace()
            .nth(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0) as f64
            / USER_HZ
    };
    CpuSeconds {
        own: field(14) + field(15),
        children: field(16) + field(17),
    }
}

/// The connector's `-v` in every run: 1 (warnings) unless
/// `BENCH_VERBOSITY` says 2 or 3, to read where a run's time goes from the
/// timestamps of its log (each run's log is then kept, see `Bench::run`).
fn verbosity() -> String {
    match std::env::var("BENCH_VERBOSITY").as_deref() {
        Ok(level @ ("2" | "3")) => level.to_owned(),
        _ => "1".to_owned(),
    }
}

/// `VmHWM` of a running process, KiB; `None` once it has exited (a zombie
/// has no memory lines).
fn vm_hwm_kib(status_file: &Path) -> Option<u64> {
    std::fs::read_to_string(status_file)
        .ok()?
        .lines()
        .find(|line| line.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn end_to_end(report: &mut Report, binary: &Path, choices: &Choices) {
    // Figure 3, then figure 4 on the same config dir.
    let e2e_hours = choices.e2e_hours;
    let bench = Bench::start(10_000, e2e_hours).await;
    let first = bench.run(binary).await;
    report.section(
        "figure_3_end_to_end",
        &format!("3. end to end: {e2e_hours}-hour first run, 10,000 records an hour, real binary"),
        json!({
            "run": first.json(),
            "target_wall_s_under": 60,
            "target_connector_cpu_s_under": 20,
        }),
    );
    let floor = python_floor(&bench).await;
    let connector_over_floor = floor
        .get("floor_cpu_s")
        .and_then(Value::as_f64)
        .filter(|floor| *floor > 0.0)
        .map(|floor| round2(first.connector_cpu_s / floor));
    report.section(
        "figure_7_python_floor",
        "7. Python floor: the same TAP bodies through json.loads, the same ThreatQ bodies through json.dumps",
        json!({
            "floor": floor,
            "connector_cpu_s": round2(first.connector_cpu_s),
            "ratio_connector_over_floor": connector_over_floor,
            "target_ratio_at_most": 1.0,
        }),
    );

    // Nothing new: no overlap re-read, so the window left is shorter than
    // TAP's 30-second minimum and nothing is fetched.
    bench.write_config(&format!(
        "history_hours = {e2e_hours}\ncreate_incidents = true\noverlap_minutes = 0\n"
    ));
    let mut warm = Vec::new();
    let mut warm_rss = 0.0_f64;
    let mut warm_tap = 0;
    for _ in 0..REPEATS {
        let run = bench.run(binary).await;
        assert_eq!(run.exit, 0, "a run with nothing new succeeds");
        warm_tap = warm_tap.max(run.tap_requests);
        warm_rss = warm_rss.max(run.peak_rss_mib);
        warm.push(run.wall);
    }
    let cache = bench.dir.path().join("tq-conn-proofpoint-tap.cache");
    let had_cache = cache.exists();
    let _ = std::fs::remove_dir_all(&cache);
    let cold = bench.run(binary).await;
    report.section(
        "figure_4_start_up",
        "4. start-up: a run with nothing new to fetch",
        json!({
            "cached_component_wall_ms": ms(median(&mut warm)),
            "cached_component_peak_rss_mib": round2(warm_rss),
            "tap_requests": warm_tap,
            "without_cache_wall_ms": ms(cold.wall),
            "component_cache_present": had_cache,
            "target_wall_ms_under": 100,
        }),
    );
    drop(bench);

    // Figure 5.
    let Some(hours) = choices.scaling_hours else {
        return;
    };
    let mut rows = Vec::new();
    for per_hour in [1_000, 10_000, 50_000] {
        let figures = if per_hour == 10_000 && hours == e2e_hours {
            first.json()
        } else {
            let binary = binary.to_path_buf();
            tokio::task::spawn_blocking(move || scaling_case(per_hour, hours, &binary))
                .await
                .expect("scaling runner thread")
        };
        rows.push(json!({ "records_per_hour": per_hour, "hours": hours, "run": figures }));
    }
    report.section("figure_5_scaling", "5. scaling", json!({ "runs": rows }));
}

/// Figure 7: writes every TAP body figure 3's run fetched (fetched again
/// from the simulator, which answers a query the same way each time) and
/// every ThreatQ request body it sent to files, and has CPython parse the
/// TAP ones and serialise the ThreatQ ones (`python_floor.py`, standard
/// library only). Its CPU is the least a Python connector spends on the
/// same data. Without `python3` the figure says so instead.
async fn python_floor(bench: &Bench) -> Value {
    let folder = match tempfile::tempdir_in(target_dir()) {
        Ok(folder) => folder,
        Err(err) => return json!({ "skipped": format!("no folder for the bodies: {err}") }),
    };
    let client = reqwest::Client::new();
    let mut written = 0_usize;
    // The SIEM bodies are the data (all but a few MiB of it); campaign and
    // forensics answers come from pools the first run may have used up, so
    // one TAP will not give again is left out and counted.
    let mut not_given_again = 0_usize;
    for (n, request) in bench
        .tap
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.status == 200)
        .enumerate()
    {
        let query = if request.query.is_empty() {
            String::new()
        } else {
            format!("?{}", request.query)
        };
        let answer = client
            .get(format!("{}{}{query}", bench.tap.base_url(), request.path))
            .basic_auth(PRINCIPAL, Some(SECRET))
            .send()
            .await;
        let body = match answer {
            Ok(response) if response.status().is_success() => response.bytes().await,
            Ok(_) => {
                not_given_again += 1;
                continue;
            }
            Err(err) => Err(err),
        };
        match body {
            Ok(body) => {
                let path = folder.path().join(format!("tap-{n:05}.json"));
                std::fs::write(path, &body).expect("a TAP body written");
                written += body.len();
            }
            Err(err) => {
                return json!({ "skipped": format!("TAP body {} again: {err}", request.path) });
            }
        }
    }
    for (n, request) in bench
        .threatq
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/consume"))
        .enumerate()
    {
        let path = folder.path().join(format!("threatq-{n:05}.json"));
        std::fs::write(path, &request.body).expect("a ThreatQ body written");
        written += request.body.len();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python_floor.py");
    let output = Command::new("python3")
        .arg(&script)
        .arg(folder.path())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output();
    let output = match output {
        Ok(output) if output.status.success() => output,
        Ok(output) => return json!({ "skipped": format!("python3 failed ({})", output.status) }),
        Err(err) => {
            return json!({ "skipped": format!("python3 could not be started ({err}): install CPython 3 for figure 7") });
        }
    };
    let mut figures: Value = match serde_json::from_slice(&output.stdout) {
        Ok(figures) => figures,
        Err(err) => {
            return json!({ "skipped": format!("python_floor.py printed no figures: {err}") });
        }
    };
    let cpu = |key: &str| figures.get(key).and_then(Value::as_f64).unwrap_or(0.0);
    let floor = cpu("tap_loads_cpu_s") + cpu("threatq_dumps_cpu_s");
    figures["floor_cpu_s"] = json!(round2(floor));
    figures["bodies_mib"] = json!(round2(written as f64 / (1024.0 * 1024.0)));
    figures["tap_bodies_not_given_again"] = json!(not_given_again);
    figures
}

/// Set in a child of this benchmark: "<records an hour> <hours> <connector
/// binary>", one end-to-end run whose figures the child prints.
const CASE_ENV: &str = "BENCH_CASE";
/// Starts the child's line of figures (JSON) on its stdout.
const CASE_MARKER: &str = "bench-case-figures: ";

/// One scaling run, in a fresh process of this benchmark. In the process
/// that has just served figure 3 (close to a million simulated ThreatQ
/// objects and a 48-hour tenant, freed but not given back) the same
/// 3-hour runs measured 2 to 2.5 times slower than in a fresh one
/// (docs/performance.md), so each run gets simulators of its own.
fn scaling_case(per_hour: u32, hours: i64, binary: &Path) -> Value {
    let output = std::env::current_exe().and_then(|me| {
        Command::new(me)
            .env(CASE_ENV, format!("{per_hour} {hours} {}", binary.display()))
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
    });
    let output = match output {
        Ok(output) => output,
        Err(err) => return json!({ "error": format!("cannot start the scaling run: {err}") }),
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix(CASE_MARKER))
        .and_then(|figures| serde_json::from_str(figures).ok())
        .unwrap_or_else(|| {
            json!({ "error": format!("the scaling run printed no figures ({})", output.status) })
        })
}

/// The child's side of [`scaling_case`].
async fn run_case(case: &str) {
    let mut parts = case.splitn(3, ' ');
    let (Some(per_hour), Some(hours), Some(binary)) = (
        parts.next().and_then(|n| n.parse().ok()),
        parts.next().and_then(|n| n.parse().ok()),
        parts.next(),
    ) else {
        eprintln!("{CASE_ENV} must be \"<records an hour> <hours> <binary>\", not {case:?}");
        std::process::exit(2);
    };
    let bench = Bench::start(per_hour, hours).await;
    let figures = bench.run(Path::new(binary)).await.json();
    println!("{CASE_MARKER}{figures}");
}

// ---------------------------------------------------------------------------
// Figure 6, the machine, and the report.

/// The connector as the README installs it: `cargo build --release -p
/// tq-conn-proofpoint-tap` from the workspace root.
struct Product {
    binary: PathBuf,
    /// That build's wall time in this run: seconds when the release build
    /// is current, a whole build otherwise (the benchmark's own build has
    /// its own profile and features, so it shares nothing with this one).
    build: StdDuration,
}

impl Product {
    /// Builds the product binary into `target_dir` (the workspace's when
    /// `None`) and finds it from cargo's own artifact messages, so a
    /// `CARGO_TARGET_DIR` or `build.target-dir` is followed.
    fn build(target_dir: Option<&Path>) -> Result<Product, String> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("host/ sits in the workspace");
        let mut command = Command::new(cargo);
        command
            .current_dir(workspace)
            .args(["build", "--release", "-p", "tq-conn-proofpoint-tap"])
            .args(["--bin", "tq-conn-proofpoint-tap"])
            .arg("--message-format=json-render-diagnostics")
            .stdin(Stdio::null())
            .stderr(Stdio::inherit());
        // `cargo bench` hands this process the variables it sets for the
        // crate it runs. ring's build script tracks CARGO_MANIFEST_DIR, so
        // with them the nested build rebuilt ring and everything above it,
        // seven minutes of whole-program LTO, whenever the release build
        // had last been made from a shell, and the other way round.
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(set_by_cargo_for_the_bench) {
                command.env_remove(&name);
            }
        }
        if let Some(dir) = target_dir {
            command.arg("--target-dir").arg(dir);
        }
        eprintln!(
            "building the connector as an operator does: cargo build --release -p tq-conn-proofpoint-tap"
        );
        let started = Instant::now();
        let output = command
            .output()
            .map_err(|e| format!("cannot start cargo: {e}"))?;
        let build = started.elapsed();
        if !output.status.success() {
            return Err(format!("cargo build --release failed ({})", output.status));
        }
        let binary = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|m| m["reason"] == "compiler-artifact")
            .filter(|m| m["target"]["name"] == "tq-conn-proofpoint-tap")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .ok_or("cargo built no tq-conn-proofpoint-tap executable")?;
        Ok(Product { binary, build })
    }
}

/// The variables cargo sets for a crate it builds or runs (the Cargo
/// book, "Environment variables Cargo sets for crates"), as opposed to the
/// user's own configuration (`CARGO_HOME`, `CARGO_TARGET_DIR`,
/// `CARGO_PROFILE_*`, ...), which the nested build must keep.
fn set_by_cargo_for_the_bench(name: &str) -> bool {
    const EXACT: [&str; 8] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    EXACT.contains(&name) || name.starts_with("CARGO_PKG_") || name.starts_with("CARGO_BIN_EXE_")
}

fn binary_and_build(report: &mut Report, product: &Product) {
    let bytes = std::fs::metadata(&product.binary).map_or(0, |m| m.len());
    let clean = if std::env::var_os("BENCH_CLEAN_BUILD").is_some() {
        let dir = tempfile::tempdir().expect("an empty target directory");
        match Product::build(Some(dir.path())) {
            Ok(clean) => json!(round2(clean.build.as_secs_f64())),
            Err(err) => json!(format!("failed: {err}")),
        }
    } else {
        json!("not measured (BENCH_CLEAN_BUILD=1 measures it)")
    };
    report.section(
        "figure_6_release_binary",
        "6. release binary (cargo build --release -p tq-conn-proofpoint-tap, no simulators)",
        json!({
            "path": product.binary.display().to_string(),
            "bytes": bytes,
            "mib": round2(bytes as f64 / (1024.0 * 1024.0)),
            "target_mib_under": 20,
            "build_in_this_run_s": round2(product.build.as_secs_f64()),
            "clean_build_s": clean,
        }),
    );
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_default();
    json!({
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu": cpu,
        "os": std::env::consts::OS,
    })
}

#[derive(Default)]
struct Report {
    sections: Vec<(String, Value)>,
}

impl Report {
    fn note(&mut self, name: &str, value: Value) {
        println!("{name}: {value}");
        self.sections.push((name.to_owned(), value));
    }

    /// One figure: printed under `title`, kept in `bench.json` under
    /// `key`, which stays the same from commit to commit (docs/
    /// performance.md lists them) while the title may say more.
    fn section(&mut self, key: &str, title: &str, mut figures: Value) {
        println!("\n{title}");
        print_table(&figures, 1);
        if let Value::Object(map) = &mut figures {
            map.insert("title".to_owned(), json!(title));
        }
        self.sections.push((key.to_owned(), figures));
    }

    fn finish(self) {
        let json = Value::Object(self.sections.into_iter().collect());
        let path = target_dir().join("bench.json");
        match std::fs::write(&path, serde_json::to_vec_pretty(&json).expect("serialises")) {
            Ok(()) => println!("\nfigures written to {}", path.display()),
            Err(err) => eprintln!("cannot write {}: {err}", path.display()),
        }
    }
}

fn print_table(value: &Value, depth: usize) {
    let indent = "  ".repeat(depth);
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match value {
                    Value::Object(_) | Value::Array(_) => {
                        println!("{indent}{key}:");
                        print_table(value, depth + 1);
                    }
                    _ => println!("{indent}{key:<34} {value}"),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                println!("{indent}-");
                print_table(item, depth + 1);
            }
        }
        other => println!("{indent}{other}"),
    }
}

/// `CARGO_TARGET_DIR`, else the workspace's `target/`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

fn median(times: &mut [StdDuration]) -> StdDuration {
    times.sort();
    times[times.len() / 2]
}

fn median_f64(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn ms(d: StdDuration) -> f64 {
    round2(d.as_secs_f64() * 1000.0)
}

fn per_s(amount: f64, d: StdDuration) -> f64 {
    round2(amount / d.as_secs_f64())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
