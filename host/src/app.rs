//! From a parsed command line to an exit status: logging, first-run set-up,
//! the normal run, `setup`, `demo`, `precompile` and `replay`.

use std::io::IsTerminal;
use std::process::ExitCode;

use tracing::{error, info, warn};

use crate::cli::{Cli, Command};
use crate::exit;
use crate::run::{FailureKind, NetworkFlags, RunMode, RunOptions, RunOutcome};

pub async fn main(cli: Cli) -> ExitCode {
    if let Err(e) = cli.check_dirs() {
        return exit::fail(None, FailureKind::Config, e);
    }
    let _log_guard = match crate::logging::init(&cli.log, cli.verbosity) {
        Ok(guard) => guard,
        Err(e) => {
            return exit::fail(None, FailureKind::Config, format_args!("{e:#}"));
        }
    };
    let component = cli.component.clone();

    match &cli.command {
        #[cfg(not(feature = "demo"))]
        Some(Command::Demo(_)) => {
            exit::say(
                Some("demo"),
                "this build has no simulators: build it with `cargo run --release --features demo -- demo`",
            );
            ExitCode::from(exit::USAGE)
        }
        #[cfg(feature = "demo")]
        Some(Command::Demo(args)) => {
            let options = crate::demo::DemoOptions {
                hours: args.hours,
                seed: args.seed.unwrap_or(crate::demo::DEFAULT_SEED),
                keep: args.keep.clone(),
                component,
            };
            match crate::demo::demo(&options).await {
                Ok(report) => {
                    println!("{}", crate::demo::render(&report));
                    ExitCode::SUCCESS
                }
                Err(e) => exit::fail(Some("demo"), FailureKind::Local, format_args!("{e:#}")),
            }
        }
        Some(Command::Setup(args)) => match crate::setup::run_setup_command(
            &cli.config_dir,
            args,
            async |threatq: &crate::config::ThreatqSection| verify_login(threatq, &cli).await,
        )
        .await
        {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => exit::fail(Some("setup"), FailureKind::Config, format_args!("{e:#}")),
        },
        Some(Command::Precompile(args)) => {
            if matches!(component, tap_runtime::ComponentSource::Precompiled(_)) {
                exit::say(
                    Some("precompile"),
                    "give a .wasm with --component (or nothing, for the built-in component), not --precompiled",
                );
                return ExitCode::from(exit::USAGE);
            }
            match tap_runtime::precompile(&component, &args.out) {
                Ok(bytes) => {
                    println!(
                        "wrote {} ({bytes} bytes); run it with --precompiled {}",
                        args.out.display(),
                        args.out.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => exit::fail(Some("precompile"), FailureKind::Local, e),
            }
        }
        Some(Command::Replay(args)) if args.list || !args.discard.is_empty() => {
            crate::replay::list_or_discard(&cli.config_dir, args)
        }
        Some(Command::Replay(_)) => normal_run(&cli, component, RunMode::Replay).await,
        None => normal_run(&cli, component, RunMode::Sync).await,
    }
}

async fn normal_run(cli: &Cli, component: tap_runtime::ComponentSource, mode: RunMode) -> ExitCode {
    // The run itself loads and checks the file; here only its absence
    // matters, which means a first run.
    if !crate::config::path(&cli.config_dir).exists() {
        if std::io::stdin().is_terminal() {
            return first_run(cli).await;
        }
        let message = crate::setup::not_configured_message(&cli.config_dir);
        error!("{message}");
        return exit::fail(None, FailureKind::Config, message);
    }

    let mut options = RunOptions::new(cli.config_dir.clone());
    options.mode = mode;
    options.dry_run = cli.dry_run;
    options.export = cli.export.clone();
    options.component = component;
    options.network = NetworkFlags {
        external_proxy: cli.external_proxy,
        disable_ssl: cli.disable_ssl,
        disable_proxy: cli.disable_proxy,
    };
    match crate::run::run(&options).await {
        Ok(RunOutcome::Completed(summary)) => {
            info!(target: "summary", "{summary}");
            if cli.dry_run {
                exit::line(&summary);
            }
            ExitCode::SUCCESS
        }
        Ok(RunOutcome::Disabled) => {
            warn!(target: "summary", "summary: the connector is switched off in ThreatQ (or enabled = false); nothing was fetched");
            ExitCode::SUCCESS
        }
        Ok(RunOutcome::AlreadyRunning(holder)) => {
            let who = holder.map_or_else(String::new, |holder| {
                format!(
                    " (pid {}, since {})",
                    holder.pid,
                    crate::report::rfc3339(holder.since)
                )
            });
            let message = format!(
                "another run{who} holds the lock on {}; this run exits without doing anything",
                cli.config_dir.display()
            );
            warn!(target: "summary", "{message}");
            exit::say(None, message);
            ExitCode::SUCCESS
        }
        Err(failure) => {
            error!("{:#}", failure.error);
            error!(target: "summary", "{} (FAILED: exit {})", failure.summary, failure.kind.exit_code());
            exit::fail(None, failure.kind, format_args!("{:#}", failure.error))
        }
    }
}

async fn first_run(cli: &Cli) -> ExitCode {
    let verify = async |threatq: &crate::config::ThreatqSection| verify_login(threatq, cli).await;
    match crate::setup::first_run_on_terminal(&cli.config_dir, verify).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => exit::fail(None, FailureKind::Config, format_args!("{e:#}")),
    }
}

/// Checks ThreatQ connection settings by logging in, as first-run set-up
/// does, over the same route a run would take (`-ds`, `-dp`).
pub async fn verify_login(
    threatq: &crate::config::ThreatqSection,
    cli: &Cli,
) -> anyhow::Result<()> {
    let flags = NetworkFlags {
        external_proxy: cli.external_proxy,
        disable_ssl: cli.disable_ssl,
        disable_proxy: cli.disable_proxy,
    };
    let client = crate::http::threatq_client(
        threatq,
        &flags,
        None,
        threatq_client::RetryPolicy::default(),
    )?;
    client.login().await?;
    Ok(())
}
