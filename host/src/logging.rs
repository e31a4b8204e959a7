//! Where log lines go and what they may contain.
//!
//! Lines go to `DIR/tq-conn-proofpoint-tap.log` (appended, for logrotate)
//! or to stdout, with UTC RFC 3339 timestamps and the emitting module.
//! Every line passes through a redactor before it is written: it masks the
//! secret values registered at start (once per run, by `run`) and anything
//! shaped like a credential (`Authorization:` headers, bearer tokens,
//! `password`/`secret`/`token` fields, the password in a URL's
//! `user:password@`). Code should never log a secret, and the secret types
//! (`SecretString`, `urls::ProxyUrl`) make that hard to do by accident; the
//! redactor is the safety net for the day someone logs a request or a
//! string by mistake.
//!
//! Before that, every field value of every event (the message too) has its
//! control characters escaped ([`escape_controls`]): strings from TAP and
//! ThreatQ (a subject, a URL, an error body) reach log fields through
//! `%` and `{}`, which tracing writes as they are, and a line break or an
//! ANSI escape in one would forge a log line or rewrite the operator's
//! terminal. The formatter ([`EscapingFields`]) does it for every field,
//! so no call site has to remember; standard error ([`crate::exit`]) and
//! `replay --list` use the same function.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::fs::OpenOptions;
use std::io::{self, IsTerminal as _, Write};
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, RwLock};

use anyhow::Context as _;
use regex::Regex;
use tracing::field::{Field, Visit};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::UtcTime;
use tracing_subscriber::fmt::{FormatFields, MakeWriter};

/// Where log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    /// A directory; the log file inside it is appended to.
    Dir(PathBuf),
}

/// How much is logged (the legacy `-v {1,2,3}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Verbosity {
    /// Warnings and errors.
    #[default]
    #[value(name = "1")]
    Warnings,
    /// Also what each run did.
    #[value(name = "2")]
    Info,
    /// Everything, for troubleshooting.
    #[value(name = "3")]
    Everything,
}

/// The log file's name inside the log directory.
pub const LOG_FILE_NAME: &str = "tq-conn-proofpoint-tap.log";

/// Environment variable that overrides the verbosity's filter.
pub const FILTER_ENV: &str = "TQ_CONN_LOG";

/// What replaces a secret in a log line.
pub const MASK: &str = "***";

/// Secrets shorter than this are not masked by value: masking every `ab`
/// in every line would make the log unreadable while protecting nothing.
pub const MIN_REGISTERED_SECRET_LEN: usize = 4;

/// The crates whose logs the verbosity flag controls; everything else
/// (hyper, reqwest, wasmtime, ...) stays at warnings unless `-v 3`. The
/// simulators are only in a build with the `demo` feature.
const OUR_TARGETS: &[&str] = &[
    "tq_conn",
    "tq_conn_proofpoint_tap",
    "tap_runtime",
    "tap_component",
    "threatq_client",
    #[cfg(feature = "demo")]
    "tap_sim",
    #[cfg(feature = "demo")]
    "threatq_sim",
];

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Patterns that look like credentials whatever their value. Each keeps the
/// name (group 1) and masks the value.
static CREDENTIAL_PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        // `Authorization: Basic abc=`, `"authorization": "Bearer x"`,
        // `authorization=...`: the scheme and the credential.
        r#"(?i)(authorization\\?["']?\s*[:=]\s*\\?["']?)(?:(?:basic|bearer|digest|token|negotiate)\s+)?[^\s"'\\,;}&]+"#,
        // A bearer token anywhere, e.g. in a Debug of a header map.
        r"(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*",
        // `"password": "x"`, `password=x`, `client_secret: "x"`,
        // `access_token=x`, `\"password\":\"x\"` (JSON inside a string,
        // whose value ends at the next `\"`).
        r#"(?i)(\b(?:[a-z0-9]+[_-])*(?:password|passwd|secret|token|api[_-]?key)\\?["']?\s*[:=]\s*)(?:\\".*?\\"|"(?:[^"\\]|\\.)*"|'[^']*'|[^\s,;&}\]"']+)"#,
    ]
    .into_iter()
    .map(|pattern| Regex::new(pattern).expect("credential patterns are valid regexes"))
    .collect()
});

