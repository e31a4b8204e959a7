//! Finding the legacy Python connector's config beside ours.

use super::*;

/// Files larger than this are not the legacy connector's small config.
const LEGACY_CONFIG_MAX_BYTES: u64 = 64 * 1024;

/// Extensions of the files this connector keeps beside its config (config,
/// log, lock, state, temporary files), which are never the legacy one.
const OWN_FILE_EXTENSIONS: &[&str] = &[
    "toml",
    "log",
    "lock",
    "tmp",
    "json",
    "db",
    "db-journal",
    "db-wal",
    "migrated",
];

/// Looks in `dir` for a file that is probably the legacy Python
/// connector's configuration: the old guide used the same `-c` directory,
/// so an upgrade that only swaps the program finds it there instead of
/// ours. Its exact name and format were never documented, so a small text
/// file named after Proofpoint or TAP that mentions a host, a client id and
/// a password qualifies. The name matters because `/etc/tq_labs/` also
/// holds other ThreatQ connectors' configs, which mention the same words.
pub fn find_legacy_config(dir: &Path) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .metadata()
                .is_ok_and(|m| m.is_file() && m.len() <= LEGACY_CONFIG_MAX_BYTES)
        })
        .map(|entry| entry.path())
        .filter(|candidate| {
            let name = candidate
                .file_name()
                .map(|n| n.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            let ours = candidate
                .extension()
                .is_some_and(|ext| OWN_FILE_EXTENSIONS.iter().any(|own| ext == *own))
                && name.starts_with("tq-conn-proofpoint-tap.");
            !ours && (name.contains("proofpoint") || name.contains("tap"))
        })
        .filter(|candidate| {
            fs::read_to_string(candidate).is_ok_and(|text| {
                let text = text.to_ascii_lowercase();
                text.contains("host") && text.contains("client") && text.contains("password")
            })
        })
        .collect();
    candidates.sort();
    candidates.into_iter().next()
}
