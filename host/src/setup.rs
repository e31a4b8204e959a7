//! Writing the first config file: interactively on the first run in a
//! terminal (the legacy connector's prompts), or from flags, environment
//! variables and files with the `setup` subcommand.
//!
//! Logging in to ThreatQ is passed in as `verify`, so this module does not
//! depend on the ThreatQ client and can be tested without a server.

use std::io::{self, BufRead, IsTerminal as _, Read as _, Write};
use std::path::Path;

use anyhow::{Context as _, anyhow, bail};

use crate::cli::SetupArgs;
use crate::config::{
    self, Config, HostUrl, ProxyUrl, SecretString, TapSection, ThreatqSection, keys,
};

/// The line the legacy connector printed when its first run finished;
/// operators' runbooks look for it.
pub const CONFIGURED_MESSAGE: &str = "Connector configured. Set information in UI";

/// How many logins an interactive first run tries before giving up.
pub const MAX_LOGIN_ATTEMPTS: usize = 3;

/// Questions and answers with the operator. The terminal implementation is
/// [`TerminalPrompter`]; tests use scripted ones.
pub trait Prompter {
    /// Asks for one line; an empty answer yields `default` when given.
    fn ask(&mut self, label: &str, default: Option<&str>) -> io::Result<String>;
    /// Asks for a secret without echoing it.
    fn ask_secret(&mut self, label: &str) -> io::Result<String>;
    /// Tells the operator something.
    fn say(&mut self, message: &str) -> io::Result<()>;
}

/// Prompts on stdout, reads answers from stdin, and reads secrets from the
/// controlling terminal with echo off ([`ask_secret_on_terminal`]).
#[derive(Debug, Default)]
pub struct TerminalPrompter;

impl Prompter for TerminalPrompter {
    fn ask(&mut self, label: &str, default: Option<&str>) -> io::Result<String> {
        let mut stdout = io::stdout().lock();
        match default {
            Some(default) => write!(stdout, "{label} [{default}]: ")?,
            None => write!(stdout, "{label}: ")?,
        }
        stdout.flush()?;
        let mut line = String::new();
        if io::stdin().lock().read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "input ended before setup finished",
            ));
        }
        let answer = line.trim();
        Ok(match default {
            Some(default) if answer.is_empty() => default.to_owned(),
            _ => answer.to_owned(),
        })
    }

    fn ask_secret(&mut self, label: &str) -> io::Result<String> {
        ask_secret_on_terminal(label)
    }

    fn say(&mut self, message: &str) -> io::Result<()> {
        let mut stdout = io::stdout().lock();
        writeln!(stdout, "{message}")?;
        stdout.flush()
    }
}

