//! Run state beside the config: the checkpoint, the keys of TAP records
//! already forwarded inside the overlap horizon, and the rolling 24-hour
//! TAP request budgets. Plus the lock that keeps two cron runs apart.
//!
//! The state file is rewritten atomically (temporary file, fsync, rename,
//! fsync of the directory) with owner-only permissions, and only after
//! ThreatQ accepted a window, so a crash at any point leaves either the old
//! or the new state, never a torn one (docs/sync.md, "Checkpoints").

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

pub const STATE_FILE_NAME: &str = "tq-conn-proofpoint-tap.state.json";
pub const LOCK_FILE_NAME: &str = "tq-conn-proofpoint-tap.lock";
const STATE_VERSION: u32 = 1;
const BUDGET_PERIOD: Duration = Duration::hours(24);

/// TAP's request pools, each throttled over a rolling 24 hours per
/// credential (docs/tap-api.md, "Rate limits"; how we count them:
/// docs/sync.md, "TAP budgets and pools").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    /// `/v2/siem/*` except clicks/permitted: 1800 a day, shared.
    Siem,
    /// `/v2/campaign/{id}`: documented as unthrottled; we still count it and
    /// hold it to the forensics-by-campaign figure, since every look-up is
    /// followed by one of those.
    Campaign,
    /// `/v2/forensics?campaignId=`: 1800 a day.
    CampaignForensics,
    /// `/v2/forensics?threatId=`: 50 a day.
    ThreatForensics,
}

impl Pool {
    pub const ALL: [Pool; 4] = [
        Pool::Siem,
        Pool::Campaign,
        Pool::CampaignForensics,
        Pool::ThreatForensics,
    ];

    pub fn daily_limit(self) -> u32 {
        match self {
            Pool::Siem | Pool::Campaign | Pool::CampaignForensics => 1800,
            Pool::ThreatForensics => 50,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Pool::Siem => "siem",
            Pool::Campaign => "campaign",
            Pool::CampaignForensics => "forensics-by-campaign",
            Pool::ThreatForensics => "forensics-by-threat",
        }
    }
}

/// Times of the requests made in each pool over the last 24 hours.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Budgets {
    /// Unix milliseconds of each request, oldest first.
    requests: BTreeMap<Pool, Vec<i64>>,
}

impl Budgets {
    pub fn record(&mut self, pool: Pool, at: OffsetDateTime, count: u32) {
        let entry = self.requests.entry(pool).or_default();
        let ms = unix_ms(at);
        entry.extend(std::iter::repeat_n(ms, count as usize));
    }

    /// Requests left in `pool` at `now`.
    pub fn remaining(&self, pool: Pool, now: OffsetDateTime) -> u32 {
        let cutoff = unix_ms(now - BUDGET_PERIOD);
        let used = self
            .requests
            .get(&pool)
            .map_or(0, |times| times.iter().filter(|t| **t > cutoff).count());
        pool.daily_limit()
            .saturating_sub(u32::try_from(used).unwrap_or(u32::MAX))
    }

    /// When the oldest counted request of `pool` leaves the 24-hour window.
    pub fn next_release(&self, pool: Pool, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let cutoff = unix_ms(now - BUDGET_PERIOD);
        self.requests
            .get(&pool)?
            .iter()
            .copied()
            .filter(|t| *t > cutoff)
            .min()
            .map(|oldest| from_unix_ms(oldest) + BUDGET_PERIOD)
    }

    /// Forgets requests older than 24 hours.
    pub fn prune(&mut self, now: OffsetDateTime) {
        let cutoff = unix_ms(now - BUDGET_PERIOD);
        for times in self.requests.values_mut() {
            times.retain(|t| *t > cutoff);
        }
    }
}

/// Everything a run remembers for the next one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    version: u32,
    /// `queryEndTime` of the last window ThreatQ accepted.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub checkpoint: Option<OffsetDateTime>,
    /// Keys of TAP records already forwarded, with TAP's creation time
    /// (Unix ms), kept while they can still come back in an overlap.
    #[serde(default)]
    pub sent: BTreeMap<String, i64>,
    #[serde(default)]
    pub budgets: Budgets,
}

