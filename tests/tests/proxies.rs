//! Each side's traffic takes the proxy docs/sync.md, "Proxies", gives it:
//! a proxy configured for one side never carries the other's without
//! `-ep`. The proxies are stubs on 127.0.0.1 that record what they carry.
//! (The environment's `HTTPS_PROXY` and `NO_PROXY` are left to reqwest; the
//! unit test of `http::tap_route` holds every combination to the table.)

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use e2e_tests::{World, completed, failed, now};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tq_conn::run::{FailureKind, RunOptions};

/// A forward HTTP proxy for plain `http://` targets: each connection goes
/// to the authority its first request names (`GET http://host:port/...`),
/// as reqwest keeps one connection per destination, and every byte the
/// client sends is recorded.
struct ProxyStub {
    addr: SocketAddr,
    /// What clients sent, one buffer per connection.
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ProxyStub {
    async fn start() -> ProxyStub {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let record = sent.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, record.clone()));
            }
        });
        ProxyStub { addr, sent, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The request lines it carried (`GET http://127.0.0.1:port/path HTTP/1.1`).
    fn requests(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for bytes in self.sent.lock().unwrap().iter() {
            // A request line may follow a body with no line break between.
            let text = String::from_utf8_lossy(bytes);
            for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                let marker = format!("{method} http://");
                for (at, _) in text.match_indices(&marker) {
                    let end = text[at..].find("\r\n").map_or(text.len(), |end| at + end);
                    lines.push(text[at..end].to_owned());
                }
            }
        }
        lines
    }

    /// The request lines it carried for `base` (`http://127.0.0.1:port`).
    fn requests_to(&self, base: &str) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|line| line.contains(&format!(" {base}/")))
            .collect()
    }
}

