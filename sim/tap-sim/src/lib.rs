//! A strict Proofpoint TAP API simulator and a seeded tenant generator.
//!
//! [`TapSim`] serves the SIEM, Campaign, Forensics, Threat (summary) and
//! People endpoints on 127.0.0.1 the way real TAP does (docs/tap-api.md, "What the TAP
//! simulator reproduces"): Basic auth, TAP's window rules and their exact
//! 400 texts, records selected by creation time, rolling 24-hour pools, and
//! faults switched at run time through [`FaultsHandle`].
//! [`generator::generate`] builds a realistic, deterministic tenant to load
//! into it.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use tap_sim::{TapSim, TapSimConfig, generator};
//! let sim = TapSim::start(TapSimConfig::default()).await?;
//! let tenant = generator::generate(&generator::TenantSpec::last_hours(24));
//! sim.load_tenant(&tenant);
//! println!("TAP at {} with {:?}", sim.base_url(), tenant.summary());
//! # Ok(()) }
//! ```

mod body;
mod campaigns;
mod config;
mod drift;
mod faults;
pub mod fixtures;
mod forensics;
pub mod generator;
mod params;
mod people;
mod pools;
pub mod records;
mod reply;
mod server;
mod siem;
mod stable;
mod store;
mod threat;
pub mod times;

pub use config::{Credentials, PoolLimits, TapSimConfig};
pub use faults::{Drift, FaultsHandle, SiemFault};
pub use generator::{Tenant, TenantSpec, TenantSummary};
pub use people::PEOPLE_BAD_REQUEST;
pub use pools::{Pool, THROTTLED_TEXT};
pub use records::{ClickKind, ForensicsScope, MessageKind, Person, ThreatStatus, ThreatType};
pub use server::{RecordedRequest, TapSim};
pub use siem::{STILL_CURRENT, TOO_FAR_IN_THE_PAST, TOO_LONG, TOO_SHORT};
pub use threat::THREAT_NOT_FOUND;
