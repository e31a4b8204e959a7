//! Builds the `sandbox-probe` test guest for wasm32-wasip2 and tells the
//! tests where it is (`SANDBOX_PROBE_WASM`).
//!
//! The probe is a wasm-only crate, so it cannot be a normal dependency; a
//! nested cargo builds it into its own target dir (the outer cargo holds the
//! lock on ours). Set `SANDBOX_PROBE_WASM` in the environment to use an
//! already built probe instead.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";
const PROBE_PACKAGE: &str = "sandbox-probe";
const PROBE_ARTIFACT: &str = "sandbox_probe.wasm";

/// Host build settings that must not leak into the wasm build.
const HOST_ONLY_ENV: [&str; 4] = [
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
];

fn main() {
    println!("cargo:rerun-if-env-changed=SANDBOX_PROBE_WASM");
    let probe = match env::var_os("SANDBOX_PROBE_WASM") {
        Some(prebuilt) => PathBuf::from(prebuilt),
        None => build_probe(),
    };
    println!("cargo:rustc-env=SANDBOX_PROBE_WASM={}", probe.display());
}

fn build_probe() -> PathBuf {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let workspace_root = manifest_dir
        .parent()
        .expect("tests/ sits directly below the workspace root")
        .to_path_buf();
    for watched in ["tests/guests/sandbox-probe", "wit", "Cargo.lock"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace_root.join(watched).display()
        );
    }

    let target_dir = nested_target_dir(&workspace_root, &out_dir);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace_root)
        .arg("build")
        .arg("--manifest-path")
        .arg(workspace_root.join("Cargo.toml"))
        .args(["-p", PROBE_PACKAGE, "--target", WASM_TARGET, "--release"])
        .arg("--target-dir")
        .arg(&target_dir);
    for name in HOST_ONLY_ENV {
        command.env_remove(name);
    }
    let output = match command.output() {
        Ok(output) => output,
        Err(err) => fail(&format!(
            "cannot start the nested `cargo build -p {PROBE_PACKAGE} --target {WASM_TARGET}`: {err}\n\
             hint: build the probe yourself and set SANDBOX_PROBE_WASM to its path"
        )),
    };
    if !output.status.success() {
        fail(&format!(
            "the nested build of the sandbox probe failed ({}).\n\
             --- cargo stdout ---\n{}\n--- cargo stderr ---\n{}\n\
             hint: reproduce with `cargo build -p {PROBE_PACKAGE} --target {WASM_TARGET} --release`; \
             if the target is missing, run `rustup target add {WASM_TARGET}`",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        ));
    }
    target_dir
        .join(WASM_TARGET)
        .join("release")
        .join(PROBE_ARTIFACT)
}

/// `<outer target dir>/probe-build`; OUT_DIR is
/// `<target>[/<triple>]/<profile>/build/<pkg>-<hash>/out`.
fn nested_target_dir(workspace_root: &Path, out_dir: &Path) -> PathBuf {
    let outer = match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root.join(dir),
        None => out_dir
            .ancestors()
            .nth(4)
            .map(Path::to_path_buf)
            .unwrap_or_else(|| out_dir.to_path_buf()),
    };
    outer.join("probe-build")
}

fn fail(message: &str) -> ! {
    for line in message.lines() {
        eprintln!("{line}");
    }
    std::process::exit(1);
}
