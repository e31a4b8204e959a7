//! The bounds on one call, in one place: memory, CPU time (epochs),
//! wall-clock time, the wasm resources the component may create (instances,
//! tables, table elements, memories), the WASI handles it may hold, the size
//! of what it may send, and how much it may log.

use std::time::Duration;

use wasmtime::Engine;

/// Bounds on one `sync` call. Each one, when hit, ends the call with a
/// `RuntimeError` naming it (or, for the outbound and logging caps, refuses
/// just that request or log line); the host process is unaffected.
///
/// The wasm resource caps are sized from what the real embedded component
/// needs (measured by the `the_embedded_component_fits_its_resource_caps_with_headroom`
/// test in `lib.rs`, which prints the figures): each leaves at least twice
/// the measured need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most linear memory the component may grow to (each memory).
    pub memory_bytes: usize,
    /// The most time the component may spend running its own code. Time
    /// spent waiting for TAP does not count.
    pub cpu_time: Duration,
    /// The most time a call may take in all, waiting included.
    pub wall_time: Duration,
    /// The most elements any one wasm table may hold, at creation or after
    /// `table.grow`. The embedded component's largest table has 182
    /// elements (created at that size; Rust code never grows tables). A
    /// table element is host memory outside the linear-memory limit, so
    /// an uncapped `table.grow` could take gigabytes.
    pub table_elements: usize,
    /// The most core wasm instances one call may create. The embedded
    /// component creates 3.
    pub instances: usize,
    /// The most wasm tables one call may create. The embedded component
    /// creates 2.
    pub tables: usize,
    /// The most linear memories one call may create. The embedded component
    /// creates 1.
    pub memories: usize,
    /// The most WASI resource handles (requests, bodies, streams, header
    /// fields, pollables) the component may hold at once. Each handle is
    /// host memory outside the linear-memory limit (wasmtime's own default
    /// is a million). The embedded component needs 4 at a time (it makes
    /// one request at a time; measured against the TAP simulator with
    /// campaigns and forensics: 3 fail, 4 succeed).
    pub resource_handles: usize,
    /// The most bytes the header fields of one outgoing request may take in
    /// host memory (wasi-http's own measure, a little over the wire size).
    pub request_header_bytes: usize,
    /// The largest body an outgoing request may carry. TAP requests are GETs
    /// without a body; a larger body is refused with
    /// `HttpRequestBodySize` before anything is sent, and never buffered
    /// past this size.
    pub request_body_bytes: usize,
    /// The most lines the component may log through the `host` interface in
    /// one call; further lines are dropped and counted, and one warning at
    /// the end of the call says how many.
    pub log_lines: u32,
    /// The most key/value fields one log line keeps; the rest are dropped and
    /// the line says how many. (Each line's message and its fields are also
    /// cut at 8 KiB.)
    pub log_fields: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 256 * 1024 * 1024,
            cpu_time: Duration::from_secs(60),
            wall_time: Duration::from_secs(300),
            table_elements: 1_000,
            instances: 12,
            tables: 8,
            memories: 4,
            resource_handles: 100,
            request_header_bytes: 16 * 1024,
            request_body_bytes: 64 * 1024,
            log_lines: 10_000,
            log_fields: 32,
        }
    }
}

/// How often the engine's epoch advances. The CPU limit is counted in
/// these ticks, and a running component yields to the async executor at
/// each one (so the wall-clock timeout can fire even on a spinning guest).
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

impl Limits {
    /// The CPU limit in epoch ticks, rounded up, at least one.
    pub(crate) fn cpu_ticks(&self) -> u64 {
        let tick = EPOCH_TICK.as_nanos();
        let ticks = self.cpu_time.as_nanos().div_ceil(tick).max(1);
        u64::try_from(ticks).unwrap_or(u64::MAX)
    }
}

/// Advances `engine`'s epoch every `EPOCH_TICK` on a background thread that
/// ends by itself once the engine is dropped.
pub(crate) fn start_epoch_ticker(engine: &Engine) -> std::io::Result<()> {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("tap-epoch-ticker".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_limit_rounds_up_to_whole_ticks() {
        let limits = |cpu_time| Limits {
            cpu_time,
            ..Limits::default()
        };
        assert_eq!(limits(Duration::from_secs(60)).cpu_ticks(), 6000);
        assert_eq!(limits(Duration::from_millis(15)).cpu_ticks(), 2);
        assert_eq!(limits(Duration::ZERO).cpu_ticks(), 1);
    }
}
