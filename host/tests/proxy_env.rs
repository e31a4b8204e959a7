//! The environment's proxy, as the built binary takes it (docs/sync.md,
//! "Proxies"): a side with no proxy of its own takes `HTTP_PROXY` (the
//! simulators are `http://`; `HTTPS_PROXY` is the same rule for https
//! hosts) unless `NO_PROXY` lists the host; a configured proxy is used
//! whatever `NO_PROXY` says; `-dp` turns all of them off; and
//! `[threatq] proxy` never carries TAP traffic without `-ep`. The proxies
//! are stubs on 127.0.0.1 that record what they carry.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use tap_sim::{TapSim, TapSimConfig};
use threatq_sim::{ThreatqSim, ThreatqSimConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const BIN: &str = env!("CARGO_BIN_EXE_tq-conn-proofpoint-tap");

/// A forward HTTP proxy for `http://` targets: each connection goes to the
/// authority its first request names, as reqwest keeps one connection per
/// destination; every byte the client sends is recorded.
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

    /// How many requests it carried to `base` (`http://127.0.0.1:port`).
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

    fn carried(&self, base: &str) -> usize {
        self.requests()
            .iter()
            .filter(|line| line.contains(&format!(" {base}/")))
            .count()
    }

    fn forget(&self) {
        self.sent.lock().unwrap().clear();
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
    let text = String::from_utf8_lossy(&head).into_owned();
    let authority = text
        .split_whitespace()
        .nth(1)
        .and_then(|target| target.strip_prefix("http://"))
        .and_then(|rest| rest.split('/').next());
    let server = match authority {
        Some(authority) => TcpStream::connect(authority).await.ok(),
        None => None,
    };
    let Some(mut server) = server else {
        let _ = client
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    // The simulators answer absolute-form requests by their path.
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

struct World {
    tap: TapSim,
    threatq: ThreatqSim,
    dir: tempfile::TempDir,
}

impl World {
    /// The config, a complete [tap] with an hour of history, plus each
    /// section's proxy when given.
    fn configure(&self, threatq_proxy: Option<&str>, tap_proxy: Option<&str>) {
        let line = |proxy: Option<&str>| {
            proxy
                .map(|url| format!("proxy = \"{url}\"\n"))
                .unwrap_or_default()
        };
        let text = sim_config::simulator_config(
            &self.threatq.base_url(),
            &ThreatqSimConfig::default(),
            Some((&self.tap.base_url(), &TapSimConfig::default())),
            // The TAP simulator speaks plain http on this machine, which
            // takes no proxy unless `allow_plain_http` says the proxy's
            // connection is protected otherwise: said here, to see where
            // each side's traffic goes.
            &format!(
                "history_hours = 1\nallow_plain_http = true\n{}",
                line(tap_proxy)
            ),
        )
        .replacen(
            "[threatq]\n",
            &format!("[threatq]\n{}", line(threatq_proxy)),
            1,
        );
        std::fs::write(
            self.dir.path().join(tq_conn::config::CONFIG_FILE_NAME),
            text,
        )
        .unwrap();
    }

    /// Runs the binary with `env` as the proxy environment (every other
    /// proxy variable removed) and `flags`; panics unless it exits 0.
    fn run(&self, env: &[(&str, &str)], flags: &[&str]) {
        let mut command = Command::new(BIN);
        command
            .current_dir(self.dir.path())
            .env("RUST_BACKTRACE", "0")
            .env_remove("TQ_CONN_LOG")
            .env_remove("REQUEST_METHOD")
            .stdin(Stdio::null())
            .arg("-c")
            .arg(self.dir.path())
            .args(["-ll", "stdout", "-v", "1"])
            .args(flags);
        for name in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "NO_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "no_proxy",
        ] {
            command.env_remove(name);
        }
        command.envs(env.iter().copied());
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{env:?} {flags:?}: exit {:?}\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The TAP and ThreatQ requests made since the last call.
    fn made(&self) -> (usize, usize) {
        let counts = (self.tap.requests().len(), self.threatq.requests().len());
        self.tap.clear_requests();
        self.threatq.clear_requests();
        assert!(counts.0 > 0 && counts.1 > 0, "{counts:?}");
        counts
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_side_takes_its_own_proxy_else_the_environments_unless_no_proxy_lists_it() {
    let world = World {
        tap: TapSim::start(TapSimConfig::default()).await.unwrap(),
        threatq: ThreatqSim::start(ThreatqSimConfig::default())
            .await
            .unwrap(),
        dir: tempfile::tempdir().unwrap(),
    };
    let (tap, threatq) = (world.tap.base_url(), world.threatq.base_url());
    let environment = ProxyStub::start().await;
    let own = ProxyStub::start().await;
    let env_proxy = environment.url();
    let through_env = [("HTTP_PROXY", env_proxy.as_str())];
    let unless_local = [
        ("HTTP_PROXY", env_proxy.as_str()),
        ("NO_PROXY", "127.0.0.1"),
    ];
    let forget = || {
        environment.forget();
        own.forget();
    };

    // Nothing configured: both sides take the environment's.
    world.configure(None, None);
    world.run(&through_env, &[]);
    let (tap_made, threatq_made) = world.made();
    assert_eq!(environment.carried(&tap), tap_made);
    assert_eq!(environment.carried(&threatq), threatq_made);
    forget();

    // NO_PROXY lists the host: neither does.
    world.run(&unless_local, &[]);
    world.made();
    assert_eq!(
        (environment.carried(&tap), environment.carried(&threatq)),
        (0, 0)
    );
    forget();

    // [tap] proxy: TAP takes it whatever NO_PROXY says; ThreatQ is direct.
    world.configure(None, Some(&own.url()));
    world.run(&unless_local, &[]);
    let (tap_made, _) = world.made();
    assert_eq!(own.carried(&tap), tap_made);
    assert_eq!(own.carried(&threatq), 0);
    assert_eq!(
        (environment.carried(&tap), environment.carried(&threatq)),
        (0, 0)
    );
    forget();

    // [threatq] proxy without -ep: ThreatQ takes it, TAP the environment's.
    world.configure(Some(&own.url()), None);
    world.run(&through_env, &[]);
    let (tap_made, threatq_made) = world.made();
    assert_eq!(own.carried(&threatq), threatq_made);
    assert_eq!(own.carried(&tap), 0, "TAP traffic took [threatq] proxy");
    assert_eq!(environment.carried(&tap), tap_made);
    assert_eq!(environment.carried(&threatq), 0);
    forget();

    // -dp: no proxy at all, neither configured nor the environment's.
    world.run(&through_env, &["-dp"]);
    world.made();
    for stub in [&environment, &own] {
        assert_eq!((stub.carried(&tap), stub.carried(&threatq)), (0, 0));
    }
}
