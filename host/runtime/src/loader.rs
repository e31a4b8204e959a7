//! Where the component comes from and how it becomes runnable code: the
//! engine settings, compile-or-load-from-cache, and `precompile`.
//!
//! Only bytes that only this user could have written are ever loaded as
//! native code (docs/sandbox.md, "The compiled component").

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmtime::component::Component;
use wasmtime::{Engine, Precompiled};

use crate::RuntimeError;
use crate::cache::{self, CacheKey, Rejected};
use crate::private_file;

/// The component built into this binary by `build.rs`.
pub const EMBEDDED_COMPONENT: &[u8] = include_bytes!(env!("TAP_COMPONENT_EMBEDDED_PATH"));

/// The file `EMBEDDED_COMPONENT` was built from (for diagnostics).
pub const EMBEDDED_COMPONENT_ORIGIN: &str = env!("TAP_COMPONENT_ORIGIN");

/// The first bytes of every WebAssembly binary, component or core module.
const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// Which component to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentSource {
    /// The component built into this binary (compiled once, then loaded
    /// from the owner-only cache).
    Embedded,
    /// Another build of the component, a `.wasm` file: compiled in memory
    /// on every run, never cached, and never treated as native code.
    Wasm(PathBuf),
    /// A `.cwasm` made by `precompile` with this same binary: native code,
    /// so it is loaded only when the file and its directory belong to the
    /// user running the connector and nobody else can write them.
    Precompiled(PathBuf),
}

impl fmt::Display for ComponentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentSource::Embedded => f.write_str("the embedded TAP component"),
            ComponentSource::Wasm(path) | ComponentSource::Precompiled(path) => {
                write!(f, "{}", path.display())
            }
        }
    }
}

/// How the component was made runnable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMethod {
    /// Loaded from the precompiled cache.
    CacheHit,
    /// Compiled, and the result stored in the cache.
    CompiledAndCached,
    /// Compiled in memory: a `.wasm` file, no cache, or the cache could
    /// not be used (logged).
    Compiled,
    /// Loaded from a `.cwasm` file given as the source.
    Precompiled,
}

/// How and how fast the component was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadStats {
    pub method: LoadMethod,
    /// From reading the source to a runnable component.
    pub duration: Duration,
    /// The cache entry read or written, if any.
    pub cache_file: Option<PathBuf>,
    /// Size of the component as given (`.wasm` or `.cwasm`).
    pub source_bytes: usize,
}

impl LoadStats {
    pub fn duration_ms(&self) -> f64 {
        self.duration.as_secs_f64() * 1000.0
    }
}

/// The one engine configuration for compiling and running the component.
/// Precompiled artifacts are only valid for an engine built the same way.
pub(crate) fn engine() -> Result<Engine, RuntimeError> {
    let mut config = wasmtime::Config::new();
    // Lets a background thread interrupt a component that runs too long.
    config.epoch_interruption(true);
    Engine::new(&config).map_err(|err| RuntimeError::Load {
        origin: "the wasmtime engine".into(),
        reason: format!("{err:#}"),
    })
}

/// Makes `source` runnable: the embedded component through the cache, a
/// `.wasm` file compiled in memory, a `.cwasm` file after checking who could
/// have written it.
pub(crate) fn load(
    engine: &Engine,
    source: &ComponentSource,
    cache_dir: Option<&Path>,
) -> Result<(Component, LoadStats), RuntimeError> {
    let started = Instant::now();
    let load_error = |reason: String| RuntimeError::Load {
        origin: source.to_string(),
        reason,
    };
    let stats = |method, cache_file, source_bytes| LoadStats {
        method,
        duration: started.elapsed(),
        cache_file,
        source_bytes,
    };
    match source {
        ComponentSource::Embedded => {
            let (component, method, cache_file) =
                compile_through_cache(engine, EMBEDDED_COMPONENT, cache_dir).map_err(load_error)?;
            Ok((
                component,
                stats(method, cache_file, EMBEDDED_COMPONENT.len()),
            ))
        }
        ComponentSource::Wasm(path) => {
            let bytes = std::fs::read(path).map_err(|source| RuntimeError::Io {
                action: "cannot read the TAP component",
                path: path.clone(),
                source,
            })?;
            if !bytes.starts_with(WASM_MAGIC) {
                let what = match Engine::detect_precompiled(&bytes) {
                    Some(_) => {
                        "it is a precompiled artifact (.cwasm), which is native code: pass it with \
                         --precompiled instead, which checks that only you could have written it"
                    }
                    None => "it is not a WebAssembly component (.wasm)",
                };
                return Err(load_error(what.into()));
            }
            let component = compile(engine, &bytes).map_err(load_error)?;
            Ok((component, stats(LoadMethod::Compiled, None, bytes.len())))
        }
        ComponentSource::Precompiled(path) => {
            let bytes = private_file::read_path(path).map_err(|why| {
                load_error(format!(
                    "{why}; a precompiled component is native code and is only loaded from a \
                     file and directory that belong to you and that nobody else can write"
                ))
            })?;
            match Engine::detect_precompiled(&bytes) {
                Some(Precompiled::Component) => {}
                Some(Precompiled::Module) => {
                    return Err(load_error(
                        "it is a precompiled core module, not a component".into(),
                    ));
                }
                None => {
                    return Err(load_error(
                        "it is not a precompiled component (.cwasm); pass a .wasm with --component"
                            .into(),
                    ));
                }
            }
            // SAFETY: the operator named this file as the component to run,
            // and only they (or root) could have written it and its
            // directory (checked on the descriptors read); wasmtime checks
            // its version and settings header.
            let component = unsafe { Component::deserialize(engine, &bytes) }.map_err(|err| {
                load_error(format!(
                    "{err:#}; it was precompiled by another build of this program: run \
                     `tq-conn-proofpoint-tap precompile` again with this one, or pass the .wasm \
                     with --component"
                ))
            })?;
            Ok((component, stats(LoadMethod::Precompiled, None, bytes.len())))
        }
    }
}