impl State {
    /// Records a window ThreatQ accepted: moves the checkpoint and keeps the
    /// keys of what was sent. Keys older than the horizon are forgotten.
    pub fn accept_window(
        &mut self,
        query_end: OffsetDateTime,
        keys: impl IntoIterator<Item = (String, i64)>,
        horizon: Duration,
    ) {
        self.checkpoint = Some(match self.checkpoint {
            Some(old) if old > query_end => old,
            _ => query_end,
        });
        self.sent.extend(keys);
        let checkpoint = self.checkpoint.unwrap_or(query_end);
        let cutoff = unix_ms(checkpoint - horizon);
        self.sent.retain(|_, created| *created >= cutoff);
    }

    /// The keys to hand the component so the overlap sends nothing twice.
    pub fn sent_keys(&self) -> Vec<String> {
        self.sent.keys().cloned().collect()
    }
}

/// The state file of one config directory.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub fn in_dir(dir: &Path) -> StateFile {
        StateFile {
            path: dir.join(STATE_FILE_NAME),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved state, or a fresh one when there is no file yet.
    pub fn load(&self) -> Result<State> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(State {
                    version: STATE_VERSION,
                    ..State::default()
                });
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read the run state {}", self.path.display()));
            }
        };
        let state: State = serde_json::from_str(&text).with_context(|| {
            format!(
                "the run state {} is damaged; move it aside and the next run starts again \
                 from the configured hours of history (ThreatQ upserts, so nothing is duplicated)",
                self.path.display()
            )
        })?;
        if state.version > STATE_VERSION {
            anyhow::bail!(
                "the run state {} was written by a newer version of this connector (state \
                 version {}); run that version, or move the file aside",
                self.path.display(),
                state.version
            );
        }
        Ok(state)
    }

    /// Replaces the state file atomically with owner-only permissions.
    pub fn save(&self, state: &State) -> Result<()> {
        let mut state = state.clone();
        state.version = STATE_VERSION;
        let json = serde_json::to_vec_pretty(&state)?;
        write_atomically(&self.path, &json)
            .with_context(|| format!("cannot write the run state {}", self.path.display()))
    }
}

/// Writes `bytes` to `path` so that readers see the old or the new content,
/// never a mix: temporary file in the same directory, fsync, rename, fsync
/// of the directory. The file is readable by its owner only.
///
/// The temporary file has an unpredictable name and is created with
/// `O_EXCL` (the `tempfile` crate), so nobody who can write to the
/// directory can plant a symlink or a file under its name beforehand and
/// redirect or read the write.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".to_owned());
    // tempfile creates the file with mode 0600 on Unix.
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|err| err.error)?;
    #[cfg(unix)]
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// An exclusive lock on the config directory for the length of a run. The
/// operating system releases it when the process ends, even on SIGKILL, so
/// a crashed run never blocks the next one.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// The run that holds the lock, as it wrote itself into the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    pub pid: u32,
    pub since: OffsetDateTime,
}

/// What trying the lock found.
#[derive(Debug)]
pub enum LockAttempt {
    Acquired(RunLock),
    /// Another run holds it; who and since when, if it said so.
    Busy(Option<LockHolder>),
}

