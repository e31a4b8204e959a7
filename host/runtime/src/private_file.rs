//! Files nobody else may write: reading one whose bytes become native
//! code, and writing one atomically with owner-only permissions (the
//! component cache, a precompiled artifact, and the host's config file,
//! which holds the ThreatQ password).
//!
//! A precompiled component is machine code that wasmtime maps and runs
//! without verifying it (`Component::deserialize` is `unsafe` for that
//! reason), in a process that holds the ThreatQ password and the TAP secret.
//! So such a file is only read when it, and the directory it is in, belong
//! to the user running the connector and nobody else can write either: then
//! only that user (or root) could have put it there. The checks are made on
//! the opened descriptors (`openat` with `O_NOFOLLOW`, then `fstat`), not on
//! the paths, so a file swapped in between the check and the read is not
//! read. See docs/sandbox.md, "The compiled component".

use std::path::Path;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotRead {
    #[error("it does not exist")]
    Missing,
    #[error("{0}")]
    Unsafe(String),
    #[error("cannot read it: {0}")]
    Io(std::io::Error),
}

/// Largest artifact read; the TAP component compiles to about 10 MiB.
const MAX_ARTIFACT_BYTES: u64 = 512 * 1024 * 1024;

#[cfg(unix)]
mod unix {
    use std::io::Read as _;
    use std::os::fd::OwnedFd;
    use std::path::Path;

    use rustix::fs::{CWD, FileType, Mode, OFlags, Stat, fstat, openat};
    use rustix::io::Errno;

    use super::{MAX_ARTIFACT_BYTES, NotRead};

    /// Who may own the files: the effective user, as a parameter so tests
    /// can play "another user" without root.
    pub(crate) fn read_owned_by(dir: &Path, name: &str, owner: u32) -> Result<Vec<u8>, NotRead> {
        let dir_fd = open_dir_owned_by(dir, owner)?;

        // O_NONBLOCK: a FIFO planted under the name must not hang the run
        // before its type is checked.
        let fd = openat(
            &dir_fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(|errno| opened("file", &dir.join(name), errno))?;
        let stat = fstat(&fd).map_err(|errno| NotRead::Io(errno.into()))?;
        check(&stat, FileType::RegularFile, owner)
            .map_err(|why| NotRead::Unsafe(format!("it {why}")))?;
        let size = u64::try_from(stat.st_size).unwrap_or(0);
        if size > MAX_ARTIFACT_BYTES {
            return Err(NotRead::Unsafe(format!(
                "it is {size} bytes, far larger than a compiled TAP component"
            )));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        std::fs::File::from(fd)
            .take(MAX_ARTIFACT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(NotRead::Io)?;
        Ok(bytes)
    }

    /// Opens `dir` itself (no symlink) and checks it like a file.
    pub(crate) fn open_dir_owned_by(dir: &Path, owner: u32) -> Result<OwnedFd, NotRead> {
        let dir_fd = openat(
            CWD,
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| opened("directory", dir, errno))?;
        let stat = fstat(&dir_fd).map_err(|errno| NotRead::Io(errno.into()))?;
        check(&stat, FileType::Directory, owner)
            .map_err(|why| NotRead::Unsafe(format!("the directory {} {why}", dir.display())))?;
        Ok(dir_fd)
    }

    fn opened(what: &str, path: &Path, errno: Errno) -> NotRead {
        match errno {
            Errno::NOENT => NotRead::Missing,
            // O_NOFOLLOW on a symlink: ELOOP (ENOTDIR for a directory).
            Errno::LOOP | Errno::NOTDIR => NotRead::Unsafe(format!(
                "the {what} {} is a symbolic link or not a {what}; it must be the real {what}",
                path.display()
            )),
            other => NotRead::Io(other.into()),
        }
    }

    /// "" when `stat` is of the right type, owned by `owner` and writable
    /// by nobody else; otherwise what is wrong, phrased to follow "it".
    fn check(stat: &Stat, kind: FileType, owner: u32) -> Result<(), String> {
        let actual = FileType::from_raw_mode(stat.st_mode);
        if actual != kind {
            return Err(format!("is a {actual:?}, not a {kind:?}"));
        }
        if stat.st_uid != owner {
            return Err(format!(
                "belongs to uid {}, not to the user running the connector (uid {owner})",
                stat.st_uid
            ));
        }
        let mode = stat.st_mode & 0o777;
        if mode & 0o022 != 0 {
            return Err(format!(
                "can be written by other users (mode {mode:03o}); run `chmod go-w` on it"
            ));
        }
        Ok(())
    }
}

/// Reads `dir/name` if both belong to the effective user and nobody else
/// can write them.
pub(crate) fn read(dir: &Path, name: &str) -> Result<Vec<u8>, NotRead> {
    #[cfg(unix)]
    {
        unix::read_owned_by(dir, name, rustix::process::geteuid().as_raw())
    }
    #[cfg(not(unix))]
    {
        let _ = (dir, name);
        Err(NotRead::Unsafe(
            "file ownership cannot be checked on this platform".into(),
        ))
    }
}

/// Reads the file at `path` under the same rule as [`read`].
pub(crate) fn read_path(path: &Path) -> Result<Vec<u8>, NotRead> {
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| NotRead::Unsafe(format!("{} names no file", path.display())))?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    read(dir, name)
}

/// Creates `dir` (mode 0700) if it is missing, and checks that it belongs
/// to the effective user and nobody else can write it: the place the cache
/// may be written to and read from.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<(), NotRead> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(NotRead::Io(err)),
        }
        unix::open_dir_owned_by(dir, rustix::process::geteuid().as_raw()).map(drop)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Err(NotRead::Unsafe(
            "file ownership cannot be checked on this platform".into(),
        ))
    }
}

