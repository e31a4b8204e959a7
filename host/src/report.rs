//! What a run tells its operator: the one summary line every run ends with,
//! a progress bar on a terminal (never under cron), and the JSON-lines
//! export of what was (or, with `--dry-run`, would be) sent.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use threatq_client::{Batch, Collection, ObjectKey, TqObject};
use time::OffsetDateTime;

use crate::state::{Pool, State};

/// Counts of one run. Object counts are of distinct objects (by their
/// ThreatQ identity) that ThreatQ accepted, so a first run into an empty
/// ThreatQ reports exactly what ThreatQ then holds.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub dry_run: bool,
    pub windows_planned: usize,
    pub windows_done: usize,
    /// Windows too large for the sandbox, retried as two halves each.
    pub windows_split: usize,
    pub messages: u64,
    pub clicks: u64,
    pub already_sent_skipped: u64,
    pub rejected_records: u64,
    pub rejected_objects: u64,
    /// Dead letters and quarantined records of earlier runs delivered now.
    pub redelivered: u64,
    /// What the state store still holds undelivered after the run.
    pub undelivered_objects: u64,
    pub quarantined_records: u64,
    /// Clicks and incidents related to a message event of an earlier
    /// window or run, through the message index.
    pub clicks_linked_to_earlier_messages: u64,
    /// Objects of earlier windows or runs related to a campaign fetched
    /// after them (it was deferred then), through the campaign mentions.
    pub linked_to_late_campaigns: u64,
    /// Campaigns and threats waiting in the enrichment queue after the run.
    pub enrichment_queue: u64,
    /// Later verdicts applied to indicators ThreatQ held, of which the
    /// status changed, and left alone because an analyst had set another.
    pub verdicts_applied: u64,
    pub statuses_changed: u64,
    pub statuses_left_alone: u64,
    /// Verdicts ThreatQ refused, tried again by later runs.
    pub verdicts_pending: u64,
    /// Distinct identities per kind (events are split into events and incidents).
    accepted: BTreeMap<&'static str, BTreeSet<String>>,
    /// Threat summaries TAP answered, and those left for a later run.
    pub threat_summaries: u64,
    pub threat_summaries_deferred: u64,
    /// Events marked from the people lists.
    pub people_marked_events: u64,
    /// What the run had of TAP's people lists.
    pub people: PeopleNote,
    /// (requests left, daily limit) per pool.
    pub budgets_left: BTreeMap<Pool, (u32, u32)>,
    pub checkpoint: Option<OffsetDateTime>,
    /// Seconds of history TAP can no longer give (cursor older than 7 days).
    pub gap_seconds: i64,
    pub elapsed: Duration,
}

/// What one step did, in the summary's counters. Steps return tallies;
/// the run adds each to its summary ([`RunSummary::add`]), the one place
/// these counters are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub messages: u64,
    pub clicks: u64,
    pub already_sent_skipped: u64,
    pub rejected_records: u64,
    pub rejected_objects: u64,
    pub redelivered: u64,
    pub clicks_linked_to_earlier_messages: u64,
    pub linked_to_late_campaigns: u64,
    pub verdicts_applied: u64,
    pub statuses_changed: u64,
    pub statuses_left_alone: u64,
    pub threat_summaries: u64,
    pub threat_summaries_deferred: u64,
    pub people_marked_events: u64,
}

/// What a run had of TAP's people lists, for the summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PeopleNote {
    /// None read yet, or none usable, and no reason known (a dry run on a
    /// new store).
    #[default]
    None,
    /// The lists used for the marks: their sizes (addresses) and the age
    /// of the older one.
    Used {
        very_attacked: usize,
        top_clickers: usize,
        age: time::Duration,
    },
    /// Not used, and why (a 403: no People API in the licence).
    Unavailable(String),
}

/// The kinds in the order the summary prints them.
pub const KINDS: [&str; 7] = [
    "events",
    "incidents",
    "indicators",
    "campaigns",
    "malware",
    "adversaries",
    "attack patterns",
];

impl RunSummary {
    /// Counts the `objects` that ThreatQ accepted (all but `rejected`).
    pub fn count_accepted(&mut self, objects: &[TqObject], rejected: &BTreeSet<ObjectKey>) {
        for object in objects {
            if rejected.contains(&object.key()) {
                continue;
            }
            let kind = kind_of(object.collection, object.type_name.as_deref());
            let identity = format!(
                "{}\u{1f}{}\u{1f}{}",
                object.type_name.as_deref().unwrap_or(""),
                object.value,
                object.happened_at.as_deref().unwrap_or("")
            );
            self.accepted.entry(kind).or_default().insert(identity);
        }
    }

