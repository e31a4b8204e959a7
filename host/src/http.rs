//! The two HTTP clients of a run, one per side, built in one place from the
//! operator's network choices: proxy (each side's `proxy`, `-ep`, `-dp`, the
//! environment's `HTTPS_PROXY` and `NO_PROXY`), TLS (system trust store,
//! each side's `ca_file` and `verify_tls`, `-ds`) and timeouts.
//!
//! Each side has its own settings: `[threatq]`'s apply to ThreatQ (usually
//! this very machine, often behind a private CA) and `[tap]`'s to the
//! internet-facing TAP API. [`threatq_route`] and [`tap_route`] are the
//! whole proxy rule, [`threatq_network`] and [`tap_network`] the whole TLS
//! rule; only `-ds` and `-dp` reach across both sides, and `-ep` sends TAP
//! traffic through ThreatQ's proxy (docs/sync.md, "Proxies").
//!
//! Neither client follows redirects: the TAP client serves the sandboxed
//! component, which must never be led to another authority, and ThreatQ's
//! API has no reason to redirect an authenticated API call.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::config::{TapSection, ThreatqSection};
pub use crate::urls::{ProxyUrl, redact_url};

/// The operator's network flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetworkFlags {
    /// `-ep`: TAP traffic goes through ThreatQ's proxy (the one ThreatQ's UI
    /// configures, else `[threatq] proxy`).
    pub external_proxy: bool,
    /// `-ds`: no TLS certificate checks, on either side.
    pub disable_ssl: bool,
    /// `-dp`: no proxy at all, on either side, not even the environment's.
    pub disable_proxy: bool,
}

/// What `-ds` logs once per run: it turns certificate checks off on both
/// sides, whatever `verify_tls` says.
pub const DISABLE_SSL_WARNING: &str = "-ds (--disable-ssl): TLS certificates are NOT verified on either side, \
     neither for TAP nor for ThreatQ; use `ca_file` under [tap] or [threatq] to trust a private CA instead";

/// Which side a client talks to; names the config section in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Tap,
    Threatq,
}

impl Side {
    /// The config section holding this side's TLS settings.
    pub fn section(self) -> &'static str {
        match self {
            Side::Tap => "[tap]",
            Side::Threatq => "[threatq]",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Side::Tap => "TAP",
            Side::Threatq => "ThreatQ",
        }
    }
}

/// Where a client's traffic goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyChoice {
    /// The system's proxy settings (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`).
    System,
    /// This proxy for everything.
    Explicit(ProxyUrl),
    /// No proxy at all (`-dp`).
    Direct,
}

/// Why a side takes the proxy it takes: named in the debug log, and the
/// column of the table in docs/sync.md, "Proxies".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteSource {
    /// `-dp`: no proxy, whatever else is configured.
    DisableProxy,
    /// The side's own section: `[tap] proxy` for TAP, `[threatq] proxy`
    /// for ThreatQ.
    OwnSection,
    /// `-ep`, TAP: the proxy ThreatQ's UI configures.
    ThreatqSetting,
    /// `-ep`, TAP: `[threatq] proxy`, ThreatQ's UI naming none.
    ThreatqSection,
    /// Nothing configured for the side: the environment (`HTTPS_PROXY`,
    /// `HTTP_PROXY`, `ALL_PROXY`, minus what `NO_PROXY` excludes).
    Environment,
    /// `-ep`, but neither ThreatQ's UI nor `[threatq] proxy` names one: the
    /// environment, with a warning.
    ExternalProxyNamedNone,
    /// TAP over plain `http://` to this machine, without `allow_plain_http`:
    /// no proxy, whatever is configured ([`direct_for_plain_http`]).
    PlainHttpToThisMachine,
}

