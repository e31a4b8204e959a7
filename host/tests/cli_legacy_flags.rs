//! The legacy connector's command lines must keep working unchanged.

use std::path::PathBuf;

use clap::error::ErrorKind;
use tq_conn::cli::{Command, LogTarget, Verbosity, parse_args};

const PROGRAM: &str = "tq-conn-proofpoint-tap";

fn parse(line: &str) -> Result<tq_conn::cli::Cli, clap::Error> {
    parse_args(std::iter::once(PROGRAM).chain(line.split_whitespace()))
}

#[test]
fn the_documented_crontab_line_parses_unchanged() {
    let cli = parse("-c /etc/tq_labs/ -ll /var/log/tq_labs/ -v3").expect("parses");
    assert_eq!(cli.config_dir, PathBuf::from("/etc/tq_labs/"));
    assert_eq!(cli.log, LogTarget::Dir(PathBuf::from("/var/log/tq_labs/")));
    assert_eq!(cli.verbosity, Verbosity::Everything);
    assert!(!cli.external_proxy && !cli.disable_ssl && !cli.disable_proxy && !cli.dry_run);
    assert_eq!(cli.command, None);
}

#[test]
fn the_install_guide_order_parses_too() {
    let cli = parse("-ll /var/log/tq_labs/ -c /etc/tq_labs/ -v3").expect("parses");
    assert_eq!(cli.log, LogTarget::Dir(PathBuf::from("/var/log/tq_labs/")));
    assert_eq!(cli.config_dir, PathBuf::from("/etc/tq_labs/"));
}

#[test]
fn no_flags_means_stdout_current_directory_and_warnings() {
    let cli = parse("").expect("parses");
    assert_eq!(cli.log, LogTarget::Stdout);
    assert_eq!(cli.config_dir, PathBuf::from("."));
    assert_eq!(cli.verbosity, Verbosity::Warnings);
}

#[test]
fn every_verbosity_spelling_is_accepted() {
    for line in ["-v3", "-v 3", "--verbosity 3", "--verbosity=3", "-v=3"] {
        assert_eq!(
            parse(line).expect(line).verbosity,
            Verbosity::Everything,
            "{line}"
        );
    }
    assert_eq!(parse("-v1").expect("-v1").verbosity, Verbosity::Warnings);
    assert_eq!(parse("-v 2").expect("-v 2").verbosity, Verbosity::Info);
}

#[test]
fn every_log_location_spelling_is_accepted() {
    let dir = LogTarget::Dir(PathBuf::from("/var/log/tq"));
    for line in [
        "-ll /var/log/tq",
        "--loglocation /var/log/tq",
        "--loglocation=/var/log/tq",
        "-ll=/var/log/tq",
        "-ll/var/log/tq",
    ] {
        assert_eq!(parse(line).expect(line).log, dir, "{line}");
    }
    assert_eq!(parse("-ll stdout").expect("stdout").log, LogTarget::Stdout);
    assert_eq!(parse("-ll STDOUT").expect("STDOUT").log, LogTarget::Stdout);
}

#[test]
fn config_directory_short_and_long_forms() {
    for line in [
        "-c /etc/tq",
        "--config /etc/tq",
        "--config=/etc/tq",
        "-c/etc/tq",
    ] {
        assert_eq!(
            parse(line).expect(line).config_dir,
            PathBuf::from("/etc/tq")
        );
    }
}

#[test]
fn legacy_two_letter_switches_and_their_long_forms() {
    let short = parse("-ep -ds -dp").expect("short");
    let long = parse("--external-proxy --disable-ssl --disable-proxy").expect("long");
    for cli in [short, long] {
        assert!(cli.external_proxy && cli.disable_ssl && cli.disable_proxy);
    }
    let only_ds = parse("-ds").expect("-ds");
    assert!(only_ds.disable_ssl && !only_ds.disable_proxy && !only_ds.external_proxy);
}

#[test]
fn a_missing_value_before_another_flag_is_a_usage_error_not_a_directory() {
    // argparse refused `-ll -dp` too; clap must not take `-dp` as the log
    // directory nor silently turn the proxy off.
    assert_usage_error("-ll -dp", ErrorKind::InvalidValue, "--loglocation");
    assert_usage_error("-c -ds", ErrorKind::InvalidValue, "--config");
}

#[test]
fn our_own_flags() {
    let cli = parse("--dry-run --export /tmp/out.jsonl --component /opt/tap.wasm").expect("parses");
    assert!(cli.dry_run);
    assert_eq!(cli.export, Some(PathBuf::from("/tmp/out.jsonl")));
    assert_eq!(
        cli.component,
        tap_runtime::ComponentSource::Wasm(PathBuf::from("/opt/tap.wasm"))
    );
}