/// Registers a secret value (password, API secret, token) so that it is
/// masked wherever it appears in a log line, from now on. Values shorter
/// than [`MIN_REGISTERED_SECRET_LEN`] are ignored.
pub fn register_secret(secret: &str) {
    if secret.chars().count() < MIN_REGISTERED_SECRET_LEN {
        return;
    }
    let mut secrets = SECRETS
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // A secret with a control character in it reaches the redactor escaped
    // (the formatter escapes before the redactor sees the line).
    for form in [secret.to_owned(), escape_controls(secret).into_owned()] {
        if !secrets.contains(&form) {
            secrets.push(form);
        }
    }
    // Longest first, so a secret that contains another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// True for what must not reach a log line, standard error or a listing
/// as it is: the C0 controls (line breaks, tab, ESC, ...), DEL, the C1
/// controls (`char::is_control`), and the Unicode line and paragraph
/// separators, which some viewers break lines at.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// `text` with every [`is_unsafe_char`] written as an escape: `\n`, `\r`,
/// `\t`, and `\u{1b}` for the rest, so the line stays one line and a
/// terminal shows the escape sequence instead of obeying it. Backslashes
/// are left alone: a literal `\n` in a value is harmless (it cannot start
/// a line) and paths and JSON stay readable.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// What standard error, and anything else shown to the operator outside
/// the log, gets: one line, control characters escaped, secrets masked.
pub fn for_operator(text: &str) -> String {
    redact(&escape_controls(text))
}

/// Masks registered secrets and credential-shaped text in one log line.
pub fn redact(line: &str) -> String {
    let mut out = line.to_owned();
    {
        let secrets = SECRETS
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for secret in secrets.iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
    }
    for pattern in CREDENTIAL_PATTERNS.iter() {
        if pattern.is_match(&out) {
            out = pattern
                .replace_all(&out, format!("${{1}}{MASK}"))
                .into_owned();
        }
    }
    if out.contains("://") {
        out = crate::urls::redact_url(&out);
    }
    out
}

/// Keeps the background log writer alive; dropping it flushes every line
/// still queued, so hold it until the end of `main`.
#[must_use = "dropping the guard stops logging; keep it until the program ends"]
pub struct LogGuard {
    _worker: WorkerGuard,
}

/// Sends all logging to `target` at `verbosity`, for the whole process.
///
/// `TQ_CONN_LOG`, when set, replaces the verbosity's filter with a
/// `tracing` filter (e.g. `TQ_CONN_LOG=tq_conn=trace,hyper=debug` for a
/// support case). It is not `RUST_LOG`, which other tools on the same host
/// may set for themselves.
pub fn init(target: &LogTarget, verbosity: Verbosity) -> anyhow::Result<LogGuard> {
    let (subscriber, guard) = build(target, verbosity)?;
    tracing::subscriber::set_global_default(subscriber)
        .context("logging was already set up in this process")?;
    Ok(guard)
}

/// The subscriber [`init`] installs, for callers (and tests) that want to
/// install it only for a scope with `tracing::subscriber::with_default`.
pub fn build(
    target: &LogTarget,
    verbosity: Verbosity,
) -> anyhow::Result<(impl tracing::Subscriber + Send + Sync + 'static, LogGuard)> {
    let sink: Box<dyn Write + Send> = match target {
        LogTarget::Stdout => Box::new(io::stdout()),
        LogTarget::Dir(dir) => Box::new(open_log_file(dir)?),
    };
    // Not lossy: a cron job's log must not silently drop lines when a burst
    // of debug output fills the queue.
    let (writer, worker) = NonBlockingBuilder::default().lossy(false).finish(sink);
    let filter = match std::env::var(FILTER_ENV) {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec)
            .with_context(|| format!("{FILTER_ENV}=`{spec}` is not a valid log filter"))?,
        _ => filter_for(verbosity),
    };
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_timer(UtcTime::rfc_3339())
        .with_target(true)
        // Colour codes would split `password=` from its value and defeat the
        // redactor, and they garble cron mail.
        .with_ansi(false)
        .fmt_fields(EscapingFields)
        .with_writer(RedactingMakeWriter { inner: writer })
        .finish();
    Ok((subscriber, LogGuard { _worker: worker }))
}

