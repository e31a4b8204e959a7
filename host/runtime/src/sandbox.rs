//! What one call's store holds: a WASI context that grants nothing, the
//! outbound HTTP capability, the resource limiter, and the `host` import.

use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::Limits;
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
    pub(crate) guard: ResourceGuard,
    stderr: MemoryOutputPipe,
    /// Epoch ticks during which the component was running wasm code.
    pub(crate) cpu_ticks_used: u64,
    pub(crate) logs: LogBudget,
}

impl SandboxState {
    pub(crate) fn new(outbound: OutboundHttp, limits: &Limits) -> Self {
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
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(limits.request_header_bytes);
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.resource_handles);
        SandboxState {
            wasi,
            http,
            table,
            outbound,
            guard: ResourceGuard::new(limits),
            stderr,
            cpu_ticks_used: 0,
            logs: LogBudget::new(limits),
        }
    }

    /// What the component wrote to stderr (its panic message, if any).
    pub(crate) fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_owned()
    }

    /// Whether the handle table is at its cap (so a trap is the handle
    /// limit rather than a crash).
    pub(crate) fn handles_exhausted(&mut self) -> bool {
        self.table.iter_mut().count() >= self.table.max_capacity()
    }
}

/// The per-call cap on `host.log` lines and fields.
pub(crate) struct LogBudget {
    lines_left: u32,
    pub(crate) limit: u32,
    max_fields: usize,
    /// Lines dropped once the cap was reached.
    pub(crate) dropped: u64,
}

impl LogBudget {
    fn new(limits: &Limits) -> Self {
        LogBudget {
            lines_left: limits.log_lines,
            limit: limits.log_lines,
            max_fields: limits.log_fields,
            dropped: 0,
        }
    }

    /// Takes one line from the budget; false once it is spent.
    fn take(&mut self) -> bool {
        if self.lines_left == 0 {
            self.dropped = self.dropped.saturating_add(1);
            false
        } else {
            self.lines_left -= 1;
            true
        }
    }

    /// The fields of one line as `key=value ...`, at most `max_fields` of
    /// them, then a note of how many were left out.
    fn fields_text(&self, fields: &[LogField]) -> String {
        let mut text = fields
            .iter()
            .take(self.max_fields)
            .map(|field| format!("{}={}", field.key, field.value))
            .collect::<Vec<_>>()
            .join(" ");
        if fields.len() > self.max_fields {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&format!(
                "(and {} more fields, over the limit of {})",
                fields.len() - self.max_fields,
                self.max_fields
            ));
        }
        text
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

/// Which store limit refused a growth, so the error can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Memory,
    TableElements,
}

/// `StoreLimits` with every cap set from `Limits` (memory, table elements,
/// instances, tables, memories; a refused growth traps), plus a record of
/// which limit refused, so a trap can be reported as that limit rather than
/// a generic crash.
pub(crate) struct ResourceGuard {
    limits: StoreLimits,
    pub(crate) refused: Option<Refusal>,
    /// The largest size any memory was allowed to reach, in bytes.
    pub(crate) peak_memory_bytes: usize,
    /// The most elements any table was allowed to hold (tables are sized
    /// through the limiter at creation as well as on `table.grow`).
    pub(crate) largest_table: usize,
}

impl ResourceGuard {
    pub(crate) fn new(limits: &Limits) -> Self {
        ResourceGuard {
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .table_elements(limits.table_elements)
                .instances(limits.instances)
                .tables(limits.tables)
                .memories(limits.memories)
                .trap_on_grow_failure(true)
                .build(),
            refused: None,
            peak_memory_bytes: 0,
            largest_table: 0,
        }
    }

    fn refuse(&mut self, what: Refusal) {
        self.refused.get_or_insert(what);
    }
}

impl ResourceLimiter for ResourceGuard {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let verdict = self.limits.memory_growing(current, desired, maximum);
        if matches!(verdict, Ok(true)) {
            self.peak_memory_bytes = self.peak_memory_bytes.max(desired);
        } else {
            self.refuse(Refusal::Memory);
        }
        verdict
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.refuse(Refusal::Memory);
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let verdict = self.limits.table_growing(current, desired, maximum);
        if matches!(verdict, Ok(true)) {
            self.largest_table = self.largest_table.max(desired);
        } else {
            self.refuse(Refusal::TableElements);
        }
        verdict
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.refuse(Refusal::TableElements);
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
        if !self.logs.take() {
            return;
        }
        let message = sanitize(&message);
        let fields = sanitize(&self.logs.fields_text(&fields));
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

    fn field(key: &str) -> LogField {
        LogField {
            key: key.into(),
            value: "v".into(),
        }
    }

    #[test]
    fn the_log_budget_drops_lines_past_its_cap_and_counts_them() {
        let mut budget = LogBudget::new(&Limits {
            log_lines: 3,
            ..Limits::default()
        });
        let kept = (0..10).filter(|_| budget.take()).count();
        assert_eq!(kept, 3);
        assert_eq!(budget.dropped, 7);
    }

    #[test]
    fn a_log_line_keeps_at_most_the_field_limit() {
        let budget = LogBudget::new(&Limits {
            log_fields: 2,
            ..Limits::default()
        });
        let fields: Vec<LogField> = ["a", "b", "c", "d"].into_iter().map(field).collect();
        assert_eq!(
            budget.fields_text(&fields),
            "a=v b=v (and 2 more fields, over the limit of 2)"
        );
        assert_eq!(budget.fields_text(&fields[..2]), "a=v b=v");
    }

    #[test]
    fn guest_log_text_is_capped() {
        let long = "x".repeat(MAX_LOG_TEXT * 2);
        let clean = sanitize(&long);
        assert!(clean.len() <= MAX_LOG_TEXT + '…'.len_utf8());
        assert!(clean.ends_with('…'));
    }
}
