//! Every key of the config file, declared once: its section, name, type,
//! default, range, where else its value may come from, and its line in the
//! README's example.
//!
//! The parser's key lists, required keys, range and empty-value checks, the
//! defaults a run falls back to, the command line's ranges and the README's
//! configuration block are all read from here, so a new key is declared
//! here and given its field in `schema.rs`, and the code that uses it reads
//! its default from here. The tests below hold each declaration to its
//! field, its parser checks and the README.

use std::ops::RangeInclusive;

/// A section of the file, in the file's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Threatq,
    Tap,
    Run,
}

impl Section {
    pub const ALL: [Section; 3] = [Section::Threatq, Section::Tap, Section::Run];

    /// The name in the file: `[threatq]` is `threatq`.
    pub const fn name(self) -> &'static str {
        match self {
            Section::Threatq => "threatq",
            Section::Tap => "tap",
            Section::Run => "run",
        }
    }

    /// The comment above the section in the README's example.
    const fn intro(self) -> &'static str {
        match self {
            Section::Threatq => "",
            Section::Tap => {
                "Optional: any value here wins over the connector's entry in ThreatQ's UI.\n\
                 When hostname, principal and secret are all here, ThreatQ's entry is not needed.\n\
                 A secret set here goes only to a hostname set here (unless hostname_from_ui)."
            }
            Section::Run => {
                "Optional: how a run is bounded (docs/sync.md, \"Deadlines\", \"Windows that fit\")."
            }
        }
    }
}

/// One key of the file. `V` is what it holds: [`Text`], [`Number`] or
/// [`Flag`], each with its default.
#[derive(Debug, Clone, Copy)]
pub struct Key<V> {
    pub section: Section,
    pub name: &'static str,
    /// The file must set it: nothing else gives it a value at run time.
    pub required: bool,
    pub value: V,
    pub from: Sources,
    /// The comment on its line in the README's example. `{range}` stands
    /// for a number's allowed range ("1 to 48"); each further line of the
    /// text is a comment line of its own.
    pub help: &'static str,
}

/// Where a key's value may come from besides the file.
#[derive(Debug, Clone, Copy)]
pub struct Sources {
    /// The question the first run in a terminal asks for it (the legacy
    /// connector's); the README's example shows these keys set.
    pub prompt: Option<&'static str>,
    /// The setting's label in the connector's entry in ThreatQ's UI, for
    /// the TAP settings that entry carries; the file's value wins over it.
    pub ui: Option<&'static str>,
    /// The flags that set it (`setup`'s) or override it for one run (the
    /// legacy ones, such as `-ds`).
    pub flags: &'static [&'static str],
}

/// A string (a host, a path or a URL is parsed from one by its own type).
#[derive(Debug, Clone, Copy)]
pub struct Text {
    /// What a missing key means; `None` when nothing does.
    pub default: Option<&'static str>,
    /// The value the README's example shows: the default, if there is one.
    pub example: &'static str,
    /// The hint an empty value is refused with; `None` when the value's
    /// own type refuses an empty one (or an empty one is harmless).
    pub if_empty: Option<&'static str>,
    /// A password or secret: its spaces are part of it, so only `""` is
    /// empty; any other text is empty when it is only spaces.
    pub secret: bool,
}

/// A whole number in a range, with a default inside it.
#[derive(Debug, Clone, Copy)]
pub struct Number {
    pub default: u32,
    pub min: u32,
    pub max: u32,
}

/// `true` or `false`.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    pub default: bool,
}

impl Text {
    const fn example(example: &'static str) -> Text {
        Text {
            default: None,
            example,
            if_empty: None,
            secret: false,
        }
    }

    const fn defaulting_to(default: &'static str) -> Text {
        Text {
            default: Some(default),
            ..Text::example(default)
        }
    }

    const fn if_empty(self, hint: &'static str) -> Text {
        Text {
            if_empty: Some(hint),
            ..self
        }
    }

    const fn secret(self) -> Text {
        Text {
            secret: true,
            ..self
        }
    }
}

impl Number {
    /// Only called in the `const` declarations below, so a default outside
    /// its range stops the build, not a run.
    const fn new(default: u32, min: u32, max: u32) -> Number {
        assert!(
            min <= default && default <= max,
            "a key's default must be inside its range"
        );
        Number { default, min, max }
    }

