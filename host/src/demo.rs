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
    list_a_clicker_as_very_attacked(&tap, &tenant);
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

/// The generator lists the recipients who received the most messages as
/// Very Attacked People; in a short demo none of them may have clicked. The
/// demo adds the recipient of the latest permitted click (the incremental
/// run brings it) with an attack index below theirs, so the printout can
/// show an incident marked Very Attacked Person. Real TAP ranks by its own
/// attack index; this only shapes the demo's data.
fn list_a_clicker_as_very_attacked(tap: &TapSim, tenant: &tap_sim::Tenant) {
    let Some(recipient) = tenant
        .clicks_permitted
        .iter()
        .max_by_key(|click| click.click_time)
        .map(|click| click.recipient.to_lowercase())
    else {
        return;
    };
    let mut people = tenant.very_attacked_people.clone();
    if !people
        .iter()
        .any(|p| p.emails.iter().any(|e| e.eq_ignore_ascii_case(&recipient)))
    {
        let lowest = people.iter().map(|p| p.attack_index).min().unwrap_or(1000);
        people.push(tap_sim::Person {
            guid: format!("demo-{recipient}"),
            emails: vec![recipient],
            name: "Demo Clicker".into(),
            attack_index: lowest.saturating_sub(100).max(1),
            ..tap_sim::Person::default()
        });
    }
    tap.set_very_attacked_people(people);
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
    out.push_str("\nContext no other TAP integration gives:\n");
    out.push_str(&summarised_threat(landed));
    out.push_str(&very_attacked_incident(landed));
    out
}

/// A threat in no campaign whose indicator TAP's Threat API related to an
/// adversary and malware (docs/mapping.md, "Threat summaries").
fn summarised_threat(landed: &Snapshot) -> String {
    let names = |object: &threatq_sim::StoredObject, collection: &str| -> Vec<String> {
        landed
            .related(object)
            .into_iter()
            .filter(|o| o.collection == collection)
            .map(|o| o.value.clone())
            .collect()
    };
    let found = landed.objects.iter().find(|o| {
        o.collection == "indicators"
            && o.attribute_values("Campaign ID").is_empty()
            && !o.attribute_values("TAP Severity").is_empty()
            && !names(o, "adversaries").is_empty()
            && !names(o, "malware").is_empty()
    });
    let Some(indicator) = found else {
        return "  (no campaign-less threat with a summary in this tenant)\n".to_string();
    };
    let mut out = format!(
        "  A threat in no campaign, from its summary: indicator {} {}\n",
        indicator.type_name.as_deref().unwrap_or("-"),
        indicator.value
    );
    for (label, collection) in [
        ("adversaries", "adversaries"),
        ("malware", "malware"),
        ("attack patterns", "attack_pattern"),
    ] {
        out.push_str(&format!(
            "      related {label}: {}\n",
            names(indicator, collection).join(", ")
        ));
    }
    for name in [
        "TAP Severity",
        "Attack Spread",
        "Threat Category",
        "Malware Family",
    ] {
        out.push_str(&format!(
            "      {name} = {}\n",
            indicator.attribute_values(name).join(", ")
        ));
    }
    out
}

/// An incident of a recipient on TAP's Very Attacked People list
/// (docs/mapping.md, "People").
fn very_attacked_incident(landed: &Snapshot) -> String {
    let found = landed.objects.iter().find(|o| {
        o.collection == "events"
            && o.type_name.as_deref() == Some("Incident")
            && !o.attribute_values("Very Attacked Person").is_empty()
    });
    let Some(incident) = found else {
        return "  (no incident of a Very Attacked Person in this tenant)\n".to_string();
    };
    let mut out = format!(
        "  An incident of a Very Attacked Person: {}\n",
        incident.value
    );
    for name in ["Very Attacked Person", "Attack Index", "VIP", "Top Clicker"] {
        let values = incident.attribute_values(name);
        if !values.is_empty() {
            out.push_str(&format!("      {name} = {}\n", values.join(", ")));
        }
    }
    out
}
