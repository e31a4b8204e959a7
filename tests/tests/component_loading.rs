//! Where the runnable component comes from, and that nothing someone else
//! could have written is ever loaded as native code: the owner-only cache
//! of the embedded component, `.wasm` files compiled in memory, and
//! `--precompiled` artifacts checked for who could have written them.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use tap_runtime::{ComponentSource, Limits, LoadMethod, Runtime, RuntimeConfig};

fn load(component: ComponentSource, cache_dir: Option<&Path>) -> Result<Runtime, String> {
    Runtime::new(RuntimeConfig {
        component,
        cache_dir: cache_dir.map(Path::to_path_buf),
        limits: Limits::default(),
    })
    .map_err(|err| err.to_string())
}

fn refused(component: ComponentSource) -> String {
    match load(component, None) {
        Ok(_) => panic!("expected the component to be refused"),
        Err(why) => why,
    }
}

fn method(runtime: &Runtime) -> LoadMethod {
    runtime.load_stats().method
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A config directory as the operator has it: owner-only.
fn config_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    chmod(dir.path(), 0o700);
    dir
}

fn probe_wasm() -> PathBuf {
    PathBuf::from(env!("SANDBOX_PROBE_WASM"))
}

#[test]
fn the_cache_is_created_owner_only_and_hit_on_the_next_run() {
    let config = config_dir();
    let cache = config.path().join("cache");
    let first = load(ComponentSource::Embedded, Some(&cache)).expect("loads");
    assert_eq!(method(&first), LoadMethod::CompiledAndCached);
    let entry = first.load_stats().cache_file.expect("an entry was written");
    assert_eq!(
        std::fs::metadata(&cache)
            .expect("cache dir")
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    assert_eq!(
        std::fs::metadata(&entry)
            .expect("entry")
            .permissions()
            .mode()
            & 0o077,
        0,
        "only the owner may read or write the entry"
    );
    let second = load(ComponentSource::Embedded, Some(&cache)).expect("loads");
    assert_eq!(method(&second), LoadMethod::CacheHit);
    eprintln!(
        "embedded component: compiled in {:.1} ms, from the cache in {:.2} ms",
        first.load_stats().duration_ms(),
        second.load_stats().duration_ms()
    );
}

#[test]
fn a_corrupt_or_forged_entry_under_the_right_name_is_rebuilt_not_loaded() {
    let config = config_dir();
    let cache = config.path().join("cache");
    let entry = load(ComponentSource::Embedded, Some(&cache))
        .expect("loads")
        .load_stats()
        .cache_file
        .expect("entry");

    std::fs::write(&entry, b"TAPCWSM1 but then garbage").expect("corrupt the entry");
    chmod(&entry, 0o600);
    assert_eq!(
        method(&load(ComponentSource::Embedded, Some(&cache)).expect("loads")),
        LoadMethod::CompiledAndCached
    );

    // A real artifact, but of another component (the probe), planted
    // under the embedded component's name without our header.
    let forged = config.path().join("probe.cwasm");
    tap_runtime::precompile(&ComponentSource::Wasm(probe_wasm()), &forged).expect("precompiles");
    std::fs::copy(&forged, &entry).expect("plant");
    chmod(&entry, 0o600);
    assert_eq!(
        method(&load(ComponentSource::Embedded, Some(&cache)).expect("loads")),
        LoadMethod::CompiledAndCached
    );
    assert_eq!(
        method(&load(ComponentSource::Embedded, Some(&cache)).expect("loads")),
        LoadMethod::CacheHit
    );
}

#[test]
fn an_entry_another_user_could_have_planted_is_never_loaded() {
    let config = config_dir();
    let cache = config.path().join("cache");
    let entry = load(ComponentSource::Embedded, Some(&cache))
        .expect("loads")
        .load_stats()
        .cache_file
        .expect("entry");

    // A valid entry, but writable by everyone: it could be anyone's code.
    chmod(&entry, 0o666);
    let runtime = load(ComponentSource::Embedded, Some(&cache)).expect("loads");
    assert_eq!(method(&runtime), LoadMethod::CompiledAndCached);
    assert_eq!(
        std::fs::metadata(&entry)
            .expect("entry")
            .permissions()
            .mode()
            & 0o777,
        0o600,
        "replaced by a fresh owner-only entry"
    );

    // Owned by another user (only root can arrange that for real).
    if running_as_root() {
        std::os::unix::fs::chown(&entry, Some(65534), Some(65534)).expect("chown");
        let runtime = load(ComponentSource::Embedded, Some(&cache)).expect("loads");
        assert_eq!(method(&runtime), LoadMethod::CompiledAndCached);
        assert_eq!(
            std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&entry).expect("entry")),
            0
        );
    }

    // A cache directory others can write: not used at all, not written.
    chmod(&cache, 0o777);
    let runtime = load(ComponentSource::Embedded, Some(&cache)).expect("still runs");
    assert_eq!(method(&runtime), LoadMethod::Compiled);
    assert_eq!(runtime.load_stats().cache_file, None);

    // A cache directory that is a symlink to someone else's directory.
    chmod(&cache, 0o700);
    let elsewhere = config.path().join("elsewhere");
    std::fs::rename(&cache, &elsewhere).expect("move");
    std::os::unix::fs::symlink(&elsewhere, &cache).expect("symlink");
    let runtime = load(ComponentSource::Embedded, Some(&cache)).expect("still runs");
    assert_eq!(method(&runtime), LoadMethod::Compiled);
}

