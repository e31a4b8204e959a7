//! What one call's store holds: a WASI context that grants nothing, the
//! outbound HTTP capability, the memory limiter, and the `host` import.

use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::{LogField, LogLevel, host_interface};
use crate::outbound::OutboundHttp;

/// How much of the component's stderr is kept. It only writes there when it
/// panics, and a panic message is short.
const STDERR_CAPTURE_BYTES: usize = 64 * 1024;

/// Longest log message or field list taken from the component; longer text
/// is cut so a runaway guest cannot flood the host's log lines.
const MAX_LOG_TEXT: usize = 8 * 1024;

pub(crate) struct SandboxState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    outbound: OutboundHttp,
    pub(crate) memory: MemoryGuard,
    stderr: MemoryOutputPipe,
    /// Epoch ticks during which the component was running wasm code.
    pub(crate) cpu_ticks_used: u64,
}

impl SandboxState {
    pub(crate) fn new(outbound: OutboundHttp, memory_bytes: usize) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE_BYTES);
        // The builder's defaults already grant nothing (no preopens, env or
        // args, closed stdin, discarded stdout, every socket address denied);
        // the socket switches are spelled out so that stays true if a
        // default ever changes.
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        SandboxState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            outbound,
            memory: MemoryGuard::new(memory_bytes),
            stderr,
            cpu_ticks_used: 0,
        }
    }

    /// What the component wrote to stderr (its panic message, if any).
    pub(crate) fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_owned()
    }
}

impl WasiView for SandboxState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for SandboxState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

/// `StoreLimits` plus a record of whether it refused memory, so a trap can
/// be reported as "memory limit" rather than a generic crash.
pub(crate) struct MemoryGuard {
    limits: StoreLimits,
    pub(crate) refused_growth: bool,
}

impl MemoryGuard {
    fn new(memory_bytes: usize) -> Self {
        MemoryGuard {
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .trap_on_grow_failure(true)
                .build(),
            refused_growth: false,
        }
    }
}

impl ResourceLimiter for MemoryGuard {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let verdict = self.limits.memory_growing(current, desired, maximum);
        if !matches!(verdict, Ok(true)) {
            self.refused_growth = true;
        }
        verdict
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.refused_growth = true;
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl host_interface::Host for SandboxState {
    fn log(&mut self, level: LogLevel, message: String, fields: Vec<LogField>) {
        let message = sanitize(&message);
        let fields = sanitize(
            &fields
                .iter()
                .map(|field| format!("{}={}", field.key, field.value))
                .collect::<Vec<_>>()
                .join(" "),
        );
        // tracing needs the level and target as constants at each call site.
        match level {
            LogLevel::Error => {
                tracing::error!(target: "tap_component", fields = %fields, "{message}")
            }
            LogLevel::Warn => {
                tracing::warn!(target: "tap_component", fields = %fields, "{message}")
            }
            LogLevel::Info => {
                tracing::info!(target: "tap_component", fields = %fields, "{message}")
            }
            LogLevel::Debug => {
                tracing::debug!(target: "tap_component", fields = %fields, "{message}")
            }
            LogLevel::Trace => {
                tracing::trace!(target: "tap_component", fields = %fields, "{message}")
            }
        }
    }

    fn now_ms(&mut self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// Text from the guest made safe for one log line: control characters are
/// escaped (no forged log lines) and the length is capped.
pub(crate) fn sanitize(text: &str) -> String {
    let mut clean = String::with_capacity(text.len().min(MAX_LOG_TEXT));
    for ch in text.chars() {
        if clean.len() >= MAX_LOG_TEXT {
            clean.push('…');
            break;
        }
        if ch.is_control() {
            clean.extend(ch.escape_default());
        } else {
            clean.push(ch);
        }
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_log_text_cannot_forge_extra_lines() {
        assert_eq!(sanitize("ok\nFAKE ERROR line\r"), "ok\\nFAKE ERROR line\\r");
    }

    #[test]
    fn guest_log_text_is_capped() {
        let long = "x".repeat(MAX_LOG_TEXT * 2);
        let clean = sanitize(&long);
        assert!(clean.len() <= MAX_LOG_TEXT + '…'.len_utf8());
        assert!(clean.ends_with('…'));
    }
}