/// Replaces `path` with `parts`, written in order, so that readers see the
/// old or the new content, never a mix: temporary file in the same
/// directory, fsync, rename, fsync of the directory. The file is readable
/// by its owner only.
///
/// The temporary file has an unpredictable name and is created with
/// `O_EXCL` (the `tempfile` crate), so nobody who can write to the
/// directory can plant a symlink or a file under its name beforehand and
/// redirect or read the write.
pub fn write_private(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    // tempfile creates the file with mode 0600 on Unix.
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    for part in parts {
        temp.write_all(part)?;
    }
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|err| err.error)?;
    #[cfg(unix)]
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn me() -> u32 {
        rustix::process::geteuid().as_raw()
    }

    fn private_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod");
        dir
    }

    fn write(path: &Path, mode: u32) {
        std::fs::write(path, b"artifact").expect("writes");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn a_private_file_in_a_private_directory_is_read() {
        let dir = private_dir();
        write(&dir.path().join("a.cwasm"), 0o600);
        assert_eq!(read(dir.path(), "a.cwasm").expect("reads"), b"artifact");
        write(&dir.path().join("b.cwasm"), 0o644);
        assert!(
            read_path(&dir.path().join("b.cwasm")).is_ok(),
            "others may read, not write"
        );
    }

    #[test]
    fn a_file_others_can_write_is_refused() {
        let dir = private_dir();
        write(&dir.path().join("a.cwasm"), 0o666);
        let why = read(dir.path(), "a.cwasm")
            .expect_err("refused")
            .to_string();
        assert!(why.contains("written by other users"), "{why}");
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        let dir = private_dir();
        write(&dir.path().join("a.cwasm"), 0o600);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let why = read(dir.path(), "a.cwasm")
            .expect_err("refused")
            .to_string();
        assert!(
            why.contains("directory") && why.contains("other users"),
            "{why}"
        );
    }

    #[test]
    fn a_file_of_another_user_is_refused() {
        let dir = private_dir();
        write(&dir.path().join("a.cwasm"), 0o600);
        if me() == 0 {
            // Root can really hand the file to someone else.
            std::os::unix::fs::chown(dir.path().join("a.cwasm"), Some(65534), None).expect("chown");
            let why = read(dir.path(), "a.cwasm")
                .expect_err("refused")
                .to_string();
            assert!(why.contains("belongs to uid 65534"), "{why}");
        }
        // Without root: the same check, with the reader playing another user.
        let why = unix::read_owned_by(dir.path(), "a.cwasm", me() + 1)
            .expect_err("refused")
            .to_string();
        assert!(why.contains("belongs to uid"), "{why}");
    }

    #[test]
    fn a_symlink_is_not_followed() {
        let dir = private_dir();
        let elsewhere = private_dir();
        write(&elsewhere.path().join("real.cwasm"), 0o600);
        std::os::unix::fs::symlink(
            elsewhere.path().join("real.cwasm"),
            dir.path().join("a.cwasm"),
        )
        .expect("symlink");
        let why = read(dir.path(), "a.cwasm")
            .expect_err("refused")
            .to_string();
        assert!(why.contains("symbolic link"), "{why}");
        // A symlinked directory neither.
        let link = dir.path().join("linked-dir");
        std::os::unix::fs::symlink(elsewhere.path(), &link).expect("symlink");
        let why = read(&link, "real.cwasm").expect_err("refused").to_string();
        assert!(why.contains("symbolic link"), "{why}");
    }

    #[test]
    fn a_fifo_is_refused_without_hanging() {
        let dir = private_dir();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.path().join("a.cwasm"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .expect("mkfifo");
        let why = read(dir.path(), "a.cwasm")
            .expect_err("refused")
            .to_string();
        assert!(why.contains("Fifo"), "{why}");
    }

    #[test]
    fn a_missing_file_is_missing() {
        let dir = private_dir();
        assert!(matches!(read(dir.path(), "nope"), Err(NotRead::Missing)));
    }

    #[test]
    fn the_cache_directory_is_created_owner_only() {
        let parent = private_dir();
        let dir = parent.path().join("cache");
        ensure_private_dir(&dir).expect("creates");
        let mode = std::fs::metadata(&dir)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o775)).expect("chmod");
        assert!(
            ensure_private_dir(&dir).is_err(),
            "a group-writable cache is refused"
        );
    }

    /// An earlier temporary name was `.NAME.tmp-<pid>`, opened without
    /// `O_EXCL`: a symlink planted there redirected the write to a file of
    /// the planter's choosing.
    #[test]
    fn a_symlink_planted_at_a_guessable_temp_name_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        std::fs::write(&target, "untouched").unwrap();
        let path = dir.path().join("tq-conn-proofpoint-tap.toml");
        for guess in [
            format!(".tq-conn-proofpoint-tap.toml.tmp-{}", std::process::id()),
            ".tq-conn-proofpoint-tap.toml.tmp".to_owned(),
        ] {
            std::os::unix::fs::symlink(&target, dir.path().join(guess)).unwrap();
        }
        write_private(&path, &[b"x = ", b"1"]).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "x = 1");
        assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
