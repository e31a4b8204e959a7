//! The TAP settings a run uses: the connector's entry in ThreatQ's UI, with
//! every value the local config file sets winning over it
//! (docs/sync.md, "Settings").

use anyhow::{Result, bail};
use threatq_client::ConnectorSettings;
use time::Duration;
use url::Url;

use crate::config::TapSection;

/// The name under which the connector's settings live in ThreatQ.
pub const CONNECTOR_NAME: &str = "tq-conn-proofpoint-tap";
pub const DEFAULT_HISTORY_HOURS: u32 = 24;
pub const DEFAULT_OVERLAP: Duration = Duration::minutes(30);
pub const DEFAULT_SAFETY_MARGIN: Duration = Duration::minutes(2);

/// The resolved TAP settings of one run.
#[derive(Clone)]
pub struct TapSettings {
    /// Scheme and authority of the TAP API: the only place the sandbox may reach.
    pub base_url: Url,
    pub principal: String,
    pub secret: String,
    pub history_hours: u32,
    pub create_incidents: bool,
    pub overlap: Duration,
    pub safety_margin: Duration,
}

impl std::fmt::Debug for TapSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapSettings")
            .field("base_url", &self.base_url.as_str())
            .field("principal", &self.principal)
            .field("secret", &"***")
            .field("history_hours", &self.history_hours)
            .field("create_incidents", &self.create_incidents)
            .finish()
    }
}

/// What the settings say a run should do.
#[derive(Debug)]
pub enum Resolved {
    Run(Box<TapSettings>),
    /// The connector is switched off (in ThreatQ's UI, or `enabled = false`).
    Disabled,
}

/// True when the local file alone is enough to run, so ThreatQ's connector
/// entry is optional.
pub fn local_is_complete(local: &TapSection) -> bool {
    local.hostname.is_some() && local.principal.is_some() && local.secret.is_some()
}

pub fn resolve(local: &TapSection, ui: Option<&ConnectorSettings>) -> Result<Resolved> {
    let enabled = local.enabled.or(ui.map(|u| u.enabled)).unwrap_or(true);
    if !enabled {
        return Ok(Resolved::Disabled);
    }

    let hostname = match (&local.hostname, ui.and_then(|u| u.hostname.as_deref())) {
        (Some(host), _) => Some(host.url().clone()),
        (None, Some(host)) => Some(parse_tap_host(host)?),
        (None, None) => None,
    };
    let principal = local
        .principal
        .clone()
        .or_else(|| ui.and_then(|u| u.principal.clone()));
    let secret = local
        .secret
        .as_ref()
        .map(|s| s.expose().to_owned())
        .or_else(|| ui.and_then(|u| u.secret.clone()));

    let principal = principal.filter(|p| !p.is_empty());
    let secret = secret.filter(|s| !s.is_empty());
    let (Some(base_url), Some(principal), Some(secret)) =
        (hostname.clone(), principal.clone(), secret.clone())
    else {
        let missing: Vec<&str> = [
            ("hostname", hostname.is_none()),
            ("principal", principal.is_none()),
            ("secret", secret.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, absent)| absent.then_some(name))
        .collect();
        bail!(
            "the TAP {} {} not set: set {} in the connector's entry in ThreatQ's UI \
             (Incoming Feeds, Labs), or under [tap] in the config file",
            missing.join(", "),
            if missing.len() == 1 { "is" } else { "are" },
            missing.join(", ")
        );
    };

    let history_hours = local
        .history_hours
        .or(ui.and_then(|u| u.history_hours))
        .unwrap_or(DEFAULT_HISTORY_HOURS);
    if !(1..=48).contains(&history_hours) {
        bail!(
            "Number of Hours to Pull Data from History is {history_hours} in ThreatQ's UI; \
             it must be between 1 and 48: correct it there, or set history_hours under [tap]"
        );
    }

    Ok(Resolved::Run(Box::new(TapSettings {
        base_url,
        principal,
        secret,
        history_hours,
        create_incidents: local
            .create_incidents
            .or(ui.and_then(|u| u.create_incidents))
            .unwrap_or(false),
        overlap: local
            .overlap_minutes
            .map_or(DEFAULT_OVERLAP, |m| Duration::minutes(i64::from(m))),
        safety_margin: local
            .safety_margin_seconds
            .map_or(DEFAULT_SAFETY_MARGIN, |s| Duration::seconds(i64::from(s))),
    })))
}

/// A TAP host from ThreatQ's UI: a bare host means https; a URL may carry a
/// scheme and port but no path.
fn parse_tap_host(raw: &str) -> Result<Url> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("https://{raw}")
    };
    let url = Url::parse(&with_scheme).map_err(|e| {
        anyhow::anyhow!(
            "the TAP Hostname `{raw}` in ThreatQ's UI is not a host name or URL ({e}); \
             expected e.g. tap-api-v2.proofpoint.com"
        )
    })?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        bail!("the TAP Hostname `{raw}` in ThreatQ's UI must be a host name or an http(s) URL");
    }
    if url.path() != "/" || url.query().is_some() {
        bail!(
            "the TAP Hostname `{raw}` in ThreatQ's UI must not have a path: use e.g. \
             tap-api-v2.proofpoint.com"
        );
    }
    Ok(url)
}
