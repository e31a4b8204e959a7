//! Shared harness for the end-to-end tests: a TAP simulator, a ThreatQ
//! simulator and a config directory, wired to the real host library and
//! the real (embedded) sandboxed component.

pub mod records;

use std::path::Path;
use std::time::Duration as StdDuration;

use tap_sim::{TapSim, TapSimConfig, Tenant, TenantSpec};
use threatq_sim::{ThreatqSim, ThreatqSimConfig};
use time::{Duration, OffsetDateTime};
use tq_conn::report::RunSummary;
use tq_conn::run::{RunFailure, RunOptions, RunOutcome};
use tq_conn::state::{State, Store};

/// Both simulators and a config directory that points at them.
pub struct World {
    pub tap: TapSim,
    pub threatq: ThreatqSim,
    pub tap_config: TapSimConfig,
    pub threatq_config: ThreatqSimConfig,
    pub dir: tempfile::TempDir,
}

impl World {
    /// Simulators with default credentials and a config whose [tap] table
    /// is complete, so ThreatQ's connector entry is not needed.
    pub async fn start() -> World {
        Self::start_with(TapSimConfig::default(), ThreatqSimConfig::default(), "").await
    }

    /// Like [`World::start`], with `tap_extra` lines appended to [tap].
    pub async fn start_with(
        tap_config: TapSimConfig,
        threatq_config: ThreatqSimConfig,
        tap_extra: &str,
    ) -> World {
        let tap = TapSim::start(tap_config.clone())
            .await
            .expect("TAP simulator starts");
        let threatq = ThreatqSim::start(threatq_config.clone())
            .await
            .expect("ThreatQ simulator starts");
        let dir = tempfile::tempdir().expect("temporary directory");
        let world = World {
            tap,
            threatq,
            tap_config,
            threatq_config,
            dir,
        };
        world.write_config(true, tap_extra);
        world
    }

    /// (Re)writes the config: with `local_tap`, a complete [tap] table.
    pub fn write_config(&self, local_tap: bool, tap_extra: &str) {
        let tap_url = self.tap.base_url();
        let text = sim_config::simulator_config(
            &self.threatq.base_url(),
            &self.threatq_config,
            local_tap.then_some((tap_url.as_str(), &self.tap_config)),
            tap_extra,
        );
        std::fs::write(
            self.dir.path().join(tq_conn::config::CONFIG_FILE_NAME),
            text,
        )
        .expect("config written");
    }

    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Run options for this world at a fixed "now", with quick retries.
    pub fn options(&self, now: OffsetDateTime) -> RunOptions {
        let mut options = RunOptions::new(self.dir.path().to_path_buf());
        options.now = Some(now);
        options.show_progress = false;
        options.retry.base_delay = StdDuration::from_millis(10);
        options.retry.max_delay = StdDuration::from_millis(50);
        options
    }

    pub async fn run_at(&self, now: OffsetDateTime) -> Result<RunOutcome, RunFailure> {
        tq_conn::run::run(&self.options(now)).await
    }

    /// Loads a generated tenant into the TAP simulator.
    pub fn load(&self, tenant: &Tenant) {
        self.tap.load_tenant(tenant);
    }

    pub fn state(&self) -> State {
        Store::open(self.dir.path())
            .expect("state loads")
            .state()
            .clone()
    }
}

/// The summary of a run that must have completed.
pub fn completed(outcome: Result<RunOutcome, RunFailure>) -> RunSummary {
    match outcome {
        Ok(RunOutcome::Completed(summary)) => summary,
        Ok(other) => panic!("the run did not complete: {other:?}"),
        Err(failure) => panic!(
            "the run failed ({:?}): {:#}\n{}",
            failure.kind, failure.error, failure.summary
        ),
    }
}

/// The failure of a run that must have failed.
pub fn failed(outcome: Result<RunOutcome, RunFailure>) -> RunFailure {
    match outcome {
        Ok(other) => panic!("the run should have failed but ended with {other:?}"),
        Err(failure) => failure,
    }
}

/// A seeded tenant whose events lie in `[now - hours, now - 5 min)`.
pub fn tenant(seed: u64, hours: i64, now: OffsetDateTime) -> Tenant {
    let spec = TenantSpec::new(
        seed,
        now - Duration::hours(hours) + Duration::minutes(5),
        now - Duration::minutes(5),
    );
    tap_sim::generator::generate(&spec)
}

/// The real clock, to the second.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

/// What ThreatQ holds, as (collection, identity, attribute count, relation
/// count) per object: two runs that should land the same data compare
/// equal on it.
pub fn holdings(
    threatq: &ThreatqSim,
) -> std::collections::BTreeSet<(String, String, usize, usize)> {
    threatq
        .snapshot()
        .objects
        .iter()
        .map(|object| {
            (
                object.collection.clone(),
                object.value.clone(),
                object.attributes.len(),
                object.relations.len(),
            )
        })
        .collect()
}
