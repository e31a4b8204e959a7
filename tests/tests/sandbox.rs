//! The sandbox's promises, checked with the `sandbox-probe` guest against
//! servers on 127.0.0.1 that the tests start themselves.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tap_runtime::{
    ComponentSource, Limits, OutboundPolicy, Runtime, RuntimeConfig, RuntimeError,
    Settings, SyncError, SyncResult, Window,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PRINCIPAL: &str = "probe-principal";
const SECRET: &str = "probe-secret-value-9d1c";

// ---------------------------------------------------------------------------
// A tiny HTTP/1.1 server that records what it receives.

#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
}

impl Received {
    fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

enum Reply {
    Text(&'static str),
    Bytes(Vec<u8>),
    /// A gzip'd body sent without a Content-Length (so only the streamed
    /// size can be checked).
    Gzip(Vec<u8>),
    Redirect(String),
    /// Answers after a pause.
    Delayed(Duration, &'static str),
    /// Accepts the request and never answers.
    Silent,
    Status(u16),
}

struct TestServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl TestServer {
    async fn start(reply: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let reply = Arc::new(reply);
        {
            let connections = Arc::clone(&connections);
            let received = Arc::clone(&received);
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    connections.fetch_add(1, Ordering::SeqCst);
                    let received = Arc::clone(&received);
                    let reply = Arc::clone(&reply);
                    tokio::spawn(async move {
                        serve(stream, received, reply).await;
                    });
                }
            });
        }
        TestServer {
            addr,
            connections,
            received,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}

async fn serve(
    mut stream: TcpStream,
    received: Arc<Mutex<Vec<Received>>>,
    reply: Arc<dyn Fn(&Received) -> Reply + Send + Sync>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let headers = lines
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let request = Received { path, headers };
    received.lock().expect("lock").push(request.clone());

    let (status, extra, body): (u16, String, Vec<u8>) = match reply(&request) {
        Reply::Text(text) => (200, String::new(), text.as_bytes().to_vec()),
        Reply::Bytes(bytes) => (200, String::new(), bytes),
        Reply::Gzip(compressed) => {
            let head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nConnection: close\r\n\r\n";
            let _ = stream.write_all(head).await;
            let _ = stream.write_all(&compressed).await;
            let _ = stream.shutdown().await;
            return;
        }
        Reply::Redirect(location) => (302, format!("Location: {location}\r\n"), Vec::new()),
        Reply::Delayed(pause, text) => {
            tokio::time::sleep(pause).await;
            (200, String::new(), text.as_bytes().to_vec())
        }
        Reply::Silent => {
            std::future::pending::<()>().await;
            return;
        }
        Reply::Status(status) => (status, String::new(), Vec::new()),
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
}

// ---------------------------------------------------------------------------
// Running the probe.

fn probe_source() -> ComponentSource {
    ComponentSource::Wasm(PathBuf::from(env!("SANDBOX_PROBE_WASM")))
}

fn probe_runtime(limits: Limits) -> Runtime {
    Runtime::new(RuntimeConfig {
        component: probe_source(),
        cache_dir: None,
        limits,
    })
    .expect("the probe loads")
}

fn generous_limits() -> Limits {
    Limits {
        memory_bytes: 64 * 1024 * 1024,
        cpu_time: Duration::from_secs(10),
        wall_time: Duration::from_secs(30),
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client builds")
}

fn policy_for(server: &TestServer) -> OutboundPolicy {
    OutboundPolicy {
        tap_base_url: reqwest::Url::parse(&server.url()).expect("url"),
        principal: PRINCIPAL.into(),
        secret: SECRET.into(),
        http: no_redirects(),
        request_timeout: Duration::from_secs(20),
        max_response_bytes: 1024 * 1024,
    }
}

fn settings_for(server: &TestServer) -> Settings {
    Settings {
        tap_base_url: server.url(),
        create_incidents: false,
        known_campaigns: Vec::new(),
        already_sent: Vec::new(),
        campaign_allowance: 0,
        threat_forensics_allowance: 0,
        credentials: None,
    }
}

fn behaviour(start: &str) -> Window {
    Window {
        start: start.into(),
        end: "2026-11-28T10:00:00Z".into(),
    }
}

async fn run(
    runtime: &Runtime,
    policy: &OutboundPolicy,
    server: &TestServer,
    what: &str,
) -> Result<Result<SyncResult, SyncError>, RuntimeError> {
    runtime
        .sync(policy, &settings_for(server), &behaviour(what))
        .await
}

/// The probe's attribute `name` from a successful call.
fn attribute(result: &SyncResult, name: &str) -> String {
    result.objects[0]
        .attributes
        .iter()
        .find(|attribute| attribute.name == name)
        .map(|attribute| attribute.value.clone())
        .unwrap_or_else(|| panic!("the probe reported no {name}: {result:?}"))
}

/// The WASI error code the probe reported, e.g. `HttpRequestDenied`.
fn transport_error(answer: Result<Result<SyncResult, SyncError>, RuntimeError>) -> String {
    match answer {
        Ok(Err(SyncError::Transport(code))) => {
            code.strip_prefix("ErrorCode::").unwrap_or(&code).to_owned()
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
}

fn expected_basic_header() -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{PRINCIPAL}:{SECRET}"));
    format!("Basic {encoded}")
}

// ---------------------------------------------------------------------------
// Outbound HTTP.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guest_reaches_the_tap_origin_and_sees_no_env_args_files_stdin_or_sockets() {
    let server = TestServer::start(|_| Reply::Text("hello from TAP")).await;
    let runtime = probe_runtime(generous_limits());
    let result = run(&runtime, &policy_for(&server), &server, "echo")
        .await
        .expect("no sandbox failure")
        .expect("the probe answers");

    assert_eq!(attribute(&result, "http_status"), "200");
    assert_eq!(attribute(&result, "http_body"), "hello from TAP");
    assert_eq!(attribute(&result, "env"), "[]");
    assert_eq!(attribute(&result, "args"), "[]");
    assert!(attribute(&result, "read_dir").starts_with("error"));
    let stdin = attribute(&result, "stdin");
    assert!(
        stdin.starts_with("error") || stdin == "ok: 0 bytes: \"\"",
        "{stdin}"
    );
    assert!(attribute(&result, "tcp").starts_with("error"));
    // Only the wasi:http request reached the server; the raw TCP connect did not.
    assert_eq!(server.connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tap_receives_basic_auth_while_the_secret_never_enters_the_sandbox() {
    let server = TestServer::start(|_| Reply::Text("ok")).await;
    let runtime = probe_runtime(generous_limits());
    let answer = run(&runtime, &policy_for(&server), &server, "echo").await;

    let everything_the_guest_returned = format!("{answer:?}");
    assert!(!everything_the_guest_returned.contains(SECRET));
    assert!(!everything_the_guest_returned.contains(&expected_basic_header()));
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/echo");
    assert_eq!(
        received[0].header_values("authorization"),
        [expected_basic_header()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_supplied_authorization_is_replaced_by_the_host_credentials() {
    let server = TestServer::start(|_| Reply::Text("ok")).await;
    let runtime = probe_runtime(generous_limits());
    let url = format!("{}/v2/siem/all", server.url());
    let result = run(
        &runtime,
        &policy_for(&server),
        &server,
        &format!("get-with-auth:{url}"),
    )
    .await
    .expect("no sandbox failure")
    .expect("the probe answers");

    assert_eq!(attribute(&result, "status"), "200");
    assert_eq!(
        server.received()[0].header_values("authorization"),
        [expected_basic_header()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_port_on_the_same_host_is_denied_without_a_connection() {
    let tap = TestServer::start(|_| Reply::Text("tap")).await;
    let other = TestServer::start(|_| Reply::Text("other")).await;
    let runtime = probe_runtime(generous_limits());

    let answer = run(
        &runtime,
        &policy_for(&tap),
        &tap,
        &format!("get:{}/v2/siem/all", other.url()),
    )
    .await;

    assert_eq!(transport_error(answer), "HttpRequestDenied");
    assert_eq!(other.connections(), 0);
    assert_eq!(tap.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_host_or_scheme_for_the_same_port_is_denied_without_a_connection() {
    let tap = TestServer::start(|_| Reply::Text("tap")).await;
    let runtime = probe_runtime(generous_limits());
    let port = tap.addr.port();

    for elsewhere in [
        format!("http://localhost:{port}/v2/siem/all"),
        format!("https://127.0.0.1:{port}/v2/siem/all"),
        format!("http://probe:{SECRET}@127.0.0.1:{port}/v2/siem/all"),
    ] {
        let answer = run(
            &runtime,
            &policy_for(&tap),
            &tap,
            &format!("get:{elsewhere}"),
        )
        .await;
        assert_eq!(transport_error(answer), "HttpRequestDenied", "{elsewhere}");
    }
    assert_eq!(tap.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_handed_to_the_guest_and_not_followed() {
    let elsewhere = TestServer::start(|_| Reply::Text("elsewhere")).await;
    let target = format!("{}/stolen", elsewhere.url());
    let tap = TestServer::start(move |_| Reply::Redirect(target.clone())).await;
    let runtime = probe_runtime(generous_limits());

    let result = run(
        &runtime,
        &policy_for(&tap),
        &tap,
        &format!("get:{}/v2/siem/all", tap.url()),
    )
    .await
    .expect("no sandbox failure")
    .expect("the probe answers");

    assert_eq!(attribute(&result, "status"), "302");
    assert_eq!(
        attribute(&result, "location"),
        format!("{}/stolen", elsewhere.url())
    );
    assert_eq!(elsewhere.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_follows_redirects_does_not_hand_the_other_answer_to_the_guest() {
    let elsewhere = TestServer::start(|_| Reply::Text("elsewhere")).await;
    let target = format!("{}/stolen", elsewhere.url());
    let tap = TestServer::start(move |_| Reply::Redirect(target.clone())).await;
    let runtime = probe_runtime(generous_limits());
    let policy = OutboundPolicy {
        http: reqwest::Client::new(),
        ..policy_for(&tap)
    };

    let answer = run(
        &runtime,
        &policy,
        &tap,
        &format!("get:{}/v2/siem/all", tap.url()),
    )
    .await;

    assert_eq!(transport_error(answer), "HttpRequestDenied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_over_the_size_cap_is_refused() {
    let server = TestServer::start(|request| match request.path.as_str() {
        "/small" => Reply::Bytes(vec![b'a'; 1000]),
        _ => Reply::Bytes(vec![b'a'; 2 * 1024 * 1024]),
    })
    .await;
    let runtime = probe_runtime(generous_limits());
    let policy = policy_for(&server);

    let small = run(
        &runtime,
        &policy,
        &server,
        &format!("get:{}/small", server.url()),
    )
    .await
    .expect("no sandbox failure")
    .expect("the probe answers");
    assert_eq!(attribute(&small, "body").len(), 1000);

    let big = run(
        &runtime,
        &policy,
        &server,
        &format!("get:{}/big", server.url()),
    )
    .await;
    let code = transport_error(big);
    assert!(code.starts_with("HttpResponseBodySize"), "{code}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_size_cap_counts_decompressed_bytes_of_a_gzip_body() {
    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).expect("compress");
        encoder.finish().expect("compress")
    }
    let small = gzip(&[b'z'; 10_000]);
    let bomb = gzip(&vec![b'z'; 8 * 1024 * 1024]);
    assert!(
        bomb.len() < 64 * 1024,
        "the compressed body is far below the cap"
    );
    let server = TestServer::start(move |request| match request.path.as_str() {
        "/small" => Reply::Gzip(small.clone()),
        _ => Reply::Gzip(bomb.clone()),
    })
    .await;
    let runtime = probe_runtime(generous_limits());
    let policy = policy_for(&server);

    let answer = run(
        &runtime,
        &policy,
        &server,
        &format!("get:{}/small", server.url()),
    )
    .await
    .expect("no sandbox failure")
    .expect("the probe answers");
    assert_eq!(attribute(&answer, "body"), "z".repeat(10_000));

    // Refused mid-body: wasmtime 48 hands a body error to the guest as an
    // io-error whose `http-error-code` is none, so the guest sees the text.
    let bomb = run(
        &runtime,
        &policy,
        &server,
        &format!("get:{}/bomb", server.url()),
    )
    .await;
    let code = transport_error(bomb);
    assert!(
        code.contains("HTTP response body size exceeds limit: 1048576 bytes"),
        "{code}"
    );
}

// ---------------------------------------------------------------------------
// Limits.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_stops_at_the_memory_limit_and_the_runtime_carries_on() {
    let server = TestServer::start(|_| Reply::Text("ok")).await;
    let runtime = probe_runtime(Limits {
        memory_bytes: 32 * 1024 * 1024,
        ..generous_limits()
    });
    let policy = policy_for(&server);

    let modest = run(&runtime, &policy, &server, "alloc:8").await;
    assert!(matches!(modest, Ok(Ok(_))), "{modest:?}");

    let bomb = run(&runtime, &policy, &server, "alloc:64").await;
    match bomb {
        Err(err @ RuntimeError::MemoryLimit { .. }) => {
            assert!(err.to_string().contains("memory limit of 32 MiB"), "{err}");
        }
        other => panic!("expected the memory limit, got {other:?}"),
    }

    let after = run(&runtime, &policy, &server, "echo").await;
    assert!(matches!(after, Ok(Ok(_))), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_loop_stops_at_the_cpu_limit() {
    let server = TestServer::start(|_| Reply::Text("ok")).await;
    let runtime = probe_runtime(Limits {
        cpu_time: Duration::from_millis(300),
        ..generous_limits()
    });

    let started = Instant::now();
    let answer = run(&runtime, &policy_for(&server), &server, "spin").await;
    match answer {
        Err(err @ RuntimeError::CpuLimit { .. }) => {
            assert!(
                err.to_string().contains("CPU time limit of 300 ms"),
                "{err}"
            );
        }
        other => panic!("expected the CPU limit, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_tap_does_not_count_as_cpu_time() {
    let server = TestServer::start(|_| Reply::Delayed(Duration::from_millis(800), "late")).await;
    let runtime = probe_runtime(Limits {
        cpu_time: Duration::from_millis(200),
        ..generous_limits()
    });

    let result = run(
        &runtime,
        &policy_for(&server),
        &server,
        &format!("get:{}/slow", server.url()),
    )
    .await
    .expect("no sandbox failure")
    .expect("the probe answers");
    assert_eq!(attribute(&result, "body"), "late");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_ends_the_call_at_the_wall_clock_limit() {
    let server = TestServer::start(|_| Reply::Silent).await;
    let runtime = probe_runtime(Limits {
        wall_time: Duration::from_millis(600),
        ..generous_limits()
    });

    let started = Instant::now();
    let answer = run(
        &runtime,
        &policy_for(&server),
        &server,
        &format!("get:{}/v2/siem/all", server.url()),
    )
    .await;
    match answer {
        Err(err @ RuntimeError::WallClock { .. }) => {
            assert!(
                err.to_string().contains("did not finish within 600 ms"),
                "{err}"
            );
        }
        other => panic!("expected the wall-clock limit, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_guest_also_ends_at_the_wall_clock_limit() {
    let server = TestServer::start(|_| Reply::Text("ok")).await;
    let runtime = probe_runtime(Limits {
        cpu_time: Duration::from_secs(60),
        wall_time: Duration::from_millis(500),
        ..generous_limits()
    });

    let started = Instant::now();
    let answer = run(&runtime, &policy_for(&server), &server, "spin").await;
    assert!(
        matches!(answer, Err(RuntimeError::WallClock { .. })),
        "{answer:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_trips_the_request_timeout_first_when_it_is_shorter() {
    let server = TestServer::start(|_| Reply::Silent).await;
    let runtime = probe_runtime(generous_limits());
    let policy = OutboundPolicy {
        request_timeout: Duration::from_millis(300),
        ..policy_for(&server)
    };

    let started = Instant::now();
    let answer = run(
        &runtime,
        &policy,
        &server,
        &format!("get:{}/v2/siem/all", server.url()),
    )
    .await;
    assert_eq!(transport_error(answer), "ConnectionReadTimeout");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_panic_is_a_trap_that_carries_the_panic_message() {
    let server = TestServer::start(|_| Reply::Text("ok")).await;
    let runtime = probe_runtime(generous_limits());

    let answer = run(&runtime, &policy_for(&server), &server, "panic").await;
    match answer {
        Err(RuntimeError::Trap(text)) => {
            assert!(text.contains("panicked on purpose"), "{text}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Loading the embedded component (the cache and component files are in
// component_loading.rs).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_tap_component_loads_and_answers_without_a_sandbox_failure() {
    let server = TestServer::start(|_| Reply::Status(500)).await;
    let runtime = Runtime::new(RuntimeConfig {
        component: ComponentSource::Embedded,
        cache_dir: None,
        limits: Limits::default(),
    })
    .expect("the embedded component loads");
    let stats = runtime.load_stats();
    eprintln!(
        "embedded component: {} bytes, compiled in {:.1} ms",
        stats.source_bytes,
        stats.duration_ms()
    );

    let window = Window {
        start: "2026-11-28T10:00:00Z".into(),
        end: "2026-11-28T10:10:00Z".into(),
    };
    let answer = runtime
        .sync(&policy_for(&server), &settings_for(&server), &window)
        .await;
    assert!(answer.is_ok(), "{answer:?}");
}

