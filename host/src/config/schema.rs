//! What the config file holds: its sections, with serde's view of them.

use educe::Educe;

use super::*;

/// The whole config file.
///
/// Secrets are [`SecretString`]s: their Debug prints a placeholder and they
/// have no Display, so formatting a section cannot log one; only the config
/// writer serialises them (`serialize_with`), into this owner-only file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub threatq: ThreatqSection,
    #[serde(default)]
    pub tap: TapSection,
    #[serde(default, skip_serializing_if = "RunSection::is_empty")]
    pub run: RunSection,
}

/// How a run is bounded: its deadline, the sandbox's memory, the size of
/// one TAP answer, and each request's time (docs/sync.md, "Deadlines" and
/// "Windows that fit"). Every key is optional; unset means the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_minutes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tap_response_mib: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tap_request_timeout_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threatq_request_timeout_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_max_attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_max_age_days: Option<u32>,
}

impl RunSection {
    pub fn is_empty(&self) -> bool {
        *self == RunSection::default()
    }
}

/// How to reach and log in to ThreatQ. Equality compares the password's
/// text, which `SecretString` itself will not.
#[derive(Debug, Clone, Serialize, Deserialize, Educe)]
#[educe(PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ThreatqSection {
    pub host: HostUrl,
    pub client_id: String,
    pub username: String,
    #[serde(serialize_with = "serialize_secret")]
    #[educe(PartialEq(method(same_secret)))]
    pub password: SecretString,
    /// Status of the indicators the connector creates.
    #[serde(default = "default_status")]
    pub status: String,
    /// Status an indicator the connector created is moved to when TAP
    /// later judges its threat a false positive (`None`:
    /// [`DEFAULT_FALSE_POSITIVE_STATUS`]); only while it still has `status`
    /// (docs/mapping.md, "Verdict changes").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub false_positive_status: Option<String>,
    /// Extra CA certificate (PEM) trusted on top of the system store, for
    /// a ThreatQ behind a corporate CA; ThreatQ's connection only (TAP's is
    /// [`TapSection::ca_file`]). Relative paths are taken from the config
    /// directory, since cron's working directory is arbitrary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Proxy for the ThreatQ connection; TAP traffic takes it only with
    /// `-ep`, when ThreatQ's UI names no proxy (`http::tap_route`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyUrl>,
    /// Verify ThreatQ's certificate (TAP's is [`TapSection::verify_tls`]);
    /// `-ds` overrides this to false for one run.
    #[serde(default = "default_threatq_verify_tls")]
    pub verify_tls: bool,
}

/// TAP settings; each one set here wins over ThreatQ's UI, and one set
/// nowhere takes its default from its declaration in [`keys`] (applied
/// by `settings`). `ca_file` and `verify_tls` are the TAP connection's TLS
/// settings (ThreatQ's UI has none), independent of `[threatq]`'s.
/// Equality compares the secret's text, which `SecretString` itself will
/// not.
#[derive(Debug, Clone, Serialize, Deserialize, Educe)]
#[educe(Default, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TapSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<HostUrl>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_optional_secret"
    )]
    #[educe(PartialEq(method(same_optional_secret)))]
    pub secret: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_hours: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_incidents: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlap_minutes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety_margin_seconds: Option<u32>,
    /// Days a forwarded message stays in the message index, so a later
    /// click is related to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_index_days: Option<u32>,
    /// Days before a threat's forensics are fetched again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threat_refresh_days: Option<u32>,
    /// Hours before a campaign's details and forensics are fetched again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign_refresh_hours: Option<u32>,
    /// Threat summaries asked of TAP in any 24 hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threat_summaries_per_day: Option<u32>,
    /// Hours between readings of TAP's people lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub people_refresh_hours: Option<u32>,
    /// The days TAP's people lists cover (14, 30 or 90).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub people_window_days: Option<u32>,
    /// Extra CA certificate (PEM) trusted for the TAP connection, on top of
    /// the system store (a TLS-inspecting proxy's CA). Relative paths are
    /// taken from the config directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Verify TAP's certificate; `-ds` overrides this to false for one
    /// run. Written only when false.
    #[serde(skip_serializing_if = "is_true")]
    #[educe(Default(expression = keys::TAP_VERIFY_TLS.value.default))]
    pub verify_tls: bool,
    /// Proxy for the TAP connection (`-dp` bypasses it; `-ep` is refused
    /// beside it). ThreatQ's is [`ThreatqSection::proxy`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyUrl>,
    /// ThreatQ's UI may name the TAP host even though the secret is set
    /// here (`settings` refuses that otherwise). Written only when true.
    #[serde(skip_serializing_if = "is_false")]
    #[educe(Default(expression = keys::TAP_HOSTNAME_FROM_UI.value.default))]
    pub hostname_from_ui: bool,
    /// An `http://` TAP host other than this machine is accepted. Written
    /// only when true.
    #[serde(skip_serializing_if = "is_false")]
    #[educe(Default(expression = keys::TAP_ALLOW_PLAIN_HTTP.value.default))]
    pub allow_plain_http: bool,
}

