//! Why running the sandbox failed (as opposed to the component's own answer).

use std::path::PathBuf;
use std::time::Duration;

/// A failure of the sandbox itself: the component could not be loaded, or a
/// call was stopped by a limit or a trap. The store of a failed call is
/// dropped, so the next call starts clean.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "the TAP component exceeded its memory limit of {}; raise `limits.memory` if the windows are very large",
        format_mib(*.limit_bytes)
    )]
    MemoryLimit { limit_bytes: usize },

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
        let wall = RuntimeError::WallClock {
            limit: Duration::from_millis(1500),
        };
        assert!(
            wall.to_string()
                .starts_with("the TAP component did not finish within 1500 ms")
        );
    }
}
