//! Why running the sandbox failed (as opposed to the component's own answer).

use std::path::PathBuf;
use std::time::Duration;

/// Which of the sandbox's [`Limits`](crate::Limits) (or of its outbound
/// policy's) a call ran into. The messages of [`RuntimeError`] speak of the
/// sandbox's own limits only: which setting of the embedding program sets
/// each one, and so what the operator can raise, is for that program to
/// add, by this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SandboxLimit {
    /// `Limits::memory_bytes`: [`RuntimeError::MemoryLimit`].
    Memory,
    /// `Limits::cpu_time`: [`RuntimeError::CpuLimit`].
    CpuTime,
    /// `Limits::wall_time`: [`RuntimeError::WallClock`].
    WallTime,
    /// `Limits::table_elements`: [`RuntimeError::TableLimit`].
    TableElements,
    /// `Limits::instances`, `tables` and `memories`:
    /// [`RuntimeError::InstanceLimit`].
    Instances,
    /// `Limits::resource_handles`: [`RuntimeError::HandleLimit`].
    ResourceHandles,
    /// `OutboundPolicy::max_response_bytes`. Hitting it does not stop the
    /// call (the answer is cut off and counted in
    /// `RequestCounts::oversized`), so no `RuntimeError` carries it; it is
    /// here so the embedding program names all the limits one way.
    ResponseSize,
}

/// A failure of the sandbox itself: the component could not be loaded, or a
/// call was stopped by a limit or a trap. The store of a failed call is
/// dropped, so the next call starts clean.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "the TAP component exceeded its memory limit of {}",
        format_mib(*.limit_bytes)
    )]
    MemoryLimit { limit_bytes: usize },

    /// A wasm table would have grown (or been created) past
    /// `Limits::table_elements`.
    #[error(
        "the TAP component exceeded its table limit of {limit_elements} elements; this build of the component needs more than the sandbox allows"
    )]
    TableLimit { limit_elements: usize },

    /// Instantiating the component needed more core instances, tables or
    /// memories than `Limits` allows. Carries wasmtime's words.
    #[error(
        "the TAP component needs more than the sandbox allows to start ({reason}); the limits are {instances} instances, {tables} tables and {memories} memories"
    )]
    InstanceLimit {
        reason: String,
        instances: usize,
        tables: usize,
        memories: usize,
    },

    /// The component held more WASI handles (requests, streams, header
    /// fields, pollables) at once than `Limits::resource_handles`.
    #[error(
        "the TAP component exceeded its limit of {limit} open WASI handles (requests, streams, fields); it is leaking them"
    )]
    HandleLimit { limit: usize },

    #[error(
        "the TAP component exceeded its CPU time limit of {}; it is stuck or the window is too large",
        format_duration(*.limit)
    )]
    CpuLimit { limit: Duration },

    #[error(
        "the TAP component did not finish within {}; TAP may be answering very slowly",
        format_duration(*.limit)
    )]
    WallClock { limit: Duration },

    /// The component crashed (a panic, `unreachable`, a bad memory access).
    /// Carries wasmtime's message and whatever the component wrote to stderr.
    #[error("the TAP component crashed: {0}")]
    Trap(String),

    /// The component could not be compiled, deserialized or instantiated.
    #[error("cannot load the TAP component from {origin}: {reason}")]
    Load { origin: String, reason: String },

    /// Reading or writing a component file or the precompiled cache failed.
    #[error("{action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The outbound policy cannot be enforced as configured.
    #[error("invalid outbound HTTP policy: {0}")]
    Policy(String),
}

impl RuntimeError {
    /// The limit that stopped the call, if a limit did.
    pub fn limit(&self) -> Option<SandboxLimit> {
        match self {
            RuntimeError::MemoryLimit { .. } => Some(SandboxLimit::Memory),
            RuntimeError::TableLimit { .. } => Some(SandboxLimit::TableElements),
            RuntimeError::InstanceLimit { .. } => Some(SandboxLimit::Instances),
            RuntimeError::HandleLimit { .. } => Some(SandboxLimit::ResourceHandles),
            RuntimeError::CpuLimit { .. } => Some(SandboxLimit::CpuTime),
            RuntimeError::WallClock { .. } => Some(SandboxLimit::WallTime),
            RuntimeError::Trap(_)
            | RuntimeError::Load { .. }
            | RuntimeError::Io { .. }
            | RuntimeError::Policy(_) => None,
        }
    }
}

fn format_mib(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

fn format_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_errors_name_the_limit_and_its_value() {
        let memory = RuntimeError::MemoryLimit {
            limit_bytes: 256 * 1024 * 1024,
        };
        assert!(
            memory
                .to_string()
                .starts_with("the TAP component exceeded its memory limit of 256 MiB")
        );
        let cpu = RuntimeError::CpuLimit {
            limit: Duration::from_secs(60),
        };
        assert!(
            cpu.to_string()
                .starts_with("the TAP component exceeded its CPU time limit of 60 s")
        );
        let table = RuntimeError::TableLimit {
            limit_elements: 10_000,
        };
        assert!(
            table
                .to_string()
                .starts_with("the TAP component exceeded its table limit of 10000 elements")
        );
        let handles = RuntimeError::HandleLimit { limit: 1000 };
        assert!(
            handles
                .to_string()
                .contains("limit of 1000 open WASI handles")
        );
        let wall = RuntimeError::WallClock {
            limit: Duration::from_millis(1500),
        };
        assert!(
            wall.to_string()
                .starts_with("the TAP component did not finish within 1500 ms")
        );
    }

    #[test]
    fn a_limit_error_says_which_limit_and_names_no_setting_of_the_host() {
        let memory = RuntimeError::MemoryLimit {
            limit_bytes: 256 * 1024 * 1024,
        };
        assert_eq!(memory.limit(), Some(SandboxLimit::Memory));
        assert!(!memory.to_string().contains("[run]"), "{memory}");
        let cpu = RuntimeError::CpuLimit {
            limit: Duration::from_secs(60),
        };
        assert_eq!(cpu.limit(), Some(SandboxLimit::CpuTime));
        assert_eq!(RuntimeError::Trap("unreachable".into()).limit(), None);
    }
}
