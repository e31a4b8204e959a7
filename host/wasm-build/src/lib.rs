//! Builds a crate of this workspace for `wasm32-wasip2` from a build script.
//!
//! Cargo cannot say "this crate needs that crate built for another target",
//! so the build scripts of `tap-runtime` (which embeds the TAP component) and
//! of the end-to-end tests (which need the sandbox probe guest) run a nested
//! `cargo build`. Both go through [`build_guest`], so the rules live once:
//!
//! 1. **The target first.** A toolchain that rustup installed before
//!    `rust-toolchain.toml` asked for `wasm32-wasip2` lacks its standard
//!    library, and rustup does not add it to a toolchain that is already
//!    present. We check the sysroot before compiling anything for wasm; when
//!    the target is missing and rustup is there we add it to the toolchain
//!    in use (not `stable`), say so once as a cargo warning, and go on.
//!    Without rustup we stop at once with the command to run, instead of
//!    failing minutes later inside the nested build.
//! 2. **Its own target dir.** The outer cargo holds the lock on ours, so the
//!    nested build writes below `<outer target>/<name>-build`.
//! 3. **Host settings stay on the host.** `RUSTFLAGS` and compiler wrappers
//!    meant for the native build are not passed to the wasm build.
//! 4. **Rerun only for what matters.** The build script reruns when the
//!    guest's sources, its `Cargo.toml`, the WIT contract, the lock file or
//!    the toolchain pin change. After a lock-file change that does not touch
//!    the guest, the nested cargo finds everything fresh and finishes in
//!    about a second: no recompilation of the component.

use std::env;
use std::ffi::OsString;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The target every guest of this project is built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// Environment variables that configure the *outer* (native) build and would
/// leak its settings (flags, wrappers) into the wasm build.
const HOST_ONLY_ENV: [&str; 4] = [
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
];

/// One wasm guest of the workspace.
pub struct Guest<'a> {
    /// Cargo package name, e.g. `tap-component`.
    pub package: &'a str,
    /// File name of the built artifact, e.g. `tap_component.wasm`.
    pub artifact: &'a str,
    /// Paths relative to the workspace root whose change must rebuild the
    /// guest: its sources and manifest, and the WIT it implements.
    pub sources: &'a [&'a str],
    /// An environment variable naming an already built artifact; when set,
    /// nothing is built and that file is used.
    pub prebuilt_env: &'a str,
}

/// Builds `guest` (release, wasm32-wasip2) and returns the artifact's path.
/// Exits the build script with a readable message on any failure.
pub fn build_guest(guest: &Guest) -> PathBuf {
    println!("cargo:rerun-if-env-changed={}", guest.prebuilt_env);
    if let Some(prebuilt) = env::var_os(guest.prebuilt_env) {
        let prebuilt = PathBuf::from(prebuilt);
        println!("cargo:rerun-if-changed={}", prebuilt.display());
        if !prebuilt.is_file() {
            fail(&format!(
                "{}={} is not a file\n\
                 hint: point it at a built {}, or unset it to build the guest here",
                guest.prebuilt_env,
                prebuilt.display(),
                guest.artifact
            ));
        }
        return prebuilt;
    }

    let workspace_root = workspace_root();
    for watched in guest
        .sources
        .iter()
        .chain(&["wit", "Cargo.lock", "rust-toolchain.toml"])
    {
        println!(
            "cargo:rerun-if-changed={}",
            workspace_root.join(watched).display()
        );
    }

    let outer_target = outer_target_dir(&workspace_root);
    ensure_wasm_target(&outer_target);

    let target_dir = outer_target.join(format!("{}-build", guest.package));
    let mut command = Command::new(cargo());
    command
        .current_dir(&workspace_root)
        .arg("build")
        .arg("--manifest-path")
        .arg(workspace_root.join("Cargo.toml"))
        .args(["-p", guest.package, "--target", WASM_TARGET, "--release"])
        .arg("--target-dir")
        .arg(&target_dir);
    for name in HOST_ONLY_ENV {
        command.env_remove(name);
    }
    let output = command.output().unwrap_or_else(|err| {
        fail(&format!(
            "cannot start the nested `cargo build -p {} --target {WASM_TARGET}`: {err}\n\
             hint: build it yourself and set {} to the built {}",
            guest.package, guest.prebuilt_env, guest.artifact
        ))
    });
    if !output.status.success() {
        fail(&format!(
            "the nested build of {} for {WASM_TARGET} failed ({}).\n\
             --- cargo stdout ---\n{}\n--- cargo stderr ---\n{}\n\
             hint: reproduce with `cargo build -p {} --target {WASM_TARGET} --release`",
            guest.package,
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            guest.package,
        ));
    }
    target_dir
        .join(WASM_TARGET)
        .join("release")
        .join(guest.artifact)
}

