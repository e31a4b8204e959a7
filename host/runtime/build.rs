//! Puts the TAP component inside this crate, so a release binary carries it.
//!
//! The component is a `wasm32-wasip2` artifact of the `tap-component` crate.
//! Cargo cannot express "this crate needs that crate built for another
//! target", so this script runs a nested `cargo build` for it. The nested
//! build gets its own target dir: the outer cargo holds the lock on ours.
//!
//! Set `TAP_COMPONENT_WASM=/path/to/tap_component.wasm` to skip the nested
//! build and embed that file instead (e.g. when a justfile built it already).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";
const COMPONENT_PACKAGE: &str = "tap-component";
const COMPONENT_ARTIFACT: &str = "tap_component.wasm";

/// Environment variables that configure the *outer* build for the host and
/// would leak host settings (flags, wrappers) into the wasm build.
const HOST_ONLY_ENV: [&str; 4] = [
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
];

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace_root = manifest_dir
        .ancestors()
        .nth(2)
        .expect("host/runtime sits two levels below the workspace root")
        .to_path_buf();

    println!("cargo:rerun-if-env-changed=TAP_COMPONENT_WASM");
    let source = match env::var_os("TAP_COMPONENT_WASM") {
        Some(prebuilt) => {
            let prebuilt = PathBuf::from(prebuilt);
            println!("cargo:rerun-if-changed={}", prebuilt.display());
            prebuilt
        }
        None => build_component(&workspace_root, &out_dir),
    };

    let embedded = out_dir.join(COMPONENT_ARTIFACT);
    if let Err(err) = std::fs::copy(&source, &embedded) {
        fail(&format!(
            "cannot copy the TAP component from {} to {}: {err}\n\
             hint: if TAP_COMPONENT_WASM is set, it must name a built {COMPONENT_ARTIFACT}; \
             unset it to build the component here",
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

/// Builds `tap-component` for wasm32-wasip2 (release) and returns the .wasm.
fn build_component(workspace_root: &Path, out_dir: &Path) -> PathBuf {
    for watched in ["component/src", "component/Cargo.toml", "wit", "Cargo.lock"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace_root.join(watched).display()
        );
    }

    let target_dir = nested_target_dir(workspace_root, out_dir);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace_root)
        .arg("build")
        .arg("--manifest-path")
        .arg(workspace_root.join("Cargo.toml"))
        .args([
            "-p",
            COMPONENT_PACKAGE,
            "--target",
            WASM_TARGET,
            "--release",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    for name in HOST_ONLY_ENV {
        command.env_remove(name);
    }

    let output = match command.output() {
        Ok(output) => output,
        Err(err) => fail(&format!(
            "cannot start the nested `cargo build -p {COMPONENT_PACKAGE} --target {WASM_TARGET}`: {err}\n\
             hint: build the component yourself and set TAP_COMPONENT_WASM to its path"
        )),
    };
    if !output.status.success() {
        fail(&format!(
            "the nested build of the TAP component failed ({}).\n\
             --- cargo stdout ---\n{}\n--- cargo stderr ---\n{}\n\
             hint: reproduce with `cargo build -p {COMPONENT_PACKAGE} --target {WASM_TARGET} --release`; \
             if the target is missing, run `rustup target add {WASM_TARGET}`",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        ));
    }
    target_dir
        .join(WASM_TARGET)
        .join("release")
        .join(COMPONENT_ARTIFACT)
}

/// `<outer target dir>/component-build`. OUT_DIR is
/// `<target>[/<triple>]/<profile>/build/<pkg>-<hash>/out`, so the outer target
/// dir (or its per-triple subdir, which is just as private) is four levels up.
fn nested_target_dir(workspace_root: &Path, out_dir: &Path) -> PathBuf {
    let outer = match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root.join(dir),
        None => out_dir
            .ancestors()
            .nth(4)
            .map(Path::to_path_buf)
            .unwrap_or_else(|| out_dir.to_path_buf()),
    };
    outer.join("component-build")
}

fn fail(message: &str) -> ! {
    // Cargo shows a failed build script's stderr; keep every line readable.
    for line in message.lines() {
        eprintln!("{line}");
    }
    std::process::exit(1);
}
