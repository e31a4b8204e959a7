//! The TAP settings a run uses: the connector's entry in ThreatQ's UI, with
//! every value the local config file sets winning over it
//! (docs/sync.md, "Settings").

use std::net::{Ipv4Addr, Ipv6Addr};

use anyhow::{Result, anyhow, bail};
use secrecy::{ExposeSecret, SecretString};
use tap_runtime::TapOrigin;
use threatq_client::ConnectorSettings;
use time::Duration;

use crate::config::TapSection;
use crate::config::keys;
use crate::state::Refresh;

/// The name under which the connector's settings live in ThreatQ.
pub const CONNECTOR_NAME: &str = "tq-conn-proofpoint-tap";

/// The resolved TAP settings of one run.
#[derive(Clone)]
pub struct TapSettings {
    /// Scheme, host and port of the TAP API: the only place the sandbox may reach.
    pub origin: TapOrigin,
    pub principal: String,
    /// Sent only by the sandbox's outbound hook, as Basic auth.
    pub secret: SecretString,
    pub history_hours: u32,
    pub create_incidents: bool,
    pub overlap: Duration,
    pub safety_margin: Duration,
    /// How long a forwarded message stays in the message index.
    pub message_horizon: Duration,
    /// How long fetched forensics and campaign details stay fresh.
    pub refresh: Refresh,
    /// Threat summaries allowed in any 24 hours.
    pub threat_summaries_per_day: u32,
    /// How often the people lists are read; a list older than twice this
    /// is not used.
    pub people_refresh: Duration,
    /// TAP's `window` for the people lists: 14, 30 or 90.
    pub people_window_days: u32,
}

impl std::fmt::Debug for TapSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapSettings")
            .field("origin", &self.origin.to_string())
            .field("principal", &self.principal)
            .field("secret", &self.secret)
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
    let enabled = keys::TAP_ENABLED.or_default(local.enabled.or(ui.map(|u| u.enabled)));
    if !enabled {
        return Ok(Resolved::Disabled);
    }

    let hostname = match (&local.hostname, ui.and_then(|u| u.hostname.as_deref())) {
        // The config file's value has been read as a URL already
        // (`config::HostUrl`); it goes through the same TapOrigin rules.
        (Some(host), _) => Some((
            TapOrigin::parse(host.base())
                .map_err(|e| anyhow!("[tap] hostname in the config file: {e}"))?,
            Place::File,
        )),
        (None, Some(host)) => Some((TapOrigin::parse(host).map_err(|e| {
            anyhow!("the TAP Hostname in ThreatQ's UI is not usable: {e}; correct it there or set hostname under [tap] in the config file")
        })?, Place::Ui)),
        (None, None) => None,
    };
    let secret_place = if local.secret.is_some() {
        Place::File
    } else {
        Place::Ui
    };
    let principal = local
        .principal
        .clone()
        .or_else(|| ui.and_then(|u| u.principal.clone()));
    let secret = local
        .secret
        .clone()
        .or_else(|| ui.and_then(|u| u.secret.clone()));

    let principal = principal.filter(|p| !p.is_empty());
    let secret = secret.filter(|s| !s.expose_secret().is_empty());
    let (Some((origin, hostname_place)), Some(principal), Some(secret)) =
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
    check_destination(local, &origin, hostname_place, secret_place)?;

    let history = keys::TAP_HISTORY_HOURS;
    let history_hours =
        history.or_default(local.history_hours.or(ui.and_then(|u| u.history_hours)));
    // The file's value was checked when it was read; this is the UI's.
    if !history.value.range().contains(&history_hours) {
        bail!(
            "Number of Hours to Pull Data from History is {history_hours} in ThreatQ's UI; \
             it must be between {} and {}: correct it there, or set {} under [tap]",
            history.value.min,
            history.value.max,
            history.name
        );
    }

    let people_window_days = keys::TAP_PEOPLE_WINDOW_DAYS.or_default(local.people_window_days);
    if ![14, 30, 90].contains(&people_window_days) {
        bail!(
            "[tap] people_window_days = {people_window_days}: TAP's People API covers 14, 30 or \
             90 days; set one of those in tq-conn-proofpoint-tap.toml"
        );
    }
    let minutes = |minutes: u32| Duration::minutes(i64::from(minutes));
    let seconds = |seconds: u32| Duration::seconds(i64::from(seconds));
    let hours = |hours: u32| Duration::hours(i64::from(hours));
    let days = |days: u32| Duration::days(i64::from(days));
    Ok(Resolved::Run(Box::new(TapSettings {
        origin,
        principal,
        secret,
        history_hours,
        create_incidents: keys::TAP_CREATE_INCIDENTS.or_default(
            local
                .create_incidents
                .or(ui.and_then(|u| u.create_incidents)),
        ),
        overlap: minutes(keys::TAP_OVERLAP_MINUTES.or_default(local.overlap_minutes)),
        safety_margin: seconds(
            keys::TAP_SAFETY_MARGIN_SECONDS.or_default(local.safety_margin_seconds),
        ),
        message_horizon: days(keys::TAP_MESSAGE_INDEX_DAYS.or_default(local.message_index_days)),
        refresh: Refresh {
            threats: days(keys::TAP_THREAT_REFRESH_DAYS.or_default(local.threat_refresh_days)),
            campaigns: hours(
                keys::TAP_CAMPAIGN_REFRESH_HOURS.or_default(local.campaign_refresh_hours),
            ),
        },
        threat_summaries_per_day: keys::TAP_THREAT_SUMMARIES_PER_DAY
            .or_default(local.threat_summaries_per_day),
        people_refresh: hours(
            keys::TAP_PEOPLE_REFRESH_HOURS.or_default(local.people_refresh_hours),
        ),
        people_window_days,
    })))
}

