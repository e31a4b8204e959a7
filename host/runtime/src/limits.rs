//! The bounds on one call: memory, CPU time (epochs) and wall-clock time.

use std::time::Duration;

use wasmtime::Engine;

/// Bounds on one `sync` call. Each one, when hit, ends the call with a
/// `RuntimeError` naming it; the host process is unaffected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most linear memory the component may grow to.
    pub memory_bytes: usize,
    /// The most time the component may spend running its own code. Time
    /// spent waiting for TAP does not count.
    pub cpu_time: Duration,
    /// The most time a call may take in all, waiting included.
    pub wall_time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 256 * 1024 * 1024,
            cpu_time: Duration::from_secs(60),
            wall_time: Duration::from_secs(300),
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
