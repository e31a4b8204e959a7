//! The on-disk cache of the compiled component.
//!
//! Compiling the component takes a noticeable fraction of a second in a
//! release build (seconds in a debug one); loading a compiled artifact takes
//! well under a millisecond. An entry is keyed by the engine's compatibility
//! hash (wasmtime version, target, settings) and the SHA-256 of the
//! component. Both are in the file name, so a new build or a new component
//! simply uses a new file, and both are repeated in a header inside the file,
//! so a file that was copied, renamed or overwritten is noticed and rebuilt.
//!
//! The entries are native code, so they are only read from a directory and
//! files that belong to the user running the connector and that nobody else
//! can write (`private_file`); the directory is created with mode 0700.
//! Anything else is refused and the component compiled in memory instead.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use crate::private_file::{self, NotRead};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Marks our cache files; the trailing digit is the header layout version.
const MAGIC: &[u8; 8] = b"TAPCWSM1";
const HEADER_LEN: usize = MAGIC.len() + 8 + 32;

/// Which compiled artifact a cache entry must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CacheKey {
    engine_compatibility: u64,
    component_sha256: [u8; 32],
}

impl CacheKey {
    pub(crate) fn new(engine: &Engine, component_wasm: &[u8]) -> Self {
        // DefaultHasher is only stable within one build of this binary; a
        // different build gets different keys, which merely means a rebuild.
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        CacheKey {
            engine_compatibility: hasher.finish(),
            component_sha256: Sha256::digest(component_wasm).into(),
        }
    }

    pub(crate) fn file_name(&self) -> String {
        format!(
            "tap-component-{:016x}-{}.cwasm",
            self.engine_compatibility,
            hex(&self.component_sha256)
        )
    }

    fn header(&self) -> [u8; HEADER_LEN] {
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(MAGIC);
        header[8..16].copy_from_slice(&self.engine_compatibility.to_le_bytes());
        header[16..].copy_from_slice(&self.component_sha256);
        header
    }
}

/// Why an existing cache entry was not used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Rejected {
    #[error("no cached artifact yet")]
    Missing,
    #[error("cannot read it: {0}")]
    Unreadable(std::io::Error),
    /// It, or its directory, could have been written by someone else.
    #[error("refused to load it: {0}")]
    Untrusted(String),
    #[error("it is not a TAP component cache file (no header)")]
    NotOurs,
    #[error("it was compiled for another engine or another component (key mismatch)")]
    KeyMismatch,
    #[error("wasmtime refused it: {0}")]
    Deserialize(String),
}

/// Loads the entry for `key` from `dir`, or says why it cannot be used.
pub(crate) fn load(engine: &Engine, dir: &Path, key: &CacheKey) -> Result<Component, Rejected> {
    let bytes = match private_file::read(dir, &key.file_name()) {
        Ok(bytes) => bytes,
        Err(NotRead::Missing) => return Err(Rejected::Missing),
        Err(NotRead::Unsafe(why)) => return Err(Rejected::Untrusted(why)),
        Err(NotRead::Io(err)) => return Err(Rejected::Unreadable(err)),
    };
    let Some((header, artifact)) = bytes.split_at_checked(HEADER_LEN) else {
        return Err(Rejected::NotOurs);
    };
    if header[..MAGIC.len()] != MAGIC[..] {
        return Err(Rejected::NotOurs);
    }
    if header != key.header().as_slice() {
        return Err(Rejected::KeyMismatch);
    }
    // SAFETY: `deserialize` trusts that the bytes are a wasmtime artifact.
    // They come from a directory and a file that only the user running the
    // connector can write (checked on the open descriptors), carry the key
    // of this engine and component, and wasmtime still checks its own
    // version and settings header before using them.
    unsafe { Component::deserialize(engine, artifact) }
        .map_err(|err| Rejected::Deserialize(format!("{err:#}")))
}

