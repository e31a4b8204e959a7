//! Where the component comes from and how it becomes runnable code: the
//! engine settings, compile-or-load-from-cache, and `precompile`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmtime::component::Component;
use wasmtime::{Engine, Precompiled};

use crate::RuntimeError;
use crate::cache::{self, CacheKey, Rejected};

/// The component built into this binary by `build.rs`.
pub const EMBEDDED_COMPONENT: &[u8] = include_bytes!(env!("TAP_COMPONENT_EMBEDDED_PATH"));

/// The file `EMBEDDED_COMPONENT` was built from (for diagnostics).
pub const EMBEDDED_COMPONENT_ORIGIN: &str = env!("TAP_COMPONENT_ORIGIN");

/// The first bytes of every WebAssembly binary, component or core module.
const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// Which component to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentSource {
    /// The component built into this binary.
    Embedded,
    /// Another build: a `.wasm` component, or a `.cwasm` made by
    /// `precompile` with this same binary.
    File(PathBuf),
}

impl fmt::Display for ComponentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentSource::Embedded => f.write_str("the embedded TAP component"),
            ComponentSource::File(path) => write!(f, "{}", path.display()),
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
    /// Compiled; there is no cache, or storing into it failed (logged).
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

/// Reads the source, then compiles it, loads it from the cache, or
/// deserializes it if it is already a precompiled artifact.
pub(crate) fn load(
    engine: &Engine,
    source: &ComponentSource,
    cache_dir: Option<&Path>,
) -> Result<(Component, LoadStats), RuntimeError> {
    let started = Instant::now();
    let file_bytes;
    let bytes: &[u8] = match source {
        ComponentSource::Embedded => EMBEDDED_COMPONENT,
        ComponentSource::File(path) => {
            file_bytes = std::fs::read(path).map_err(|source| RuntimeError::Io {
                action: "cannot read the TAP component",
                path: path.clone(),
                source,
            })?;
            &file_bytes
        }
    };
    let load_error = |reason: String| RuntimeError::Load {
        origin: source.to_string(),
        reason,
    };

    if !bytes.starts_with(WASM_MAGIC) {
        return match Engine::detect_precompiled(bytes) {
            Some(Precompiled::Component) => {
                // SAFETY: the operator named this file as the component to
                // run; wasmtime checks its version and settings header.
                let component = unsafe { Component::deserialize(engine, bytes) }.map_err(|err| {
                    load_error(format!(
                        "{err:#}; it was precompiled by another build of this program: run `precompile` again with this one, or pass the .wasm"
                    ))
                })?;
                let stats = LoadStats {
                    method: LoadMethod::Precompiled,
                    duration: started.elapsed(),
                    cache_file: None,
                    source_bytes: bytes.len(),
                };
                Ok((component, stats))
            }
            Some(Precompiled::Module) => Err(load_error(
                "it is a precompiled core module, not a component".into(),
            )),
            None => Err(load_error(
                "it is neither a WebAssembly component (.wasm) nor a precompiled one (.cwasm)"
                    .into(),
            )),
        };
    }

    let Some(cache_dir) = cache_dir else {
        let component = compile(engine, bytes).map_err(load_error)?;
        let stats = LoadStats {
            method: LoadMethod::Compiled,
            duration: started.elapsed(),
            cache_file: None,
            source_bytes: bytes.len(),
        };
        return Ok((component, stats));
    };

    let key = CacheKey::new(engine, bytes);
    let cache_file = cache_dir.join(key.file_name());
    match cache::load(engine, cache_dir, &key) {
        Ok(component) => {
            let stats = LoadStats {
                method: LoadMethod::CacheHit,
                duration: started.elapsed(),
                cache_file: Some(cache_file),
                source_bytes: bytes.len(),
            };
            return Ok((component, stats));
        }
        Err(Rejected::Missing) => {}
        Err(why) => tracing::debug!(
            file = %cache_file.display(),
            reason = %why,
            "rebuilding the precompiled TAP component"
        ),
    }

    let component = compile(engine, bytes).map_err(load_error)?;
    let stored = component
        .serialize()
        .map_err(|err| std::io::Error::other(format!("{err:#}")))
        .and_then(|artifact| cache::store(cache_dir, &key, &artifact));
    let (method, cache_file) = match stored {
        Ok(path) => (LoadMethod::CompiledAndCached, Some(path)),
        Err(err) => {
            // The run can go on without a cache; it just compiles next time too.
            tracing::warn!(
                file = %cache_file.display(),
                error = %err,
                "cannot store the precompiled TAP component; the next run compiles it again"
            );
            (LoadMethod::Compiled, None)
        }
    };
    let stats = LoadStats {
        method,
        duration: started.elapsed(),
        cache_file,
        source_bytes: bytes.len(),
    };
    Ok((component, stats))
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
        ComponentSource::File(path) => std::fs::read(path).map_err(|source| RuntimeError::Io {
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
    write_atomically(out, &artifact).map_err(|source| RuntimeError::Io {
        action: "cannot write the precompiled component to",
        path: out.to_path_buf(),
        source,
    })?;
    Ok(artifact.len())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|err| err.error)?;
    Ok(())
}