impl std::fmt::Display for RouteSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RouteSource::DisableProxy => "-dp: no proxy",
            RouteSource::OwnSection => "the side's own `proxy`",
            RouteSource::ThreatqSetting => "-ep: the proxy ThreatQ's UI configures",
            RouteSource::ThreatqSection => "-ep: [threatq] proxy",
            RouteSource::Environment => "the environment (HTTPS_PROXY, NO_PROXY)",
            RouteSource::ExternalProxyNamedNone => "-ep, but no proxy named: the environment",
            RouteSource::PlainHttpToThisMachine => {
                "plain http to this machine: no proxy, so the credentials stay on it"
            }
        })
    }
}

/// One side's proxy and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub proxy: ProxyChoice,
    pub source: RouteSource,
}

impl Route {
    fn new(proxy: ProxyChoice, source: RouteSource) -> Route {
        Route { proxy, source }
    }

    fn explicit_or_environment(proxy: Option<&ProxyUrl>, source: RouteSource) -> Route {
        match proxy {
            Some(proxy) => Route::new(ProxyChoice::Explicit(proxy.clone()), source),
            None => Route::new(ProxyChoice::System, RouteSource::Environment),
        }
    }
}

/// The ThreatQ side's proxy: `-dp` none, else `[threatq] proxy`, else the
/// environment's. `-ep` and `[tap] proxy` are TAP's and never change it.
pub fn threatq_route(flags: &NetworkFlags, threatq_proxy: Option<&ProxyUrl>) -> Route {
    if flags.disable_proxy {
        return Route::new(ProxyChoice::Direct, RouteSource::DisableProxy);
    }
    Route::explicit_or_environment(threatq_proxy, RouteSource::OwnSection)
}

/// The TAP side's proxy: `-dp` none; with `-ep` ThreatQ's proxy (the one
/// its UI configures, `threatq_setting`, read only with `-ep`; else
/// `[threatq] proxy`; else the environment's, with a warning); without it
/// `[tap] proxy`, else the environment's. A proxy configured for ThreatQ
/// is never TAP's without `-ep`. `-ep` beside `[tap] proxy` is refused:
/// the flag and the file would name two proxies for one side.
pub fn tap_route(
    flags: &NetworkFlags,
    tap_proxy: Option<&ProxyUrl>,
    threatq_proxy: Option<&ProxyUrl>,
    threatq_setting: Option<&ProxyUrl>,
) -> Result<Route, String> {
    if flags.disable_proxy {
        return Ok(Route::new(ProxyChoice::Direct, RouteSource::DisableProxy));
    }
    if !flags.external_proxy {
        return Ok(Route::explicit_or_environment(
            tap_proxy,
            RouteSource::OwnSection,
        ));
    }
    if let Some(tap_proxy) = tap_proxy {
        return Err(format!(
            "-ep (--external-proxy) sends TAP traffic through ThreatQ's proxy, but [tap] proxy \
             names `{tap_proxy}` for it: leave out -ep to use [tap] proxy, or remove `proxy` \
             from [tap] to use ThreatQ's"
        ));
    }
    Ok(match (threatq_setting, threatq_proxy) {
        (Some(setting), _) => Route::new(
            ProxyChoice::Explicit(setting.clone()),
            RouteSource::ThreatqSetting,
        ),
        (None, Some(section)) => Route::new(
            ProxyChoice::Explicit(section.clone()),
            RouteSource::ThreatqSection,
        ),
        (None, None) => Route::new(ProxyChoice::System, RouteSource::ExternalProxyNamedNone),
    })
}

/// The TAP route for an origin `plain_http` to this machine (the only
/// plain `http://` the credentials check lets through without `[tap]
/// allow_plain_http`, docs/sync.md, "Where the TAP credentials go"): direct.
/// Through a proxy the Basic header would cross the network in clear text,
/// and the proxy would take `127.0.0.1` for its own address. Any other
/// origin keeps `route`.
pub fn direct_for_plain_http(route: Route, plain_http: bool) -> Route {
    if plain_http && route.proxy != ProxyChoice::Direct {
        Route::new(ProxyChoice::Direct, RouteSource::PlainHttpToThisMachine)
    } else {
        route
    }
}

