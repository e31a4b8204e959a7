//! Bytes -> ThreatQ's answer to login, forward (201 and 422), connector
//! settings (200 and 500) and the proxy setting, through the public
//! `threatq_client::Client` and a fake ThreatQ on 127.0.0.1.
//! Properties: see fuzz/src/threatq.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tap_connector_fuzz::threatq::fuzz_responses(data);
});
