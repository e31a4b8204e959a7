//! The command line: the legacy connector's flags, unchanged, plus ours.
//!
//! The legacy connector used Python's argparse, which accepts multi-letter
//! single-dash flags (`-ll`, `-ep`, `-ds`, `-dp`). clap does not, so
//! [`parse_args`] rewrites those spellings to their long forms before clap
//! sees them, and the help lists them as the old guide did. An existing
//! crontab line keeps working: `tq-conn-proofpoint-tap -c /etc/tq_labs/ -ll /var/log/tq_labs/ -v3`.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config;

// Defined with logging, which owns what they mean; named here because
// the command line is where an operator sets them.
pub use crate::logging::{LogTarget, Verbosity};

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    pub config_dir: PathBuf,
    pub log: LogTarget,
    pub verbosity: Verbosity,
    pub external_proxy: bool,
    pub disable_ssl: bool,
    pub disable_proxy: bool,
    pub dry_run: bool,
    pub export: Option<PathBuf>,
    /// `--component FILE.wasm`, `--precompiled FILE.cwasm`, or the built-in one.
    pub component: tap_runtime::ComponentSource,
    /// `None` is the normal run.
    pub command: Option<Command>,
}

// Parsed once per process; boxing SetupArgs would only make matching on it
// clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Write the config file without prompting (for provisioning and
    /// hosts without a terminal).
    Setup(SetupArgs),
    /// Run the connector against simulated TAP and ThreatQ servers on this
    /// machine, with generated data: see what it does before pointing it
    /// at production (only in a build with `--features demo`).
    Demo(DemoArgs),
    /// Compile the TAP component (the built-in one, or `--component`) for
    /// this binary and write the artifact, for `--precompiled`.
    Precompile(PrecompileArgs),
    /// What earlier runs could not deliver: objects ThreatQ refused (dead
    /// letters) and TAP records that could not be mapped (quarantined).
    /// Without options, sends them all now; every normal run also sends
    /// the dead letters again by itself.
    Replay(ReplayArgs),
}

/// `replay`: list, send, or discard what is undelivered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct ReplayArgs {
    /// Only list each entry (its id, ThreatQ's answer, since when); send
    /// nothing.
    #[arg(long, conflicts_with = "discard")]
    pub list: bool,
    /// Remove one entry for good, by the id `--list` shows (d12, q3), after
    /// dealing with it by hand. It is logged, with what it held.
    #[arg(long, value_name = "ID", value_parser = parse_entry)]
    pub discard: Vec<crate::state::Entry>,
}

fn parse_entry(text: &str) -> Result<crate::state::Entry, String> {
    text.parse()
}

