//! Whole-file replacement that readers never see half done, for the files
//! an operator keeps beside the connector (the config, the demo's config).

use std::fs::File;
use std::io::Write;
use std::path::Path;

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
        .unwrap_or_else(|| "file".to_owned());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An earlier temporary name was `.NAME.tmp-<pid>`, opened without
    /// `O_EXCL`: a symlink planted there redirected the write to a file of
    /// the planter's choosing.
    #[cfg(unix)]
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
        write_atomically(&path, b"x = 1").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "x = 1");
        assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
