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
    CallOutcome, ComponentSource, Limits, OutboundPolicy, RequestCounts, Runtime, RuntimeConfig,
    RuntimeError, Settings, SyncError, SyncResult, TapOrigin, Window,
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
        ..Limits::default()
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
        origin: TapOrigin::parse(&server.url()).expect("url"),
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
        fresh_threats: Vec::new(),
        queued_campaigns: Vec::new(),
        queued_threats: Vec::new(),
        campaign_allowance: 0,
        threat_forensics_allowance: 0,
        credentials: None,
        summarised_threats: Vec::new(),
        queued_summaries: Vec::new(),
        threat_summary_allowance: 0,
        people: Vec::new(),
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
    run_counted(runtime, policy, server, what).await.answer
}

/// The answer together with the requests the host counted.
async fn run_counted(
    runtime: &Runtime,
    policy: &OutboundPolicy,
    server: &TestServer,
    what: &str,
) -> CallOutcome {
    runtime
        .sync(policy, &settings_for(server), &behaviour(what))
        .await
}

/// After an attack: the same runtime still answers a normal call.
async fn still_answers(runtime: &Runtime, policy: &OutboundPolicy, server: &TestServer) {
    let after = run(runtime, policy, server, "echo").await;
    assert!(matches!(after, Ok(Ok(_))), "{after:?}");
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
    let outcome = runtime
        .sync(&policy_for(&server), &settings_for(&server), &window)
        .await;
    assert!(outcome.answer.is_ok(), "{:?}", outcome.answer);
    // TAP answered 500 to the SIEM request: one sent, counted by the host.
    assert_eq!(outcome.requests.siem, 1, "{:?}", outcome.requests);
}

// ---------------------------------------------------------------------------
// Attacks on the caps: each is refused or stopped with a clear error, and
// the same runtime then still answers a normal call.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_bomb_is_refused_at_the_cap_without_a_connection() {
    let server = TestServer::start(|_| Reply::Text("ok")).await;
    let runtime = probe_runtime(generous_limits());
    let policy = policy_for(&server);
    assert_eq!(Limits::default().request_body_bytes, 64 * 1024);

    // 16 MiB streamed after the request was handed over: refused at 64 KiB.
    let bomb = run_counted(
        &runtime,
        &policy,
        &server,
        &format!("post:{}/v2/siem/all:16384", server.url()),
    )
    .await;
    let code = transport_error(bomb.answer);
    assert!(code.starts_with("HttpRequestBodySize"), "{code}");
    assert!(code.contains("65536"), "{code}");
    assert_eq!(server.connections(), 0, "nothing was sent");
    assert_eq!(
        bomb.requests,
        RequestCounts {
            refused: 1,
            ..RequestCounts::default()
        }
    );

    // A small body under the cap still goes through.
    let small = run(
        &runtime,
        &policy,
        &server,
        &format!("post:{}/v2/siem/all:4", server.url()),
    )
    .await
    .expect("no sandbox failure")
    .expect("the probe answers");
    assert_eq!(attribute(&small, "status"), "200");
    still_answers(&runtime, &policy, &server).await;
}