/// `precompile`: where the artifact goes.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PrecompileArgs {
    /// File to write (mode 0600); load it later with `--precompiled FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `setup`: the first-run questions answered by flags or environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct SetupArgs {
    /// ThreatQ host name or IP (HTTPS), or a URL with scheme and port.
    #[arg(long, env = "TQ_HOST", value_name = "HOST")]
    pub host: Option<String>,
    /// OAuth Client ID from the user's API details in ThreatQ.
    #[arg(long, env = "TQ_CLIENT_ID", value_name = "ID")]
    pub client_id: Option<String>,
    /// ThreatQ user (e-mail) the connector logs in as.
    #[arg(long, env = "TQ_USERNAME", value_name = "EMAIL")]
    pub username: Option<String>,
    /// File holding the ThreatQ password (`-` reads standard input);
    /// otherwise the TQ_PASSWORD environment variable is used. There is no
    /// password flag: other users could read it in `ps`.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Status given to the indicators the connector creates.
    #[arg(long, env = "TQ_STATUS", default_value = config::DEFAULT_STATUS, value_name = "STATUS")]
    pub status: String,
    /// Extra CA certificate (PEM) to trust for ThreatQ.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Proxy for ThreatQ ([threatq] proxy; TAP's too with -ep, when
    /// ThreatQ's UI names none). Refused with a password: other users
    /// could read it in `ps`; use --proxy-file.
    #[arg(long, value_name = "URL", conflicts_with = "proxy_file")]
    pub proxy: Option<String>,
    /// File holding the ThreatQ proxy's URL (`-` reads standard input),
    /// which may carry `user:password@`.
    #[arg(long, value_name = "FILE")]
    pub proxy_file: Option<PathBuf>,
    /// Proxy for TAP ([tap] proxy). Refused with a password; use
    /// --tap-proxy-file.
    #[arg(long, value_name = "URL", conflicts_with = "tap_proxy_file")]
    pub tap_proxy: Option<String>,
    /// File holding the TAP proxy's URL (`-` reads standard input), which
    /// may carry `user:password@`.
    #[arg(long, value_name = "FILE")]
    pub tap_proxy_file: Option<PathBuf>,
    /// TAP API host, set locally instead of in ThreatQ's UI.
    #[arg(long, env = "TAP_HOSTNAME", value_name = "HOST")]
    pub tap_hostname: Option<String>,
    /// TAP service principal, set locally instead of in ThreatQ's UI.
    #[arg(long, env = "TAP_PRINCIPAL", value_name = "PRINCIPAL")]
    pub tap_principal: Option<String>,
    /// File holding the TAP service secret (`-` reads standard input);
    /// otherwise the TAP_SECRET environment variable is used, if set.
    #[arg(long, value_name = "FILE")]
    pub tap_secret_file: Option<PathBuf>,
    /// Hours of history the first run fetches.
    #[arg(long, value_name = "HOURS", value_parser = clap::value_parser!(u32).range(
        i64::from(config::keys::TAP_HISTORY_HOURS.value.min)
            ..=i64::from(config::keys::TAP_HISTORY_HOURS.value.max)))]
    pub history_hours: Option<u32>,
    /// Also create an Incident for every permitted click.
    #[arg(long, value_name = "BOOL")]
    pub create_incidents: Option<bool>,
    /// Replace an existing config file.
    #[arg(long)]
    pub force: bool,
    /// Write the file without logging in to ThreatQ first.
    #[arg(long)]
    pub no_verify: bool,
}

/// `demo`: a self-contained run against local simulators.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DemoArgs {
    /// Hours of simulated TAP history to generate and move (at most 7 days,
    /// TAP's own limit).
    #[arg(long, default_value_t = 48, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=168))]
    pub hours: u32,
    /// Seed for the generated tenant, to repeat a demo exactly.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Keep the demo's config, state, log and export in DIR instead of a
    /// temporary directory that is removed afterwards.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}

/// clap's view of the command line; [`Cli`] is what the program uses.
#[derive(Debug, Parser)]
#[command(
    name = "tq-conn-proofpoint-tap",
    version,
    about = "Moves Proofpoint TAP threat data (SIEM events, campaigns, forensics) into ThreatQ.",
    after_help = "Run from cron, for example every two hours:\n  \
        0 */2 * * * tq-conn-proofpoint-tap -c /etc/tq_labs/ -ll /var/log/tq_labs/ -v3\n\
        The first run in a terminal asks for the ThreatQ connection; without a terminal use `setup`."
)]
struct RawCli {
    /// Directory for the log file, or `stdout`.
    #[arg(
        long = "loglocation",
        value_name = "DIR",
        default_value = "stdout",
        global = true
    )]
    loglocation: String,
    /// Directory holding the config file and the run state.
    #[arg(
        short = 'c',
        long = "config",
        value_name = "DIR",
        default_value = ".",
        global = true
    )]
    config: PathBuf,
    /// 1 = warnings, 2 = info, 3 = everything.
    #[arg(
        short = 'v',
        long = "verbosity",
        value_name = "LEVEL",
        value_enum,
        default_value = "1",
        global = true,
        hide_possible_values = true
    )]
    verbosity: Verbosity,
    /// Send TAP traffic through ThreatQ's proxy: the one ThreatQ's UI
    /// configures, else [threatq] proxy (refused beside [tap] proxy).
    #[arg(long = "external-proxy", global = true)]
    external_proxy: bool,
    /// Do not verify TLS certificates.
    #[arg(long = "disable-ssl", global = true)]
    disable_ssl: bool,
    /// No proxy on either side: neither a configured one nor HTTPS_PROXY.
    #[arg(long = "disable-proxy", global = true)]
    disable_proxy: bool,
    /// Fetch and map, but send nothing to ThreatQ and move no checkpoint;
    /// print what would be sent.
    #[arg(long)]
    dry_run: bool,
    /// Also write what the run sends to FILE, as JSON lines.
    #[arg(long, value_name = "FILE")]
    export: Option<PathBuf>,
    /// Run this build of the TAP component (.wasm) instead of the built-in
    /// one; it is compiled in memory on every run.
    #[arg(long, value_name = "PATH", global = true)]
    component: Option<PathBuf>,
    /// Run a component precompiled by `precompile` (.cwasm). It is native
    /// code: it is refused unless the file and its directory belong to you
    /// and nobody else can write them.
    #[arg(long, value_name = "PATH", global = true, conflicts_with = "component")]
    precompiled: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Legacy single-dash spellings and the long flags they stand for.
