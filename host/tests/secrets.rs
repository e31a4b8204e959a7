//! No secret leaves the config file: the built binary runs a full sync at
//! `-v3` against the simulators, with known, distinctive values for
//! ThreatQ's password, the TAP secret, the OAuth access token and a proxy
//! password, and none of them (nor the Basic credentials built from them)
//! appears in the log, on stdout or stderr, in the files beside the config,
//! in the `--export` file, in the `--dry-run` output, or in the message of
//! a failing run (an unreachable proxy, TAP refusing the credentials).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use proxy_stub::ProxyStub;
use tap_sim::{TapSim, TapSimConfig, TenantSpec};
use threatq_sim::{ThreatqSim, ThreatqSimConfig};

const BIN: &str = env!("CARGO_BIN_EXE_tq-conn-proofpoint-tap");

const TQ_PASSWORD: &str = "Tq-Passw0rd-7c1e93-leakcheck";
const TAP_PRINCIPAL: &str = "tap-principal-secrets-test";
const TAP_SECRET: &str = "Tap-Secret-4b8d21-leakcheck";
const WRONG_TAP_SECRET: &str = "Wrong-Tap-Secret-d6a2f0-leakcheck";
const ACCESS_TOKEN: &str = "TqAccessToken0e5a0c7leakcheck";
const PROXY_USER: &str = "proxyuser";
const PROXY_PASS: &str = "Proxy-Pw-91f3aa-leakcheck";

