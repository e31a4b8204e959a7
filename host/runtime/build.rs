//! Puts the TAP component inside this crate, so a release binary carries it.
//!
//! The component is the `wasm32-wasip2` artifact of the `tap-component`
//! crate, built by the shared `wasm-build` helper (which also adds the wasm
//! target to the toolchain when it is missing).
//!
//! Set `TAP_COMPONENT_WASM=/path/to/tap_component.wasm` to skip the nested
//! build and embed that file instead.

use std::env;
use std::path::PathBuf;

use wasm_build::{Guest, build_guest, fail};

const COMPONENT_ARTIFACT: &str = "tap_component.wasm";

fn main() {
    let source = build_guest(&Guest {
        package: "tap-component",
        artifact: COMPONENT_ARTIFACT,
        sources: &["component/src", "component/Cargo.toml"],
        prebuilt_env: "TAP_COMPONENT_WASM",
    });

    // Copied into OUT_DIR so `include_bytes!` reads a file this build owns.
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let embedded = out_dir.join(COMPONENT_ARTIFACT);
    if let Err(err) = std::fs::copy(&source, &embedded) {
        fail(&format!(
            "cannot copy the TAP component from {} to {}: {err}",
            source.display(),
            embedded.display()
        ));
    }
    println!(
        "cargo:rustc-env=TAP_COMPONENT_EMBEDDED_PATH={}",
        embedded.display()
    );
    println!("cargo:rustc-env=TAP_COMPONENT_ORIGIN={}", source.display());
}