const LEGACY_FLAGS: &[(&str, &str)] = &[
    ("-ll", "--loglocation"),
    ("-ep", "--external-proxy"),
    ("-ds", "--disable-ssl"),
    ("-dp", "--disable-proxy"),
];

/// Parses a command line (program name first), accepting the legacy
/// spellings. The error is clap's: print it with `exit()`, which uses code
/// 2 for usage errors and 0 for `--help`/`--version`.
pub fn parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv = normalize(args.into_iter().map(Into::into).collect());
    let mut command = command();
    let with_usage = |mut error: clap::Error, command: &mut clap::Command| {
        // clap shows the usage only for some kinds of error; an operator
        // reading cron mail should always see it.
        if !matches!(
            error.kind(),
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
        ) && error.get(ContextKind::Usage).is_none()
        {
            error.insert(
                ContextKind::Usage,
                ContextValue::StyledStr(command.render_usage()),
            );
        }
        error
    };
    let matches = command
        .try_get_matches_from_mut(argv)
        .map_err(|e| with_usage(e, &mut command))?;
    let raw = RawCli::from_arg_matches(&matches)
        .map_err(|e| with_usage(e.format(&mut command), &mut command))?;
    if raw.command.is_some() && (raw.dry_run || raw.export.is_some()) {
        let error = command.error(
            ErrorKind::ArgumentConflict,
            "--dry-run and --export apply to the normal run, not to `setup`, `demo` or `precompile`",
        );
        return Err(with_usage(error, &mut command));
    }
    let log = if raw.loglocation.eq_ignore_ascii_case("stdout") {
        LogTarget::Stdout
    } else if raw.loglocation.is_empty() {
        let error = command.error(
            ErrorKind::InvalidValue,
            "-ll needs a directory or `stdout`, not an empty value",
        );
        return Err(with_usage(error, &mut command));
    } else {
        LogTarget::Dir(PathBuf::from(raw.loglocation))
    };
    Ok(Cli {
        config_dir: raw.config,
        log,
        verbosity: raw.verbosity,
        external_proxy: raw.external_proxy,
        disable_ssl: raw.disable_ssl,
        disable_proxy: raw.disable_proxy,
        dry_run: raw.dry_run,
        export: raw.export,
        component: match (raw.component, raw.precompiled) {
            (Some(wasm), _) => tap_runtime::ComponentSource::Wasm(wasm),
            (None, Some(cwasm)) => tap_runtime::ComponentSource::Precompiled(cwasm),
            (None, None) => tap_runtime::ComponentSource::Embedded,
        },
        command: raw.command,
    })
}

/// The clap command with help that shows the legacy spellings; also the
/// source for man pages or completions.
pub fn command() -> clap::Command {
    let mut command = RawCli::command();
    // Build first so the global flags and the automatic --help/--version
    // are attached to every subcommand before their help is generated.
    command.build();
    with_legacy_help(command)
}

fn with_legacy_help(command: clap::Command) -> clap::Command {
    let options = options_section(&command);
    let subcommands = if command.has_subcommands() {
        "Commands:\n{subcommands}\n\n"
    } else {
        ""
    };
    let template = format!(
        "{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{subcommands}Options:\n{options}{{after-help}}"
    );
    let names: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    let mut command = command.help_template(template);
    for name in names {
        command = command.mut_subcommand(name, with_legacy_help);
    }
    command
}