/// Where a TAP setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    File,
    Ui,
}

/// The two rules for where the TAP credentials may be sent
/// (docs/sync.md, "Where the TAP credentials go"): a secret the operator
/// put in the file goes only to a host the file names (or that
/// `hostname_from_ui` lets ThreatQ's UI name), and never in clear text
/// across the network unless `allow_plain_http` says so. Anyone who can
/// edit the connector's entry in ThreatQ, or answer for ThreatQ while its
/// certificate is not checked, could otherwise have the secret sent to
/// their own host.
fn check_destination(
    local: &TapSection,
    origin: &TapOrigin,
    hostname: Place,
    secret: Place,
) -> Result<()> {
    let hostname_from_ui = keys::TAP_HOSTNAME_FROM_UI;
    if secret == Place::File && hostname == Place::Ui && !local.hostname_from_ui {
        bail!(
            "the TAP secret is set under [tap] in the config file, but the TAP hostname \
             (`{origin}`) comes from the connector's entry in ThreatQ's UI, and whoever can \
             edit that entry could have the secret sent to a host of their choosing: set \
             `hostname` under [tap] in the config file to the TAP API host you trust \
             (Proofpoint's is `{}`), or, if ThreatQ's UI may name the TAP host, set \
             `{} = true` under [tap]",
            keys::TAP_HOSTNAME.value.example,
            hostname_from_ui.name
        );
    }
    let allow_plain_http = keys::TAP_ALLOW_PLAIN_HTTP;
    if origin.scheme() == "http" && !is_loopback(origin.host()) && !local.allow_plain_http {
        let (place, fix) = match hostname {
            Place::Ui => (
                "the TAP Hostname in ThreatQ's UI",
                "correct it there (a bare host name means https)",
            ),
            Place::File => (
                "[tap] hostname in the config file",
                "write it with https:// (or as a bare host name, which means https)",
            ),
        };
        bail!(
            "{place} (`{origin}`) uses http:// to a host other than this machine, so the TAP \
             principal and secret would cross the network in clear text: {fix}, or, if that \
             connection is protected otherwise, set `{} = true` under [tap]",
            allow_plain_http.name
        );
    }
    Ok(())
}

