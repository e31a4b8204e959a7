//! Benchmarks that print figures: `cargo bench -p e2e-tests`.
//!
//! The machines are shared and noisy, so the interesting numbers are the
//! ratios measured in one run: cached vs cold component load, the sandboxed
//! component vs the same TAP logic compiled natively, and a full 48-hour
//! first run's throughput with the process's peak memory.

use std::time::{Duration as StdDuration, Instant};

use tap_runtime::{ComponentSource, Limits, OutboundPolicy, Runtime, RuntimeConfig};
use tap_sim::{TapSim, TapSimConfig, TenantSpec};
use time::{Duration, OffsetDateTime};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        load_times();
        mapping_native_vs_sandboxed().await;
        full_first_run().await;
    });
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn load_times() {
    let cache = tempfile::tempdir().expect("temp dir");
    let config = |cache_dir: Option<std::path::PathBuf>| RuntimeConfig {
        component: ComponentSource::Embedded,
        cache_dir,
        limits: Limits::default(),
    };
    let cold = Instant::now();
    Runtime::new(config(Some(cache.path().to_path_buf()))).expect("cold load");
    let cold = cold.elapsed();
    let mut cached = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        Runtime::new(config(Some(cache.path().to_path_buf()))).expect("cached load");
        cached.push(t.elapsed());
    }
    cached.sort();
    let cached = cached[cached.len() / 2];
    println!("component load");
    println!(
        "  embedded component: {} bytes",
        tap_runtime::EMBEDDED_COMPONENT.len()
    );
    println!("  cold (compile + cache write): {:>9.2} ms", ms(cold));
    println!("  cached (median of 5):         {:>9.2} ms", ms(cached));
    println!(
        "  ratio cold / cached:          {:>9.1}x",
        cold.as_secs_f64() / cached.as_secs_f64()
    );
}

fn ms(d: StdDuration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The same busy hour mapped by the TAP logic compiled natively and by the
/// component in the sandbox, both fetching from the same simulator.
async fn mapping_native_vs_sandboxed() {
    let tap = TapSim::start(TapSimConfig::default())
        .await
        .expect("TAP simulator");
    let now = OffsetDateTime::now_utc();
    let end = now - Duration::minutes(5);
    let start = end - Duration::hours(1);
    let mut spec = TenantSpec::new(11, start, end);
    spec.messages_per_hour = 3000;
    spec.clicks_per_hour = 1000;
    let tenant = tap_sim::generator::generate(&spec);
    tap.load_tenant(&tenant);
    let window_start = rfc3339(start - Duration::minutes(1));
    let window_end = rfc3339(end + Duration::minutes(1));
    let base = tap.base_url();

    let settings = tap_runtime::Settings {
        tap_base_url: base.clone(),
        create_incidents: true,
        known_campaigns: Vec::new(),
        already_sent: Vec::new(),
        campaign_allowance: 1000,
        threat_forensics_allowance: 0,
        credentials: None,
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
        tap_base_url: url::Url::parse(&base).expect("sim URL"),
        principal: "sim-principal".into(),
        secret: "sim-secret".into(),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        request_timeout: StdDuration::from_secs(120),
        max_response_bytes: 256 << 20,
    };

    let mut sandboxed = Vec::new();
    let mut objects = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let result = sandbox
            .sync(&outbound, &settings, &window)
            .await
            .expect("no sandbox failure")
            .expect("TAP answered");
        sandboxed.push(t.elapsed());
        objects = result.objects.len();
    }

    let native_settings = tap_component::Settings {
        tap_base_url: base.clone(),
        create_incidents: true,
        known_campaigns: Vec::new(),
        already_sent: Vec::new(),
        campaign_allowance: 1000,
        threat_forensics_allowance: 0,
    };
    let native_window = tap_component::Window {
        start: window_start,
        end: window_end,
    };
    let handle = tokio::runtime::Handle::current();
    let native = tokio::task::spawn_blocking(move || {
        let client = reqwest::Client::new();
        let mut times = Vec::new();
        for _ in 0..3 {
            let mut transport = HttpTransport {
                base: base.clone(),
                client: client.clone(),
                handle: handle.clone(),
            };
            let t = Instant::now();
            tap_component::sync(
                &native_settings,
                &native_window,
                |_| &mut transport,
                &mut QuietHost,
            )
            .expect("native sync");
            times.push(t.elapsed());
        }
        times
    })
    .await
    .expect("native thread");

    let best = |v: &[StdDuration]| v.iter().min().copied().unwrap_or_default();
    let summary = tenant.summary();
    println!(
        "one busy hour: {} SIEM records -> {objects} ThreatQ objects",
        {
            let v = summary.visible;
            v.messages_delivered + v.messages_blocked + v.clicks_permitted + v.clicks_blocked
        }
    );
    println!(
        "  native TAP logic (best of 3):   {:>9.2} ms",
        ms(best(&native))
    );
    println!(
        "  sandboxed component (best of 3):{:>9.2} ms",
        ms(best(&sandboxed))
    );
    println!(
        "  ratio sandboxed / native:       {:>9.2}x",
        best(&sandboxed).as_secs_f64() / best(&native).as_secs_f64()
    );
}