/// One line per option, legacy single-dash spelling first, aligned like
/// clap's own help.
fn options_section(command: &clap::Command) -> String {
    let rows: Vec<(String, String)> = command
        .get_arguments()
        .filter(|arg| !arg.is_hide_set() && !arg.is_positional())
        .map(|arg| (option_spelling(arg), option_description(arg)))
        .collect();
    let width = rows.iter().map(|(left, _)| left.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(left, right)| format!("  {left:<width$}  {right}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn option_spelling(arg: &clap::Arg) -> String {
    let long = arg.get_long().map(|long| format!("--{long}"));
    let legacy = long.as_deref().and_then(|long| {
        LEGACY_FLAGS
            .iter()
            .find(|(_, modern)| *modern == long)
            .map(|(legacy, _)| (*legacy).to_owned())
    });
    let short = legacy.or_else(|| arg.get_short().map(|short| format!("-{short}")));
    let mut spelling = match (short, long) {
        (Some(short), Some(long)) => format!("{short}, {long}"),
        (Some(short), None) => short,
        (None, Some(long)) => format!("    {long}"),
        (None, None) => arg.get_id().to_string(),
    };
    if arg.get_action().takes_values() {
        let value = if arg.get_id() == "verbosity" {
            "{1,2,3}".to_owned()
        } else {
            arg.get_value_names()
                .and_then(|names| names.first())
                .map_or_else(|| "VALUE".to_owned(), ToString::to_string)
        };
        spelling.push(' ');
        spelling.push_str(&value);
    }
    spelling
}

fn option_description(arg: &clap::Arg) -> String {
    let mut text = arg.get_help().map(ToString::to_string).unwrap_or_default();
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|value| value.to_string_lossy().into_owned())
        .collect();
    if !defaults.is_empty() && arg.get_action().takes_values() {
        text.push_str(&format!(" [default: {}]", defaults.join(", ")));
    }
    if let Some(env) = arg.get_env() {
        text.push_str(&format!(" [env: {}]", env.to_string_lossy()));
    }
    text
}

/// Rewrites argparse-style spellings clap cannot read; everything after
/// `--` is left alone. Values never need protecting: clap refuses a value
/// that starts with `-` (as argparse did), and no other value is rewritten.
fn normalize(args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    out.extend(iter.next());
    let mut passthrough = false;
    for arg in iter {
        let text = match arg.to_str() {
            Some(text) if !passthrough => text,
            _ => {
                out.push(arg);
                continue;
            }
        };
        if text == "--" {
            passthrough = true;
            out.push(arg);
        } else if let Some((_, modern)) = LEGACY_FLAGS.iter().find(|(legacy, _)| *legacy == text) {
            out.push(OsString::from(*modern));
        } else if let Some(rest) = text.strip_prefix("-ll") {
            // `-ll=DIR` and `-llDIR`: no other flag starts with `-l`, so the
            // rest can only be the log location.
            let value = rest.strip_prefix('=').unwrap_or(rest);
            out.push(OsString::from(format!("--loglocation={value}")));
        } else {
            out.push(arg);
        }
    }
    out
}

/// A config or log directory that cannot be used, and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("{what} {dir} does not exist: create it (`mkdir -p {dir}`) or {alternative}")]
    Missing {
        what: &'static str,
        dir: String,
        alternative: &'static str,
    },
    #[error("{what} {dir} is not a directory: {alternative}")]
    NotADirectory {
        what: &'static str,
        dir: String,
        alternative: &'static str,
    },
    #[error(
        "{what} {dir} is not {access} ({reason}): give the user running the connector access \
             (`chown` or `chmod u+rwx {dir}`) or {alternative}"
    )]
    NoAccess {
        what: &'static str,
        dir: String,
        access: &'static str,
        reason: String,
        alternative: &'static str,
    },
}

impl Cli {
    /// Checks the directories this command will use: the log directory
    /// must be writable; the config directory readable and writable (it
    /// holds the config and the run state), except for `demo`, which uses
    /// its own.
    pub fn check_dirs(&self) -> Result<(), DirError> {
        if let LogTarget::Dir(dir) = &self.log {
            check_dir(dir, LOG_DIR, false)?;
        }
        if !matches!(self.command, Some(Command::Demo(_))) {
            check_dir(&self.config_dir, CONFIG_DIR, true)?;
        }
        Ok(())
    }
}

struct DirRole {
    what: &'static str,
    alternative: &'static str,
}

const LOG_DIR: DirRole = DirRole {
    what: "log directory",
    alternative: "pass -ll stdout",
};
const CONFIG_DIR: DirRole = DirRole {
    what: "config directory",
    alternative: "pass -c with the directory that should hold tq-conn-proofpoint-tap.toml",
};