#[test]
fn demo_has_defaults_and_options() {
    let Some(Command::Demo(demo)) = parse("demo").expect("demo").command else {
        panic!("expected demo");
    };
    assert_eq!((demo.hours, demo.seed, demo.keep), (48, None, None));
    let Some(Command::Demo(demo)) = parse("demo --hours 6 --seed 7 --keep /tmp/d")
        .expect("demo")
        .command
    else {
        panic!("expected demo");
    };
    assert_eq!(demo.hours, 6);
    assert_eq!(demo.seed, Some(7));
    assert_eq!(demo.keep, Some(PathBuf::from("/tmp/d")));
}

#[test]
fn legacy_flags_work_before_and_after_a_subcommand() {
    let before = parse("-c /etc/tq -v3 setup --host tq --no-verify").expect("before");
    let after = parse("setup --host tq --no-verify -c /etc/tq -v3 -ds").expect("after");
    for cli in [&before, &after] {
        assert_eq!(cli.config_dir, PathBuf::from("/etc/tq"));
        assert_eq!(cli.verbosity, Verbosity::Everything);
        let Some(Command::Setup(setup)) = &cli.command else {
            panic!("expected setup");
        };
        assert_eq!(setup.host.as_deref(), Some("tq"));
        assert!(setup.no_verify);
    }
    assert!(after.disable_ssl);
}

fn assert_usage_error(line: &str, kind: ErrorKind, mentions: &str) {
    let error = parse(line).expect_err(line);
    assert_eq!(error.kind(), kind, "{line}");
    assert_eq!(error.exit_code(), 2, "{line}");
    let text = error.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    assert!(first.starts_with("error: "), "{line}: {text}");
    assert!(first.contains(mentions), "{line}: {first}");
    assert!(
        text.contains("Usage: tq-conn-proofpoint-tap"),
        "{line}: {text}"
    );
}

#[test]
fn verbosity_outside_one_to_three_is_a_usage_error() {
    assert_usage_error("-v 4", ErrorKind::InvalidValue, "'4'");
    assert_usage_error("-v0", ErrorKind::InvalidValue, "'0'");
    assert_usage_error("--verbosity=debug", ErrorKind::InvalidValue, "'debug'");
}

#[test]
fn unknown_flags_are_usage_errors() {
    assert_usage_error("--bogus", ErrorKind::UnknownArgument, "--bogus");
    assert_usage_error("-x", ErrorKind::UnknownArgument, "-x");
    assert_usage_error("-c", ErrorKind::InvalidValue, "--config");
}

#[test]
fn dry_run_does_not_combine_with_a_subcommand() {
    assert_usage_error("--dry-run demo", ErrorKind::ArgumentConflict, "--dry-run");
}

#[test]
fn demo_hours_out_of_range_is_a_usage_error() {
    assert_usage_error("demo --hours 0", ErrorKind::ValueValidation, "'0'");
}

#[test]
fn help_lists_the_legacy_spellings() {
    for line in ["--help", "-h"] {
        let error = parse(line).expect_err("help is reported through clap's error");
        assert_eq!(error.kind(), ErrorKind::DisplayHelp);
        assert_eq!(error.exit_code(), 0);
        let help = error.render().to_string();
        for spelling in [
            "-h, --help",
            "-ll, --loglocation DIR",
            "-c, --config DIR",
            "-v, --verbosity {1,2,3}",
            "-ep, --external-proxy",
            "-ds, --disable-ssl",
            "-dp, --disable-proxy",
            "--dry-run",
            "--export FILE",
            "--component PATH",
            "--precompiled PATH",
            "-V, --version",
            "setup",
            "demo",
            "precompile",
        ] {
            assert!(
                help.contains(spelling),
                "`{spelling}` missing from:\n{help}"
            );
        }
    }
}

#[test]
fn subcommand_help_lists_its_options_and_the_legacy_ones() {
    let error = parse("setup --help").expect_err("help");
    let help = error.render().to_string();
    for spelling in [
        "--host HOST",
        "[env: TQ_HOST]",
        "--password-file FILE",
        "--force",
        "-ll, --loglocation DIR",
    ] {
        assert!(
            help.contains(spelling),
            "`{spelling}` missing from:\n{help}"
        );
    }
}

#[test]
fn version_is_reported() {
    let error = parse("--version").expect_err("version");
    assert_eq!(error.kind(), ErrorKind::DisplayVersion);
    assert!(
        error
            .render()
            .to_string()
            .contains(env!("CARGO_PKG_VERSION"))
    );
}