/// Writes the entry for `key` atomically (a temporary file renamed into
/// place, so a concurrent reader never sees half a file), readable only by
/// the owner. Returns the path written.
pub(crate) fn store(dir: &Path, key: &CacheKey, artifact: &[u8]) -> std::io::Result<PathBuf> {
    private_file::ensure_private_dir(dir).map_err(|why| match why {
        NotRead::Io(err) => err,
        other => std::io::Error::other(other.to_string()),
    })?;
    let path = dir.join(key.file_name());
    private_file::write_private(&path, &[&key.header(), artifact])?;
    Ok(path)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(64), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal valid component: the empty component.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    fn engine(epochs: bool) -> Engine {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(epochs);
        Engine::new(&config).expect("engine builds")
    }

    #[test]
    fn a_stored_entry_loads_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = engine(true);
        let key = CacheKey::new(&engine, EMPTY_COMPONENT);
        let artifact = engine
            .precompile_component(EMPTY_COMPONENT)
            .expect("compiles");
        store(dir.path(), &key, &artifact).expect("stores");
        assert!(load(&engine, dir.path(), &key).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn entries_are_readable_by_the_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = engine(true);
        let key = CacheKey::new(&engine, EMPTY_COMPONENT);
        let path = store(dir.path(), &key, b"artifact").expect("stores");
        let mode = std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn an_entry_others_could_have_written_is_refused_unread() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = engine(true);
        let key = CacheKey::new(&engine, EMPTY_COMPONENT);
        let artifact = engine
            .precompile_component(EMPTY_COMPONENT)
            .expect("compiles");
        let path = store(dir.path(), &key, &artifact).expect("stores");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        assert!(matches!(
            load(&engine, dir.path(), &key),
            Err(Rejected::Untrusted(_))
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        assert!(matches!(
            load(&engine, dir.path(), &key),
            Err(Rejected::Untrusted(_))
        ));
        assert!(
            store(dir.path(), &key, &artifact).is_err(),
            "nothing is written into a directory others can write"
        );
    }

    #[test]
    fn the_file_name_carries_both_keys() {
        let engine = engine(true);
        let key = CacheKey::new(&engine, EMPTY_COMPONENT);
        let name = key.file_name();
        assert!(name.contains(&format!("{:016x}", key.engine_compatibility)));
        assert!(name.contains(&hex(&key.component_sha256)));
        let other_engine = CacheKey::new(&self::engine(false), EMPTY_COMPONENT);
        assert_ne!(other_engine.file_name(), name);
    }

    #[test]
    fn an_entry_for_another_component_under_this_name_is_rejected() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = engine(true);
        let key = CacheKey::new(&engine, EMPTY_COMPONENT);
        let mut foreign = key.clone();
        foreign.component_sha256 = [7; 32];
        let artifact = engine
            .precompile_component(EMPTY_COMPONENT)
            .expect("compiles");
        let written = store(dir.path(), &foreign, &artifact).expect("stores");
        std::fs::rename(written, dir.path().join(key.file_name())).expect("renames");
        assert!(matches!(
            load(&engine, dir.path(), &key),
            Err(Rejected::KeyMismatch)
        ));
    }

    #[test]
    fn an_artifact_from_an_incompatible_engine_is_rejected_by_wasmtime() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = engine(true);
        let key = CacheKey::new(&engine, EMPTY_COMPONENT);
        // Right header, wrong contents: compiled without epoch interruption.
        let stale = self::engine(false)
            .precompile_component(EMPTY_COMPONENT)
            .expect("compiles");
        store(dir.path(), &key, &stale).expect("stores");
        assert!(matches!(
            load(&engine, dir.path(), &key),
            Err(Rejected::Deserialize(_))
        ));
    }

    #[test]
    fn a_truncated_or_foreign_file_is_rejected() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = engine(true);
        let key = CacheKey::new(&engine, EMPTY_COMPONENT);
        std::fs::write(dir.path().join(key.file_name()), b"TAPC").expect("writes");
        assert!(matches!(
            load(&engine, dir.path(), &key),
            Err(Rejected::NotOurs)
        ));
        std::fs::write(dir.path().join(key.file_name()), [0u8; 4096]).expect("writes");
        assert!(matches!(
            load(&engine, dir.path(), &key),
            Err(Rejected::NotOurs)
        ));
    }
}
