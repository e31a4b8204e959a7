//! `replay --list` and `replay --discard`: what the state store holds
//! undelivered, read and pruned without reaching TAP or ThreatQ. Sending
//! it (`replay` alone) is a run of its own (`run::RunMode::Replay`).
//!
//! What the entries hold came from TAP (record keys, raw records) or
//! ThreatQ (refusal reasons), so every such text is shown with its control
//! characters escaped (`logging::escape_controls`): a line break or an
//! ANSI escape in one must not forge a line of the listing or rewrite the
//! operator's terminal.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use time::OffsetDateTime;
use tracing::warn;

use crate::cli::ReplayArgs;
use crate::logging::escape_controls as shown;
use crate::report::rfc3339;
use crate::run::{FailureKind, RetryLimits};
use crate::state::{Entry, LockAttempt, RunLock, Store};

/// Longest excerpt of a quarantined record's raw JSON in the listing.
const RAW_EXCERPT: usize = 160;

pub fn list_or_discard(config_dir: &Path, args: &ReplayArgs) -> ExitCode {
    let result = if args.list {
        list(config_dir).map(|text| {
            print!("{text}");
        })
    } else {
        discard(config_dir, &args.discard)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => crate::exit::fail(Some("replay"), FailureKind::Local, format_args!("{e:#}")),
    }
}

/// The listing: one block per entry, dead letters first, then the
/// quarantined records and the verdicts that wait. What has passed the
/// retry limits (`[run] retry_max_attempts`, `retry_max_age_days`) is
/// marked: scheduled runs no longer try it, `replay` does.
pub fn list(config_dir: &Path) -> Result<String> {
    let store = Store::open(config_dir)?;
    let letters = store.dead_letters()?;
    let quarantined = store.quarantined()?;
    let verdicts = store.pending_verdicts()?;
    let mut out = String::new();
    if letters.is_empty() && quarantined.is_empty() && verdicts.is_empty() {
        let _ = writeln!(
            out,
            "nothing undelivered in {}: every object reached ThreatQ",
            store.path().display()
        );
        return Ok(out);
    }
    // The listing is for when something is wrong, the config maybe too:
    // it still lists, against the default limits, and says so.
    let limits = match crate::config::load(config_dir) {
        Ok(Some(config)) => RetryLimits::of(&config.run),
        Ok(None) | Err(_) => {
            let _ = writeln!(
                out,
                "(the config in {} could not be read; the retry limits below are the defaults)",
                config_dir.display()
            );
            RetryLimits::default()
        }
    };
    let now = OffsetDateTime::now_utc();
    let parked = |attempts: u32, since: OffsetDateTime| {
        if limits.passed(attempts, since, now) {
            format!(
                "\n    PAST THE RETRY LIMITS ({} attempts or {} days): scheduled runs no longer try it; `replay` does",
                limits.max_attempts,
                limits.max_age.whole_days()
            )
        } else {
            String::new()
        }
    };
    let _ = writeln!(
        out,
        "{} dead letters (objects ThreatQ refused), {} quarantined TAP records and {} waiting verdicts in {}",
        letters.len(),
        quarantined.len(),
        verdicts.len(),
        store.path().display()
    );
    for letter in &letters {
        let status = letter
            .status
            .map_or_else(|| "not sent".to_owned(), |s| format!("HTTP {s}"));
        let what = if letter.relations_only {
            "its relations"
        } else {
            "the object"
        };
        let _ = writeln!(
            out,
            "{}  {} '{}': ThreatQ refused {what} ({status}): {}\n    window {}, first refused {}, tried {} times, last {}; {} objects and {} relations to send{}",
            Entry::DeadLetter(letter.id),
            letter.collection,
            shown(&letter.identity),
            shown(&letter.reason),
            letter.window,
            rfc3339(letter.first_refused),
            letter.attempts,
            rfc3339(letter.last_tried),
            letter.batch.objects.len(),
            letter.batch.relations.len(),
            parked(letter.attempts, letter.first_refused),
        );
    }
    for record in &quarantined {
        let raw: String = record.raw.chars().take(RAW_EXCERPT).collect();
        let raw = shown(&raw);
        let more = if record.raw.chars().count() > RAW_EXCERPT {
            "..."
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{}  {} in {}: {}\n    window {}, first seen {}, tried {} times by version {}\n    raw: {raw}{more}",
            Entry::Quarantined(record.id),
            shown(&record.record_key),
            shown(&record.section),
            shown(&record.reason),
            record.window,
            rfc3339(record.first_seen),
            record.attempts,
            record.version,
        );
    }
    for verdict in &verdicts {
        let since = verdict.waiting_since.unwrap_or(now);
        let _ = writeln!(
            out,
            "verdict  {} '{}': TAP calls it {} (threat {}); waits: {}\n    waiting since {}, tried {} times{}",
            shown(&verdict.indicator_type),
            shown(&verdict.indicator_value),
            shown(&verdict.status),
            shown(&verdict.threat_id),
            shown(verdict.error.as_deref().unwrap_or("")),
            rfc3339(since),
            verdict.attempts,
            parked(verdict.attempts, since),
        );
    }
    let _ = writeln!(
        out,
        "send them now with `replay` once the cause is fixed, or remove one for good with `replay --discard ID`"
    );
    Ok(out)
}

/// Removes the entries named, under the run lock so a running sync does
/// not send what is being removed. Each removal is logged with what it held.
pub fn discard(config_dir: &Path, entries: &[Entry]) -> Result<()> {
    let _lock = match RunLock::try_acquire(config_dir, time::OffsetDateTime::now_utc())? {
        LockAttempt::Acquired(lock) => lock,
        LockAttempt::Busy(holder) => anyhow::bail!(
            "a run{} holds the lock on {}; try again when it has finished",
            holder.map_or_else(String::new, |h| format!(" (pid {})", h.pid)),
            config_dir.display()
        ),
    };
    let mut store = Store::open(config_dir)?;
    let letters = store.dead_letters()?;
    let quarantined = store.quarantined()?;
    for entry in entries {
        let held = match entry {
            Entry::DeadLetter(id) => letters
                .iter()
                .find(|l| l.id == *id)
                .map(|l| format!("{} '{}' ({})", l.collection, l.identity, l.reason)),
            Entry::Quarantined(id) => quarantined
                .iter()
                .find(|q| q.id == *id)
                .map(|q| format!("{} raw {}", q.record_key, q.raw)),
        };
        let Some(held) = held else {
            anyhow::bail!(
                "{entry} is not in {}; `replay --list` shows what is",
                store.path().display()
            );
        };
        store.discard(*entry)?;
        warn!(entry = %entry, held = %held, "discarded on the operator's word; it will not be sent");
        println!("discarded {entry}: {}", shown(&held));
    }
    Ok(())
}