    /// Adds what a step did.
    pub fn add(&mut self, tally: &Tally) {
        // Exhaustive, so a new counter cannot be forgotten here.
        let Tally {
            messages,
            clicks,
            already_sent_skipped,
            rejected_records,
            rejected_objects,
            redelivered,
            clicks_linked_to_earlier_messages,
            linked_to_late_campaigns,
            verdicts_applied,
            statuses_changed,
            statuses_left_alone,
            threat_summaries,
            threat_summaries_deferred,
            people_marked_events,
        } = *tally;
        self.messages += messages;
        self.clicks += clicks;
        self.already_sent_skipped += already_sent_skipped;
        self.rejected_records += rejected_records;
        self.rejected_objects += rejected_objects;
        self.redelivered += redelivered;
        self.clicks_linked_to_earlier_messages += clicks_linked_to_earlier_messages;
        self.linked_to_late_campaigns += linked_to_late_campaigns;
        self.verdicts_applied += verdicts_applied;
        self.statuses_changed += statuses_changed;
        self.statuses_left_alone += statuses_left_alone;
        self.threat_summaries += threat_summaries;
        self.threat_summaries_deferred += threat_summaries_deferred;
        self.people_marked_events += people_marked_events;
    }

    /// The budgets left, as the state store has them after TAP requests.
    pub fn observe_budgets(&mut self, state: &State, now: OffsetDateTime) {
        self.budgets_left = state.budgets_left(now);
    }

    /// The checkpoint, as the state store has it (planned, or committed).
    pub fn observe_checkpoint(&mut self, state: &State) {
        self.checkpoint = state.checkpoint;
    }

    /// Everything the state store says at the end of a run: the budgets
    /// left and what waits for a later run.
    pub fn observe_end(&mut self, state: &State, now: OffsetDateTime) {
        self.observe_budgets(state, now);
        self.undelivered_objects = state.dead_letters;
        self.quarantined_records = state.quarantined;
        self.enrichment_queue = state.enrichment_queue;
        self.verdicts_pending = state.pending_verdicts;
    }

    /// The plan of a run: the windows it will fetch, and the history TAP
    /// can no longer give.
    pub fn planned(&mut self, windows: usize, gap: Option<crate::plan::Window>) {
        self.windows_planned = windows;
        self.gap_seconds = gap.map_or(0, |gap| gap.len().whole_seconds());
    }

    /// One window more: a window too large for the sandbox became two.
    pub fn window_split(&mut self) {
        self.windows_planned += 1;
        self.windows_split += 1;
    }

    /// A window forwarded and committed.
    pub fn window_done(&mut self) {
        self.windows_done += 1;
    }

    pub fn accepted(&self, kind: &str) -> usize {
        self.accepted.get(kind).map_or(0, BTreeSet::len)
    }

    pub fn objects_sent(&self) -> usize {
        self.accepted.values().map(BTreeSet::len).sum()
    }
}