/// Every line logged while `future` runs, one string per line.
async fn capture_log<F: std::future::Future>(future: F) -> (F::Output, Vec<String>) {
    use tracing::instrument::WithSubscriber as _;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let output = future.with_subscriber(subscriber).await;
    let text = String::from_utf8_lossy(&buffer.0.lock().expect("lock")).into_owned();
    (output, text.lines().map(str::to_owned).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_flood_is_cut_at_the_line_cap_with_exactly_one_warning() {
    let server = TestServer::start(|_| Reply::Text("ok")).await;
    let runtime = probe_runtime(Limits {
        log_lines: 50,
        ..generous_limits()
    });
    let policy = policy_for(&server);
    assert_eq!(Limits::default().log_lines, 10_000);

    let (answer, lines) = capture_log(run(&runtime, &policy, &server, "log-flood:5000")).await;
    let result = answer
        .expect("no sandbox failure")
        .expect("the probe answers");
    assert_eq!(attribute(&result, "logged"), "5000");

    let flood = lines
        .iter()
        .filter(|line| line.contains("probe flood line"))
        .count();
    assert_eq!(flood, 50, "only the first 50 lines are logged");
    assert!(
        lines
            .iter()
            .any(|line| line.contains("probe flood line 49"))
    );
    let warnings: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains("WARN") && line.contains("were dropped"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("more than 50 lines") && warnings[0].contains("the 4950 lines"),
        "{}",
        warnings[0]
    );

    // The next call has its own budget.
    let (answer, lines) = capture_log(run(&runtime, &policy, &server, "log-flood:3")).await;
    assert!(matches!(answer, Ok(Ok(_))), "{answer:?}");
    assert_eq!(
        lines
            .iter()
            .filter(|line| line.contains("probe flood line"))
            .count(),
        3
    );
    assert!(!lines.iter().any(|line| line.contains("dropped")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_leak_stops_at_the_handle_limit() {
    let server = TestServer::start(|_| Reply::Text("ok")).await;
    let runtime = probe_runtime(Limits {
        resource_handles: 200,
        ..generous_limits()
    });
    let policy = policy_for(&server);

    let few = run(&runtime, &policy, &server, "handles:50").await;
    assert!(matches!(few, Ok(Ok(_))), "{few:?}");

    let leak = run(&runtime, &policy, &server, "handles:100000").await;
    match leak {
        Err(err @ RuntimeError::HandleLimit { .. }) => {
            assert!(
                err.to_string().contains("limit of 200 open WASI handles"),
                "{err}"
            );
        }
        other => panic!("expected the handle limit, got {other:?}"),
    }
    still_answers(&runtime, &policy, &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_spellings_of_the_tap_address_are_denied_without_a_connection() {
    let tap = TestServer::start(|_| Reply::Text("tap")).await;
    let runtime = probe_runtime(generous_limits());
    let policy = policy_for(&tap);
    let port = tap.addr.port();

    for (hostile, expected) in [
        (
            format!("http://[::1]:{port}/v2/siem/all"),
            "HttpRequestDenied",
        ),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/v2/siem/all"),
            "HttpRequestDenied",
        ),
        (
            format!("http://[0:0:0:0:0:ffff:7f00:1]:{port}/v2/siem/all"),
            "HttpRequestDenied",
        ),
        (
            format!("http://2130706433:{port}/v2/siem/all"),
            "HttpRequestDenied",
        ),
        (
            format!("http://0177.0.0.1:{port}/v2/siem/all"),
            "HttpRequestDenied",
        ),
        (
            format!("http://0x7f.0.0.1:{port}/v2/siem/all"),
            "HttpRequestDenied",
        ),
        (
            format!("http://127.1:{port}/v2/siem/all"),
            "HttpRequestDenied",
        ),
        (
            format!("http://127.0.0.1.:{port}/v2/siem/all"),
            "HttpRequestDenied",
        ),
        (
            format!("http://127.0.0.1:0{port}/v2/siem/all"),
            "HttpRequestDenied",
        ),
        (
            format!("http://probe@127.0.0.1:{port}/v2/siem/all"),
            "HttpRequestDenied",
        ),
        (
            format!("http://:{SECRET}@127.0.0.1:{port}/v2/siem/all"),
            "HttpRequestDenied",
        ),
        (
            format!("http://127.0.0.1:{port}@127.0.0.1:{port}/"),
            "HttpRequestDenied",
        ),
        // The http crate refuses percent-encoding in an authority outright,
        // so the guest cannot even build the request.
        (
            format!("http://%31%32%37.0.0.1:{port}/v2/siem/all"),
            "HttpRequestUriInvalid",
        ),
    ] {
        let answer = run(&runtime, &policy, &tap, &format!("get:{hostile}")).await;
        assert_eq!(transport_error(answer), expected, "{hostile}");
    }
    assert_eq!(tap.connections(), 0, "no request reached the TAP server");
    still_answers(&runtime, &policy, &tap).await;
    assert_eq!(tap.connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_origin_admits_only_its_own_spelling() {
    // The origin is `localhost`; a URL parser would take the upper-case and
    // trailing-dot spellings to the same server.
    let tap = TestServer::start(|_| Reply::Text("tap")).await;
    let port = tap.addr.port();
    let base = format!("http://localhost:{port}");
    let runtime = probe_runtime(generous_limits());
    let policy = OutboundPolicy {
        origin: TapOrigin::parse(&base).expect("origin"),
        ..policy_for(&tap)
    };

    for hostile in [
        format!("http://LOCALHOST:{port}/v2/siem/all"),
        format!("http://LocalHost:{port}/v2/siem/all"),
        format!("http://localhost.:{port}/v2/siem/all"),
        format!("http://localhost:0{port}/v2/siem/all"),
    ] {
        let answer = run(&runtime, &policy, &tap, &format!("get:{hostile}")).await;
        assert_eq!(transport_error(answer), "HttpRequestDenied", "{hostile}");
    }
    assert_eq!(tap.connections(), 0);

    let result = run(&runtime, &policy, &tap, &format!("get:{base}/v2/siem/all"))
        .await
        .expect("no sandbox failure")
        .expect("the probe answers");
    assert_eq!(attribute(&result, "body"), "tap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_follows_a_redirect_to_another_host_itself_is_denied() {
    let elsewhere = TestServer::start(|_| Reply::Text("elsewhere")).await;
    let away = format!("{}/stolen", elsewhere.url());
    let tap = TestServer::start(move |request| match request.path.as_str() {
        "/v2/siem/all" => Reply::Redirect(away.clone()),
        _ => Reply::Text("tap"),
    })
    .await;
    let runtime = probe_runtime(generous_limits());
    let policy = policy_for(&tap);

    let answer = run(
        &runtime,
        &policy,
        &tap,
        &format!("follow:{}/v2/siem/all", tap.url()),
    )
    .await;
    assert_eq!(transport_error(answer), "HttpRequestDenied");
    assert_eq!(tap.connections(), 1);
    assert_eq!(elsewhere.connections(), 0);

    // A redirect back to the TAP origin itself under another spelling of
    // its address is denied too; the canonical spelling is followed.
    for (template, followed) in [
        ("http://2130706433:PORT/landed", false),
        ("http://127.0.0.1:0PORT/landed", false),
        ("http://127.0.0.1.:PORT/landed", false),
        ("http://127.0.0.1:PORT/landed", true),
    ] {
        let own_port = Arc::new(std::sync::OnceLock::<u16>::new());
        let port = Arc::clone(&own_port);
        let selfish = TestServer::start(move |request| match request.path.as_str() {
            "/v2/siem/all" => Reply::Redirect(
                template.replace("PORT", &port.get().copied().unwrap_or(0).to_string()),
            ),
            _ => Reply::Text("landed"),
        })
        .await;
        own_port.set(selfish.addr.port()).expect("set once");
        let answer = run(
            &runtime,
            &policy_for(&selfish),
            &selfish,
            &format!("follow:{}/v2/siem/all", selfish.url()),
        )
        .await;
        if followed {
            let result = answer
                .expect("no sandbox failure")
                .expect("the probe answers");
            assert!(
                attribute(&result, "hop_1").starts_with("200 "),
                "{result:?}"
            );
            assert_eq!(selfish.connections(), 2, "{template}");
        } else {
            assert_eq!(transport_error(answer), "HttpRequestDenied", "{template}");
            assert_eq!(selfish.connections(), 1, "{template}");
        }
    }
    assert_eq!(tap.connections(), 1);
    still_answers(&runtime, &policy, &tap).await;
}

// ---------------------------------------------------------------------------
// Budgets counted by the host.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_sent_before_a_panic_are_counted_by_the_host() {
    let server = TestServer::start(|_| Reply::Text("{}")).await;
    let runtime = probe_runtime(generous_limits());
    let siem = format!("{}/v2/siem/all?format=json", server.url());

    let outcome = run_counted(
        &runtime,
        &policy_for(&server),
        &server,
        &format!("visit:{siem}|{siem}|{siem}|panic"),
    )
    .await;
    match &outcome.answer {
        Err(RuntimeError::Trap(text)) => assert!(text.contains("after 3 requests"), "{text}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_eq!(outcome.requests.siem, 3, "{:?}", outcome.requests);
    assert_eq!(outcome.requests.sent(), 3);
    assert_eq!(server.received().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_counts_each_request_in_its_tap_pool_and_refusals_apart() {
    let server = TestServer::start(|_| Reply::Status(404)).await;
    let elsewhere = TestServer::start(|_| Reply::Text("elsewhere")).await;
    let runtime = probe_runtime(generous_limits());
    let tap = server.url();
    let visits = [
        format!("{tap}/v2/siem/all?format=json"),
        format!("{tap}/v2/siem/clicks/blocked?format=json"),
        format!("{tap}/v2/campaign/46e01b8a-c899-404d-bcd9-189bb393d1a7"),
        format!("{tap}/v2/forensics?campaignId=46e01b8a-c899-404d-bcd9-189bb393d1a7"),
        format!("{tap}/v2/forensics?threatId=3ba97fc852c66a7ba761450edfdfb9f4"),
        format!("{tap}/v2/threat/summary/3ba97fc852c66a7ba761450edfdfb9f4"),
        format!("{tap}/v2/people/vap?window=30"),
        format!("{tap}/v2/people/top-clickers?window=30"),
        format!("{tap}/v2/url/decode"),
        format!("{}/v2/siem/all", elsewhere.url()),
    ];

    let outcome = run_counted(
        &runtime,
        &policy_for(&server),
        &server,
        &format!("visit:{}", visits.join("|")),
    )
    .await;
    let result = outcome
        .answer
        .expect("no sandbox failure")
        .expect("the probe answers");
    assert_eq!(
        attribute(&result, "visit_9"),
        "ErrorCode::HttpRequestDenied"
    );
    assert_eq!(
        outcome.requests,
        RequestCounts {
            siem: 2,
            campaign: 1,
            campaign_forensics: 1,
            threat_forensics: 1,
            threat_summary: 1,
            people_vap: 1,
            people_top_clickers: 1,
            other: 1,
            refused: 1,
            oversized: 0,
        }
    );
    assert_eq!(server.received().len(), 9);
    assert_eq!(elsewhere.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_cut_off_by_the_wall_clock_is_still_counted() {
    let server = TestServer::start(|request| match request.path.as_str() {
        "/v2/siem/all" => Reply::Text("{}"),
        _ => Reply::Silent,
    })
    .await;
    let runtime = probe_runtime(Limits {
        wall_time: Duration::from_millis(800),
        ..generous_limits()
    });
    let tap = server.url();

    let outcome = run_counted(
        &runtime,
        &policy_for(&server),
        &server,
        &format!("visit:{tap}/v2/siem/all|{tap}/v2/forensics?threatId=abc"),
    )
    .await;
    assert!(
        matches!(outcome.answer, Err(RuntimeError::WallClock { .. })),
        "{:?}",
        outcome.answer
    );
    assert_eq!(
        outcome.requests,
        RequestCounts {
            siem: 1,
            threat_forensics: 1,
            ..RequestCounts::default()
        }
    );
}
