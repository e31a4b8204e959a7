//! Bytes -> the `/v2/campaign/{id}` body of a fixed SIEM window -> decode +
//! map via `tap_component::sync`. Properties: see fuzz/src/tap.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tap_connector_fuzz::tap::fuzz_campaign(data);
});