/// The level filter for a verbosity: ours at warn/info/trace, third-party
/// crates at warn, or info at `-v 3` (their debug output is mostly HTTP
/// framing and compiler internals, too much for a log kept from cron).
pub fn filter_for(verbosity: Verbosity) -> EnvFilter {
    let (ours, theirs) = match verbosity {
        Verbosity::Warnings => ("warn", "warn"),
        Verbosity::Info => ("info", "warn"),
        Verbosity::Everything => ("trace", "info"),
    };
    // Every run ends with one summary line (target `summary`), whatever the
    // verbosity: it is what cron mail and monitoring read.
    let summary = if verbosity == Verbosity::Everything {
        "summary=trace"
    } else {
        "summary=info"
    };
    let directives: Vec<String> = std::iter::once(theirs.to_owned())
        .chain(OUR_TARGETS.iter().map(|target| format!("{target}={ours}")))
        .chain(std::iter::once(summary.to_owned()))
        .collect();
    EnvFilter::new(directives.join(","))
}

fn open_log_file(dir: &Path) -> anyhow::Result<std::fs::File> {
    let file = dir.join(LOG_FILE_NAME);
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Group may read (log shippers); others may not.
        options.mode(0o640);
    }
    options.open(&file).with_context(|| {
        format!(
            "cannot open the log file {} for appending: check that {} exists and is writable \
             by the user running the connector, or pass -ll stdout",
            file.display(),
            dir.display()
        )
    })
}

/// Formats the fields of events and spans as tracing's default does
/// (`message` bare, then `name=value`), with every value passed through
/// [`escape_controls`]: whatever a field holds, an event is one line.
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapingFields;

impl<'writer> FormatFields<'writer> for EscapingFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = EscapingVisitor {
            writer,
            result: Ok(()),
            empty: true,
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct EscapingVisitor<'writer> {
    writer: Writer<'writer>,
    result: fmt::Result,
    /// Nothing written yet: no separating space.
    empty: bool,
}

impl EscapingVisitor<'_> {
    fn write_field(&mut self, name: &str, value: &str) {
        if self.result.is_err() {
            return;
        }
        let value = escape_controls(value);
        let separator = if self.empty { "" } else { " " };
        self.empty = false;
        self.result = match name {
            "message" => write!(self.writer, "{separator}{value}"),
            name => write!(
                self.writer,
                "{separator}{}={value}",
                name.strip_prefix("r#").unwrap_or(name)
            ),
        };
    }
}

impl Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.write_field(field.name(), value);
        } else {
            // Quoted, as tracing's default writes a `&str` field.
            self.write_field(field.name(), &format!("{value:?}"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            let _ = write!(text, ": {cause}");
            source = cause.source();
        }
        self.write_field(field.name(), &text);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `log` records' metadata, already in the line's prefix.
        if field.name().starts_with("log.") {
            return;
        }
        self.write_field(field.name(), &format!("{value:?}"));
    }
}

/// Hands out one [`RedactingWriter`] per log event.
struct RedactingMakeWriter<M> {
    inner: M,
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingMakeWriter<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            inner: self.inner.make_writer(),
            buffer: Vec::new(),
        }
    }
}

/// Collects one whole event before redacting it, so a secret split across
/// several `write` calls is still seen whole.
struct RedactingWriter<W: Write> {
    inner: W,
    buffer: Vec<u8>,
}

