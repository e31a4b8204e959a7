//! How the program ends: every exit status and the prefix of every message
//! to standard error, defined once. A run's own failures map to their codes
//! through [`crate::run::FailureKind::exit_code`]; the README's table lists
//! them all.

use std::fmt::Display;
use std::process::ExitCode;

use crate::run::FailureKind;

/// The start of every line the program writes to standard error.
pub const PREFIX: &str = "tq-conn-proofpoint-tap";

/// The command line could not be parsed (clap's usage error).
pub const USAGE: u8 = 2;

/// Says `message` on standard error, after the prefix and the subcommand
/// if any (`tq-conn-proofpoint-tap setup: ...`).
pub fn say(subcommand: Option<&str>, message: impl Display) {
    match subcommand {
        Some(name) => eprintln!("{PREFIX} {name}: {message}"),
        None => eprintln!("{PREFIX}: {message}"),
    }
}

/// Says `message` and ends with the status of `kind`.
pub fn fail(subcommand: Option<&str>, kind: FailureKind, message: impl Display) -> ExitCode {
    say(subcommand, message);
    code(kind)
}

pub fn code(kind: FailureKind) -> ExitCode {
    ExitCode::from(kind.exit_code())
}