    pub const fn range(&self) -> RangeInclusive<u32> {
        self.min..=self.max
    }
}

impl<V: Copy> Key<V> {
    const fn new(section: Section, name: &'static str, value: V) -> Key<V> {
        Key {
            section,
            name,
            required: false,
            value,
            from: Sources {
                prompt: None,
                ui: None,
                flags: &[],
            },
            help: "",
        }
    }

    const fn required(self) -> Key<V> {
        Key {
            required: true,
            ..self
        }
    }

    const fn asked(self, prompt: &'static str) -> Key<V> {
        Key {
            from: Sources {
                prompt: Some(prompt),
                ..self.from
            },
            ..self
        }
    }

    const fn in_ui(self, label: &'static str) -> Key<V> {
        Key {
            from: Sources {
                ui: Some(label),
                ..self.from
            },
            ..self
        }
    }

    const fn flags(self, flags: &'static [&'static str]) -> Key<V> {
        Key {
            from: Sources { flags, ..self.from },
            ..self
        }
    }

    const fn help(self, help: &'static str) -> Key<V> {
        Key { help, ..self }
    }
}

impl Key<Number> {
    /// The file's value, or the default when the file has none.
    pub fn or_default(&self, value: Option<u32>) -> u32 {
        value.unwrap_or(self.value.default)
    }
}

impl Key<Flag> {
    /// The value given, or the default when there is none.
    pub fn or_default(&self, value: Option<bool>) -> bool {
        value.unwrap_or(self.value.default)
    }
}

