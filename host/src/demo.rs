//! `tq-conn-proofpoint-tap demo`: the whole product on simulators, with no
//! TAP or ThreatQ account. It starts the TAP and ThreatQ simulators on
//! 127.0.0.1, generates a tenant, writes a throwaway config, runs a 48-hour
//! first run and then an incremental run through the sandboxed component,
//! and prints what landed in the simulated ThreatQ.
//!
//! Only in a build with the `demo` feature (`cargo run --release --features
//! demo -- demo`): the connector an operator installs has no simulators.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration as StdDuration;

use anyhow::{Context, Result};
use sim_config::simulator_config;
use tap_sim::generator::{TenantSpec, generate};
use tap_sim::{TapSim, TapSimConfig};
use threatq_sim::{Snapshot, ThreatqSim, ThreatqSimConfig};
use time::{Duration, OffsetDateTime};

use crate::run::{RunOptions, RunOutcome, run};

/// The demo's tenant unless `--seed` says otherwise.
pub const DEFAULT_SEED: u64 = 0x7A9_5EED;

/// What the demo needs to know.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub hours: u32,
    pub seed: u64,
    /// Keep the config, state and export here instead of a temporary directory.
    pub keep: Option<PathBuf>,
    pub component: tap_runtime::ComponentSource,
}

/// What the demo did, for tests and for the printout.
#[derive(Debug)]
pub struct DemoReport {
    pub first: crate::report::RunSummary,
    pub incremental: crate::report::RunSummary,
    pub landed: Snapshot,
    pub generated: String,
}

pub async fn demo(options: &DemoOptions) -> Result<DemoReport> {
    let tap = TapSim::start(TapSimConfig::default())
        .await
        .context("cannot start the TAP simulator")?;
    let threatq_config = ThreatqSimConfig::default();
    let threatq = ThreatqSim::start(threatq_config.clone())
        .await
        .context("cannot start the ThreatQ simulator")?;

    let now = OffsetDateTime::now_utc();
    // The first run pretends to happen 45 minutes ago, so the incremental
    // run has fresh events to bring, plus late verdicts inside its overlap.
    let first_now = now - Duration::minutes(45);
    let spec = TenantSpec {
        seed: options.seed,
        start: now - Duration::hours(i64::from(options.hours)) - Duration::minutes(5),
        end: now - Duration::minutes(3),
        ..TenantSpec::default()
    };
    let tenant = generate(&spec);
    tap.load_tenant(&tenant);
    let generated = tenant.summary().to_string();

    let temp;
    let dir = match &options.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temp = tempfile::tempdir().context("cannot create a temporary directory")?;
            temp.path().to_path_buf()
        }
    };
    let tap_config = TapSimConfig::default();
    let config = simulator_config(
        &threatq.base_url(),
        &threatq_config,
        Some((&tap.base_url(), &tap_config)),
        &format!(
            "history_hours = {}\ncreate_incidents = true\n",
            options.hours
        ),
    );
    tap_runtime::write_private(
        &dir.join(crate::config::CONFIG_FILE_NAME),
        &[config.as_bytes()],
    )
    .context("cannot write the demo config")?;

    let mut run_options = RunOptions::new(dir.clone());
    run_options.component = options.component.clone();
    run_options.now = Some(first_now);
    run_options.retry.base_delay = StdDuration::from_millis(50);
    let first = completed(run(&run_options).await, "first run")?;
    run_options.now = Some(now);
    let incremental = completed(run(&run_options).await, "incremental run")?;

    Ok(DemoReport {
        first,
        incremental,
        landed: threatq.snapshot(),
        generated,
    })
}

fn completed(
    outcome: Result<RunOutcome, crate::run::RunFailure>,
    which: &str,
) -> Result<crate::report::RunSummary> {
    match outcome {
        Ok(RunOutcome::Completed(summary)) => Ok(summary),
        Ok(other) => anyhow::bail!("the demo's {which} did not run: {other:?}"),
        Err(failure) => Err(failure.error.context(format!("the demo's {which} failed"))),
    }
}

/// The demo's printout: what was generated, each run's summary, and what
/// landed in the simulated ThreatQ.
pub fn render(report: &DemoReport) -> String {
    let mut out = String::new();
    let landed = &report.landed;
    out.push_str(&format!("Generated TAP tenant: {}\n\n", report.generated));
    out.push_str(&format!("First run:       {}\n", report.first));
    out.push_str(&format!("Incremental run: {}\n\n", report.incremental));
    out.push_str("Landed in the simulated ThreatQ:\n");
    let mut by_kind: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for object in &landed.objects {
        *by_kind
            .entry(object.collection.clone())
            .or_default()
            .entry(object.type_name.clone().unwrap_or_default())
            .or_default() += 1;
    }
    for (collection, types) in &by_kind {
        let total: usize = types.values().sum();
        let detail = types
            .iter()
            .filter(|(name, _)| !name.is_empty())
            .map(|(name, n)| format!("{name} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        if detail.is_empty() {
            out.push_str(&format!("  {collection:<15} {total:>6}\n"));
        } else {
            out.push_str(&format!("  {collection:<15} {total:>6}  ({detail})\n"));
        }
    }
    out.push_str("\nExamples:\n");
    for (collection, type_name) in [
        ("events", Some("Spearphish")),
        ("events", Some("Incident")),
        ("indicators", Some("URL")),
        ("campaign", None),
    ] {
        let example = landed.objects.iter().find(|o| {
            o.collection == collection
                && type_name.is_none_or(|t| o.type_name.as_deref() == Some(t))
        });
        if let Some(object) = example {
            out.push_str(&format!(
                "  {collection} {}: {}\n",
                object.type_name.as_deref().unwrap_or("-"),
                object.value
            ));
            for attribute in object.attributes.iter().take(6) {
                out.push_str(&format!("      {} = {}\n", attribute.name, attribute.value));
            }
            out.push_str(&format!(
                "      ({} attributes, {} relations)\n",
                object.attributes.len(),
                object.relations.len()
            ));
        }
    }
    out
}
