//! The lock that keeps two runs on one config directory apart.

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Seek as _, Write};
use std::path::Path;

use anyhow::{Context, Result};
use time::OffsetDateTime;

use super::{from_unix_ms, unix_ms};

pub const LOCK_FILE_NAME: &str = "tq-conn-proofpoint-tap.lock";

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
    ///
    /// The file is opened owner-only and never through a symbolic link
    /// (`files::open_private`): a link planted in its place would have the
    /// run truncate and lock whatever it names.
    pub fn try_acquire(dir: &Path, now: OffsetDateTime) -> Result<LockAttempt> {
        let path = dir.join(LOCK_FILE_NAME);
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).read(true).write(true);
        let mut file = crate::files::open_private(&path, &mut options, "the lock file")?;
        match file.try_lock() {
            Ok(()) => {
                let holder = format!("pid={} since={}\n", std::process::id(), unix_ms(now));
                file.set_len(0)
                    .and_then(|()| file.write_all(holder.as_bytes()))
                    .with_context(|| format!("cannot write the lock file {}", path.display()))?;
                Ok(LockAttempt::Acquired(RunLock { _file: file }))
            }
            Err(fs::TryLockError::WouldBlock) => {
                // From the descriptor just opened, not the path again.
                let mut text = String::new();
                let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
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

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;
    use time::macros::datetime;

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

    #[cfg(unix)]
    #[test]
    fn the_lock_file_is_owner_only_and_never_a_symbolic_link() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let since = datetime!(2026-11-28 12:00:00 UTC);
        let lock = RunLock::try_acquire(dir.path(), since).unwrap();
        let path = dir.path().join(LOCK_FILE_NAME);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(lock);
        fs::remove_file(&path).unwrap();

        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let error = RunLock::try_acquire(dir.path(), since).unwrap_err();
        assert!(format!("{error:#}").contains("symbolic link"), "{error:#}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
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
