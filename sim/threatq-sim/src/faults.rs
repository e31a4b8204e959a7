//! Faults a test can switch on to see how a client copes with a ThreatQ
//! that is down, slow, picky or forgetful.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use crate::{Shared, lock};

#[derive(Debug, Default, Clone)]
pub(crate) struct FaultState {
    /// Statuses to answer the next requests with, one each, in order.
    pub failures: Vec<u16>,
    /// How many of the next consume requests answer 200 with an `errors` body.
    pub errors_in_success: usize,
    pub delay: Option<Duration>,
    /// Like `delay`, for consume (upsert) requests only: a ThreatQ that
    /// logs in fine and then stalls on data.
    pub consume_delay: Option<Duration>,
    /// Like `delay`, for the lookups of one object by its value
    /// (`GET /api/<collection>?value=..`) only: a ThreatQ that takes in
    /// data fine but is slow to search it.
    pub lookup_delay: Option<Duration>,
    pub rejected_values: Vec<String>,
    pub connectors_missing: bool,
    /// (needle, status): a consume request whose raw body holds the needle
    /// is answered with the status and a web firewall's page.
    pub refused_bodies: Vec<(String, u16)>,
    /// collection -> (status, reason): every consume request of the
    /// collection is refused, as by a setting or a ThreatQ-side rule.
    pub refused_collections: HashMap<String, (u16, String)>,
}

impl FaultState {
    /// The status to answer a consume request with when its raw body holds
    /// one of the refused needles (the first that matches).
    pub fn body_refusal(&self, body: &[u8]) -> Option<u16> {
        self.refused_bodies
            .iter()
            .find(|(needle, _)| contains(body, needle.as_bytes()))
            .map(|(_, status)| *status)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// A handle on the simulator's faults; cheap to clone.
#[derive(Clone)]
pub struct ThreatqFaults {
    pub(crate) shared: Arc<Shared>,
}

impl ThreatqFaults {
    fn state(&self) -> MutexGuard<'_, FaultState> {
        lock(&self.shared.faults)
    }

    /// Answers the next `count` requests (of any kind, token requests too)
    /// with `status` and a JSON error body, without handling them.
    pub fn fail_next(&self, count: usize, status: u16) {
        self.state()
            .failures
            .extend(std::iter::repeat_n(status, count));
    }

    /// Answers the next `count` consume requests with 200 and a body that
    /// carries `errors`, storing nothing (ThreatQ's "a 200 is not
    /// necessarily a success").
    pub fn errors_in_success_next(&self, count: usize) {
        self.state().errors_in_success += count;
    }

    /// Delays every response by `delay` (None: answer at once).
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.state().delay = delay;
    }

    /// Delays only consume requests by `delay` (None: answer at once).
    pub fn set_consume_delay(&self, delay: Option<Duration>) {
        self.state().consume_delay = delay;
    }

    /// Delays only lookups by value (`GET /api/<collection>?value=..`, what
    /// a client does to find one indicator) by `delay` (None: at once).
    pub fn set_lookup_delay(&self, delay: Option<Duration>) {
        self.state().lookup_delay = delay;
    }

    /// Makes any consumed item whose identifying value contains `pattern`
    /// fail validation with a 422, as an invalid value would.
    pub fn reject_values_containing(&self, pattern: &str) {
        self.state().rejected_values.push(pattern.to_owned());
    }

    /// Makes `/api/connectors` answer 404, as on an instance without it.
    pub fn set_connectors_missing(&self, missing: bool) {
        self.state().connectors_missing = missing;
    }

    /// Makes any consume request whose raw body contains `needle` answer
    /// `status` with a web firewall's "Request Rejected" HTML page, storing
    /// nothing from that request: a WAF in front of ThreatQ that blocks a
    /// body for what it holds (a phishing URL that looks like an attack).
    /// Checked before the bearer token, as a WAF sees the request first.
    /// An empty `needle` matches every consume request.
    pub fn refuse_bodies_containing(&self, needle: &str, status: u16) {
        self.state()
            .refused_bodies
            .push((needle.to_owned(), status));
    }

    /// Answers every consume request of `collection` (its API name, e.g.
    /// `indicators`) with `status` and `{"errors": [reason]}`, storing
    /// nothing: a setting or rule that makes ThreatQ refuse everything of
    /// that collection (an unknown status, a role without write access).
    /// Checked after the bearer token; a later call for the same
    /// collection replaces the earlier one.
    pub fn refuse_collection(&self, collection: &str, status: u16, reason: &str) {
        self.state()
            .refused_collections
            .insert(collection.to_owned(), (status, reason.to_owned()));
    }

    /// Expires every token issued so far: the next API call gets a 401.
    pub fn expire_all_tokens(&self) {
        lock(&self.shared.tokens).expire_all();
    }

    /// Switches every fault off.
    pub fn clear(&self) {
        *self.state() = FaultState::default();
    }
}
