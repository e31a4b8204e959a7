//! Shared harness code for the fuzz targets in `fuzz_targets/`.
//!
//! * [`tap`]: feeds fuzzed bytes to `tap_component::sync` as the body of one
//!   TAP endpoint (SIEM, campaign or forensics) through an in-memory
//!   transport, and checks the properties every answer must keep.
//! * [`threatq`]: feeds fuzzed bytes to the public `threatq_client::Client`
//!   as ThreatQ's answer, through an HTTP server on 127.0.0.1.
//!
//! A property that does not hold panics, which libFuzzer reports as a crash
//! and saves the input under `fuzz/artifacts/<target>/`.

pub mod tap;
pub mod threatq;