/// Asks for a secret on the controlling terminal (`/dev/tty`), echo off.
///
/// Echo goes off BEFORE the prompt is printed, as Python's `getpass` does
/// (the old connector used it): an operator who types or pastes the answer
/// the moment the prompt appears must never see it on screen, and with
/// the prompt first (`rpassword::prompt_password`) the first characters
/// could arrive while echo was still on. Turning echo off also flushes
/// anything typed before the prompt, which was echoed already.
///
/// The terminal's settings are put back on every way out: the answer,
/// an error, a panic (a guard restores them on drop), and Ctrl-C. For
/// Ctrl-C the terminal sends no signal while the secret is read (`ISIG`
/// off), since a process killed by SIGINT would leave echo off; the
/// interrupt character ends the line instead (it is made the extra line
/// delimiter, `VEOL`), and the answer is an `Interrupted` error that
/// stops the set-up with nothing written.
#[cfg(unix)]
pub fn ask_secret_on_terminal(label: &str) -> io::Result<String> {
    use rustix::termios::{self, LocalModes, OptionalActions, SpecialCodeIndex};

    /// Puts the terminal back as it was when dropped.
    struct Restore<'a> {
        tty: &'a std::fs::File,
        saved: termios::Termios,
    }
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            // Nothing better to do if it fails: the terminal is gone.
            let _ = termios::tcsetattr(self.tty, OptionalActions::Now, &self.saved);
        }
    }

    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let saved = termios::tcgetattr(&tty)?;
    let interrupt = saved.special_codes[SpecialCodeIndex::VINTR];
    let mut hidden = saved.clone();
    hidden
        .local_modes
        .remove(LocalModes::ECHO | LocalModes::ISIG);
    // Enter still moves to the next line.
    hidden.local_modes.insert(LocalModes::ECHONL);
    hidden.special_codes[SpecialCodeIndex::VEOL] = interrupt;
    let restore = Restore { tty: &tty, saved };
    termios::tcsetattr(&tty, OptionalActions::Flush, &hidden)?;

    let mut out = &tty;
    write!(out, "{label}: ")?;
    out.flush()?;
    // Read by hand, not `read_line`: a line the interrupt character ends
    // has no `\n`. In canonical mode a read returns at most one line, so
    // nothing of a next answer is read ahead.
    // 0 is _POSIX_VDISABLE: no interrupt character.
    let interrupted = |bytes: &[u8]| interrupt != 0 && bytes.last() == Some(&interrupt);
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let read = match (&tty).read(&mut chunk) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        bytes.extend_from_slice(&chunk[..read]);
        if read == 0 || bytes.last() == Some(&b'\n') || interrupted(&bytes) {
            break;
        }
    }
    drop(restore);

    if interrupted(&bytes) {
        let _ = writeln!(out);
        return Err(io::Error::new(
            io::ErrorKind::Interrupted,
            "cancelled with Ctrl-C; nothing was written",
        ));
    }
    if bytes.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "input ended before setup finished",
        ));
    }
    let line = String::from_utf8(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the answer is not UTF-8 text; check the terminal's character set",
        )
    })?;
    let answer = line
        .strip_suffix('\n')
        .map_or(line.as_str(), |l| l.strip_suffix('\r').unwrap_or(l));
    Ok(answer.to_owned())
}

/// Without termios, the secret is read the way `rpassword` reads it.
#[cfg(not(unix))]
pub fn ask_secret_on_terminal(label: &str) -> io::Result<String> {
    rpassword::prompt_password(format!("{label}: "))
}

/// What to tell an operator whose connector has no config and no terminal
/// to ask in (cron, systemd, CI).
pub fn not_configured_message(dir: &Path) -> String {
    let mut message = format!(
        "{} does not exist and there is no terminal to ask for the ThreatQ connection. Either \
         run the connector once in a terminal (`tq-conn-proofpoint-tap -c {dir}`), or write the \
         file with `tq-conn-proofpoint-tap setup -c {dir} --host HOST --client-id ID --username \
         USER --password-file FILE` (TQ_HOST, TQ_CLIENT_ID, TQ_USERNAME and TQ_PASSWORD work too)",
        config::path(dir).display(),
        dir = dir.display()
    );
    if let Some(legacy) = config::find_legacy_config(dir) {
        message.push_str(". ");
        message.push_str(&legacy_note(&legacy));
    }
    message
}

/// Explains that a legacy connector's config was found but is not read.
fn legacy_note(legacy: &Path) -> String {
    format!(
        "{} looks like the previous (Python) connector's configuration; this version does not \
         read it, because that format is undocumented and may hold the password obfuscated. \
         Enter the same ThreatQ host, client id, username and password once; the TAP settings \
         in ThreatQ's UI are used as before. Remove the old file afterwards",
        legacy.display()
    )
}

/// The first run: asks on the terminal, or fails at once when stdin is not
/// a terminal, so a cron job never waits on a prompt nobody sees.
pub async fn first_run_on_terminal(
    dir: &Path,
    verify: impl AsyncFn(&ThreatqSection) -> anyhow::Result<()>,
) -> anyhow::Result<Config> {
    if !io::stdin().is_terminal() {
        bail!(not_configured_message(dir));
    }
    first_run(dir, &mut TerminalPrompter, verify).await
}

