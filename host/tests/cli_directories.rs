//! `-ll` and `-c` directories are checked before a run, with the fix named.

use tq_conn::cli::parse_args;

fn check(args: &[&str]) -> Result<(), String> {
    let cli = parse_args(std::iter::once("tq-conn-proofpoint-tap").chain(args.iter().copied()))
        .expect("parses");
    cli.check_dirs().map_err(|e| e.to_string())
}

#[test]
fn existing_writable_directories_pass() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_str().expect("utf-8");
    check(&["-c", path, "-ll", path]).expect("usable");
    check(&["-c", path]).expect("stdout needs no directory");
}

#[test]
fn a_missing_log_directory_says_create_it_or_use_stdout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    let message = check(&[
        "-c",
        dir.path().to_str().expect("utf-8"),
        "-ll",
        missing.to_str().expect("utf-8"),
    ])
    .expect_err("missing");
    assert!(message.starts_with("log directory "), "{message}");
    assert!(message.contains("does not exist"), "{message}");
    assert!(message.contains("mkdir -p"), "{message}");
    assert!(message.contains("-ll stdout"), "{message}");
}

#[test]
fn a_missing_config_directory_is_named_as_such() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("etc");
    let message = check(&["-c", missing.to_str().expect("utf-8")]).expect_err("missing");
    assert!(message.starts_with("config directory "), "{message}");
    assert!(
        message.contains(missing.to_str().expect("utf-8")),
        "{message}"
    );
}

#[test]
fn a_file_given_as_a_directory_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("file");
    std::fs::write(&file, "").expect("write");
    let message = check(&[
        "-ll",
        file.to_str().expect("utf-8"),
        "-c",
        dir.path().to_str().expect("utf-8"),
    ])
    .expect_err("not a dir");
    assert!(message.contains("is not a directory"), "{message}");
}

#[test]
fn demo_does_not_need_the_config_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("etc");
    check(&["-c", missing.to_str().expect("utf-8"), "demo"]).expect("demo uses its own");
}

#[cfg(unix)]
#[test]
fn a_read_only_log_directory_is_reported_unless_root() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    // Root writes anyway; then the check must agree and pass.
    let writable = tempfile::tempfile_in(&logs).is_ok();
    let result = check(&[
        "-ll",
        logs.to_str().expect("utf-8"),
        "-c",
        dir.path().to_str().expect("utf-8"),
    ]);
    if writable {
        result.expect("root can write");
    } else {
        let message = result.expect_err("read-only");
        assert!(message.contains("is not writable"), "{message}");
    }
}