impl Drop for ProxyStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(mut client: TcpStream, record: Arc<Mutex<Vec<Vec<u8>>>>) {
    let mut head = Vec::new();
    let mut buffer = [0u8; 8192];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    let connection = {
        let mut record = record.lock().unwrap();
        record.push(head.clone());
        record.len() - 1
    };
    let text = String::from_utf8_lossy(&head);
    let target = text.split_whitespace().nth(1).unwrap_or_default();
    let Some(authority) = target
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
    else {
        let _ = client
            .write_all(b"HTTP/1.1 501 Not Implemented\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    let Ok(mut server) = TcpStream::connect(authority).await else {
        let _ = client
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    // The simulators answer absolute-form requests by their path, so the
    // bytes go on unchanged.
    if server.write_all(&head).await.is_err() {
        return;
    }
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = async {
        let mut buffer = [0u8; 8192];
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            record.lock().unwrap()[connection].extend_from_slice(&buffer[..n]);
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}

/// Writes the world's config (a complete [tap], one hour of history) with
/// `threatq_proxy` under [threatq] and `tap_proxy` under [tap]. The TAP
/// simulator speaks plain http on this machine, which takes no proxy
/// unless `allow_plain_http` says the proxy's connection is protected
/// otherwise: these tests say so, to see where each side's traffic goes.
fn configure(world: &World, threatq_proxy: Option<&str>, tap_proxy: Option<&str>) {
    let tap_line = tap_proxy
        .map(|url| format!("proxy = \"{url}\"\n"))
        .unwrap_or_default();
    world.write_config(
        true,
        &format!("history_hours = 1\nallow_plain_http = true\n{tap_line}"),
    );
    if let Some(url) = threatq_proxy {
        let path = world.config_dir().join(tq_conn::config::CONFIG_FILE_NAME);
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replacen("[threatq]\n", &format!("[threatq]\nproxy = \"{url}\"\n"), 1);
        std::fs::write(&path, text).unwrap();
    }
}

fn with_flags(world: &World, external_proxy: bool, disable_proxy: bool) -> RunOptions {
    let mut options = world.options(now());
    options.network.external_proxy = external_proxy;
    options.network.disable_proxy = disable_proxy;
    options
}

/// Before: `[threatq] proxy` carried TAP's traffic even without `-ep`.
#[tokio::test]
async fn tap_traffic_does_not_take_the_threatq_proxy_without_ep() {
    let world = World::start().await;
    let proxy = ProxyStub::start().await;
    configure(&world, Some(&proxy.url()), None);

    let summary = completed(tq_conn::run::run(&with_flags(&world, false, false)).await);

    assert_eq!(summary.windows_done, summary.windows_planned);
    assert!(!world.tap.requests().is_empty());
    assert_eq!(
        proxy.requests_to(&world.tap.base_url()),
        Vec::<String>::new(),
        "TAP traffic went through [threatq] proxy"
    );
    assert!(
        proxy
            .requests_to(&world.threatq.base_url())
            .iter()
            .any(|line| line.contains("/api/token")),
        "ThreatQ's traffic takes its own proxy: {:?}",
        proxy.requests()
    );
}

#[tokio::test]
async fn with_ep_tap_traffic_takes_threatqs_proxy() {
    // ThreatQ's UI names no proxy: [threatq] proxy is ThreatQ's.
    let world = World::start().await;
    let proxy = ProxyStub::start().await;
    configure(&world, Some(&proxy.url()), None);

    completed(tq_conn::run::run(&with_flags(&world, true, false)).await);

    let through = proxy.requests_to(&world.tap.base_url());
    assert!(
        through.iter().any(|line| line.contains("/v2/siem/all")),
        "{through:?}"
    );
    assert_eq!(
        through.len(),
        world.tap.requests().len(),
        "every TAP request"
    );

    // ThreatQ's UI names one: it wins for TAP; ThreatQ keeps its own.
    let world = World::start().await;
    let ui_proxy = ProxyStub::start().await;
    let threatq_proxy = ProxyStub::start().await;
    world.threatq.set_proxy(Some(ui_proxy.url()));
    configure(&world, Some(&threatq_proxy.url()), None);

    completed(tq_conn::run::run(&with_flags(&world, true, false)).await);

    assert_eq!(
        ui_proxy.requests_to(&world.tap.base_url()).len(),
        world.tap.requests().len()
    );
    assert!(ui_proxy.requests_to(&world.threatq.base_url()).is_empty());
    assert!(threatq_proxy.requests_to(&world.tap.base_url()).is_empty());
    assert!(
        !threatq_proxy
            .requests_to(&world.threatq.base_url())
            .is_empty()
    );
}

#[tokio::test]
async fn the_tap_proxy_carries_only_tap_traffic() {
    let world = World::start().await;
    let proxy = ProxyStub::start().await;
    configure(&world, None, Some(&proxy.url()));

    completed(tq_conn::run::run(&with_flags(&world, false, false)).await);

    assert_eq!(
        proxy.requests_to(&world.tap.base_url()).len(),
        world.tap.requests().len()
    );
    assert!(
        proxy.requests_to(&world.threatq.base_url()).is_empty(),
        "ThreatQ traffic went through [tap] proxy"
    );
}

#[tokio::test]
async fn ep_beside_a_tap_proxy_is_refused_before_any_request() {
    let world = World::start().await;
    let proxy = ProxyStub::start().await;
    configure(&world, None, Some(&proxy.url()));

    let failure = failed(tq_conn::run::run(&with_flags(&world, true, false)).await);

    assert_eq!(failure.kind, FailureKind::Config);
    let text = format!("{:#}", failure.error);
    assert!(
        text.contains("leave out -ep") && text.contains("remove `proxy` from [tap]"),
        "{text}"
    );
    assert!(world.threatq.requests().is_empty(), "not even the login");
    assert!(world.tap.requests().is_empty());
    assert!(proxy.requests().is_empty());
}

#[tokio::test]
async fn dp_bypasses_every_configured_proxy() {
    let world = World::start().await;
    let threatq_proxy = ProxyStub::start().await;
    let tap_proxy = ProxyStub::start().await;
    configure(&world, Some(&threatq_proxy.url()), Some(&tap_proxy.url()));

    completed(tq_conn::run::run(&with_flags(&world, false, true)).await);

    assert!(!world.tap.requests().is_empty());
    assert!(threatq_proxy.requests().is_empty());
    assert!(tap_proxy.requests().is_empty());
}

/// Review finding: `http://` is allowed for this machine only, but a proxy
/// would still have carried that request, Basic header in clear text, to
/// wherever the proxy is (with `-ep`, wherever ThreatQ's UI says).
#[tokio::test]
async fn plain_http_to_this_machine_takes_no_proxy_without_allow_plain_http() {
    let world = World::start().await;
    let proxy = ProxyStub::start().await;
    world.threatq.set_proxy(Some(proxy.url()));
    world.write_config(true, "history_hours = 1\n");

    completed(tq_conn::run::run(&with_flags(&world, true, false)).await);

    assert!(!world.tap.requests().is_empty());
    assert!(
        proxy.requests_to(&world.tap.base_url()).is_empty(),
        "TAP's plain http went through the proxy ThreatQ names"
    );
}
