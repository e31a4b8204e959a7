//! How the program ends: every exit status and every line to standard
//! error, defined once. A run's own failures map to their codes through
//! [`crate::run::FailureKind::exit_code`]; the README's table lists them
//! all.
//!
//! Standard error is what cron mails, so it gets what the log gets: each
//! message is one line with its control characters escaped (an error can
//! quote TAP or ThreatQ), then passed through the log's redactor
//! ([`crate::logging::for_operator`]). Nothing else in the program writes
//! to standard error: [`line`] is the one way there (clap's usage errors
//! and panic messages included, see [`usage_error`] and
//! [`install_panic_hook`]).

use std::fmt::Display;
use std::io::Write as _;
use std::process::ExitCode;

use crate::run::FailureKind;

/// The start of every line the program writes to standard error.
pub const PREFIX: &str = "tq-conn-proofpoint-tap";

/// The command line could not be parsed (clap's usage error).
pub const USAGE: u8 = 2;

/// Writes `text` to standard error as one line, escaped and redacted.
pub fn line(text: impl Display) {
    let text = crate::logging::for_operator(&text.to_string());
    // Nowhere left to report a failure to write to standard error.
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Says `message` on standard error, after the prefix and the subcommand
/// if any (`tq-conn-proofpoint-tap setup: ...`).
pub fn say(subcommand: Option<&str>, message: impl Display) {
    match subcommand {
        Some(name) => line(format_args!("{PREFIX} {name}: {message}")),
        None => line(format_args!("{PREFIX}: {message}")),
    }
}

/// Prints a command-line error or the help clap made, and says how the
/// program ends: help and `--version` go to standard output as clap wrote
/// them; an error goes to standard error line by line, each line escaped
/// and redacted (clap quotes the argument it refused, which may be a
/// mistyped secret or a proxy URL with its password).
pub fn usage_error(error: &clap::Error) -> ExitCode {
    if !error.use_stderr() {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    let text = error.render().to_string();
    for each in text.trim_end().lines() {
        line(each);
    }
    ExitCode::from(USAGE)
}

/// Makes a panic's message go through [`line`] like every other line on
/// standard error. A panic is a bug, and its message may quote whatever
/// value was at hand. Set `RUST_BACKTRACE=1` for a backtrace, as usual.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("<unnamed>");
        say(
            None,
            format_args!(
                "internal error (a bug; please report it): thread '{name}' panicked: {info}"
            ),
        );
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            for each in backtrace.to_string().lines() {
                line(each);
            }
        }
    }));
}

/// Says `message` and ends with the status of `kind`.
pub fn fail(subcommand: Option<&str>, kind: FailureKind, message: impl Display) -> ExitCode {
    say(subcommand, message);
    code(kind)
}

pub fn code(kind: FailureKind) -> ExitCode {
    ExitCode::from(kind.exit_code())
}
