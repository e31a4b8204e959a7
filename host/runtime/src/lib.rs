//! Runs the TAP component in a wasmtime sandbox.
//!
//! The component gets nothing but what `sync` needs: no files, environment,
//! arguments, stdin or sockets; outbound HTTP only to the configured TAP
//! origin, with the credentials added by the host (`outbound`); a memory
//! cap, a CPU-time cap and a wall-clock cap per call (`limits`). Each call
//! gets a fresh store that is dropped afterwards, whatever happened.
//!
//! Compiling the component is the slow part, so it happens once per
//! `Runtime`, and the compiled artifact is cached on disk (`cache`).

mod bindings;
mod cache;
mod error;
mod limits;
mod loader;
mod outbound;
mod private_file;
mod sandbox;

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, Store, UpdateDeadline};

pub use bindings::{
    Attribute, CampaignRef, Counters, Credentials, ObjectKind, RecordKey, Rejection, Relation,
    Settings, SyncError, SyncResult, TapFailure, ThreatqObject, Window,
};
pub use error::RuntimeError;
pub use limits::Limits;
pub use loader::{
    ComponentSource, EMBEDDED_COMPONENT, EMBEDDED_COMPONENT_ORIGIN, LoadMethod, LoadStats,
    precompile,
};
pub use outbound::OutboundPolicy;

use bindings::{TapConnectorPre, host_interface};
use outbound::OutboundHttp;
use sandbox::SandboxState;

/// What `Runtime::new` needs.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub component: ComponentSource,
    /// Where the compiled component is cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    pub limits: Limits,
}

/// The compiled, linked component, ready to run calls. Cloning is cheap and
/// clones share the compiled code.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Loaded>,
}

struct Loaded {
    engine: Engine,
    connector: TapConnectorPre<SandboxState>,
    limits: Limits,
    stats: LoadStats,
}

impl Runtime {
    /// Compiles (or loads from the cache) and links the component. Fails if
    /// it cannot be loaded or imports something this host does not offer.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let engine = loader::engine()?;
        let (component, stats) =
            loader::load(&engine, &config.component, config.cache_dir.as_deref())?;
        let link_error = |reason: String| RuntimeError::Load {
            origin: config.component.to_string(),
            reason,
        };

        let mut linker = Linker::<SandboxState>::new(&engine);
        // Full WASI p2 is linked because a Rust std component imports the
        // cli interfaces too; the WasiCtx then grants nothing through them.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
            .and_then(|()| {
                host_interface::add_to_linker::<_, HasSelf<SandboxState>>(&mut linker, |state| {
                    state
                })
            })
            .map_err(|err| link_error(format!("cannot set up the host interfaces: {err:#}")))?;
        let connector = linker
            .instantiate_pre(&component)
            .and_then(TapConnectorPre::new)
            .map_err(|err| {
                link_error(format!(
                    "{err:#} (is it a build of the TAP component for contract proofpoint:tap@0.2?)"
                ))
            })?;

        limits::start_epoch_ticker(&engine).map_err(|err| RuntimeError::Load {
            origin: "the wasmtime engine".into(),
            reason: format!("cannot start the epoch thread: {err}"),
        })?;
        tracing::debug!(
            source = %config.component,
            method = ?stats.method,
            duration_ms = stats.duration_ms(),
            "TAP component loaded"
        );
        Ok(Runtime {
            inner: Arc::new(Loaded {
                engine,
                connector,
                limits: config.limits,
                stats,
            }),
        })
    }

    /// How the component was loaded.
    pub fn load_stats(&self) -> LoadStats {
        self.inner.stats.clone()
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// Runs one `sync` call in a fresh sandbox. The outer `Result` is the
    /// sandbox's (a limit, a crash); the inner one is the component's answer.
    pub async fn sync(
        &self,
        outbound: &OutboundPolicy,
        settings: &Settings,
        window: &Window,
    ) -> Result<Result<SyncResult, SyncError>, RuntimeError> {
        let limits = self.inner.limits;
        let mut store = Store::new(
            &self.inner.engine,
            SandboxState::new(OutboundHttp::new(outbound)?, limits.memory_bytes),
        );
        store.limiter(|state| &mut state.memory);
        let cpu_budget = limits.cpu_ticks();
        // Called at each epoch tick while the component runs wasm code, so
        // the count approximates its CPU time; time blocked in host I/O does
        // not advance it. Yielding lets the wall-clock timeout fire.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut context| {
            let state = context.data_mut();
            state.cpu_ticks_used += 1;
            if state.cpu_ticks_used > cpu_budget {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });

        let call = async {
            let instance = self.inner.connector.instantiate_async(&mut store).await?;
            instance
                .proofpoint_tap_connector()
                .call_sync(&mut store, settings, window)
                .await
        };
        let outcome = tokio::time::timeout(limits.wall_time, call).await;

        let state = store.data();
        let stderr = state.stderr_text();
        let result = match outcome {
            Err(_elapsed) => Err(RuntimeError::WallClock {
                limit: limits.wall_time,
            }),
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) if state.memory.refused_growth => Err(RuntimeError::MemoryLimit {
                limit_bytes: limits.memory_bytes,
            }),
            Ok(Err(_)) if state.cpu_ticks_used > cpu_budget => Err(RuntimeError::CpuLimit {
                limit: limits.cpu_time,
            }),
            Ok(Err(err)) => Err(RuntimeError::Trap(describe_trap(&err, &stderr))),
        };
        if !stderr.is_empty() {
            tracing::warn!(
                target: "tap_component",
                stderr = %sandbox::sanitize(&stderr),
                "the TAP component wrote to stderr"
            );
        }
        result
    }
}

/// wasmtime's message (trap kind and wasm backtrace) plus the component's
/// own last words, which for a Rust panic name the file and line.
fn describe_trap(err: &wasmtime::Error, stderr: &str) -> String {
    let mut text = format!("{err:#}");
    if !stderr.is_empty() {
        text.push_str("; it wrote: ");
        text.push_str(&sandbox::sanitize(stderr));
    }
    text
}
