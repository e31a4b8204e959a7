//! Each side's traffic takes the proxy docs/sync.md, "Proxies", gives it:
//! a proxy configured for one side never carries the other's without
//! `-ep`. The proxies are stubs on 127.0.0.1 that record what they carry.
//! (The environment's `HTTPS_PROXY` and `NO_PROXY` are left to reqwest; the
//! unit test of `http::tap_route` holds every combination to the table.)

use e2e_tests::{World, completed, failed, now};
use proxy_stub::ProxyStub;
use tq_conn::run::{FailureKind, RunOptions};

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