fn running_as_root() -> bool {
    // The tests' own files are created by the effective user.
    let probe = tempfile::tempfile().expect("temp file");
    std::os::unix::fs::MetadataExt::uid(&probe.metadata().expect("metadata")) == 0
}

#[test]
fn a_wasm_file_is_compiled_in_memory_and_never_cached() {
    let config = config_dir();
    let cache = config.path().join("cache");
    let runtime = load(ComponentSource::Wasm(probe_wasm()), Some(&cache)).expect("loads");
    assert_eq!(method(&runtime), LoadMethod::Compiled);
    assert!(
        !cache.exists(),
        "a .wasm given on the command line leaves no cache"
    );
}

#[test]
fn a_precompiled_artifact_named_wasm_is_refused_as_a_component_file() {
    let config = config_dir();
    let disguised = config.path().join("tap.wasm");
    tap_runtime::precompile(&ComponentSource::Embedded, &disguised).expect("precompiles");
    let why = refused(ComponentSource::Wasm(disguised));
    assert!(
        why.contains("precompiled artifact") && why.contains("--precompiled"),
        "{why}"
    );
}

#[test]
fn a_precompiled_file_runs_only_from_a_place_only_its_owner_can_write() {
    let config = config_dir();
    let cwasm = config.path().join("tap.cwasm");
    let written = tap_runtime::precompile(&ComponentSource::Embedded, &cwasm).expect("precompiles");
    eprintln!(
        "embedded component: {} bytes as .wasm, {written} bytes as .cwasm",
        tap_runtime::EMBEDDED_COMPONENT.len()
    );
    let runtime = load(ComponentSource::Precompiled(cwasm.clone()), None).expect("loads");
    assert_eq!(method(&runtime), LoadMethod::Precompiled);

    chmod(&cwasm, 0o664);
    let why = refused(ComponentSource::Precompiled(cwasm.clone()));
    assert!(
        why.contains("written by other users") && why.contains("tap.cwasm"),
        "{why}"
    );

    chmod(&cwasm, 0o600);
    chmod(config.path(), 0o1777);
    let why = refused(ComponentSource::Precompiled(cwasm.clone()));
    assert!(why.contains("directory"), "{why}");
    chmod(config.path(), 0o700);

    let link = config.path().join("link.cwasm");
    std::os::unix::fs::symlink(&cwasm, &link).expect("symlink");
    let why = refused(ComponentSource::Precompiled(link));
    assert!(why.contains("symbolic link"), "{why}");

    let not_precompiled = config.path().join("plain.cwasm");
    std::fs::write(&not_precompiled, tap_runtime::EMBEDDED_COMPONENT).expect("write");
    chmod(&not_precompiled, 0o600);
    let why = refused(ComponentSource::Precompiled(not_precompiled));
    assert!(why.contains("--component"), "{why}");
}

#[test]
fn a_file_that_is_not_a_component_is_refused_with_its_path() {
    let dir = config_dir();
    let bogus = dir.path().join("not-a-component.wasm");
    std::fs::write(&bogus, b"#!/bin/sh\necho hi\n").expect("write");
    let text = refused(ComponentSource::Wasm(bogus));
    assert!(text.contains("not-a-component.wasm"), "{text}");
    assert!(text.contains("not a WebAssembly component"), "{text}");
}
