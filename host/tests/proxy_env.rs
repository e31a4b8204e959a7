//! The environment's proxy, as the built binary takes it (docs/sync.md,
//! "Proxies"): a side with no proxy of its own takes `HTTP_PROXY` (the
//! simulators are `http://`; `HTTPS_PROXY` is the same rule for https
//! hosts) unless `NO_PROXY` lists the host; a configured proxy is used
//! whatever `NO_PROXY` says; `-dp` turns all of them off; and
//! `[threatq] proxy` never carries TAP traffic without `-ep`. The proxies
//! are stubs on 127.0.0.1 that record what they carry.

use std::process::{Command, Stdio};

use proxy_stub::ProxyStub;
use tap_sim::{TapSim, TapSimConfig};
use threatq_sim::{ThreatqSim, ThreatqSimConfig};

const BIN: &str = env!("CARGO_BIN_EXE_tq-conn-proofpoint-tap");

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
    assert_eq!(environment.requests_to(&tap).len(), tap_made);
    assert_eq!(environment.requests_to(&threatq).len(), threatq_made);
    forget();

    // NO_PROXY lists the host: neither does.
    world.run(&unless_local, &[]);
    world.made();
    assert_eq!(
        (
            environment.requests_to(&tap).len(),
            environment.requests_to(&threatq).len()
        ),
        (0, 0)
    );
    forget();

    // [tap] proxy: TAP takes it whatever NO_PROXY says; ThreatQ is direct.
    world.configure(None, Some(&own.url()));
    world.run(&unless_local, &[]);
    let (tap_made, _) = world.made();
    assert_eq!(own.requests_to(&tap).len(), tap_made);
    assert_eq!(own.requests_to(&threatq).len(), 0);
    assert_eq!(
        (
            environment.requests_to(&tap).len(),
            environment.requests_to(&threatq).len()
        ),
        (0, 0)
    );
    forget();

    // [threatq] proxy without -ep: ThreatQ takes it, TAP the environment's.
    world.configure(Some(&own.url()), None);
    world.run(&through_env, &[]);
    let (tap_made, threatq_made) = world.made();
    assert_eq!(own.requests_to(&threatq).len(), threatq_made);
    assert_eq!(
        own.requests_to(&tap).len(),
        0,
        "TAP traffic took [threatq] proxy"
    );
    assert_eq!(environment.requests_to(&tap).len(), tap_made);
    assert_eq!(environment.requests_to(&threatq).len(), 0);
    forget();

    // -dp: no proxy at all, neither configured nor the environment's.
    world.run(&through_env, &["-dp"]);
    world.made();
    for stub in [&environment, &own] {
        assert_eq!(
            (
                stub.requests_to(&tap).len(),
                stub.requests_to(&threatq).len()
            ),
            (0, 0)
        );
    }
}