/// Makes sure the toolchain compiling this build has the wasm32-wasip2
/// standard library, adding it with rustup when it is missing.
pub fn ensure_wasm_target(outer_target: &Path) {
    let sysroot = sysroot();
    if has_wasm_std(&sysroot) {
        return;
    }

    // Two build scripts may find the target missing at the same moment;
    // one adds it while the other waits, then finds it there.
    let _lock = lock_file(&outer_target.join("wasm-target.lock"));
    if has_wasm_std(&sysroot) {
        return;
    }

    let Some(rustup) = rustup() else {
        fail(&format!(
            "the Rust toolchain at {} has no {WASM_TARGET} standard library, and rustup is not \
             installed to add it; run `rustup target add {WASM_TARGET}` (or install that target \
             for this toolchain another way), then build again",
            sysroot.display()
        ));
    };
    let toolchain = toolchain_name(&sysroot);
    let mut command = Command::new(&rustup);
    command.args(["target", "add", WASM_TARGET]);
    if let Some(toolchain) = &toolchain {
        command.arg("--toolchain").arg(toolchain);
    }
    let shown = format!(
        "rustup target add {WASM_TARGET}{}",
        toolchain
            .as_ref()
            .map(|t| format!(" --toolchain {}", t.to_string_lossy()))
            .unwrap_or_default()
    );
    let output = command.output().unwrap_or_else(|err| {
        fail(&format!(
            "cannot run `{shown}` ({}): {err}; run it yourself, then build again",
            rustup.display()
        ))
    });
    if !output.status.success() || !has_wasm_std(&sysroot) {
        fail(&format!(
            "`{shown}` failed ({}): {}\nhint: run it yourself, then build again",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    println!(
        "cargo:warning=the toolchain lacked the {WASM_TARGET} target, which the TAP component \
         is built for; added it with `{shown}`"
    );
}

/// The sysroot of the rustc cargo hands to build scripts.
fn sysroot() -> PathBuf {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .unwrap_or_else(|err| {
            fail(&format!(
                "cannot run `{} --print sysroot`: {err}",
                rustc.to_string_lossy()
            ))
        });
    if !output.status.success() {
        fail(&format!(
            "`{} --print sysroot` failed: {}",
            rustc.to_string_lossy(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// True when `<sysroot>/lib/rustlib/wasm32-wasip2/lib` holds a `libstd`.
fn has_wasm_std(sysroot: &Path) -> bool {
    let lib = sysroot
        .join("lib")
        .join("rustlib")
        .join(WASM_TARGET)
        .join("lib");
    fs::read_dir(lib).is_ok_and(|entries| {
        entries.flatten().any(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with("libstd-") && name.ends_with(".rlib")
        })
    })
}

/// The toolchain to name to rustup: the one rustup resolved for this build
/// (`RUSTUP_TOOLCHAIN`, set by its proxies), else the sysroot's directory
/// name under `<rustup home>/toolchains/`. `None` lets rustup choose, which
/// is right when neither is known.
fn toolchain_name(sysroot: &Path) -> Option<OsString> {
    env::var_os("RUSTUP_TOOLCHAIN")
        .filter(|n| !n.is_empty())
        .or_else(|| toolchain_of_sysroot(sysroot))
}

/// `<rustup home>/toolchains/<name>` -> `<name>`; `None` for a sysroot that
/// rustup does not manage.
fn toolchain_of_sysroot(sysroot: &Path) -> Option<OsString> {
    let parent = sysroot.parent()?;
    (parent.file_name()? == "toolchains").then(|| sysroot.file_name().map(OsString::from))?
}

/// rustup on PATH, else in `$CARGO_HOME/bin` or `~/.cargo/bin`.
fn rustup() -> Option<PathBuf> {
    let exe = format!("rustup{}", env::consts::EXE_SUFFIX);
    let on_path = env::var_os("PATH")
        .map(|paths| env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    let cargo_home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    on_path
        .into_iter()
        .chain(cargo_home.map(|home| home.join("bin")))
        .map(|dir| dir.join(&exe))
        .find(|candidate| candidate.is_file())
}

fn cargo() -> OsString {
    env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// The workspace root: the nearest ancestor of the calling crate's manifest
/// directory whose `Cargo.toml` declares `[workspace]`.
fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    manifest_dir
        .ancestors()
        .find(|dir| {
            fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|text| text.lines().any(|line| line.trim() == "[workspace]"))
        })
        .map(Path::to_path_buf)
        .unwrap_or_else(|| {
            fail(&format!(
                "no workspace Cargo.toml above {}",
                manifest_dir.display()
            ))
        })
}

/// The outer build's target dir. OUT_DIR is
/// `<target>[/<triple>]/<profile>/build/<pkg>-<hash>/out`, so it is four
/// levels up (or the per-triple subdir, which is just as private).
fn outer_target_dir(workspace_root: &Path) -> PathBuf {
    if let Some(dir) = env::var_os("CARGO_TARGET_DIR") {
        return workspace_root.join(dir);
    }
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    out_dir
        .ancestors()
        .nth(4)
        .map(Path::to_path_buf)
        .unwrap_or(out_dir)
}

fn lock_file(path: &Path) -> File {
    if let Some(parent) = path.parent() {
        let _ = fs::create_dir_all(parent);
    }
    let file = File::create(path)
        .unwrap_or_else(|err| fail(&format!("cannot create the lock {}: {err}", path.display())));
    if let Err(err) = file.lock() {
        fail(&format!("cannot lock {}: {err}", path.display()));
    }
    file
}

/// Prints every line of `message` on stderr (cargo shows a failed build
/// script's stderr) and stops the build script.
pub fn fail(message: &str) -> ! {
    for line in message.lines() {
        eprintln!("{line}");
    }
    std::process::exit(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch sysroot laid out as rustup lays out a toolchain.
    fn scratch_sysroot(name: &str) -> PathBuf {
        let root = env::temp_dir()
            .join(format!("wasm-build-test-{}-{name}", std::process::id()))
            .join("toolchains")
            .join("1.95.0-x86_64-unknown-linux-gnu");
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("lib/rustlib").join(WASM_TARGET).join("lib")).unwrap();
        root
    }

    #[test]
    fn the_target_counts_as_installed_only_with_its_libstd() {
        let sysroot = scratch_sysroot("libstd");
        assert!(!has_wasm_std(&sysroot), "an empty target dir is no std");
        let lib = sysroot.join("lib/rustlib").join(WASM_TARGET).join("lib");
        fs::write(lib.join("libcore-0123.rlib"), b"").unwrap();
        assert!(!has_wasm_std(&sysroot), "core alone is no std");
        fs::write(lib.join("libstd-4567.rlib"), b"").unwrap();
        assert!(has_wasm_std(&sysroot));
        assert!(!has_wasm_std(&sysroot.join("missing")));
    }

    #[test]
    fn a_rustup_sysroot_names_its_toolchain_and_another_names_none() {
        let sysroot = scratch_sysroot("name");
        assert_eq!(
            toolchain_of_sysroot(&sysroot).as_deref(),
            Some(std::ffi::OsStr::new("1.95.0-x86_64-unknown-linux-gnu"))
        );
        assert_eq!(toolchain_of_sysroot(Path::new("/usr")), None);
        assert_eq!(toolchain_of_sysroot(Path::new("/")), None);
    }
}
