//! Runs the TAP component in a wasmtime sandbox.
//!
//! The component gets nothing but what its calls (`sync`, `map_records`,
//! `read_people`) need: no files, environment,
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
mod origin;
mod outbound;
mod private_file;
mod sandbox;

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, Store, UpdateDeadline};

pub use bindings::{
    Attribute, CampaignLink, CampaignRef, Counters, Credentials, EnrichmentReport, MessageLink,
    NamedRef, ObjectKind, PeopleAnswer, PeopleList, PeopleRequest, Person, PersonMark,
    QuarantinedRecord, RecordKey, Rejection, Relation, Settings, SummaryRef, SyncError, SyncResult,
    TapAccess, TapFailure, ThreatRef, ThreatqObject, Verdict, VerdictStatus, Window,
};
pub use error::{RuntimeError, SandboxLimit};
pub use limits::Limits;
pub use loader::{
    ComponentSource, EMBEDDED_COMPONENT, EMBEDDED_COMPONENT_ORIGIN, LoadMethod, LoadStats,
    precompile,
};
pub use origin::{OriginError, TapOrigin};
pub use outbound::{OutboundPolicy, Pool, RequestCounts};
pub use private_file::write_private;

use bindings::{TapConnectorPre, host_interface};
use outbound::{OutboundHttp, RequestCounter};
use sandbox::{Refusal, SandboxState};