impl<W: Write> RedactingWriter<W> {
    fn emit(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.buffer);
        let redacted = redact(&text);
        self.buffer.clear();
        self.inner.write_all(redacted.as_bytes())?;
        self.inner.flush()
    }
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        if let Err(e) = self.emit() {
            // The logger itself failed: stderr is the only place left.
            let _ = writeln!(
                io::stderr(),
                "tq-conn-proofpoint-tap: cannot write a log line: {e}"
            );
        }
    }
}

/// True when stdout is a terminal; the lead's progress display uses it.
pub fn stdout_is_terminal() -> bool {
    io::stdout().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_shapes_are_masked_but_their_names_stay() {
        let cases = [
            ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
            ("authorization=Bearer abc.def-ghi", "abc.def-ghi"),
            (r#"{"Authorization": "Bearer tok123"}"#, "tok123"),
            ("headers: {\"authorization\": \"Basic zzz\"}", "zzz"),
            ("sending Bearer eyJhbGciOi.x.y", "eyJhbGciOi"),
            (r#"{"password": "hunter2!"}"#, "hunter2!"),
            (r#"{"password":"with \"quote\" inside"}"#, "quote"),
            (
                "body=grant_type=password&password=letmein&client_id=c",
                "letmein",
            ),
            ("ThreatqSection { password: \"swordfish\" }", "swordfish"),
            (
                r#"{"access_token":"at-999","token_type":"bearer"}"#,
                "at-999",
            ),
            ("refresh_token=rt-888 next", "rt-888"),
            ("client_secret: 'cs-777'", "cs-777"),
            (r#"msg="{\"password\":\"escaped-pw\"}""#, "escaped-pw"),
        ];
        for (line, secret) in cases {
            let out = redact(line);
            assert!(!out.contains(secret), "{secret} survived in {out}");
            assert!(out.contains(MASK), "nothing masked in {out}");
        }
        assert!(redact("Authorization: Basic x").starts_with("Authorization: "));
    }

    #[test]
    fn url_passwords_are_masked_but_the_rest_of_the_url_stays() {
        let out = redact("proxy=http://squid:pr0xy-pa55@10.0.0.1:3128 tap=https://tap.example/v2");
        assert!(!out.contains("pr0xy-pa55"), "{out}");
        assert!(out.contains("http://squid:***@10.0.0.1:3128"), "{out}");
        assert!(out.contains("https://tap.example/v2"), "{out}");
    }

    #[test]
    fn ordinary_lines_are_left_alone() {
        let line =
            "window 2026-11-28T10:00:00Z..2026-11-28T11:00:00Z: 12 messages, 3 clicks, tokens=5";
        assert_eq!(redact(line), line);
    }

    #[test]
    fn registered_secrets_are_masked_anywhere_in_a_line() {
        register_secret("unit-test-secret-value");
        assert_eq!(
            redact("prefix unit-test-secret-value suffix"),
            "prefix *** suffix"
        );
    }

    #[test]
    fn control_characters_are_escaped_and_the_rest_left_alone() {
        assert_eq!(
            escape_controls("a\nb\r\tc\u{1b}[31md\u{7f}e\u{85}f\u{9b}g\u{2028}h"),
            "a\\nb\\r\\tc\\u{1b}[31md\\u{7f}e\\u{85}f\\u{9b}g\\u{2028}h"
        );
        let plain = r#"C:\path "quoted" {json} ünïcødé"#;
        assert!(matches!(escape_controls(plain), Cow::Borrowed(p) if p == plain));
    }

    #[test]
    fn a_secret_with_a_control_character_is_masked_escaped_too() {
        register_secret("tab\tsecret-value");
        assert_eq!(
            for_operator("x tab\tsecret-value y"),
            "x *** y",
            "escaped first, then masked"
        );
    }

    #[test]
    fn very_short_secrets_are_not_registered() {
        register_secret("ab");
        assert_eq!(redact("abc tab"), "abc tab");
    }
}