fn check_dir(dir: &Path, role: DirRole, must_read: bool) -> Result<(), DirError> {
    let shown = dir.display().to_string();
    let metadata = match fs::metadata(dir) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DirError::Missing {
                what: role.what,
                dir: shown,
                alternative: role.alternative,
            });
        }
        Err(e) => {
            return Err(DirError::NoAccess {
                what: role.what,
                dir: shown,
                access: "accessible",
                reason: e.to_string(),
                alternative: role.alternative,
            });
        }
    };
    if !metadata.is_dir() {
        return Err(DirError::NotADirectory {
            what: role.what,
            dir: shown,
            alternative: role.alternative,
        });
    }
    if must_read && let Err(e) = fs::read_dir(dir) {
        return Err(DirError::NoAccess {
            what: role.what,
            dir: shown,
            access: "readable",
            reason: e.to_string(),
            alternative: role.alternative,
        });
    }
    // Creating a file is the only reliable test: permission bits say
    // nothing about read-only mounts, ACLs or root.
    if let Err(e) = tempfile::tempfile_in(dir) {
        return Err(DirError::NoAccess {
            what: role.what,
            dir: shown,
            access: "writable",
            reason: e.to_string(),
            alternative: role.alternative,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(args: &[&str]) -> Vec<String> {
        normalize(args.iter().map(OsString::from).collect())
            .into_iter()
            .map(|a| a.into_string().expect("utf-8"))
            .collect()
    }

    #[test]
    fn legacy_spellings_become_long_flags() {
        assert_eq!(
            normalized(&["x", "-ll", "/log", "-ep", "-ds", "-dp"]),
            [
                "x",
                "--loglocation",
                "/log",
                "--external-proxy",
                "--disable-ssl",
                "--disable-proxy"
            ]
        );
    }

    #[test]
    fn arguments_after_double_dash_are_not_rewritten() {
        assert_eq!(normalized(&["x", "--", "-ep"]), ["x", "--", "-ep"]);
        assert_eq!(normalized(&["x", "-c", "/etc/tq"]), ["x", "-c", "/etc/tq"]);
    }

    #[test]
    fn attached_log_location_is_split_off() {
        assert_eq!(
            normalized(&["x", "-ll/var/log"]),
            ["x", "--loglocation=/var/log"]
        );
        assert_eq!(
            normalized(&["x", "-ll=stdout"]),
            ["x", "--loglocation=stdout"]
        );
    }

    fn help_of(command: &clap::Command, long: &str) -> String {
        command
            .get_arguments()
            .find(|arg| arg.get_long() == Some(long))
            .and_then(|arg| arg.get_help())
            .map(ToString::to_string)
            .unwrap_or_else(|| panic!("--{long} has help"))
    }

    /// The proxy flags' help says which side each acts on, as
    /// `http::tap_route` and `http::threatq_route` do (docs/sync.md,
    /// "Proxies"). Before, `--proxy` said "for ThreatQ" while the run sent
    /// TAP traffic through it.
    #[test]
    fn the_proxy_flags_say_which_side_they_route() {
        let command = command();
        let ep = help_of(&command, "external-proxy");
        assert!(
            ep.contains("TAP traffic") && ep.contains("ThreatQ's proxy"),
            "{ep}"
        );
        assert!(
            ep.contains("[threatq] proxy") && ep.contains("[tap] proxy"),
            "{ep}"
        );
        let dp = help_of(&command, "disable-proxy");
        assert!(
            dp.contains("either side") && dp.contains("HTTPS_PROXY"),
            "{dp}"
        );
        let setup = command.find_subcommand("setup").expect("setup");
        let proxy = help_of(setup, "proxy");
        assert!(
            proxy.starts_with("Proxy for ThreatQ") && proxy.contains("-ep"),
            "{proxy}"
        );
        assert!(proxy.contains("--proxy-file"), "{proxy}");
        let tap_proxy = help_of(setup, "tap-proxy");
        assert!(tap_proxy.starts_with("Proxy for TAP"), "{tap_proxy}");
        assert!(tap_proxy.contains("--tap-proxy-file"), "{tap_proxy}");
    }

    #[test]
    fn clap_definition_is_consistent() {
        command().debug_assert();
    }
}