pub fn kind_of(collection: Collection, type_name: Option<&str>) -> &'static str {
    match collection {
        Collection::Events if type_name == Some("Incident") => "incidents",
        Collection::Events => "events",
        Collection::Indicators => "indicators",
        Collection::Campaign => "campaigns",
        Collection::Malware => "malware",
        Collection::Adversaries => "adversaries",
        Collection::AttackPattern => "attack patterns",
    }
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "summary{}: windows {}/{}{}, TAP records {} (messages {}, clicks {}, {} already sent), ",
            if self.dry_run { " (dry run)" } else { "" },
            self.windows_done,
            self.windows_planned,
            if self.windows_split > 0 {
                format!(
                    " ({} split in halves to fit the sandbox)",
                    self.windows_split
                )
            } else {
                String::new()
            },
            self.messages + self.clicks,
            self.messages,
            self.clicks,
            self.already_sent_skipped,
        )?;
        let verb = if self.dry_run { "would send" } else { "sent" };
        write!(f, "{verb}")?;
        for (i, kind) in KINDS.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(f, "{sep}{} {kind}", self.accepted(kind))?;
        }
        write!(
            f,
            "; quarantined {} records, refused {} objects",
            self.rejected_records, self.rejected_objects
        )?;
        if self.redelivered > 0 {
            write!(f, ", {} earlier ones delivered now", self.redelivered)?;
        }
        if self.clicks_linked_to_earlier_messages > 0 {
            write!(
                f,
                "; {} clicks related to earlier messages",
                self.clicks_linked_to_earlier_messages
            )?;
        }
        if self.linked_to_late_campaigns > 0 {
            write!(
                f,
                "; {} earlier objects related to campaigns fetched late",
                self.linked_to_late_campaigns
            )?;
        }
        if self.verdicts_applied + self.verdicts_pending > 0 {
            write!(
                f,
                "; verdicts applied {} (status changed {}, left alone {}), pending {}",
                self.verdicts_applied,
                self.statuses_changed,
                self.statuses_left_alone,
                self.verdicts_pending
            )?;
        }
        if self.threat_summaries + self.threat_summaries_deferred > 0 {
            write!(
                f,
                "; threat summaries {} fetched, {} deferred",
                self.threat_summaries, self.threat_summaries_deferred
            )?;
        }
        match &self.people {
            PeopleNote::None => {}
            PeopleNote::Used {
                very_attacked,
                top_clickers,
                age,
            } => write!(
                f,
                "; people lists {very_attacked} very attacked, {top_clickers} top clickers \
                 ({} h old), {} events marked",
                age.whole_hours(),
                self.people_marked_events
            )?,
            PeopleNote::Unavailable(why) => write!(f, "; people lists not used: {why}")?,
        }
        write!(f, "; enrichment queue {}", self.enrichment_queue)?;
        if self.undelivered_objects + self.quarantined_records > 0 {
            write!(
                f,
                "; UNDELIVERED {} objects, {} records (replay --list)",
                self.undelivered_objects, self.quarantined_records
            )?;
        }
        write!(f, "; TAP budget left")?;
        for pool in Pool::ALL {
            let (left, limit) = self
                .budgets_left
                .get(&pool)
                .copied()
                .unwrap_or((pool.daily_limit(), pool.daily_limit()));
            write!(f, " {} {left}/{limit}", pool.label())?;
        }
        match self.checkpoint {
            Some(c) => write!(f, "; checkpoint {}", rfc3339(c))?,
            None => write!(f, "; no checkpoint yet")?,
        }
        if self.gap_seconds > 0 {
            write!(
                f,
                "; GAP {} s older than TAP's 7-day limit could not be fetched",
                self.gap_seconds
            )?;
        }
        write!(f, "; took {:.1} s", self.elapsed.as_secs_f64())
    }
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// A progress bar on stderr, shown only when stderr is a terminal and the
/// run has more than a few windows.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new(windows: usize, enabled: bool) -> Progress {
        let show = enabled && windows > 3 && std::io::stderr().is_terminal();
        let bar = show.then(|| {
            let bar = ProgressBar::new(windows as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} windows {pos}/{len} [{bar:30}] {msg} (ETA {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        Progress { bar }
    }

    pub fn window_done(&self, objects_sent: usize) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{objects_sent} objects sent"));
            bar.inc(1);
        }
    }

    /// One more window than planned (a window split in halves).
    pub fn add_window(&self) {
        if let Some(bar) = &self.bar {
            bar.inc_length(1);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Writes what a run sends as JSON lines: one object per line with its
/// related objects named by identity.
pub struct Export {
    out: Box<dyn Write + Send>,
}

impl Export {
    /// Creates (or truncates) the export file, owner-only and never
    /// through a symbolic link (`files::open_private`): it holds what TAP
    /// reported, and `--export` is often pointed at a shared directory.
    pub fn to_file(path: &Path) -> Result<Export> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        let file = crate::files::open_private(path, &mut options, "the export file")?;
        Ok(Export {
            out: Box::new(BufWriter::new(file)),
        })
    }

    pub fn to_stdout() -> Export {
        Export {
            out: Box::new(std::io::stdout()),
        }
    }

    pub fn write_batch(&mut self, batch: &Batch) -> Result<()> {
        let mut related: Vec<Vec<usize>> = vec![Vec::new(); batch.objects.len()];
        for &(a, b) in &batch.relations {
            if a < related.len() && b < related.len() {
                related[a].push(b);
                related[b].push(a);
            }
        }
        for (i, object) in batch.objects.iter().enumerate() {
            let links: Vec<_> = related[i]
                .iter()
                .map(|&j| {
                    let other = &batch.objects[j];
                    json!({
                        "collection": other.collection.api_name(),
                        "type": other.type_name,
                        "value": other.value,
                    })
                })
                .collect();
            let line = json!({
                "collection": object.collection.api_name(),
                "type": object.type_name,
                "value": object.value,
                "happened_at": object.happened_at,
                "description": object.description,
                "attributes": object.attributes.iter()
                    .map(|(name, value)| json!({"name": name, "value": value}))
                    .collect::<Vec<_>>(),
                "related": links,
            });
            serde_json::to_writer(&mut self.out, &line)?;
            self.out.write_all(b"\n")?;
        }
        self.out.flush()?;
        Ok(())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn the_export_file_is_owner_only_and_never_written_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.jsonl");
        Export::to_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "whatever the umask");

        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let error = Export::to_file(&link).err().expect("a link is refused");
        assert!(error.to_string().contains("symbolic link"), "{error:#}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }
}
