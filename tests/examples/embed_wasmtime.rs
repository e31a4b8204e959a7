//! The wasmtime (Rust) example of docs/embedding.md, compiled by the test
//! suite so it cannot rot: `cargo run -p e2e-tests --example embed_wasmtime -- ...`.
//! Keep it identical to the example in the document.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::BodyExt;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

// Bindings for the world; the WASI types come from wasmtime's own crates.
wasmtime::component::bindgen!({
    world: "tap-connector",
    path: "../wit", // the wit/ folder of this repository, with wit/deps
    exports: { default: async },
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
    },
    require_store_data_send: true,
});

use exports::proofpoint::tap::connector::{Credentials, Settings, Window};
use proofpoint::tap::host::{LogField, LogLevel};

/// The one origin the component may reach.
struct TapOnly {
    scheme: String, // "https"
    host: String,   // "tap-api-v2.proofpoint.com"
    port: u16,      // 443
}

impl TapOnly {
    fn admits(&self, uri: &http::Uri) -> bool {
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return false;
        };
        let default_port = match scheme {
            "http" => 80,
            "https" => 443,
            _ => return false,
        };
        scheme == self.scheme
            && !authority.as_str().contains('@')
            && authority.host().eq_ignore_ascii_case(&self.host)
            && authority.port_u16().unwrap_or(default_port) == self.port
    }
}

type IoDone = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

impl WasiHttpHooks for TapOnly {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _guest_options: Option<RequestOptions>,
        _fut: IoDone,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoDone), HttpError>> + Send>
    {
        let admitted = self.admits(request.uri());
        Box::new(async move {
            if !admitted {
                return Err(HttpError::HttpRequestDenied);
            }
            // The host's timeouts, whatever the guest asked for.
            let options = RequestOptions {
                connect_timeout: Some(Duration::from_secs(10)),
                first_byte_timeout: Some(Duration::from_secs(60)),
                between_bytes_timeout: Some(Duration::from_secs(60)),
            };
            let (response, io) =
                wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as IoDone))
        })
    }
}

struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    outbound: TapOnly,
    limits: StoreLimits,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

impl proofpoint::tap::host::Host for State {
    fn log(&mut self, level: LogLevel, message: String, fields: Vec<LogField>) {
        let fields: Vec<String> = fields
            .iter()
            .map(|f| format!("{}={}", f.key, f.value))
            .collect();
        // escape_debug: text from the sandbox cannot start a new log line.
        eprintln!(
            "[{level:?}] {} {}",
            message.escape_debug(),
            fields.join(" ").escape_debug()
        );
    }

    fn now_ms(&mut self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config)?;
    // One epoch tick every 10 ms; the store yields at each, so the
    // wall-clock timeout below fires even if the guest never waits.
    let ticker = engine.weak();
    std::thread::spawn(move || {
        while let Some(engine) = ticker.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(Duration::from_millis(10));
        }
    });

    let component = Component::from_file(&engine, "tap_component.wasm")?;
    let mut linker = Linker::<State>::new(&engine);
    // All of WASI p2 is linked because Rust std imports wasi:cli too; the
    // WasiCtx below grants nothing through it.
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    proofpoint::tap::host::add_to_linker::<_, HasSelf<State>>(&mut linker, |state| state)?;
    let pre = TapConnectorPre::new(linker.instantiate_pre(&component)?)?;

    // A fresh store for each call.
    // The TAP origin: TAP_BASE_URL (e.g. http://127.0.0.1:8080 for a test
    // double), else the real service.
    let base = std::env::var("TAP_BASE_URL")
        .unwrap_or_else(|_| "https://tap-api-v2.proofpoint.com".into());
    let uri: http::Uri = base.parse()?;
    let scheme = uri.scheme_str().unwrap_or("https").to_owned();
    let host = uri
        .host()
        .ok_or_else(|| anyhow::anyhow!("TAP_BASE_URL has no host"))?
        .to_owned();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "http" { 80 } else { 443 });

    let state = State {
        // The defaults grant nothing: no preopens, env or args, stdin
        // closed, stdout and stderr discarded; sockets off as well.
        wasi: WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build(),
        http: WasiHttpCtx::new(),
        table: ResourceTable::new(),
        outbound: TapOnly { scheme, host, port },
        limits: StoreLimitsBuilder::new().memory_size(256 << 20).build(),
    };
    let mut store = Store::new(&engine, state);
    store.limiter(|state| &mut state.limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));

    let settings = Settings {
        tap_base_url: base.trim_end_matches('/').into(),
        create_incidents: false,
        known_campaigns: Vec::new(),
        already_sent: Vec::new(),
        fresh_threats: Vec::new(),
        queued_campaigns: Vec::new(),
        queued_threats: Vec::new(),
        campaign_allowance: 10,
        threat_forensics_allowance: 5,
        credentials: Some(Credentials {
            principal: std::env::var("TAP_PRINCIPAL")?,
            secret: std::env::var("TAP_SECRET")?,
        }),
        summarised_threats: Vec::new(),
        queued_summaries: Vec::new(),
        threat_summary_allowance: 0,
        people: Vec::new(),
    };
    let window = Window {
        start: "2026-11-28T10:00:00Z".into(),
        end: "2026-11-28T11:00:00Z".into(),
    };

    let call = async {
        let tap = pre.instantiate_async(&mut store).await?;
        tap.proofpoint_tap_connector()
            .call_sync(&mut store, &settings, &window)
            .await
    };
    // Outer error: a trap or the timeout. Inner result: the component's answer.
    match tokio::time::timeout(Duration::from_secs(300), call).await?? {
        Ok(result) => println!(
            "{} objects, {} relations, next checkpoint {}",
            result.objects.len(),
            result.relations.len(),
            result.query_end_time
        ),
        Err(error) => eprintln!("TAP sync failed: {error:?}"),
    }
    Ok(())
}