/// The operator's network choices for one client.
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    /// Which side: named in error messages (`[tap] ca_file ...`).
    pub side: Side,
    pub proxy: ProxyChoice,
    /// `false` with `-ds` (or that side's `verify_tls = false`): certificates
    /// are not checked.
    pub verify_tls: bool,
    /// Extra trusted CA certificates (PEM), on top of the system's store.
    pub ca_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// Bound on each request, connecting to the last body byte; `None`
    /// for the TAP client, whose requests the outbound hook bounds itself.
    pub request_timeout: Option<Duration>,
}

impl NetworkOptions {
    /// System proxy, certificates verified against the system store, 30 s
    /// to connect.
    pub fn new(side: Side) -> Self {
        NetworkOptions {
            side,
            proxy: ProxyChoice::System,
            verify_tls: true,
            ca_file: None,
            connect_timeout: Duration::from_secs(30),
            request_timeout: None,
        }
    }
}

/// The ThreatQ client's options: `[threatq]`'s TLS settings and its proxy
/// ([`threatq_route`]).
pub fn threatq_network(threatq: &ThreatqSection, flags: &NetworkFlags) -> NetworkOptions {
    NetworkOptions {
        proxy: threatq_route(flags, threatq.proxy.as_ref()).proxy,
        verify_tls: threatq.verify_tls && !flags.disable_ssl,
        ca_file: threatq.ca_file.clone(),
        ..NetworkOptions::new(Side::Threatq)
    }
}

/// The ThreatQ client a run or `setup`'s login check uses: one builder, so
/// both take the same route with the same TLS settings. `request_timeout`
/// bounds each request (none: only the connect timeout).
pub fn threatq_client(
    threatq: &ThreatqSection,
    flags: &NetworkFlags,
    request_timeout: Option<Duration>,
    retry: threatq_client::RetryPolicy,
) -> Result<threatq_client::Client> {
    let mut network = threatq_network(threatq, flags);
    network.request_timeout = request_timeout;
    Ok(threatq_client::Client::new(
        threatq_client::ThreatqConfig {
            base_url: threatq.host.url().clone(),
            client_id: threatq.client_id.clone(),
            username: threatq.username.clone(),
            password: threatq.password.clone(),
        },
        build_client(&network)?,
        retry,
    ))
}

/// The TAP client's options: `[tap]`'s TLS settings and the proxy chosen
/// for TAP traffic ([`tap_route`]).
pub fn tap_network(tap: &TapSection, flags: &NetworkFlags, proxy: ProxyChoice) -> NetworkOptions {
    NetworkOptions {
        proxy,
        verify_tls: tap.verify_tls && !flags.disable_ssl,
        ca_file: tap.ca_file.clone(),
        ..NetworkOptions::new(Side::Tap)
    }
}

/// Builds a client for one side.
pub fn build_client(options: &NetworkOptions) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!(
            "tq-conn-proofpoint-tap/",
            env!("CARGO_PKG_VERSION")
        ))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(options.connect_timeout)
        .danger_accept_invalid_certs(!options.verify_tls);
    if let Some(timeout) = options.request_timeout {
        builder = builder.timeout(timeout);
    }
    builder = match &options.proxy {
        // reqwest reads the system (environment) proxy settings by default.
        ProxyChoice::System => builder,
        ProxyChoice::Direct => builder.no_proxy(),
        ProxyChoice::Explicit(proxy) => builder.proxy(
            reqwest::Proxy::all(proxy.expose_url().as_str()).with_context(|| {
                format!("the proxy `{proxy}` is not a valid proxy URL (expected http://host:port)")
            })?,
        ),
    };
    if let Some(path) = &options.ca_file {
        for cert in read_ca_file(path, options.side)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().with_context(|| {
        format!(
            "cannot set up the {} HTTP client (TLS or proxy settings)",
            options.side.name()
        )
    })
}