/// What one call came to: the requests the host sent to TAP on the
/// component's behalf, counted by the host itself so they stand whatever
/// ended the call (an answer, a TAP error, a trap, a limit, the wall clock),
/// and the answer: `sync` and `map_records` answer a `SyncResult` or a
/// `SyncError`, `read_people` a `PeopleAnswer`.
#[derive(Debug)]
pub struct CallOutcome<A = Result<SyncResult, SyncError>> {
    pub requests: RequestCounts,
    /// The `Result` is the sandbox's (a limit, a crash); `A` is the
    /// component's answer.
    pub answer: Result<A, RuntimeError>,
}

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
                    "{err:#} (is it a build of the TAP component for contract proofpoint:tap@0.6?)"
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

    /// Runs one `sync` call in a fresh sandbox, and reports the requests
    /// the host sent for it along with the answer.
    pub async fn sync(
        &self,
        outbound: &OutboundPolicy,
        settings: &Settings,
        window: &Window,
    ) -> CallOutcome {
        self.call(outbound, Export::Sync(settings, window))
            .await
            .map(Answer::into_sync)
    }

    /// Runs one `map-records` call in a fresh sandbox, under the same
    /// limits and outbound policy as `sync`: the component maps `records`
    /// (usually the `section` and `raw` of earlier rejections) as `sync`
    /// would have, campaign and forensics look-ups included, without a
    /// SIEM request. The answer's `query_end_time` is empty; it is not a
    /// checkpoint.
    pub async fn map_records(
        &self,
        outbound: &OutboundPolicy,
        settings: &Settings,
        records: &[QuarantinedRecord],
    ) -> CallOutcome {
        self.call(outbound, Export::MapRecords(settings, records))
            .await
            .map(Answer::into_sync)
    }

    /// Runs one `read-people` call in a fresh sandbox, under the same
    /// limits and outbound policy: both of TAP's people lists, every page
    /// within `request`'s allowances.
    pub async fn read_people(
        &self,
        outbound: &OutboundPolicy,
        access: &TapAccess,
        request: &PeopleRequest,
    ) -> CallOutcome<PeopleAnswer> {
        self.call(outbound, Export::ReadPeople(access, request))
            .await
            .map(Answer::into_people)
    }

    /// One call of `export` in a fresh sandbox.
    async fn call(&self, outbound: &OutboundPolicy, export: Export<'_>) -> CallOutcome<Answer> {
        let limits = self.inner.limits;
        let counter = RequestCounter::default();
        let hook = match OutboundHttp::new(outbound, limits.request_body_bytes, counter.clone()) {
            Ok(hook) => hook,
            Err(err) => {
                return CallOutcome {
                    requests: RequestCounts::default(),
                    answer: Err(err),
                };
            }
        };
        let mut store = self.new_store(hook, &limits);

        let call = async {
            let instance = self
                .inner
                .connector
                .instantiate_async(&mut store)
                .await
                .map_err(|err| (Stage::Instantiate, err))?;
            let connector = instance.proofpoint_tap_connector();
            match export {
                Export::Sync(settings, window) => connector
                    .call_sync(&mut store, settings, window)
                    .await
                    .map(Answer::Sync),
                Export::MapRecords(settings, records) => connector
                    .call_map_records(&mut store, settings, records)
                    .await
                    .map(Answer::Sync),
                Export::ReadPeople(access, request) => connector
                    .call_read_people(&mut store, access, *request)
                    .await
                    .map(Answer::People),
            }
            .map_err(|err| (Stage::Call, err))
        };
        let outcome = tokio::time::timeout(limits.wall_time, call).await;

        let state = store.data_mut();
        let stderr = state.stderr_text();
        let answer = match outcome {
            Err(_elapsed) => Err(RuntimeError::WallClock {
                limit: limits.wall_time,
            }),
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) if state.guard.refused == Some(Refusal::Memory) => {
                Err(RuntimeError::MemoryLimit {
                    limit_bytes: limits.memory_bytes,
                })
            }
            Ok(Err(_)) if state.guard.refused == Some(Refusal::TableElements) => {
                Err(RuntimeError::TableLimit {
                    limit_elements: limits.table_elements,
                })
            }
            Ok(Err(_)) if state.cpu_ticks_used > limits.cpu_ticks() => {
                Err(RuntimeError::CpuLimit {
                    limit: limits.cpu_time,
                })
            }
            Ok(Err((Stage::Instantiate, err))) if is_count_limit(&err) => {
                Err(RuntimeError::InstanceLimit {
                    reason: root_cause(&err),
                    instances: limits.instances,
                    tables: limits.tables,
                    memories: limits.memories,
                })
            }
            Ok(Err((_, err))) if is_handle_table_full(&err) || state.handles_exhausted() => {
                Err(RuntimeError::HandleLimit {
                    limit: limits.resource_handles,
                })
            }
            Ok(Err((_, err))) => Err(RuntimeError::Trap(describe_trap(&err, &stderr))),
        };
        if !stderr.is_empty() {
            tracing::warn!(
                target: "tap_component",
                stderr = %sandbox::sanitize(&stderr),
                "the TAP component wrote to stderr"
            );
        }
        if state.logs.dropped > 0 {
            tracing::warn!(
                dropped = state.logs.dropped,
                limit = state.logs.limit,
                "the TAP component logged more than {} lines in one call; the {} lines after those were dropped",
                state.logs.limit,
                state.logs.dropped
            );
        }
        tracing::debug!(
            peak_memory_bytes = state.guard.peak_memory_bytes,
            largest_table = state.guard.largest_table,
            cpu_ticks = state.cpu_ticks_used,
            "sandbox usage of the call"
        );
        // Dropping the store aborts any request still in flight; what was
        // dispatched before that is already counted.
        drop(store);
        let requests = counter.snapshot();
        tracing::debug!(
            siem = requests.siem,
            campaign = requests.campaign,
            campaign_forensics = requests.campaign_forensics,
            threat_forensics = requests.threat_forensics,
            threat_summary = requests.threat_summary,
            people_vap = requests.people_vap,
            people_top_clickers = requests.people_top_clickers,
            other = requests.other,
            refused = requests.refused,
            "TAP requests of the call, as the host counted them"
        );
        CallOutcome { requests, answer }
    }

    /// A fresh store for one call: the sandbox state, every resource cap,
    /// and the CPU budget.
    fn new_store(&self, hook: OutboundHttp, limits: &Limits) -> Store<SandboxState> {
        let mut store = Store::new(&self.inner.engine, SandboxState::new(hook, limits));
        store.limiter(|state| &mut state.guard);
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
        store
    }
}

/// Which export a call runs, with its arguments.
#[derive(Clone, Copy)]
enum Export<'a> {
    Sync(&'a Settings, &'a Window),
    MapRecords(&'a Settings, &'a [QuarantinedRecord]),
    ReadPeople(&'a TapAccess, &'a PeopleRequest),
}

/// What an export answered, by the shape of its export. One per call,
/// moved once: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Answer {
    Sync(Result<SyncResult, SyncError>),
    People(PeopleAnswer),
}

impl Answer {
    // `Runtime::sync`, `map_records` and `read_people` each run only their
    // own export, so the other shape cannot come back.
    fn into_sync(self) -> Result<SyncResult, SyncError> {
        match self {
            Answer::Sync(answer) => answer,
            Answer::People(_) => unreachable!("sync and map-records answer a sync result"),
        }
    }

    fn into_people(self) -> PeopleAnswer {
        match self {
            Answer::People(answer) => answer,
            Answer::Sync(_) => unreachable!("read-people answers a people answer"),
        }
    }
}

impl<A> CallOutcome<A> {
    fn map<B>(self, f: impl FnOnce(A) -> B) -> CallOutcome<B> {
        CallOutcome {
            requests: self.requests,
            answer: self.answer.map(f),
        }
    }
}