/// Asks for the ThreatQ connection as the legacy connector did (host,
/// client id, username, password, status), logs in with `verify`, asks
/// again after a failed login (keeping the earlier answers as defaults), and
/// writes the config file.
pub async fn first_run(
    dir: &Path,
    io: &mut dyn Prompter,
    verify: impl AsyncFn(&ThreatqSection) -> anyhow::Result<()>,
) -> anyhow::Result<Config> {
    let file = config::path(dir);
    if file.exists() {
        bail!(
            "{} already exists; edit it, or run `tq-conn-proofpoint-tap setup --force ...` to replace it",
            file.display()
        );
    }
    io.say(&format!(
        "No configuration in {}. Enter the ThreatQ connection (it is saved to {}).",
        dir.display(),
        file.display()
    ))?;
    if let Some(legacy) = config::find_legacy_config(dir) {
        io.say(&format!("{}.", legacy_note(&legacy)))?;
    }
    let mut previous: Option<ThreatqSection> = None;
    let mut attempt = 1;
    loop {
        let threatq = ask_threatq(io, previous.as_ref())?;
        match verify(&threatq).await {
            Ok(()) => {
                let config = Config {
                    threatq,
                    tap: TapSection::default(),
                    run: Default::default(),
                };
                config::write(dir, &config)?;
                io.say(CONFIGURED_MESSAGE)?;
                return Ok(config);
            }
            Err(e) if attempt >= MAX_LOGIN_ATTEMPTS => {
                return Err(e.context(format!(
                    "could not log in to ThreatQ after {MAX_LOGIN_ATTEMPTS} attempts; nothing \
                     was written. Check the host, client id, username and password in ThreatQ \
                     (the user's API details), then run again"
                )));
            }
            Err(e) => {
                // ThreatQ's words, escaped: this is the operator's terminal.
                io.say(&format!(
                    "Could not log in to ThreatQ: {}\nCheck the answers and try again \
                     (press Enter to keep one).",
                    crate::logging::escape_controls(&format!("{e:#}"))
                ))?;
                previous = Some(threatq);
                attempt += 1;
            }
        }
    }
}

fn ask_threatq(
    io: &mut dyn Prompter,
    previous: Option<&ThreatqSection>,
) -> anyhow::Result<ThreatqSection> {
    let host = loop {
        let shown = previous.map(|p| p.host.to_string());
        let answer = io.ask("ThreatQ Host", shown.as_deref())?;
        match HostUrl::parse(&answer) {
            Ok(host) => break host,
            Err(problem) => io.say(&format!("The host {problem}"))?,
        }
    };
    let client_id = ask_non_empty(
        io,
        "ThreatQ Client ID",
        previous.map(|p| p.client_id.as_str()),
    )?;
    let username = ask_non_empty(
        io,
        "ThreatQ Username",
        previous.map(|p| p.username.as_str()),
    )?;
    let password = loop {
        let answer = io.ask_secret("ThreatQ Password")?;
        if !answer.is_empty() {
            break SecretString::from(answer);
        }
        io.say("The password cannot be empty.")?;
    };
    let status = ask_non_empty(
        io,
        "Status",
        Some(previous.map_or(config::DEFAULT_STATUS, |p| p.status.as_str())),
    )?;
    Ok(ThreatqSection {
        host,
        client_id,
        username,
        password,
        status,
        false_positive_status: None,
        ca_file: None,
        proxy: None,
        verify_tls: keys::THREATQ_VERIFY_TLS.value.default,
    })
}

fn ask_non_empty(
    io: &mut dyn Prompter,
    label: &str,
    default: Option<&str>,
) -> anyhow::Result<String> {
    loop {
        let answer = io.ask(label, default)?;
        if !answer.trim().is_empty() {
            return Ok(answer.trim().to_owned());
        }
        io.say(&format!("{label} cannot be empty."))?;
    }
}

