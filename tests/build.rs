//! Builds the `sandbox-probe` test guest for wasm32-wasip2 with the shared
//! `wasm-build` helper and tells the tests where it is (`SANDBOX_PROBE_WASM`;
//! set it in the environment to use an already built probe instead).

use wasm_build::{Guest, build_guest};

fn main() {
    let probe = build_guest(&Guest {
        package: "sandbox-probe",
        artifact: "sandbox_probe.wasm",
        sources: &["tests/guests/sandbox-probe"],
        prebuilt_env: "SANDBOX_PROBE_WASM",
    });
    println!("cargo:rustc-env=SANDBOX_PROBE_WASM={}", probe.display());
}