impl RunLock {
    /// Takes the lock, or says who holds it. The holder writes its pid and
    /// start time into the file, so a run stuck for longer than a run may
    /// take can be reported by the next one instead of silently blocking
    /// the feed (docs/sync.md, "Deadlines").
    pub fn try_acquire(dir: &Path, now: OffsetDateTime) -> Result<LockAttempt> {
        let path = dir.join(LOCK_FILE_NAME);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {
                let holder = format!("pid={} since={}\n", std::process::id(), unix_ms(now));
                file.set_len(0)
                    .and_then(|()| file.write_all(holder.as_bytes()))
                    .with_context(|| format!("cannot write the lock file {}", path.display()))?;
                Ok(LockAttempt::Acquired(RunLock { _file: file }))
            }
            Err(fs::TryLockError::WouldBlock) => {
                let text = fs::read_to_string(&path).unwrap_or_default();
                Ok(LockAttempt::Busy(parse_holder(&text)))
            }
            Err(fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }
}

fn parse_holder(text: &str) -> Option<LockHolder> {
    let mut pid = None;
    let mut since = None;
    for field in text.split_whitespace() {
        if let Some(value) = field.strip_prefix("pid=") {
            pid = value.parse().ok();
        } else if let Some(value) = field.strip_prefix("since=") {
            since = value.parse().ok().map(from_unix_ms);
        }
    }
    Some(LockHolder {
        pid: pid?,
        since: since?,
    })
}

pub fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub fn from_unix_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// The old temporary name was `.NAME.tmp-<pid>`, opened without
    /// `O_EXCL`: a symlink planted there redirected the write (and the
    /// state) to a file of the planter's choosing.
    #[cfg(unix)]
    #[test]
    fn a_symlink_planted_at_a_guessable_temp_name_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        std::fs::write(&target, "untouched").unwrap();
        let path = dir.path().join("tq-conn-proofpoint-tap.state.json");
        for guess in [
            format!(
                ".tq-conn-proofpoint-tap.state.json.tmp-{}",
                std::process::id()
            ),
            ".tq-conn-proofpoint-tap.state.json.tmp".to_owned(),
        ] {
            std::os::unix::fs::symlink(&target, dir.path().join(guess)).unwrap();
        }
        write_atomically(&path, b"{}").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}");
        assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn budget_counts_only_the_last_24_hours() {
        let now = datetime!(2026-11-28 12:00:00 UTC);
        let mut b = Budgets::default();
        b.record(Pool::ThreatForensics, now - Duration::hours(25), 10);
        b.record(Pool::ThreatForensics, now - Duration::hours(1), 30);
        assert_eq!(b.remaining(Pool::ThreatForensics, now), 20);
        assert_eq!(b.remaining(Pool::Siem, now), 1800);
        assert_eq!(
            b.next_release(Pool::ThreatForensics, now),
            Some(now + Duration::hours(23))
        );
        b.prune(now);
        assert_eq!(b.requests[&Pool::ThreatForensics].len(), 30);
    }

    #[test]
    fn checkpoint_never_moves_backwards_and_old_keys_are_forgotten() {
        let t = datetime!(2026-11-28 12:00:00 UTC);
        let mut s = State::default();
        s.accept_window(
            t,
            [("old".to_owned(), unix_ms(t - Duration::hours(3)))],
            Duration::hours(2),
        );
        s.accept_window(
            t - Duration::hours(1),
            [("new".to_owned(), unix_ms(t - Duration::minutes(10)))],
            Duration::hours(2),
        );
        assert_eq!(s.checkpoint, Some(t));
        assert_eq!(s.sent_keys(), vec!["new".to_owned()]);
    }

    #[test]
    fn state_round_trips_through_an_owner_only_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::in_dir(dir.path());
        let mut s = file.load().unwrap();
        assert_eq!(s.checkpoint, None);
        s.accept_window(
            datetime!(2026-11-28 12:00:00 UTC),
            [("m:g:1".to_owned(), 1)],
            Duration::days(10000),
        );
        s.budgets
            .record(Pool::Siem, datetime!(2026-11-28 11:00:00 UTC), 3);
        file.save(&s).unwrap();
        let back = file.load().unwrap();
        assert_eq!(back.checkpoint, s.checkpoint);
        assert_eq!(back.sent, s.sent);
        assert_eq!(back.budgets, s.budgets);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(file.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn damaged_state_names_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::in_dir(dir.path());
        fs::write(file.path(), "{ not json").unwrap();
        let err = format!("{:#}", file.load().unwrap_err());
        assert!(err.contains(STATE_FILE_NAME), "{err}");
        assert!(err.contains("move it aside"), "{err}");
    }

    #[test]
    fn second_lock_on_the_same_directory_is_refused_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let since = datetime!(2026-11-28 12:00:00 UTC);
        let first = RunLock::try_acquire(dir.path(), since).unwrap();
        assert!(matches!(first, LockAttempt::Acquired(_)));
        match RunLock::try_acquire(dir.path(), since + Duration::hours(2)).unwrap() {
            LockAttempt::Busy(Some(holder)) => {
                assert_eq!(holder.pid, std::process::id());
                assert_eq!(holder.since, since);
            }
            other => panic!("expected the holder, got {other:?}"),
        }
        drop(first);
        assert!(matches!(
            RunLock::try_acquire(dir.path(), since).unwrap(),
            LockAttempt::Acquired(_)
        ));
    }

    #[test]
    fn a_lock_file_without_a_holder_line_is_still_a_busy_lock() {
        assert_eq!(parse_holder(""), None);
        assert_eq!(parse_holder("pid=12"), None);
        assert_eq!(
            parse_holder("pid=12 since=0\n"),
            Some(LockHolder {
                pid: 12,
                since: OffsetDateTime::UNIX_EPOCH
            })
        );
    }
}