/// `setup`: builds the config from flags, environment (`TQ_PASSWORD`,
/// `TAP_SECRET`) and files, logs in with `verify` unless `--no-verify`, and
/// writes it. Refuses to replace an existing file without `--force`. With
/// no password source but a terminal, asks for the password.
pub async fn run_setup_command(
    dir: &Path,
    args: &SetupArgs,
    verify: impl AsyncFn(&ThreatqSection) -> anyhow::Result<()>,
) -> anyhow::Result<Config> {
    let file = config::path(dir);
    if file.exists() && !args.force {
        bail!(
            "{} already exists; pass --force to replace it (the run state beside it is kept)",
            file.display()
        );
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut password = env("TQ_PASSWORD");
    let others_given = [&args.host, &args.client_id, &args.username]
        .iter()
        .all(|value| non_empty(value).is_some());
    if password.is_none()
        && args.password_file.is_none()
        && others_given
        && io::stdin().is_terminal()
    {
        // Someone at a terminal forgot the password source: ask rather than
        // fail, without echo.
        password = Some(TerminalPrompter.ask_secret("ThreatQ Password")?);
    }
    let config = config_from_args(args, password, env("TAP_SECRET"))?;
    if !args.no_verify {
        verify(&config.threatq).await.context(
            "could not log in to ThreatQ with these values; nothing was written (pass \
             --no-verify to write the file anyway)",
        )?;
    }
    config::write(dir, &config)?;
    println!("Wrote {}. {CONFIGURED_MESSAGE}", file.display());
    Ok(config)
}

/// The config `setup` writes; `env_password` and `env_tap_secret` are the
/// values of `TQ_PASSWORD` and `TAP_SECRET`. Files given by flag win over
/// the environment. Every missing value is named in one message.
pub fn config_from_args(
    args: &SetupArgs,
    env_password: Option<String>,
    env_tap_secret: Option<String>,
) -> anyhow::Result<Config> {
    let host = non_empty(&args.host);
    let client_id = non_empty(&args.client_id);
    let username = non_empty(&args.username);
    let password = match &args.password_file {
        Some(path) => Some(read_secret_file(path, "--password-file")?),
        None => env_password,
    };
    let mut missing = Vec::new();
    if host.is_none() {
        missing.push("--host (or TQ_HOST)");
    }
    if client_id.is_none() {
        missing.push("--client-id (or TQ_CLIENT_ID)");
    }
    if username.is_none() {
        missing.push("--username (or TQ_USERNAME)");
    }
    if password.is_none() {
        missing.push("--password-file (or TQ_PASSWORD)");
    }
    let (Some(host), Some(client_id), Some(username), Some(password)) =
        (host, client_id, username, password)
    else {
        bail!("setup needs {}", missing.join(", "));
    };
    let host = HostUrl::parse(host).map_err(|problem| anyhow!("--host {problem}"))?;
    if args.status.trim().is_empty() {
        bail!(
            "--status cannot be empty; leave it out to use `{}`",
            config::DEFAULT_STATUS
        );
    }
    let proxy = proxy_from_args(args.proxy.as_deref(), args.proxy_file.as_deref(), "--proxy")?;
    let tap_proxy = proxy_from_args(
        args.tap_proxy.as_deref(),
        args.tap_proxy_file.as_deref(),
        "--tap-proxy",
    )?;
    let ca_file = match &args.ca_file {
        Some(path) if !path.is_file() => bail!(
            "--ca-file {} does not exist or is not a file; point it at a PEM certificate",
            path.display()
        ),
        Some(path) => Some(std::path::absolute(path).unwrap_or_else(|_| path.clone())),
        None => None,
    };
    let tap_hostname = non_empty(&args.tap_hostname)
        .map(HostUrl::parse)
        .transpose()
        .map_err(|problem| anyhow!("--tap-hostname {problem}"))?;
    let tap_secret = match &args.tap_secret_file {
        Some(path) => Some(read_secret_file(path, "--tap-secret-file")?),
        None => env_tap_secret,
    };
    // A run refuses a local secret without a local hostname
    // (`settings::check_destination`): say so now, not at the first run.
    if tap_secret.is_some() && tap_hostname.is_none() {
        bail!(
            "a TAP secret (--tap-secret-file or TAP_SECRET) is sent only to a TAP hostname set \
             in the config file too: pass --tap-hostname (e.g. `{}`), or leave the secret to \
             ThreatQ's UI",
            keys::TAP_HOSTNAME.value.example
        );
    }
    Ok(Config {
        threatq: ThreatqSection {
            host,
            client_id: client_id.to_owned(),
            username: username.to_owned(),
            password: SecretString::from(password),
            status: args.status.trim().to_owned(),
            false_positive_status: None,
            ca_file,
            proxy,
            verify_tls: keys::THREATQ_VERIFY_TLS.value.default,
        },
        tap: TapSection {
            hostname: tap_hostname,
            principal: non_empty(&args.tap_principal).map(str::to_owned),
            secret: tap_secret.map(SecretString::from),
            history_hours: args.history_hours,
            create_incidents: args.create_incidents,
            proxy: tap_proxy,
            ..TapSection::default()
        },
        run: Default::default(),
    })
}

/// A proxy given as `flag URL` or `flag-file FILE`. A password in the
/// flag's URL is refused: every user on the machine can read a command
/// line in `ps`, while the file stays the operator's.
fn proxy_from_args(
    url: Option<&str>,
    file: Option<&Path>,
    flag: &str,
) -> anyhow::Result<Option<ProxyUrl>> {
    let file_flag = format!("{flag}-file");
    let (text, given_as) = match (url, file) {
        (Some(url), _) => (url.to_owned(), flag.to_owned()),
        (None, Some(path)) => (
            read_secret_file(path, &file_flag)?,
            format!("{file_flag} {}", path.display()),
        ),
        (None, None) => return Ok(None),
    };
    let proxy = ProxyUrl::parse(&text).map_err(|problem| anyhow!("{given_as}: {problem}"))?;
    if url.is_some() && proxy.password().is_some() {
        bail!(
            "{flag} `{proxy}` carries a password, which other users can read in `ps`: write the \
             URL into a file only you can read and pass {file_flag} FILE instead"
        );
    }
    Ok(Some(proxy))
}

/// The trimmed value, or `None` when absent or blank.
fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Reads a secret from a file (or stdin for `-`), without the line ending
/// an editor or `echo` adds; other whitespace is part of the secret.
fn read_secret_file(path: &Path, flag: &str) -> anyhow::Result<String> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        io::stdin()
            .read_to_string(&mut text)
            .with_context(|| format!("{flag} -: cannot read standard input"))?;
    } else {
        text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "{flag} {}: cannot read the file; check the path and that it is readable",
                path.display()
            )
        })?;
    }
    let secret = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if secret.is_empty() {
        bail!("{flag} {}: the file is empty", path.display());
    }
    Ok(secret.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ExposeSecret as _;
    use std::collections::VecDeque;

    /// Answers from a script and records everything said and asked.
    struct Scripted {
        answers: VecDeque<&'static str>,
        transcript: Vec<String>,
    }

    impl Scripted {
        fn new(answers: &[&'static str]) -> Self {
            Self {
                answers: answers.iter().copied().collect(),
                transcript: Vec::new(),
            }
        }

        fn next(&mut self, label: &str) -> io::Result<String> {
            self.transcript.push(format!("? {label}"));
            self.answers
                .pop_front()
                .map(str::to_owned)
                .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "script ended"))
        }
    }

    impl Prompter for Scripted {
        fn ask(&mut self, label: &str, default: Option<&str>) -> io::Result<String> {
            let answer = self.next(label)?;
            Ok(match default {
                Some(default) if answer.is_empty() => default.to_owned(),
                _ => answer,
            })
        }
        fn ask_secret(&mut self, label: &str) -> io::Result<String> {
            self.next(label)
        }
        fn say(&mut self, message: &str) -> io::Result<()> {
            self.transcript.push(message.to_owned());
            Ok(())
        }
    }

    fn accept_only(password: &'static str) -> impl AsyncFn(&ThreatqSection) -> anyhow::Result<()> {
        async move |threatq: &ThreatqSection| {
            if threatq.password.expose_secret() == password {
                Ok(())
            } else {
                Err(anyhow!("ThreatQ answered 400: invalid_grant"))
            }
        }
    }

    #[tokio::test]
    async fn first_run_asks_the_legacy_questions_and_writes_the_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut io = Scripted::new(&["tq.example.com", "cid", "me@example.com", "pw-1", ""]);
        let config = first_run(dir.path(), &mut io, accept_only("pw-1"))
            .await
            .expect("configured");
        let asked: Vec<&str> = io
            .transcript
            .iter()
            .filter_map(|line| line.strip_prefix("? "))
            .collect();
        assert_eq!(
            asked,
            [
                "ThreatQ Host",
                "ThreatQ Client ID",
                "ThreatQ Username",
                "ThreatQ Password",
                "Status"
            ]
        );
        assert_eq!(config.threatq.status, "Review");
        assert_eq!(config.threatq.host.base(), "https://tq.example.com");
        assert_eq!(
            io.transcript.last().map(String::as_str),
            Some(CONFIGURED_MESSAGE)
        );
        assert_eq!(config::load(dir.path()).expect("loads"), Some(config));
    }

    /// The first run asks for the keys declared as asked, in the file's
    /// order, with their declared questions.
    #[tokio::test]
    async fn first_run_asks_the_declared_questions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut io = Scripted::new(&["tq.example.com", "cid", "me@example.com", "pw-1", ""]);
        first_run(dir.path(), &mut io, accept_only("pw-1"))
            .await
            .expect("configured");
        let asked: Vec<&str> = io
            .transcript
            .iter()
            .filter_map(|line| line.strip_prefix("? "))
            .collect();
        let declared: Vec<&str> = keys::ALL
            .iter()
            .filter_map(|key| key.from().prompt)
            .collect();
        assert_eq!(asked, declared);
    }

    #[tokio::test]
    async fn a_rejected_login_asks_again_keeping_earlier_answers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut io = Scripted::new(&[
            "tq.example.com",
            "cid",
            "me@example.com",
            "wrong",
            "Active",
            "",
            "",
            "",
            "right",
            "",
        ]);
        let config = first_run(dir.path(), &mut io, accept_only("right"))
            .await
            .expect("configured on the second attempt");
        assert_eq!(config.threatq.client_id, "cid");
        assert_eq!(config.threatq.status, "Active");
        assert!(io.transcript.iter().any(|l| l.contains("invalid_grant")));
    }

    #[tokio::test]
    async fn repeated_failed_logins_write_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut answers = Vec::new();
        for _ in 0..MAX_LOGIN_ATTEMPTS {
            answers.extend(["tq.example.com", "cid", "me@example.com", "wrong", ""]);
        }
        let mut io = Scripted::new(&answers);
        let error = first_run(dir.path(), &mut io, accept_only("right"))
            .await
            .expect_err("gives up");
        assert!(
            format!("{error:#}").contains("after 3 attempts"),
            "{error:#}"
        );
        assert!(!config::path(dir.path()).exists());
    }

    #[tokio::test]
    async fn a_legacy_config_beside_ours_is_pointed_out_before_the_questions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let legacy = dir.path().join("tq-conn-proofpoint-tap.yml");
        std::fs::write(&legacy, "host: 10.0.0.1\nclientid: x\npassword: gAAAA==\n").expect("write");
        assert!(
            not_configured_message(dir.path()).contains("tq-conn-proofpoint-tap.yml looks like")
        );
        let mut io = Scripted::new(&["tq.example.com", "cid", "me", "pw-1", ""]);
        first_run(dir.path(), &mut io, accept_only("pw-1"))
            .await
            .expect("configured");
        let note = io
            .transcript
            .iter()
            .position(|l| l.contains("previous (Python) connector"))
            .expect("legacy file mentioned");
        let first_question = io
            .transcript
            .iter()
            .position(|l| l.starts_with("? "))
            .expect("asked");
        assert!(note < first_question);
    }

    #[test]
    fn our_own_files_and_other_connectors_configs_are_not_taken_for_the_legacy_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let words = "host=x client_id=y password=***";
        for name in [
            "tq-conn-proofpoint-tap.state.json",
            "tq-conn-proofpoint-tap.log",
            "tq-conn-proofpoint-tap.lock",
            "tq-adversary-reader.yml",
        ] {
            std::fs::write(dir.path().join(name), words).expect("write");
        }
        assert!(!not_configured_message(dir.path()).contains("previous"));
    }

    #[tokio::test]
    async fn an_invalid_host_is_asked_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut io = Scripted::new(&[
            "https://tq.example.com/api",
            "tq.example.com",
            "cid",
            "me",
            "pw-1",
            "",
        ]);
        first_run(dir.path(), &mut io, accept_only("pw-1"))
            .await
            .expect("configured");
        assert!(io.transcript.iter().any(|l| l.contains("has a path")));
    }
}