/// This machine, for `http://`: 127.0.0.0/8, `::1` or `localhost`
/// (`TapOrigin` keeps hosts in one canonical spelling, so no other
/// spelling of these reaches here).
fn is_loopback(host: &str) -> bool {
    if host == "localhost" {
        return true;
    }
    if let Ok(v4) = host.parse::<Ipv4Addr>() {
        return v4.is_loopback();
    }
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<Ipv6Addr>().ok())
        .is_some_and(|v6| v6.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ui(hostname: &str) -> ConnectorSettings {
        ConnectorSettings {
            enabled: true,
            hostname: Some(hostname.to_owned()),
            principal: Some("principal".into()),
            secret: Some("secret".into()),
            history_hours: None,
            create_incidents: None,
        }
    }

    fn resolve_ui(hostname: &str) -> Result<TapSettings> {
        match resolve(&TapSection::default(), Some(&ui(hostname)))? {
            Resolved::Run(settings) => Ok(*settings),
            Resolved::Disabled => panic!("enabled"),
        }
    }

    /// The keys declared as coming from ThreatQ's UI are exactly the
    /// settings its connector entry carries, all read by `resolve`.
    #[test]
    fn the_ui_keys_are_the_settings_the_connector_entry_carries() {
        // Exhaustive, so a new setting in the entry fails to compile here.
        let ConnectorSettings {
            enabled: _,
            hostname: _,
            principal: _,
            secret: _,
            history_hours: _,
            create_incidents: _,
        } = ui("tap.example.com");
        let entry = [
            "enabled",
            "hostname",
            "principal",
            "secret",
            "history_hours",
            "create_incidents",
        ];
        let mut declared: Vec<&str> = keys::ALL
            .iter()
            .filter(|key| key.from().ui.is_some())
            .inspect(|key| assert_eq!(key.section(), keys::Section::Tap))
            .map(|key| key.name())
            .collect();
        declared.sort_unstable();
        let mut entry = entry.to_vec();
        entry.sort_unstable();
        assert_eq!(declared, entry);
    }

    #[test]
    fn a_ui_history_outside_the_declared_range_is_refused_with_it() {
        let range = keys::TAP_HISTORY_HOURS.value;
        for (hours, accepted) in [
            (range.min, true),
            (range.max, true),
            (range.max + 1, false),
            (range.min - 1, false),
        ] {
            let ui = ConnectorSettings {
                history_hours: Some(hours),
                ..ui("tap.example.com")
            };
            let result = resolve(&TapSection::default(), Some(&ui));
            assert_eq!(result.is_ok(), accepted, "{hours}");
            if let Err(e) = result {
                let message = e.to_string();
                assert!(
                    message.contains(&format!("between {} and {}", range.min, range.max)),
                    "{message}"
                );
            }
        }
    }

    #[test]
    fn the_ui_hostname_becomes_one_tap_origin() {
        for text in [
            "tap-api-v2.proofpoint.com",
            "https://tap-api-v2.proofpoint.com/",
            "TAP-API-V2.proofpoint.com:443",
        ] {
            let settings = resolve_ui(text).expect("accepted");
            assert_eq!(
                settings.origin.base_url(),
                "https://tap-api-v2.proofpoint.com",
                "{text}"
            );
        }
        assert_eq!(
            resolve_ui("http://127.0.0.1:8080")
                .expect("accepted")
                .origin
                .base_url(),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn a_bad_ui_hostname_is_refused_naming_the_setting_the_value_and_the_fix() {
        for (text, says) in [
            ("https://tap.example/v2", "has a path"),
            ("tap.example.", "trailing dot"),
            ("2130706433", "127.0.0.1"),
            ("user@tap.example", "credentials"),
            ("ftp://tap.example", "scheme `ftp`"),
        ] {
            let message = format!("{:#}", resolve_ui(text).expect_err(text));
            assert!(
                message.contains("TAP Hostname in ThreatQ's UI"),
                "{message}"
            );
            // Quoted as given, except that credentials are masked.
            let quoted = text.replace("user@", "***@");
            assert!(message.contains(&format!("`{quoted}`")), "{message}");
            assert!(!message.contains("user@"), "{message}");
            assert!(message.contains(says), "{text}: {message}");
        }
    }

    #[test]
    fn the_local_hostname_goes_through_the_same_rules() {
        let local = TapSection {
            hostname: Some(crate::config::HostUrl::parse("tap.example.").expect("a URL")),
            principal: Some("p".into()),
            secret: Some("s".into()),
            ..TapSection::default()
        };
        let message = format!("{:#}", resolve(&local, None).expect_err("trailing dot"));
        assert!(message.contains("[tap] hostname"), "{message}");
        assert!(message.contains("trailing dot"), "{message}");

        let local = TapSection {
            hostname: Some(crate::config::HostUrl::parse("http://127.0.0.1:8080").expect("a URL")),
            ..local
        };
        match resolve(&local, None).expect("accepted") {
            Resolved::Run(settings) => {
                assert_eq!(settings.origin.base_url(), "http://127.0.0.1:8080")
            }
            Resolved::Disabled => panic!("enabled"),
        }
    }

    fn local(hostname: Option<&str>, secret: Option<&str>) -> TapSection {
        TapSection {
            hostname: hostname.map(|h| crate::config::HostUrl::parse(h).expect("a URL")),
            principal: Some("local-principal".into()),
            secret: secret.map(SecretString::from),
            ..TapSection::default()
        }
    }

    fn origin_of(result: Result<Resolved>) -> String {
        match result.expect("accepted") {
            Resolved::Run(settings) => settings.origin.base_url(),
            Resolved::Disabled => panic!("enabled"),
        }
    }

    /// Before: a UI hostname was taken with the local secret, so whoever
    /// could edit ThreatQ's connector entry could receive that secret.
    #[test]
    fn a_ui_hostname_with_a_local_secret_is_refused_naming_both_fixes() {
        let entry = ui("https://collector.attacker.example");
        let message = format!(
            "{:#}",
            resolve(&local(None, Some("local-secret")), Some(&entry)).expect_err("refused")
        );
        assert!(
            message.contains("TAP secret is set under [tap]"),
            "{message}"
        );
        assert!(
            message.contains("`https://collector.attacker.example`"),
            "{message}"
        );
        assert!(
            message.contains("set `hostname` under [tap] in the config file"),
            "{message}"
        );
        assert!(message.contains("`tap-api-v2.proofpoint.com`"), "{message}");
        assert!(message.contains("`hostname_from_ui = true`"), "{message}");
        assert!(!message.contains("local-secret"), "{message}");
    }

    #[test]
    fn hostname_from_ui_lets_the_ui_name_the_host_of_a_local_secret() {
        let entry = ui("tap-api-v2.proofpoint.com");
        let opted_in = TapSection {
            hostname_from_ui: true,
            ..local(None, Some("local-secret"))
        };
        match resolve(&opted_in, Some(&entry)).expect("accepted") {
            Resolved::Run(settings) => {
                assert_eq!(
                    settings.origin.base_url(),
                    "https://tap-api-v2.proofpoint.com"
                );
                assert_eq!(settings.secret.expose_secret(), "local-secret");
            }
            Resolved::Disabled => panic!("enabled"),
        }
    }

    /// Only the combination "secret here, host there" is refused.
    #[test]
    fn every_other_place_of_hostname_and_secret_is_accepted() {
        let entry = ui("https://ui-tap.example");
        for (tap, expected) in [
            // Both local: the UI's hostname is not used.
            (
                local(Some("https://local-tap.example"), Some("s")),
                "https://local-tap.example",
            ),
            // Secret from the UI, to the host the file names.
            (
                local(Some("https://local-tap.example"), None),
                "https://local-tap.example",
            ),
            // Both from the UI: whoever edits the entry holds the secret anyway.
            (local(None, None), "https://ui-tap.example"),
        ] {
            assert_eq!(origin_of(resolve(&tap, Some(&entry))), expected);
        }
        assert_eq!(
            origin_of(resolve(
                &local(Some("https://local-tap.example"), Some("s")),
                None
            )),
            "https://local-tap.example"
        );
    }

    /// Before: `http://` was accepted for any host, sending the TAP
    /// credentials across the network in clear text.
    #[test]
    fn plain_http_is_only_for_this_machine_unless_allowed() {
        for (hostname, loopback) in [
            ("http://127.0.0.1:8080", true),
            ("http://127.45.6.7", true),
            ("http://[::1]:8080", true),
            ("http://localhost:8080", true),
            ("http://LOCALHOST", true),
            ("http://tap.example.com", false),
            ("http://10.0.0.5:8080", false),
            ("http://128.0.0.1", false),
            ("http://[::2]", false),
            ("http://localhost.example.com", false),
            ("https://tap.example.com", true),
            ("tap.example.com", true),
        ] {
            let tap = local(Some(hostname), Some("s"));
            let result = resolve(&tap, None);
            assert_eq!(result.is_ok(), loopback, "{hostname}");
            if let Err(e) = result {
                let message = format!("{e:#}");
                assert!(
                    message.contains("[tap] hostname in the config file"),
                    "{message}"
                );
                assert!(message.contains("clear text"), "{message}");
                assert!(message.contains("`allow_plain_http = true`"), "{message}");
                assert!(message.contains("https://"), "{message}");
            }
            let allowed = TapSection {
                allow_plain_http: true,
                ..tap
            };
            assert!(resolve(&allowed, None).is_ok(), "{hostname} allowed");
        }
    }

    #[test]
    fn plain_http_from_the_ui_is_refused_naming_the_ui() {
        let message = format!(
            "{:#}",
            resolve_ui("http://tap.example.com").expect_err("refused")
        );
        assert!(
            message.contains("TAP Hostname in ThreatQ's UI"),
            "{message}"
        );
        assert!(message.contains("correct it there"), "{message}");
        assert!(message.contains("`allow_plain_http = true`"), "{message}");
        let allowed = TapSection {
            allow_plain_http: true,
            ..TapSection::default()
        };
        assert_eq!(
            origin_of(resolve(&allowed, Some(&ui("http://tap.example.com")))),
            "http://tap.example.com"
        );
    }
}
