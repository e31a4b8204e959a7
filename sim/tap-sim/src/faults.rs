//! Faults a test switches on while the simulator runs.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration as StdDuration;

/// Field-spelling drift seen in real TAP data (docs/tap-api.md, "Spelling
/// drift we tolerate"). Each flag swaps one spelling for its other form in
/// SIEM records as they are served: records stored as `threatID` go out as
/// `threatId` and the other way round, so drift exercises whichever
/// spelling the data does not use. `summary_numbers_as_strings` applies
/// to `/v2/threat/summary/{id}` answers instead.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drift {
    /// `threatID` <-> `threatId`, `campaignID` <-> `campaignId`.
    pub id_spelling: bool,
    /// `threatUrl` <-> `threatURL`.
    pub threat_url_spelling: bool,
    /// `cluster` <-> `clusterId`.
    pub cluster_spelling: bool,
    /// One-element `fromAddress`, `recipient`, `replyToAddress` and
    /// `toAddresses` arrays become plain strings (the documented shape).
    pub scalar_addresses: bool,
    /// `completelyRewritten: true` becomes `"true"` (the documented shape).
    pub rewritten_as_string: bool,
    /// `classification`, `threatType`, `threatStatus` and `sandboxStatus`
    /// values in upper case (`MALWARE`, `URL`).
    pub upper_case_enums: bool,
    /// In threat summaries, `attackSpread`, `severity` and `severityScore`
    /// numbers become numeric strings (`"62"`), as loosely typed APIs
    /// drift; a reader must take both.
    pub summary_numbers_as_strings: bool,
}

impl Drift {
    /// Every drift at once.
    pub fn all() -> Drift {
        Drift {
            id_spelling: true,
            threat_url_spelling: true,
            cluster_spelling: true,
            scalar_addresses: true,
            rewritten_as_string: true,
            upper_case_enums: true,
            summary_numbers_as_strings: true,
        }
    }

    pub fn is_none(&self) -> bool {
        *self == Drift::default()
    }
}

/// A misbehaviour of the SIEM endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiemFault {
    /// Answer this status with this body instead of the data (e.g. 500,
    /// 503, 429, 401). The request is not charged to the pool.
    Status { status: u16, body: String },
    /// Answer 200 `application/json` with a body that is not JSON.
    NotJson,
    /// Answer 200 with a syntactically valid JSON body of exactly this many
    /// bytes, streamed, to exercise a client's size limit.
    Oversized { bytes: u64 },
    /// Wait this long before sending the response headers.
    SlowHeaders(StdDuration),
    /// Send the headers and the first half of the body, then pause this
    /// long before the rest.
    StalledBody(StdDuration),
}

#[derive(Debug, Default)]
struct FaultState {
    drift: Drift,
    empty_as_no_content: bool,
    queued: VecDeque<SiemFault>,
    persistent: Option<SiemFault>,
    clock_offset: time::Duration,
    /// Statuses the next threat-summary requests answer, one each.
    summary_failures: VecDeque<u16>,
    /// Overrides [`crate::TapSimConfig::people_api`] when set.
    people_api: Option<bool>,
}

/// Switches faults on a running simulator. Clones share the same state.
#[derive(Debug, Clone, Default)]
pub struct FaultsHandle {
    state: Arc<Mutex<FaultState>>,
}

impl FaultsHandle {
    fn lock(&self) -> MutexGuard<'_, FaultState> {
        // A panic elsewhere while holding the lock leaves plain data
        // behind, still consistent enough for a simulator.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serve SIEM records with this drift from now on.
    pub fn set_drift(&self, drift: Drift) {
        self.lock().drift = drift;
    }

    /// When a SIEM response would carry no records, answer 204 with an
    /// empty body instead of 200 with empty arrays (seen on real TAP).
    pub fn set_empty_as_no_content(&self, on: bool) {
        self.lock().empty_as_no_content = on;
    }

    /// The next `count` SIEM requests answer `status` with `body`.
    pub fn fail_next_siem(&self, count: u32, status: u16, body: impl Into<String>) {
        let body = body.into();
        self.next_siem(count, SiemFault::Status { status, body });
    }

    /// The next `count` SIEM requests show `fault`, after any already queued.
    pub fn next_siem(&self, count: u32, fault: SiemFault) {
        let mut state = self.lock();
        for _ in 0..count {
            state.queued.push_back(fault.clone());
        }
    }

    /// Every SIEM request shows `fault` (after the queued ones) until
    /// [`FaultsHandle::clear`] or `set_persistent_siem(None)`.
    pub fn set_persistent_siem(&self, fault: Option<SiemFault>) {
        self.lock().persistent = fault;
    }

    /// Shift the simulator's clock (its "now") by `offset`, for clock-skew tests.
    pub fn set_clock_offset(&self, offset: time::Duration) {
        self.lock().clock_offset = offset;
    }

    /// The next `count` `/v2/threat/summary/{id}` requests answer `status`
    /// (say 500 or 503) with a short text body, after any already queued.
    /// They are recorded like any request; the summaries stay loaded.
    pub fn fail_next_threat_summaries(&self, count: u32, status: u16) {
        let mut state = self.lock();
        state
            .summary_failures
            .extend(std::iter::repeat_n(status, count as usize));
    }

    /// Switch the tenant's People API licence on or off from now on,
    /// whatever [`crate::TapSimConfig::people_api`] said. Off, both people
    /// endpoints answer 403 and charge nothing to their pools.
    pub fn set_people_api(&self, on: bool) {
        self.lock().people_api = Some(on);
    }

    /// Back to a well-behaved TAP: no drift, no faults, no clock offset,
    /// and the People API as the config set it.
    pub fn clear(&self) {
        *self.lock() = FaultState::default();
    }

    pub(crate) fn drift(&self) -> Drift {
        self.lock().drift
    }

    pub(crate) fn empty_as_no_content(&self) -> bool {
        self.lock().empty_as_no_content
    }

    pub(crate) fn clock_offset(&self) -> time::Duration {
        self.lock().clock_offset
    }

    /// The run-time People API switch, if a test set one.
    pub(crate) fn people_api(&self) -> Option<bool> {
        self.lock().people_api
    }

    /// The status the current threat-summary request must answer, if a
    /// failure is queued; used up one per request.
    pub(crate) fn take_summary_failure(&self) -> Option<u16> {
        self.lock().summary_failures.pop_front()
    }

    /// The fault the current SIEM request shows, if any; queued faults are
    /// used up one per request.
    pub(crate) fn take_siem_fault(&self) -> Option<SiemFault> {
        let mut state = self.lock();
        state
            .queued
            .pop_front()
            .or_else(|| state.persistent.clone())
    }
}