/// Any key, whatever it holds: what the parser and the README go through.
#[derive(Debug, Clone, Copy)]
pub enum AnyKey {
    Text(&'static Key<Text>),
    Number(&'static Key<Number>),
    Flag(&'static Key<Flag>),
}

/// The same expression for each kind of key.
macro_rules! each {
    ($any:expr, $key:ident => $e:expr) => {
        match $any {
            AnyKey::Text($key) => $e,
            AnyKey::Number($key) => $e,
            AnyKey::Flag($key) => $e,
        }
    };
}

impl AnyKey {
    pub fn section(self) -> Section {
        each!(self, key => key.section)
    }

    pub fn name(self) -> &'static str {
        each!(self, key => key.name)
    }

    pub fn required(self) -> bool {
        each!(self, key => key.required)
    }

    pub fn from(self) -> Sources {
        each!(self, key => key.from)
    }

    /// The dotted name messages use: `tap.history_hours`.
    pub fn dotted(self) -> String {
        format!("{}.{}", self.section().name(), self.name())
    }

    /// The README's comment, with a number's range filled in.
    pub fn help(self) -> String {
        match self {
            AnyKey::Number(key) => key.help.replace(
                "{range}",
                &format!("{} to {}", key.value.min, key.value.max),
            ),
            AnyKey::Text(Key { help, .. }) | AnyKey::Flag(Key { help, .. }) => (*help).to_owned(),
        }
    }

    /// The value the README's example shows, as TOML.
    fn example(self) -> String {
        match self {
            AnyKey::Text(key) => format!("\"{}\"", key.value.example),
            AnyKey::Number(key) => key.value.default.to_string(),
            AnyKey::Flag(key) => key.value.default.to_string(),
        }
    }
}

/// Declares each key as a typed `const` (for the code that needs its
/// default or range) and lists them all in [`ALL`], so no key is declared
/// without being checked and documented.
macro_rules! declare {
    ($( $(#[$doc:meta])* $name:ident: $kind:ident = $key:expr; )*) => {
        $( $(#[$doc])* pub const $name: Key<$kind> = $key; )*

        /// Every key, in the file's order (the order of the README and of
        /// the "expected one of" lists).
        pub const ALL: &[AnyKey] = &[ $( AnyKey::$kind(&$name) ),* ];
    };
}

use Section::{Run, Tap, Threatq};

declare! {
    THREATQ_HOST: Text = Key::new(Threatq, "host", Text::example("threatq.example.com"))
        .required()
        .asked("ThreatQ Host")
        .flags(&["--host"])
        .help("or a URL with scheme and port: \"https://10.0.0.5:8443\"; a bare host means https");
    THREATQ_CLIENT_ID: Text = Key::new(
        Threatq,
        "client_id",
        Text::example("...").if_empty(
            "copy the Client ID from ThreatQ's OAuth Management page for the connector's user",
        ),
    )
    .required()
    .asked("ThreatQ Client ID")
    .flags(&["--client-id"])
    .help("OAuth client id from the user's API details");
    THREATQ_USERNAME: Text = Key::new(
        Threatq,
        "username",
        Text::example("connector@example.com")
            .if_empty("set the e-mail address of the ThreatQ user the connector logs in as"),
    )
    .required()
    .asked("ThreatQ Username")
    .flags(&["--username"]);
    THREATQ_PASSWORD: Text = Key::new(
        Threatq,
        "password",
        Text::example("...").secret().if_empty("set that ThreatQ user's password"),
    )
    .required()
    .asked("ThreatQ Password")
    .flags(&["--password-file"]);
    /// Status of the indicators the connector creates.
    THREATQ_STATUS: Text = Key::new(
        Threatq,
        "status",
        Text::defaulting_to("Review").if_empty(
            "set the status of new indicators, e.g. `Review`, or remove the key to use `Review`",
        ),
    )
    .asked("Status")
    .flags(&["--status"])
    .help("status of new indicators; existing ones keep an analyst's status");
    /// Where an indicator the connector created goes when TAP later judges
    /// its threat a false positive; newer ThreatQ releases may name the
    /// default otherwise, so only a configured one must exist.
    THREATQ_FALSE_POSITIVE_STATUS: Text = Key::new(
        Threatq,
        "false_positive_status",
        Text::defaulting_to("Whitelisted").if_empty(
            "set the status for indicators TAP later judges false positives, e.g. `Whitelisted`, \
             or remove the key to use `Whitelisted`",
        ),
    )
    .help(
        "where an indicator goes when TAP later calls its threat a false positive,\n\
         only while it still has `status` (docs/mapping.md, \"Verdict changes\")",
    );
    THREATQ_CA_FILE: Text = Key::new(Threatq, "ca_file", Text::example("/etc/ssl/corp-ca.pem"))
        .flags(&["--ca-file"])
        .help("extra trusted CA for ThreatQ only, on top of the system store");
    /// The ThreatQ connection's proxy. TAP traffic takes it only with
    /// `-ep`, when ThreatQ's UI names none (docs/sync.md, "Proxies");
    /// `-dp` bypasses it.
    THREATQ_PROXY: Text = Key::new(Threatq, "proxy", Text::example("http://proxy:3128"))
        .flags(&["--proxy", "--proxy-file", "-ep", "-dp"])
        .help(
            "proxy for ThreatQ (\"http://user:pass@proxy:3128\" too); TAP's too with -ep,\n\
             when ThreatQ's UI names none (docs/sync.md, \"Proxies\")",
        );
    THREATQ_VERIFY_TLS: Flag = Key::new(Threatq, "verify_tls", Flag { default: true })
        .flags(&["-ds"])
        .help("check ThreatQ's certificate; -ds overrides");

    TAP_HOSTNAME: Text = Key::new(Tap, "hostname", Text::example("tap-api-v2.proofpoint.com"))
        .in_ui("Hostname")
        .flags(&["--tap-hostname"]);
    TAP_PRINCIPAL: Text = Key::new(
        Tap,
        "principal",
        Text::example("...").if_empty(
            "set the TAP service principal, or remove the key to use the one in ThreatQ's UI",
        ),
    )
    .in_ui("API Principal")
    .flags(&["--tap-principal"]);
    TAP_SECRET: Text = Key::new(
        Tap,
        "secret",
        Text::example("...").secret().if_empty(
            "set the TAP service secret, or remove the key to use the one in ThreatQ's UI",
        ),
    )
    .in_ui("API Secret")
    .flags(&["--tap-secret-file"]);
    /// TAP keeps SIEM data for 7 days, but the legacy UI setting allowed at
    /// most 48 hours of history on a first run; we keep its limit.
    TAP_HISTORY_HOURS: Number = Key::new(Tap, "history_hours", Number::new(24, 1, 48))
        .in_ui("Number of Hours to Pull Data from History")
        .flags(&["--history-hours"])
        .help("first run only, {range}");
    TAP_CREATE_INCIDENTS: Flag = Key::new(Tap, "create_incidents", Flag { default: false })
        .in_ui("Create an Incident when a user clicked a URL")
        .flags(&["--create-incidents"])
        .help("an Incident event for every permitted click");
    /// An entry without its switch counts as on, so a missing setting
    /// never silently stops the feed.
    TAP_ENABLED: Flag = Key::new(Tap, "enabled", Flag { default: true }).in_ui("on/off switch");
    /// Re-fetching more than six hours per run would spend the TAP budget
    /// on data already sent.
    TAP_OVERLAP_MINUTES: Number = Key::new(Tap, "overlap_minutes", Number::new(30, 0, 360))
        .help("re-read for events TAP indexes late ({range})");
    /// Waiting more than an hour behind "now" only delays data.
    TAP_SAFETY_MARGIN_SECONDS: Number =
        Key::new(Tap, "safety_margin_seconds", Number::new(120, 0, 3600))
            .help("stay this far behind now ({range})");
    /// A click comes at most this long after its message to be related to
    /// it. TAP keeps SIEM data for 7 days; clicks on a message can come
    /// later than that.
    TAP_MESSAGE_INDEX_DAYS: Number = Key::new(Tap, "message_index_days", Number::new(14, 1, 90))
        .help("a click this long after its message is still related to it ({range})");
    TAP_THREAT_REFRESH_DAYS: Number = Key::new(Tap, "threat_refresh_days", Number::new(7, 1, 90))
        .help("a threat's forensics, fetched once per this ({range})");
    /// At most a month.
    TAP_CAMPAIGN_REFRESH_HOURS: Number =
        Key::new(Tap, "campaign_refresh_hours", Number::new(24, 1, 24 * 30))
            .help("a campaign's details and forensics, once per this ({range})");
    /// TAP documents no throttle for the Threat API; a thousand a day is
    /// politeness, and 0 turns summaries off.
    TAP_THREAT_SUMMARIES_PER_DAY: Number =
        Key::new(Tap, "threat_summaries_per_day", Number::new(1000, 0, 100_000))
            .help("threat summaries asked of TAP in any 24 hours; 0 for none ({range})");
    /// The People API allows 50 requests a day per list; a list changes
    /// slowly, so once a day is plenty, and a week at most.
    TAP_PEOPLE_REFRESH_HOURS: Number =
        Key::new(Tap, "people_refresh_hours", Number::new(24, 1, 24 * 7))
            .help("read the Very Attacked People and top clickers once per this ({range})");
    /// TAP takes 14, 30 or 90 (checked when the settings are resolved).
    TAP_PEOPLE_WINDOW_DAYS: Number =
        Key::new(Tap, "people_window_days", Number::new(30, 14, 90))
            .help("the days TAP's people lists cover: 14, 30 or 90 ({range})");
    TAP_CA_FILE: Text = Key::new(Tap, "ca_file", Text::example("tls-proxy-ca.pem"))
        .help("extra trusted CA for TAP only (e.g. a TLS-inspecting proxy's)");
    TAP_VERIFY_TLS: Flag = Key::new(Tap, "verify_tls", Flag { default: true })
        .flags(&["-ds"])
        .help("check TAP's certificate; -ds overrides");
    /// The TAP connection's proxy; `-ep` (ThreatQ's proxy instead) is
    /// refused beside it, so the file and the flag never disagree silently.
    TAP_PROXY: Text = Key::new(Tap, "proxy", Text::example("http://proxy:3128"))
        .flags(&["--tap-proxy", "--tap-proxy-file", "-dp"])
        .help("proxy for TAP (\"http://user:pass@proxy:3128\" too); not with -ep");
    /// The TAP secret is sent to the TAP host as Basic auth: when the secret
    /// is in this file, whoever can edit the connector's entry in ThreatQ
    /// must not be able to name that host, unless the operator says so.
    TAP_HOSTNAME_FROM_UI: Flag = Key::new(Tap, "hostname_from_ui", Flag { default: false })
        .help(
            "let ThreatQ's UI name the TAP host while secret is set here\n\
             (whoever edits the connector's entry could then receive the secret)",
        );
    /// `http://` sends the TAP credentials in clear text: only to this
    /// machine (a test server, a local relay) unless the operator says so.
    TAP_ALLOW_PLAIN_HTTP: Flag = Key::new(Tap, "allow_plain_http", Flag { default: false })
        .help("allow an http:// hostname other than 127.0.0.0/8, ::1 or localhost (clear text)");

    // `run/limits.rs` takes its defaults from these.
    /// A run must end before the next hourly one; a day is the outer bound.
    RUN_DEADLINE_MINUTES: Number = Key::new(Run, "deadline_minutes", Number::new(50, 1, 1440))
        .help("stop at a window boundary after this ({range}); keep it below the cron period");
    /// The component needs some tens of MiB for an empty window; 4 GiB is
    /// the most a 32-bit wasm memory can address.
    RUN_MEMORY_MIB: Number = Key::new(Run, "memory_mib", Number::new(256, 64, 4096))
        .help("the TAP component's memory cap ({range})");
    /// One SIEM answer; larger windows are split (docs/sync.md).
    RUN_TAP_RESPONSE_MIB: Number = Key::new(Run, "tap_response_mib", Number::new(256, 1, 2048))
        .help("one SIEM answer; a larger window is split in halves ({range})");
    /// One HTTP request, connecting to the last byte. TAP answers a busy
    /// hour in one body (no paging): a generous default.
    RUN_TAP_REQUEST_TIMEOUT_SECONDS: Number =
        Key::new(Run, "tap_request_timeout_seconds", Number::new(120, 5, 3600))
            .help("one TAP request ({range})");
    /// A consume request of 500 objects takes seconds; five minutes means
    /// ThreatQ has stopped answering (the client then retries it).
    RUN_THREATQ_REQUEST_TIMEOUT_SECONDS: Number =
        Key::new(Run, "threatq_request_timeout_seconds", Number::new(300, 5, 3600))
            .help("one ThreatQ request, retried after it ({range})");
    /// What earlier runs left undelivered (a dead letter, a verdict that
    /// waits) and was tried this many times (a run an hour: three days) is
    /// not bad luck: scheduled runs stop trying it, so a body a firewall
    /// always refuses cannot cost every run its requests; it stays in the
    /// store, undelivered and listed, until the operator's `replay`.
    RUN_RETRY_MAX_ATTEMPTS: Number =
        Key::new(Run, "retry_max_attempts", Number::new(72, 1, 10_000))
            .help("scheduled runs stop retrying a dead letter or waiting verdict tried this often ({range}); `replay` still does");
    /// Past TAP's 7 days of history the data cannot be fetched again
    /// either; what waits this long waits for the operator, like what was
    /// tried too often.
    RUN_RETRY_MAX_AGE_DAYS: Number =
        Key::new(Run, "retry_max_age_days", Number::new(7, 1, 365))
            .help("nor one waiting this many days ({range}); both are kept and listed by `replay --list`");
}

/// The keys of `section`, in the file's order.
pub fn in_section(section: Section) -> impl Iterator<Item = AnyKey> {
    ALL.iter()
        .copied()
        .filter(move |key| key.section() == section)
}

/// The names of `section`'s keys, in the file's order.
pub fn names(section: Section) -> Vec<&'static str> {
    in_section(section).map(AnyKey::name).collect()
}

/// The README's example file (its ```toml block under "Configuration"):
/// every key with its default or an example value and its comment; keys
/// the first run asks for are set, the others commented out.
pub fn example_file() -> String {
    let mut out = String::new();
    for section in Section::ALL {
        if !out.is_empty() {
            out.push('\n');
        }
        for line in section.intro().lines() {
            out.push_str(&format!("# {line}\n"));
        }
        out.push_str(&format!("[{}]\n", section.name()));
        for key in in_section(section) {
            let commented = if key.from().prompt.is_some() {
                ""
            } else {
                "# "
            };
            let assignment = format!("{commented}{} = {}", key.name(), key.example());
            let help = key.help();
            let mut lines = help.lines();
            match lines.next() {
                None => out.push_str(&format!("{assignment}\n")),
                Some(first) => out.push_str(&format!("{assignment:<36}  # {first}\n")),
            }
            for more in lines {
                out.push_str(&format!("{:<36}  # {more}\n", "#"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{Config, ConfigError, TapSection, parse};
    use crate::settings::{Resolved, resolve};

    /// A file that sets what a run needs (required keys, and TAP's
    /// connection so that settings resolve without ThreatQ's UI), with
    /// `key` set to `value` (TOML), added or in place of the base's.
    fn file_with(key: Option<(AnyKey, &str)>) -> String {
        let mut values: Vec<(Section, &str, String)> = [
            (Section::Threatq, "host", "\"threatq.example.com\""),
            (Section::Threatq, "client_id", "\"c\""),
            (Section::Threatq, "username", "\"u@example.com\""),
            (Section::Threatq, "password", "\"pw\""),
            (Section::Tap, "hostname", "\"tap.example.com\""),
            (Section::Tap, "principal", "\"p\""),
            (Section::Tap, "secret", "\"s\""),
        ]
        .into_iter()
        .map(|(section, name, value)| (section, name, value.to_owned()))
        .collect();
        if let Some((key, value)) = key {
            match values
                .iter_mut()
                .find(|(section, name, _)| *section == key.section() && *name == key.name())
            {
                Some(entry) => entry.2 = value.to_owned(),
                None => values.push((key.section(), key.name(), value.to_owned())),
            }
        }
        let mut text = String::new();
        for section in Section::ALL {
            text.push_str(&format!("[{}]\n", section.name()));
            for (_, name, value) in values.iter().filter(|(s, _, _)| *s == section) {
                text.push_str(&format!("{name} = {value}\n"));
            }
        }
        text
    }

    fn parse_in(dir: &Path, text: &str) -> Result<Config, ConfigError> {
        parse(text, &dir.join(crate::config::CONFIG_FILE_NAME), dir)
    }

    /// `key`'s value in the file `config` would be written as.
    fn written(config: &Config, key: AnyKey) -> Option<toml::Value> {
        let value = toml::Value::try_from(config).expect("serializes");
        value
            .get(key.section().name())
            .and_then(|section| section.get(key.name()))
            .cloned()
    }

    /// Everything a run takes from `[tap]`, once resolved.
    fn resolved(tap: &TapSection) -> String {
        match resolve(tap, None) {
            Ok(Resolved::Run(s)) => format!(
                "{} {} {} {:?} {:?} {:?} {:?}",
                s.origin.base_url(),
                s.history_hours,
                s.create_incidents,
                s.overlap,
                s.safety_margin,
                s.message_horizon,
                s.refresh
            ),
            Ok(Resolved::Disabled) => "disabled".to_owned(),
            Err(e) => format!("refused: {e:#}"),
        }
    }

    /// Each declared bound and default is accepted and read into its field
    /// as written; one past a bound is refused with the range.
    #[test]
    fn every_range_and_default_round_trips_through_the_parser() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(crate::config::CONFIG_FILE_NAME);
        let mut checked = 0;
        for key in ALL.iter().copied() {
            let AnyKey::Number(number) = key else {
                continue;
            };
            let Number { default, min, max } = number.value;
            for value in [min, default, max] {
                let text = file_with(Some((key, &value.to_string())));
                let config = parse_in(dir.path(), &text)
                    .unwrap_or_else(|e| panic!("{} = {value}: {e}", key.dotted()));
                assert_eq!(
                    written(&config, key),
                    Some(toml::Value::Integer(value.into())),
                    "{}",
                    key.dotted()
                );
            }
            let outside = min.checked_sub(1).into_iter().chain([max + 1]);
            for value in outside {
                let text = file_with(Some((key, &value.to_string())));
                let message = parse_in(dir.path(), &text)
                    .expect_err("out of range")
                    .to_string();
                assert_eq!(
                    message,
                    format!(
                        "`{}` = {value} in {} is out of range: must be between {min} and {max}",
                        key.dotted(),
                        file.display()
                    )
                );
            }
            checked += 1;
        }
        assert!(checked >= 11, "only {checked} numbers");
    }

    /// A missing key means its declared default: serde gives it, or the
    /// field stays unset and the run gives it (`settings` for [tap]).
    #[test]
    fn a_missing_key_means_its_declared_default() {
        let dir = tempfile::tempdir().unwrap();
        let without = parse_in(dir.path(), &file_with(None)).expect("base parses");
        for key in ALL.iter().copied() {
            let default = match key {
                AnyKey::Text(text) => match text.value.default {
                    Some(default) => format!("\"{default}\""),
                    None => continue,
                },
                AnyKey::Number(number) => number.value.default.to_string(),
                AnyKey::Flag(flag) => flag.value.default.to_string(),
            };
            let with = parse_in(dir.path(), &file_with(Some((key, &default))))
                .unwrap_or_else(|e| panic!("{} = {default}: {e}", key.dotted()));
            if with == without {
                continue;
            }
            assert_eq!(written(&without, key), None, "{}", key.dotted());
            match key.section() {
                Section::Tap => {
                    assert_eq!(
                        resolved(&with.tap),
                        resolved(&without.tap),
                        "{}",
                        key.dotted()
                    )
                }
                // `run` applies these; see the test below.
                Section::Run => {}
                // `run` reads DEFAULT_FALSE_POSITIVE_STATUS, made from the
                // declaration.
                Section::Threatq => assert_eq!(key.name(), "false_positive_status"),
            }
        }
    }

    #[test]
    fn the_run_defaults_are_the_ones_run_applies() {
        const MIB: usize = 1024 * 1024;
        let options = crate::run::RunOptions::new(".".into());
        assert_eq!(
            options.deadline.as_secs(),
            u64::from(RUN_DEADLINE_MINUTES.value.default) * 60
        );
        assert_eq!(
            options.limits.memory_bytes,
            RUN_MEMORY_MIB.value.default as usize * MIB
        );
        assert_eq!(
            options.tap_max_response_bytes,
            RUN_TAP_RESPONSE_MIB.value.default as usize * MIB
        );
    }

    #[test]
    fn every_empty_text_is_refused_with_its_hint() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(crate::config::CONFIG_FILE_NAME);
        let mut checked = 0;
        for key in ALL.iter().copied() {
            let AnyKey::Text(Key {
                value:
                    Text {
                        if_empty: Some(hint),
                        secret,
                        ..
                    },
                ..
            }) = key
            else {
                continue;
            };
            let message = parse_in(dir.path(), &file_with(Some((key, "\"\""))))
                .expect_err("empty")
                .to_string();
            let expected = format!("`{}` in {} is empty; {hint}", key.dotted(), file.display());
            assert_eq!(message, expected);
            let spaces = parse_in(dir.path(), &file_with(Some((key, "\"  \""))));
            if *secret {
                assert!(spaces.is_ok(), "{}: {spaces:?}", key.dotted());
            } else {
                assert_eq!(spaces.expect_err("blank").to_string(), expected);
            }
            checked += 1;
        }
        assert!(checked >= 7, "only {checked} texts");
    }

    /// Each number's comment gives its range; no other has a range to give.
    #[test]
    fn every_number_shows_its_range() {
        for key in ALL.iter().copied() {
            let help = each!(key, key => key.help);
            assert_eq!(
                help.contains("{range}"),
                matches!(key, AnyKey::Number(_)),
                "{}: {help}",
                key.dotted()
            );
        }
    }

    /// Every declared flag is one the command line knows: a `setup` flag,
    /// or a legacy one a run takes.
    #[test]
    fn every_declared_flag_is_on_the_command_line() {
        let command = crate::cli::command();
        let setup = command.find_subcommand("setup").expect("setup");
        for key in ALL.iter().copied() {
            for flag in key.from().flags {
                let known = match flag.strip_prefix("--") {
                    Some(long) => setup
                        .get_arguments()
                        .any(|arg| arg.get_long() == Some(long)),
                    None => crate::cli::parse_args(["tq-conn-proofpoint-tap", flag]).is_ok(),
                };
                assert!(known, "{}: {flag}", key.dotted());
            }
        }
    }

    /// Only the keys the first run asks for are set in the example, and
    /// they are the required ones and `status`.
    #[test]
    fn the_keys_the_first_run_asks_for_include_the_required_ones() {
        for key in ALL.iter().copied().filter(|key| key.required()) {
            assert!(key.from().prompt.is_some(), "{}", key.dotted());
        }
    }

    /// README.md's configuration block is [`example_file`]. On a change,
    /// run with `UPDATE_README=1` to rewrite it.
    #[test]
    fn the_readme_shows_every_key_as_declared() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let readme = std::fs::read_to_string(&path).expect("README.md");
        let heading = readme
            .find("\n## Configuration")
            .expect("a Configuration heading");
        let open = "```toml\n";
        let start = heading + readme[heading..].find(open).expect("a toml block") + open.len();
        let end = start + readme[start..].find("```").expect("the block's end");
        let expected = example_file();
        if readme[start..end] == expected {
            return;
        }
        if std::env::var_os("UPDATE_README").is_some() {
            let updated = format!("{}{expected}{}", &readme[..start], &readme[end..]);
            std::fs::write(&path, updated).expect("README.md written");
            return;
        }
        panic!(
            "README.md's configuration block is not what host/src/config/keys.rs declares; \
             run with UPDATE_README=1, or paste this block:\n{open}{expected}```\n"
        );
    }
}