fn read_ca_file(path: &Path, side: Side) -> Result<Vec<reqwest::Certificate>> {
    let section = side.section();
    let pem = std::fs::read(path).with_context(|| {
        format!(
            "cannot read ca_file {}: check the path in {section} of the config",
            path.display()
        )
    })?;
    let no_certificate = || {
        format!(
            "ca_file {} in {section} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        )
    };
    let certs = reqwest::Certificate::from_pem_bundle(&pem).with_context(no_certificate)?;
    if certs.is_empty() {
        anyhow::bail!(no_certificate());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HostUrl;

    fn threatq_section() -> ThreatqSection {
        ThreatqSection {
            host: HostUrl::parse("threatq.example.com").expect("host"),
            client_id: "client".to_owned(),
            username: "analyst@example.com".to_owned(),
            password: "pw".into(),
            status: "Review".to_owned(),
            false_positive_status: None,
            ca_file: None,
            proxy: None,
            verify_tls: true,
        }
    }

    fn proxy(text: &str) -> ProxyUrl {
        ProxyUrl::parse(text).expect("a proxy URL")
    }

    #[test]
    fn plain_http_to_this_machine_goes_direct_whatever_proxy_is_configured() {
        let proxy = ProxyUrl::parse("http://proxy.example:3128").unwrap();
        let proxied = Route::new(ProxyChoice::Explicit(proxy), RouteSource::OwnSection);
        let direct = Route::new(ProxyChoice::Direct, RouteSource::PlainHttpToThisMachine);
        assert_eq!(direct_for_plain_http(proxied.clone(), true), direct);
        let environment = Route::new(ProxyChoice::System, RouteSource::Environment);
        assert_eq!(direct_for_plain_http(environment, true), direct);
        assert_eq!(direct_for_plain_http(proxied.clone(), false), proxied);
        let dp = Route::new(ProxyChoice::Direct, RouteSource::DisableProxy);
        assert_eq!(direct_for_plain_http(dp.clone(), true), dp);
    }

    #[test]
    fn threatq_verify_tls_false_leaves_tap_verifying() {
        let threatq = ThreatqSection {
            verify_tls: false,
            ..threatq_section()
        };
        let tap = TapSection::default();
        let flags = NetworkFlags::default();
        assert!(!threatq_network(&threatq, &flags).verify_tls);
        let tap_options = tap_network(&tap, &flags, ProxyChoice::System);
        assert!(tap_options.verify_tls, "[threatq] verify_tls reached TAP");
        assert_eq!(tap_options.side, Side::Tap);

        // And the other way round.
        let tap = TapSection {
            verify_tls: false,
            ..TapSection::default()
        };
        assert!(!tap_network(&tap, &flags, ProxyChoice::System).verify_tls);
        assert!(threatq_network(&threatq_section(), &flags).verify_tls);
    }

    #[test]
    fn each_ca_file_reaches_only_its_own_side() {
        let tap = TapSection {
            ca_file: Some(PathBuf::from("/etc/ssl/tap-ca.pem")),
            ..TapSection::default()
        };
        let threatq = ThreatqSection {
            ca_file: Some(PathBuf::from("/etc/ssl/threatq-ca.pem")),
            ..threatq_section()
        };
        let flags = NetworkFlags::default();
        assert_eq!(
            tap_network(&tap, &flags, ProxyChoice::System).ca_file,
            Some(PathBuf::from("/etc/ssl/tap-ca.pem"))
        );
        assert_eq!(
            threatq_network(&threatq, &flags).ca_file,
            Some(PathBuf::from("/etc/ssl/threatq-ca.pem"))
        );
        // A [tap] ca_file alone leaves ThreatQ on the system store, and a
        // [threatq] one alone leaves TAP there.
        assert_eq!(threatq_network(&threatq_section(), &flags).ca_file, None);
        assert_eq!(
            tap_network(&TapSection::default(), &flags, ProxyChoice::System).ca_file,
            None
        );
    }

    #[test]
    fn disable_ssl_turns_off_both_sides() {
        let flags = NetworkFlags {
            disable_ssl: true,
            ..NetworkFlags::default()
        };
        assert!(!threatq_network(&threatq_section(), &flags).verify_tls);
        assert!(!tap_network(&TapSection::default(), &flags, ProxyChoice::System).verify_tls);
        assert!(DISABLE_SSL_WARNING.contains("TAP") && DISABLE_SSL_WARNING.contains("ThreatQ"));
    }

    #[test]
    fn the_tap_route_is_the_one_given_and_threatq_takes_the_system_one_unless_dp() {
        let flags = NetworkFlags::default();
        let route = ProxyChoice::Explicit(proxy("http://proxy:3128"));
        assert_eq!(
            tap_network(&TapSection::default(), &flags, route.clone()).proxy,
            route
        );
        assert_eq!(
            threatq_network(&threatq_section(), &flags).proxy,
            ProxyChoice::System
        );
        let direct = NetworkFlags {
            disable_proxy: true,
            ..NetworkFlags::default()
        };
        assert_eq!(
            threatq_network(&threatq_section(), &direct).proxy,
            ProxyChoice::Direct
        );
    }

    /// What a table cell of docs/sync.md, "Proxies", stands for.
    fn cells(cell: &str) -> Vec<bool> {
        match cell {
            "yes" | "set" => vec![true],
            "no" | "unset" => vec![false],
            "any" => vec![false, true],
            other => panic!("docs/sync.md, Proxies: unknown cell `{other}`"),
        }
    }

    /// docs/sync.md's table of proxies is what `threatq_route` and
    /// `tap_route` do, for every combination of `-dp`, `-ep`, both
    /// sections' `proxy` and ThreatQ's UI proxy, each covered by exactly one
    /// row. "environment" is `ProxyChoice::System`: reqwest then reads
    /// `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`.
    #[test]
    fn every_proxy_combination_routes_as_docs_sync_md_says() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/sync.md");
        let docs = std::fs::read_to_string(&path).expect("docs/sync.md");
        let section = &docs[docs.find("\n## Proxies\n").expect("a Proxies section")..];
        let rows: Vec<Vec<String>> = section
            .lines()
            .skip_while(|line| !line.starts_with("| `-dp`"))
            .skip(2)
            .take_while(|line| line.starts_with('|'))
            .map(|line| {
                line.trim_matches('|')
                    .split('|')
                    .map(|cell| cell.trim().to_owned())
                    .collect()
            })
            .collect();
        assert!(rows.len() >= 9, "{rows:?}");

        let threatq_proxy = proxy("http://threatq-proxy:3128");
        let tap_proxy = proxy("http://tap-proxy:3128");
        let ui_proxy = proxy("http://ui-proxy:3128");
        let expected = |cell: &str| -> Option<ProxyChoice> {
            match cell.trim_end_matches(" (warning)") {
                "no proxy" => Some(ProxyChoice::Direct),
                "environment" => Some(ProxyChoice::System),
                "`[threatq] proxy`" => Some(ProxyChoice::Explicit(threatq_proxy.clone())),
                "`[tap] proxy`" => Some(ProxyChoice::Explicit(tap_proxy.clone())),
                "ThreatQ's UI proxy" => Some(ProxyChoice::Explicit(ui_proxy.clone())),
                "refused" => None,
                other => panic!("docs/sync.md, Proxies: unknown route `{other}`"),
            }
        };
        let mut covered = std::collections::BTreeMap::new();
        for row in &rows {
            let [dp, ep, tq, tap, ui, threatq_side, tap_side] = row.as_slice() else {
                panic!("a row of seven cells: {row:?}");
            };
            for dp in cells(dp) {
                for ep in cells(ep) {
                    for tq in cells(tq) {
                        for tap in cells(tap) {
                            for ui in cells(ui) {
                                let combination = (dp, ep, tq, tap, ui);
                                let earlier = covered.insert(combination, row.clone());
                                assert!(
                                    earlier.is_none(),
                                    "{combination:?} in two rows: {row:?}, {earlier:?}"
                                );
                                let flags = NetworkFlags {
                                    disable_proxy: dp,
                                    external_proxy: ep,
                                    disable_ssl: false,
                                };
                                let tq = tq.then_some(&threatq_proxy);
                                let tap = tap.then_some(&tap_proxy);
                                let ui = ui.then_some(&ui_proxy);
                                let tap_got = tap_route(&flags, tap, tq, ui);
                                let warned = tap_got.as_ref().is_ok_and(|route| {
                                    route.source == RouteSource::ExternalProxyNamedNone
                                });
                                assert_eq!(
                                    tap_got.as_ref().ok().map(|route| route.proxy.clone()),
                                    expected(tap_side),
                                    "TAP, {combination:?}: {tap_got:?}"
                                );
                                assert_eq!(
                                    warned,
                                    tap_side.ends_with("(warning)"),
                                    "{combination:?}"
                                );
                                // A refusal names both ways out.
                                if let Err(problem) = &tap_got {
                                    assert!(problem.contains("leave out -ep"), "{problem}");
                                    assert!(problem.contains("remove `proxy`"), "{problem}");
                                    assert_eq!(threatq_side, "refused");
                                    continue;
                                }
                                assert_eq!(
                                    Some(threatq_route(&flags, tq).proxy),
                                    expected(threatq_side),
                                    "ThreatQ, {combination:?}"
                                );
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(covered.len(), 32, "every combination has its row");
    }

    /// The one thing the table's "any" could hide: without `-ep`, TAP
    /// never takes a proxy configured for ThreatQ, whatever ThreatQ's UI
    /// says, and ThreatQ never takes TAP's.
    #[test]
    fn without_ep_no_side_takes_the_other_sides_proxy() {
        let threatq_proxy = proxy("http://threatq-proxy:3128");
        let tap_proxy = proxy("http://tap-proxy:3128");
        let flags = NetworkFlags::default();
        for ui in [None, Some(&threatq_proxy)] {
            let route = tap_route(&flags, None, Some(&threatq_proxy), ui).expect("a route");
            assert_eq!(route.proxy, ProxyChoice::System);
            assert_eq!(route.source, RouteSource::Environment);
        }
        let threatq = ThreatqSection {
            proxy: None,
            ..threatq_section()
        };
        assert_eq!(threatq_network(&threatq, &flags).proxy, ProxyChoice::System);
        let with_tap_proxy = tap_route(&flags, Some(&tap_proxy), None, None).expect("a route");
        assert_eq!(with_tap_proxy.proxy, ProxyChoice::Explicit(tap_proxy));
        let threatq = ThreatqSection {
            proxy: Some(threatq_proxy.clone()),
            ..threatq_section()
        };
        assert_eq!(
            threatq_network(&threatq, &flags).proxy,
            ProxyChoice::Explicit(threatq_proxy)
        );
    }

    #[test]
    fn the_ep_refusal_masks_the_tap_proxys_password() {
        let flags = NetworkFlags {
            external_proxy: true,
            ..NetworkFlags::default()
        };
        let tap_proxy = proxy("http://squid:Pr0xy-Pa55@tap-proxy:3128");
        let problem = tap_route(&flags, Some(&tap_proxy), None, None).expect_err("refused");
        assert!(problem.contains("squid:***@tap-proxy"), "{problem}");
        assert!(!problem.contains("Pr0xy-Pa55"), "{problem}");
    }

    #[test]
    fn invalid_explicit_proxy_is_refused_without_its_password() {
        let message = ProxyUrl::parse("ftp://user:hunter2-proxy@proxy:21").unwrap_err();
        assert!(message.contains("ftp://user:***@proxy:21"), "{message}");
        assert!(!message.contains("hunter2-proxy"), "{message}");
        let message = ProxyUrl::parse("http://user:hunter2-proxy@proxy:99999").unwrap_err();
        assert!(!message.contains("hunter2-proxy"), "{message}");
        assert!(message.contains("user:***@proxy"), "{message}");
    }

    #[test]
    fn a_proxy_prints_without_its_password_but_keeps_it_for_the_client() {
        let proxy = proxy("http://user:pa55-proxy@proxy.example:3128");
        assert_eq!(proxy.to_string(), "http://user:***@proxy.example:3128");
        assert_eq!(
            format!("{proxy:?}"),
            "ProxyUrl(http://user:***@proxy.example:3128)"
        );
        assert_eq!(
            format!("{:?}", ProxyChoice::Explicit(proxy.clone())),
            "Explicit(ProxyUrl(http://user:***@proxy.example:3128))"
        );
        assert_eq!(proxy.expose_url().password(), Some("pa55-proxy"));
        assert_eq!(proxy.password(), Some("pa55-proxy"));
        assert_eq!(
            toml::Value::try_from(&proxy).unwrap().as_str(),
            Some("http://user:pa55-proxy@proxy.example:3128")
        );
    }

    #[test]
    fn redact_url_masks_every_userinfo_password_and_nothing_else() {
        for (text, expected) in [
            ("http://user:pass@proxy:3128", "http://user:***@proxy:3128"),
            (
                "via `socks5h://u:p%40ss@h:1080/` and https://a:b@c/d?e=f@g",
                "via `socks5h://u:***@h:1080/` and https://a:***@c/d?e=f@g",
            ),
            // Not a URL the parser accepts: the user info still ends at the
            // last `@` of the authority.
            (
                "http://user:p@ss:w@rd@proxy:99999",
                "http://user:***@proxy:99999",
            ),
            ("http://user@proxy:3128", "http://user@proxy:3128"),
            (
                "https://tap.example/v2/siem?x=a@b",
                "https://tap.example/v2/siem?x=a@b",
            ),
            ("no url here: a@b", "no url here: a@b"),
            ("", ""),
        ] {
            assert_eq!(redact_url(text), expected, "{text}");
        }
    }

    #[test]
    fn invalid_explicit_proxy_is_named_in_the_error() {
        let message = ProxyUrl::parse("::not a url::").unwrap_err();
        assert!(message.contains("::not a url::"), "{message}");
    }

    #[test]
    fn ca_file_without_certificates_is_refused_with_the_path_and_the_section() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        for (side, section) in [(Side::Tap, "[tap]"), (Side::Threatq, "[threatq]")] {
            let options = NetworkOptions {
                ca_file: Some(path.clone()),
                ..NetworkOptions::new(side)
            };
            let err = format!("{:#}", build_client(&options).unwrap_err());
            assert!(err.contains("ca.pem"), "{err}");
            assert!(err.contains(section), "{err}");
        }
        let missing = NetworkOptions {
            ca_file: Some(dir.path().join("missing.pem")),
            ..NetworkOptions::new(Side::Tap)
        };
        let err = format!("{:#}", build_client(&missing).unwrap_err());
        assert!(err.contains("[tap]") && !err.contains("[threatq]"), "{err}");
    }

    #[test]
    fn every_proxy_choice_builds() {
        for proxy in [
            ProxyChoice::System,
            ProxyChoice::Direct,
            ProxyChoice::Explicit(proxy("http://127.0.0.1:3128")),
            ProxyChoice::Explicit(proxy("http://user:secret@127.0.0.1:3128")),
        ] {
            build_client(&NetworkOptions {
                proxy,
                ..NetworkOptions::new(Side::Tap)
            })
            .unwrap();
        }
    }
}
