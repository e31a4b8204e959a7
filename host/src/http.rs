//! The two HTTP clients of a run, one per side, built in one place from the
//! operator's network choices: proxy (`-ep`, `-dp`, `proxy` in the config),
//! TLS (system trust store, `ca_file`, `-ds`) and timeouts.
//!
//! Neither client follows redirects: the TAP client serves the sandboxed
//! component, which must never be led to another authority, and ThreatQ's
//! API has no reason to redirect an authenticated API call.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

/// Where a client's traffic goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyChoice {
    /// The system's proxy settings (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`).
    System,
    /// This proxy URL for everything.
    Explicit(String),
    /// No proxy at all (`-dp`).
    Direct,
}

/// The operator's network choices for one client.
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    pub proxy: ProxyChoice,
    /// `false` with `-ds` (or `verify_tls = false`): certificates are not checked.
    pub verify_tls: bool,
    /// Extra trusted CA certificates (PEM), on top of the system's store.
    pub ca_file: Option<PathBuf>,
    pub connect_timeout: Duration,
}

impl Default for NetworkOptions {
    fn default() -> Self {
        NetworkOptions {
            proxy: ProxyChoice::System,
            verify_tls: true,
            ca_file: None,
            connect_timeout: Duration::from_secs(30),
        }
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
    builder = match &options.proxy {
        // reqwest reads the system (environment) proxy settings by default.
        ProxyChoice::System => builder,
        ProxyChoice::Direct => builder.no_proxy(),
        ProxyChoice::Explicit(url) => {
            builder.proxy(reqwest::Proxy::all(url).with_context(|| {
                format!("the proxy `{url}` is not a valid proxy URL (expected http://host:port)")
            })?)
        }
    };
    if let Some(path) = &options.ca_file {
        for cert in read_ca_file(path)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .context("cannot set up the HTTP client (TLS or proxy settings)")
}

fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path).with_context(|| {
        format!(
            "cannot read ca_file {}: check the path in [threatq] of the config",
            path.display()
        )
    })?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
        format!(
            "ca_file {} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        )
    })?;
    if certs.is_empty() {
        anyhow::bail!(
            "ca_file {} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        );
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_explicit_proxy_is_named_in_the_error() {
        let options = NetworkOptions {
            proxy: ProxyChoice::Explicit("::not a url::".into()),
            ..NetworkOptions::default()
        };
        let err = format!("{:#}", build_client(&options).unwrap_err());
        assert!(err.contains("::not a url::"), "{err}");
    }

    #[test]
    fn ca_file_without_certificates_is_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let options = NetworkOptions {
            ca_file: Some(path.clone()),
            ..NetworkOptions::default()
        };
        let err = format!("{:#}", build_client(&options).unwrap_err());
        assert!(err.contains("ca.pem"), "{err}");
    }

    #[test]
    fn every_proxy_choice_builds() {
        for proxy in [
            ProxyChoice::System,
            ProxyChoice::Direct,
            ProxyChoice::Explicit("http://127.0.0.1:3128".into()),
        ] {
            build_client(&NetworkOptions {
                proxy,
                ..NetworkOptions::default()
            })
            .unwrap();
        }
    }
}