struct HttpTransport {
    base: String,
    client: reqwest::Client,
    handle: tokio::runtime::Handle,
}

impl tap_component::Transport for HttpTransport {
    fn get(&mut self, path_and_query: &str) -> Result<tap_component::TapResponse, String> {
        let url = format!("{}{path_and_query}", self.base);
        let request = self
            .client
            .get(url)
            .basic_auth("sim-principal", Some("sim-secret"));
        self.handle.block_on(async move {
            let response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let body = response.bytes().await.map_err(|e| e.to_string())?;
            Ok(tap_component::TapResponse {
                status,
                body: body.to_vec(),
            })
        })
    }
}

struct QuietHost;

impl tap_component::HostServices for QuietHost {
    fn log(&mut self, _: tap_component::LogLevel, _: &str, _: &[(&str, String)]) {}
    fn now_ms(&mut self) -> i64 {
        i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
    }
}

/// A whole first run: 48 hours of a generated tenant through the sandboxed
/// component into the ThreatQ simulator.
async fn full_first_run() {
    let world = e2e_tests::World::start_with(
        TapSimConfig::default(),
        threatq_sim::ThreatqSimConfig::default(),
        "history_hours = 48\ncreate_incidents = true\n",
    )
    .await;
    let now = e2e_tests::now();
    let mut spec = TenantSpec::new(
        21,
        now - Duration::hours(48) + Duration::minutes(5),
        now - Duration::minutes(5),
    );
    spec.messages_per_hour = 300;
    spec.clicks_per_hour = 100;
    let tenant = tap_sim::generator::generate(&spec);
    world.load(&tenant);
    let rss_before = peak_rss_mib();
    let t = Instant::now();
    let summary = e2e_tests::completed(world.run_at(now).await);
    let elapsed = t.elapsed();
    let landed = world.threatq.snapshot().objects.len();
    let v = tenant.summary().visible;
    let records = v.messages_delivered + v.messages_blocked + v.clicks_permitted + v.clicks_blocked;
    println!("48-hour first run into the ThreatQ simulator");
    println!(
        "  {} windows, {records} TAP records, {landed} ThreatQ objects in {:.2} s",
        summary.windows_done,
        elapsed.as_secs_f64()
    );
    println!(
        "  {:.0} records/s, {:.0} objects/s, {:.1} ms per window",
        records as f64 / elapsed.as_secs_f64(),
        landed as f64 / elapsed.as_secs_f64(),
        ms(elapsed) / summary.windows_done.max(1) as f64
    );
    println!(
        "  peak RSS of this process: {:.1} MiB before the run, {:.1} MiB after (simulators included)",
        rss_before,
        peak_rss_mib()
    );
}
