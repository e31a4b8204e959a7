//! How a simulator is set up: who may call it and how much.

use time::Duration;

/// A TAP service credential (HTTP Basic principal and secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub principal: String,
    pub secret: String,
}

/// Requests allowed per credential in any rolling 24 hours, per TAP pool
/// (docs/tap-api.md, "Rate limits" and "People API"). `/v2/campaign/{id}`
/// and `/v2/threat/summary/{id}` are not throttled by TAP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// `/v2/siem/all`, `/issues`, `/clicks/blocked`, `/messages/blocked`, `/messages/delivered`.
    pub siem: u32,
    /// `/v2/siem/clicks/permitted`, which TAP counts in a pool of its own.
    pub clicks_permitted: u32,
    /// `/v2/campaign/ids`.
    pub campaign_ids: u32,
    /// `/v2/forensics?threatId=`.
    pub forensics_threat: u32,
    /// `/v2/forensics?campaignId=`.
    pub forensics_campaign: u32,
    /// `/v2/people/vap`.
    pub people_vap: u32,
    /// `/v2/people/top-clickers`, counted apart from `/vap`.
    pub people_top_clickers: u32,
}

impl Default for PoolLimits {
    fn default() -> Self {
        PoolLimits {
            siem: 1800,
            clicks_permitted: 1800,
            campaign_ids: 50,
            forensics_threat: 50,
            forensics_campaign: 1800,
            people_vap: 50,
            people_top_clickers: 50,
        }
    }
}

impl PoolLimits {
    /// Limits so high no test or demo reaches them.
    pub fn unlimited() -> Self {
        PoolLimits {
            siem: u32::MAX,
            clicks_permitted: u32::MAX,
            campaign_ids: u32::MAX,
            forensics_threat: u32::MAX,
            forensics_campaign: u32::MAX,
            people_vap: u32::MAX,
            people_top_clickers: u32::MAX,
        }
    }
}

/// Everything a [`crate::TapSim`] needs at start.
#[derive(Debug, Clone)]
pub struct TapSimConfig {
    /// The service principal accepted with `secret`.
    pub principal: String,
    pub secret: String,
    /// A credential that authenticates but is not entitled to the
    /// customer's data: TAP answers it with 403.
    pub not_entitled: Option<Credentials>,
    pub limits: PoolLimits,
    /// How long after its creation time a SIEM record becomes visible.
    /// TAP indexes events up to ~30 minutes late (docs/tap-api.md, "Late
    /// and retroactive events"), so a window queried too soon misses
    /// records that a later query of the same window returns. Zero makes
    /// every record visible at once.
    pub indexing_lag: Duration,
    /// Port on 127.0.0.1; 0 lets the system choose (what tests want).
    pub port: u16,
    /// Compress whole bodies with gzip when the client accepts it, as real
    /// TAP does. Off by default: compression is slow in debug builds and
    /// most tests want to read bodies as sent.
    pub gzip: bool,
    /// Whether the tenant's licence includes the People API. When false,
    /// `/v2/people/vap` and `/v2/people/top-clickers` answer 403 (after the
    /// 401 check, and without charging their pools), as TAP does for a
    /// customer without it. [`crate::FaultsHandle::set_people_api`]
    /// overrides it at run time.
    pub people_api: bool,
}

impl Default for TapSimConfig {
    fn default() -> Self {
        TapSimConfig {
            principal: "sim-principal".to_owned(),
            secret: "sim-secret".to_owned(),
            not_entitled: None,
            limits: PoolLimits::default(),
            indexing_lag: Duration::ZERO,
            port: 0,
            gzip: false,
            people_api: true,
        }
    }
}