impl TapSection {
    /// True when every TAP setting a run needs is set here, so a run does
    /// not depend on ThreatQ's connector entry.
    pub fn is_complete(&self) -> bool {
        self.hostname.is_some()
            && self.principal.is_some()
            && self.secret.is_some()
            && self.history_hours.is_some()
            && self.create_incidents.is_some()
    }
}

fn default_status() -> String {
    DEFAULT_STATUS.to_owned()
}

fn default_threatq_verify_tls() -> bool {
    keys::THREATQ_VERIFY_TLS.value.default
}

fn same_secret(a: &SecretString, b: &SecretString) -> bool {
    a.expose_secret() == b.expose_secret()
}

fn same_optional_secret(a: &Option<SecretString>, b: &Option<SecretString>) -> bool {
    a.as_ref().map(ExposeSecret::expose_secret) == b.as_ref().map(ExposeSecret::expose_secret)
}

fn is_true(value: &bool) -> bool {
    *value
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// The config writer's only way to a secret's text: `SecretString` has no
/// `Serialize` of its own, so nothing else (state, export) can write one.
fn serialize_secret<S: Serializer>(
    secret: &SecretString,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_secret())
}

fn serialize_optional_secret<S: Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => serialize_secret(secret, serializer),
        None => serializer.serialize_none(),
    }
}

/// A scheme, host and optional port, and nothing else: the base of an API.
///
/// Written as a bare host (`threatq.example.com`, `10.0.0.5:8443`, which
/// mean HTTPS) or as a URL (`http://127.0.0.1:8080`).
#[derive(Clone, PartialEq, Eq)]
pub struct HostUrl(Url);

impl HostUrl {
    /// Parses a bare host or a URL; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err("is empty; expected a host name such as `threatq.example.com` or a URL such as `https://threatq.example.com:8443`".to_owned());
        }
        // Messages quote the value, but never a password in it.
        let shown = redact_url(trimmed);
        let with_scheme = if trimmed.contains("://") {
            trimmed.to_owned()
        } else {
            format!("https://{trimmed}")
        };
        let url = Url::parse(&with_scheme)
            .map_err(|e| format!("`{shown}` is not a valid host or URL ({e})"))?;
        if url.scheme() != "https" && url.scheme() != "http" {
            return Err(format!(
                "`{shown}` uses scheme `{}`; only `https://` and `http://` are supported",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("`{shown}` has no host name"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "`{shown}` contains credentials; put them in their own keys, not in the host"
            ));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            let mut base = url.clone();
            base.set_path("");
            base.set_query(None);
            base.set_fragment(None);
            return Err(format!(
                "`{shown}` has a path, query or fragment; give only the scheme, host and port, e.g. `{}`",
                base.as_str().trim_end_matches('/')
            ));
        }
        Ok(Self(url))
    }

    /// The parsed URL (its path is always `/`).
    pub fn url(&self) -> &Url {
        &self.0
    }

    /// Scheme and authority without a trailing slash, e.g.
    /// `https://tap-api-v2.proofpoint.com`: the form the TAP component's
    /// `tap-base-url` setting expects.
    pub fn base(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }

    /// The host name or IP address alone.
    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }
}

impl fmt::Display for HostUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base())
    }
}

impl fmt::Debug for HostUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostUrl({})", self.base())
    }
}

impl Serialize for HostUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.base())
    }
}

impl<'de> Deserialize<'de> for HostUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        HostUrl::parse(&text).map_err(serde::de::Error::custom)
    }
}