/// Where a call failed: starting the component, or running the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Instantiate,
    Call,
}

/// wasmtime refuses an instantiation past the store's instance, table or
/// memory count with "resource limit exceeded: <what> count too high".
fn is_count_limit(err: &wasmtime::Error) -> bool {
    err.chain()
        .any(|cause| cause.to_string().contains("resource limit exceeded"))
}

fn is_handle_table_full(err: &wasmtime::Error) -> bool {
    err.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<wasmtime::component::ResourceTableError>(),
            Some(wasmtime::component::ResourceTableError::Full)
        )
    })
}

fn root_cause(err: &wasmtime::Error) -> String {
    err.root_cause().to_string()
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use wasmtime::{Instance, Module};

    use super::sandbox::ResourceGuard;
    use super::*;

    fn test_policy() -> OutboundPolicy {
        OutboundPolicy {
            origin: TapOrigin::parse("http://127.0.0.1:9").expect("origin"),
            principal: "p".into(),
            secret: "s".into(),
            http: reqwest::Client::new(),
            request_timeout: Duration::from_secs(1),
            max_response_bytes: 1024,
        }
    }

    /// Instantiates the component in a fresh store under `limits`; the
    /// error or the largest table it created.
    async fn instantiate(runtime: &Runtime, limits: &Limits) -> Result<usize, RuntimeError> {
        let hook = OutboundHttp::new(&test_policy(), 0, RequestCounter::default()).expect("hook");
        let mut store = runtime.new_store(hook, limits);
        match runtime.inner.connector.instantiate_async(&mut store).await {
            Ok(_) => Ok(store.data().guard.largest_table),
            Err(_) if store.data().guard.refused == Some(Refusal::TableElements) => {
                Err(RuntimeError::TableLimit {
                    limit_elements: limits.table_elements,
                })
            }
            Err(err) if is_count_limit(&err) => Err(RuntimeError::InstanceLimit {
                reason: root_cause(&err),
                instances: limits.instances,
                tables: limits.tables,
                memories: limits.memories,
            }),
            Err(err) => Err(RuntimeError::Trap(format!("{err:#}"))),
        }
    }

    /// The smallest value of one count limit that lets the component start.
    async fn smallest(runtime: &Runtime, set: impl Fn(&mut Limits, usize)) -> usize {
        for count in 0..=100 {
            let mut limits = Limits::default();
            set(&mut limits, count);
            match instantiate(runtime, &limits).await {
                Ok(_) => return count,
                Err(RuntimeError::InstanceLimit { .. }) => {}
                Err(other) => panic!("unexpected failure at {count}: {other}"),
            }
        }
        panic!("the component needs more than 100");
    }

    /// Measures what the real embedded component needs (printed with
    /// `--nocapture`) and checks every default cap leaves at least twice
    /// that, and that a cap just below the need is reported by name.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_embedded_component_fits_its_resource_caps_with_headroom() {
        let runtime = Runtime::new(RuntimeConfig {
            component: ComponentSource::Embedded,
            cache_dir: None,
            limits: Limits::default(),
        })
        .expect("the embedded component loads");

        let instances = smallest(&runtime, |limits, n| limits.instances = n).await;
        let tables = smallest(&runtime, |limits, n| limits.tables = n).await;
        let memories = smallest(&runtime, |limits, n| limits.memories = n).await;
        let table_elements = instantiate(&runtime, &Limits::default())
            .await
            .expect("starts under the defaults");
        eprintln!(
            "the embedded component needs {instances} instances, {tables} tables, \
             {memories} memories, {table_elements} table elements"
        );

        let defaults = Limits::default();
        assert!(defaults.instances >= 2 * instances, "{instances}");
        assert!(defaults.tables >= 2 * tables, "{tables}");
        assert!(defaults.memories >= 2 * memories, "{memories}");
        assert!(
            defaults.table_elements >= 2 * table_elements,
            "{table_elements}"
        );
        assert!(
            defaults.instances <= 10 * instances.max(1),
            "a cap, not the default 10 000"
        );

        let short = Limits {
            instances: instances - 1,
            ..Limits::default()
        };
        let err = instantiate(&runtime, &short).await.expect_err("one short");
        let text = err.to_string();
        assert!(
            text.contains("instance count too high")
                && text.contains(&format!("{} instances", instances - 1)),
            "{text}"
        );
        let short = Limits {
            table_elements: table_elements - 1,
            ..Limits::default()
        };
        let err = instantiate(&runtime, &short).await.expect_err("one short");
        assert!(
            matches!(err, RuntimeError::TableLimit { limit_elements } if limit_elements == table_elements - 1),
            "{err}"
        );
    }

    /// `(module (table $t <initial> funcref) (func (export "grow") (param i32)
    /// (result i32) ref.null func local.get 0 table.grow $t))`, hand-encoded:
    /// Rust never emits `table.grow`, so the limiter is exercised here.
    fn table_module(initial: u8) -> Vec<u8> {
        assert!(initial < 0x80, "one-byte LEB128");
        let mut wasm = vec![0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
        // type 0: (i32) -> i32
        wasm.extend([0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f]);
        // function 0 has type 0
        wasm.extend([0x03, 0x02, 0x01, 0x00]);
        // table 0: funcref, minimum `initial`, no maximum
        wasm.extend([0x04, 0x04, 0x01, 0x70, 0x00, initial]);
        // export "grow" = function 0
        wasm.extend([0x07, 0x08, 0x01, 0x04, b'g', b'r', b'o', b'w', 0x00, 0x00]);
        // code: no locals; ref.null func; local.get 0; table.grow 0; end
        wasm.extend([
            0x0a, 0x0b, 0x01, 0x09, 0x00, 0xd0, 0x70, 0x20, 0x00, 0xfc, 0x0f, 0x00, 0x0b,
        ]);
        wasm
    }

    fn guarded_store(engine: &Engine, limits: &Limits) -> Store<ResourceGuard> {
        let mut store = Store::new(engine, ResourceGuard::new(limits));
        store.limiter(|guard| guard);
        store
    }

    #[test]
    fn table_growth_past_the_cap_traps_and_is_recorded_as_the_table_limit() {
        let engine = Engine::default();
        let module = Module::new(&engine, table_module(1)).expect("the module compiles");
        let limits = Limits {
            table_elements: 10,
            ..Limits::default()
        };
        let mut store = guarded_store(&engine, &limits);
        let instance = Instance::new(&mut store, &module, &[]).expect("instantiates");
        let grow = instance
            .get_typed_func::<i32, i32>(&mut store, "grow")
            .expect("grow export");

        // 1 + 9 = 10 elements: allowed, returns the old size.
        assert_eq!(grow.call(&mut store, 9).expect("within the cap"), 1);
        assert_eq!(store.data().refused, None);
        assert_eq!(store.data().largest_table, 10);
        // One more is refused, and with trap_on_grow_failure that is a trap.
        let trap = grow.call(&mut store, 1).expect_err("past the cap");
        assert!(format!("{trap:#}").contains("table"), "{trap:#}");
        assert_eq!(store.data().refused, Some(Refusal::TableElements));
    }

    #[test]
    fn a_table_created_past_the_cap_is_refused_at_instantiation() {
        let engine = Engine::default();
        let module = Module::new(&engine, table_module(100)).expect("the module compiles");
        let limits = Limits {
            table_elements: 10,
            ..Limits::default()
        };
        let mut store = guarded_store(&engine, &limits);
        assert!(Instance::new(&mut store, &module, &[]).is_err());
        assert_eq!(store.data().refused, Some(Refusal::TableElements));
    }

    #[test]
    fn instances_tables_and_memories_are_counted_against_their_caps() {
        let engine = Engine::default();
        let module = Module::new(&engine, table_module(1)).expect("the module compiles");
        for (limits, what) in [
            (
                Limits {
                    instances: 2,
                    ..Limits::default()
                },
                "instance",
            ),
            (
                Limits {
                    tables: 2,
                    ..Limits::default()
                },
                "table",
            ),
        ] {
            let mut store = guarded_store(&engine, &limits);
            Instance::new(&mut store, &module, &[]).expect("first");
            Instance::new(&mut store, &module, &[]).expect("second");
            let err = Instance::new(&mut store, &module, &[]).expect_err("third");
            assert!(is_count_limit(&err), "{err:#}");
            assert!(
                format!("{err:#}").contains(&format!("{what} count too high")),
                "{err:#}"
            );
        }
        // A memory-defining module: (module (memory 1)).
        let memory = Module::new(
            &engine,
            [
                0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x05, 0x03, 0x01, 0x00, 0x01,
            ],
        )
        .expect("the module compiles");
        let mut store = guarded_store(
            &engine,
            &Limits {
                memories: 1,
                ..Limits::default()
            },
        );
        Instance::new(&mut store, &memory, &[]).expect("first");
        let err = Instance::new(&mut store, &memory, &[]).expect_err("second");
        assert!(
            format!("{err:#}").contains("memory count too high"),
            "{err:#}"
        );
    }
}
