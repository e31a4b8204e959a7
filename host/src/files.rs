//! Files the connector writes outside SQLite (the `--export` file, the run
//! lock): owner-only, and never through a symbolic link.
//!
//! Owner-only because what they hold (TAP's records, who runs when) is the
//! operator's business, whatever the umask says. No symbolic link because
//! a link planted where the file should be (in a shared directory, or one
//! another user can write) would make the connector create, truncate or
//! lock whatever the link names, with the connector's rights: the open
//! refuses a link as the last part of the path (`O_NOFOLLOW`). A file that
//! already exists with a looser mode is tightened on the descriptor that
//! was opened, so no other file can be swapped in between.
//!
//! The config file is written by `tap_runtime::write_private` (atomic,
//! owner-only); the state database is created owner-only by the store and
//! tightened there, since SQLite opens it itself.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// The mode of every file this module opens.
pub const OWNER_ONLY: u32 = 0o600;

/// Opens `path` with `options` (which say read, write, create...), owner-
/// only and without following a symbolic link. `what` names the file in
/// messages ("the export file").
pub fn open_private(path: &Path, options: &mut OpenOptions, what: &str) -> anyhow::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(OWNER_ONLY);
        // The bits fit: O_NOFOLLOW is a small positive flag on every Unix.
        options.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    let file = options.open(path).map_err(|e| refusal(path, &e, what))?;
    tighten(&file, path, what);
    Ok(file)
}

fn refusal(path: &Path, error: &io::Error, what: &str) -> anyhow::Error {
    #[cfg(unix)]
    if error.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
        return anyhow::anyhow!(
            "cannot open {what} {}: it is a symbolic link, and the connector does not write \
             through one (whoever made it could point it at any file this user may write); \
             remove the link or give the path of a real file",
            path.display()
        );
    }
    anyhow::anyhow!("cannot open {what} {}: {error}", path.display())
}

/// Makes an existing regular file owner-only, with a warning that says
/// what it was; an error to do so is a warning too (the file still works).
#[cfg(unix)]
fn tighten(file: &File, path: &Path, what: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(metadata) = file.metadata() else {
        return;
    };
    let mode = metadata.permissions().mode() & 0o777;
    if !metadata.is_file() || mode & 0o077 == 0 {
        return;
    }
    match file.set_permissions(std::fs::Permissions::from_mode(OWNER_ONLY)) {
        Ok(()) => tracing::warn!(
            file = %path.display(),
            "{what} was accessible by other users (mode {mode:04o}); it is now owner-only (0600)"
        ),
        Err(e) => tracing::warn!(
            file = %path.display(),
            "{what} is accessible by other users (mode {mode:04o}) and cannot be made \
             owner-only ({e}); run `chmod 600 {}`",
            path.display()
        ),
    }
}

#[cfg(not(unix))]
fn tighten(_file: &File, _path: &Path, _what: &str) {}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn write_create() -> OpenOptions {
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        options
    }

    #[test]
    fn a_new_file_is_owner_only_and_an_old_one_is_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new");
        open_private(&path, &mut write_create(), "the file").unwrap();
        assert_eq!(mode(&path), 0o600);

        let old = dir.path().join("old");
        std::fs::write(&old, "x").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o664)).unwrap();
        open_private(&old, &mut write_create(), "the file").unwrap();
        assert_eq!(mode(&old), 0o600);
    }

    #[test]
    fn a_symbolic_link_is_refused_and_its_target_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "keep me").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let error = open_private(&link, &mut write_create(), "the export file")
            .unwrap_err()
            .to_string();
        assert!(error.contains("symbolic link"), "{error}");
        assert!(error.contains("the export file"), "{error}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        assert_eq!(mode(&target), 0o644);

        // A link to a file that does not exist yet is not created through.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("absent"), &dangling).unwrap();
        assert!(open_private(&dangling, &mut write_create(), "the file").is_err());
        assert!(!dir.path().join("absent").exists());
    }
}