/// The embedded component from the cache, or compiled and stored there.
/// A cache that cannot be trusted is not used at all: the run compiles in
/// memory and says why, loudly, once.
fn compile_through_cache(
    engine: &Engine,
    bytes: &[u8],
    cache_dir: Option<&Path>,
) -> Result<(Component, LoadMethod, Option<PathBuf>), String> {
    let Some(cache_dir) = cache_dir else {
        return Ok((compile(engine, bytes)?, LoadMethod::Compiled, None));
    };
    let key = CacheKey::new(engine, bytes);
    let cache_file = cache_dir.join(key.file_name());
    match cache::load(engine, cache_dir, &key) {
        Ok(component) => return Ok((component, LoadMethod::CacheHit, Some(cache_file))),
        Err(Rejected::Missing) => {}
        Err(why @ Rejected::Untrusted(_)) => tracing::warn!(
            file = %cache_file.display(),
            reason = %why,
            "not loading the precompiled TAP component: someone other than this user could \
             have written it; compiling it again"
        ),
        Err(why) => tracing::debug!(
            file = %cache_file.display(),
            reason = %why,
            "rebuilding the precompiled TAP component"
        ),
    }

    let component = compile(engine, bytes)?;
    let stored = component
        .serialize()
        .map_err(|err| std::io::Error::other(format!("{err:#}")))
        .and_then(|artifact| cache::store(cache_dir, &key, &artifact));
    Ok(match stored {
        Ok(path) => (component, LoadMethod::CompiledAndCached, Some(path)),
        Err(err) => {
            // The run can go on without a cache; it just compiles next time too.
            tracing::warn!(
                file = %cache_file.display(),
                error = %err,
                "cannot store the precompiled TAP component; the next run compiles it again"
            );
            (component, LoadMethod::Compiled, None)
        }
    })
}

fn compile(engine: &Engine, wasm: &[u8]) -> Result<Component, String> {
    Component::new(engine, wasm).map_err(|err| format!("{err:#}"))
}

/// Compiles `source` for this binary's engine and writes the artifact to
/// `out`, for `ComponentSource::File` to load later without compiling.
/// Returns the number of bytes written.
pub fn precompile(source: &ComponentSource, out: &Path) -> Result<usize, RuntimeError> {
    let engine = engine()?;
    let wasm = match source {
        ComponentSource::Embedded => EMBEDDED_COMPONENT.to_vec(),
        ComponentSource::Wasm(path) | ComponentSource::Precompiled(path) => std::fs::read(path)
            .map_err(|source| RuntimeError::Io {
                action: "cannot read the TAP component",
                path: path.clone(),
                source,
            })?,
    };
    if !wasm.starts_with(WASM_MAGIC) {
        return Err(RuntimeError::Load {
            origin: source.to_string(),
            reason: "only a .wasm component can be precompiled".into(),
        });
    }
    let artifact = engine
        .precompile_component(&wasm)
        .map_err(|err| RuntimeError::Load {
            origin: source.to_string(),
            reason: format!("{err:#}"),
        })?;
    crate::private_file::write_private(out, &[&artifact]).map_err(|source| RuntimeError::Io {
        action: "cannot write the precompiled component to",
        path: out.to_path_buf(),
        source,
    })?;
    Ok(artifact.len())
}