/// Standard base64 (with padding), enough for the Basic credentials.
fn base64(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Every value that must stay in the config file.
fn secrets() -> Vec<(&'static str, String)> {
    vec![
        ("the ThreatQ password", TQ_PASSWORD.to_owned()),
        ("the TAP secret", TAP_SECRET.to_owned()),
        ("the wrong TAP secret", WRONG_TAP_SECRET.to_owned()),
        ("the OAuth access token", ACCESS_TOKEN.to_owned()),
        ("the proxy password", PROXY_PASS.to_owned()),
        (
            "the TAP Basic credentials",
            base64(&format!("{TAP_PRINCIPAL}:{TAP_SECRET}")),
        ),
        (
            "the wrong TAP Basic credentials",
            base64(&format!("{TAP_PRINCIPAL}:{WRONG_TAP_SECRET}")),
        ),
        (
            "the proxy's Basic credentials",
            base64(&format!("{PROXY_USER}:{PROXY_PASS}")),
        ),
    ]
}

fn assert_no_secret(place: &str, text: &str) {
    for (what, value) in secrets() {
        assert!(
            !text.contains(&value),
            "{what} (`{value}`) leaked into {place}:\n{text}"
        );
    }
}

/// Checks every file under `dir` (state, lock, component cache, anything a
/// run leaves) except the config file itself.
fn assert_no_secret_in_files(dir: &Path) {
    let config = dir.join(tq_conn::config::CONFIG_FILE_NAME);
    let mut pending = vec![dir.to_path_buf()];
    let mut checked = 0;
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path != config {
                let bytes = std::fs::read(&path).unwrap();
                assert_no_secret(
                    &path.display().to_string(),
                    &String::from_utf8_lossy(&bytes),
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 0, "no run files found in {}", dir.display());
}

fn assert_no_secret_in_output(what: &str, output: &Output) {
    assert_no_secret(
        &format!("{what}'s stdout"),
        &String::from_utf8_lossy(&output.stdout),
    );
    assert_no_secret(
        &format!("{what}'s stderr"),
        &String::from_utf8_lossy(&output.stderr),
    );
}

struct World {
    tap: TapSim,
    threatq: ThreatqSim,
    /// TAP's proxy: the test sees TAP traffic went through it, with the
    /// proxy's credentials.
    relay: ProxyStub,
    root: tempfile::TempDir,
}

async fn world() -> World {
    let tap = TapSim::start(TapSimConfig {
        principal: TAP_PRINCIPAL.to_owned(),
        secret: TAP_SECRET.to_owned(),
        ..TapSimConfig::default()
    })
    .await
    .unwrap();
    let mut spec = TenantSpec::last_hours(2);
    spec.messages_per_hour = 20;
    tap.load_tenant(&tap_sim::generator::generate(&spec));
    let threatq = ThreatqSim::start(ThreatqSimConfig {
        password: TQ_PASSWORD.to_owned(),
        access_token: Some(ACCESS_TOKEN.to_owned()),
        ..ThreatqSimConfig::default()
    })
    .await
    .unwrap();
    let relay = ProxyStub::start().await;
    World {
        tap,
        threatq,
        relay,
        root: tempfile::tempdir().unwrap(),
    }
}

impl World {
    /// A config directory and a log directory for one run, with TAP's
    /// proxy at `proxy_port` and `tap_secret` under [tap] (and
    /// `allow_plain_http`: the simulator's plain http on this machine takes
    /// no proxy without it).
    fn dirs(&self, name: &str, proxy_port: u16, tap_secret: &str) -> (PathBuf, PathBuf) {
        let config_dir = self.root.path().join(name).join("config");
        let log_dir = self.root.path().join(name).join("log");
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::create_dir_all(&log_dir).unwrap();
        let defaults = ThreatqSimConfig::default();
        let config = format!(
            "[threatq]\n\
             host = \"{threatq}\"\n\
             client_id = \"{client_id}\"\n\
             username = \"{email}\"\n\
             password = \"{TQ_PASSWORD}\"\n\
             status = \"Review\"\n\
             \n\
             [tap]\n\
             proxy = \"http://{PROXY_USER}:{PROXY_PASS}@127.0.0.1:{proxy_port}\"\n\
             hostname = \"{tap}\"\n\
             principal = \"{TAP_PRINCIPAL}\"\n\
             secret = \"{tap_secret}\"\n\
             history_hours = 2\n\
             create_incidents = true\n\
             allow_plain_http = true\n",
            threatq = self.threatq.base_url(),
            client_id = defaults.client_id,
            email = defaults.email,
            tap = self.tap.base_url(),
        );
        std::fs::write(config_dir.join(tq_conn::config::CONFIG_FILE_NAME), config).unwrap();
        (config_dir, log_dir)
    }
}

fn connector(config_dir: &Path, log_dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .current_dir(config_dir)
        .env("RUST_BACKTRACE", "0")
        .env_remove("TQ_CONN_LOG")
        .stdin(Stdio::null())
        .args(["-c", &config_dir.display().to_string()])
        .args(["-ll", &log_dir.display().to_string()])
        .arg("-v3");
    command
}

fn log_of(log_dir: &Path) -> String {
    std::fs::read_to_string(log_dir.join(tq_conn::logging::LOG_FILE_NAME)).unwrap()
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn the_basic_credentials_are_standard_base64() {
    assert_eq!(base64("user:pass"), "dXNlcjpwYXNz");
    assert_eq!(
        base64("principal:tap-secret"),
        "cHJpbmNpcGFsOnRhcC1zZWNyZXQ="
    );
    assert_eq!(base64("ab"), "YWI=");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_leaves_the_config_file_in_a_full_sync_a_dry_run_or_a_failing_run() {
    let world = world().await;
    let proxy_port = world.relay.port();

    // --dry-run: the JSON lines on stdout, the log in the log file.
    let (dry_dir, dry_log) = world.dirs("dry-run", proxy_port, TAP_SECRET);
    let dry = connector(&dry_dir, &dry_log)
        .arg("--dry-run")
        .output()
        .unwrap();
    assert!(
        dry.status.success(),
        "dry run: exit {:?}\nstderr: {}",
        dry.status,
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("\"type\""),
        "the dry run printed what it would send:\n{}",
        String::from_utf8_lossy(&dry.stdout)
    );
    assert_no_secret_in_output("the dry run", &dry);
    assert_no_secret("the dry run's log", &log_of(&dry_log));
    assert_no_secret_in_files(&dry_dir);

    // A full sync with --export.
    let (sync_dir, sync_log) = world.dirs("sync", proxy_port, TAP_SECRET);
    let export = world.root.path().join("export.jsonl");
    let sync = connector(&sync_dir, &sync_log)
        .arg("--export")
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        sync.status.success(),
        "sync: exit {:?}\nstderr: {}",
        sync.status,
        String::from_utf8_lossy(&sync.stderr)
    );
    let log = log_of(&sync_log);
    assert!(log.contains("summary: windows"), "{log}");
    assert_no_secret_in_output("the sync", &sync);
    assert_no_secret("the sync's log", &log);
    assert_no_secret_in_files(&sync_dir);
    let exported = std::fs::read_to_string(&export).unwrap();
    assert!(!exported.is_empty(), "the export file is empty");
    assert_no_secret("the export file", &exported);

    // The values looked for are the ones really used: ThreatQ issued the
    // fixed token and saw it back, TAP saw the Basic credentials, and TAP
    // traffic went through the proxy with the proxy's credentials.
    assert!(world.threatq.snapshot().count("events") > 0);
    let bearers: Vec<_> = world
        .threatq
        .requests()
        .into_iter()
        .filter_map(|r| r.bearer)
        .collect();
    assert!(!bearers.is_empty());
    assert!(bearers.iter().all(|b| b == ACCESS_TOKEN), "{bearers:?}");
    let tap_basic = format!("Basic {}", base64(&format!("{TAP_PRINCIPAL}:{TAP_SECRET}")));
    let tap_requests = world.tap.requests();
    assert!(!tap_requests.is_empty());
    assert!(
        tap_requests
            .iter()
            .all(|r| r.authorization.as_deref() == Some(tap_basic.as_str()) && r.status < 400),
        "{tap_requests:?}"
    );
    let through_proxy = world.relay.sent().to_ascii_lowercase();
    let proxy_basic = format!(
        "proxy-authorization: basic {}",
        base64(&format!("{PROXY_USER}:{PROXY_PASS}"))
    )
    .to_ascii_lowercase();
    assert!(
        through_proxy.contains(&proxy_basic),
        "no Proxy-Authorization reached the proxy:\n{through_proxy}"
    );
    assert!(
        through_proxy.contains(&format!("get {}/v2/siem/", world.tap.base_url())),
        "TAP requests did not go through the proxy:\n{through_proxy}"
    );

    // A proxy nobody listens on: the run fails, and says so without the
    // proxy's password.
    let (down_dir, down_log) = world.dirs("proxy-down", closed_port(), TAP_SECRET);
    let down = connector(&down_dir, &down_log).output().unwrap();
    assert!(!down.status.success(), "the run with no proxy succeeded");
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(stderr.contains("TAP"), "{stderr}");
    assert_no_secret_in_output("the run with an unreachable proxy", &down);
    assert_no_secret(
        "the log of the run with an unreachable proxy",
        &log_of(&down_log),
    );
    assert_no_secret_in_files(&down_dir);

    // TAP refuses the credentials (exit 4).
    let (refused_dir, refused_log) = world.dirs("refused", proxy_port, WRONG_TAP_SECRET);
    let refused = connector(&refused_dir, &refused_log).output().unwrap();
    assert_eq!(
        refused.status.code(),
        Some(4),
        "stderr: {}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("TAP refused the credentials"), "{stderr}");
    assert_no_secret_in_output("the run TAP refused", &refused);
    assert_no_secret("the log of the run TAP refused", &log_of(&refused_log));
    assert_no_secret_in_files(&refused_dir);
}
