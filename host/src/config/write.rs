//! Writing the config file: atomically, owner-only (it holds the ThreatQ
//! password).

use super::*;

/// Writes `config` to `dir` atomically (temporary file, fsync, rename), so
/// a crash never leaves a half-written file, with owner-only permissions
/// because it holds the ThreatQ password.
pub fn write(dir: &Path, config: &Config) -> Result<(), ConfigError> {
    let file = path(dir);
    let body = toml::to_string_pretty(config).map_err(|e| ConfigError::Serialize(e.to_string()))?;
    let text = format!(
        "# tq-conn-proofpoint-tap configuration.\n\
         # [threatq] is how to reach ThreatQ; any value set in [tap] wins over\n\
         # the connector's settings in ThreatQ's UI. Keep this file private.\n\n{body}"
    );
    tap_runtime::write_private(&file, &[text.as_bytes()])
        .map_err(|source| ConfigError::Write { path: file, source })
}

/// A warning when the config file is readable or writable by group or
/// others, with the command that fixes it.
#[cfg(unix)]
pub fn permission_warning(file: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(file).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            // No `password:` in the text: the log redactor would take the
            // next word for a password and mask the advice.
            "{} is accessible by other users (mode {mode:04o}) and holds the ThreatQ password; \
             run `chmod 600 {}`",
            file.display(),
            file.display()
        )
    })
}

#[cfg(not(unix))]
pub fn permission_warning(_file: &Path) -> Option<String> {
    None
}

/// A warning when the config directory can be written by group or others,
/// with the command that fixes it. Whoever can write the directory can
/// replace the config file (and with it the ThreatQ host the password is
/// sent to), or put links where the connector writes its state and lock.
#[cfg(unix)]
pub fn directory_warning(dir: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(dir).ok()?.permissions().mode() & 0o7777;
    (mode & 0o022 != 0).then(|| {
        format!(
            "the config directory {} can be written by other users (mode {mode:04o}), who could \
             replace the config file or the run state; run `chmod go-w {}`",
            dir.display(),
            dir.display()
        )
    })
}

#[cfg(not(unix))]
pub fn directory_warning(_dir: &Path) -> Option<String> {
    None
}
