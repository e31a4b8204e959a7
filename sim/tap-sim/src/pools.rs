//! TAP's rolling 24-hour request pools, counted per credential
//! (docs/tap-api.md, "Rate limits"): once a pool is spent, requests get 429
//! until the oldest counted request is 24 hours old.

use std::collections::{HashMap, VecDeque};

use time::{Duration, OffsetDateTime};

use crate::config::PoolLimits;

/// The body TAP sends with a 429.
pub const THROTTLED_TEXT: &str =
    "The user has made too many requests over the past 24 hours and has been throttled.";

/// A request pool of TAP's throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pool {
    /// Shared by `/v2/siem/all`, `/issues`, `/clicks/blocked`, `/messages/*`.
    Siem,
    ClicksPermitted,
    CampaignIds,
    ForensicsThreat,
    ForensicsCampaign,
    /// `/v2/people/vap`.
    PeopleVap,
    /// `/v2/people/top-clickers`.
    PeopleTopClickers,
}

impl Pool {
    fn limit(self, limits: &PoolLimits) -> u32 {
        match self {
            Pool::Siem => limits.siem,
            Pool::ClicksPermitted => limits.clicks_permitted,
            Pool::CampaignIds => limits.campaign_ids,
            Pool::ForensicsThreat => limits.forensics_threat,
            Pool::ForensicsCampaign => limits.forensics_campaign,
            Pool::PeopleVap => limits.people_vap,
            Pool::PeopleTopClickers => limits.people_top_clickers,
        }
    }
}

const WINDOW: Duration = Duration::hours(24);

#[derive(Debug)]
pub struct Pools {
    limits: PoolLimits,
    spent: HashMap<(String, Pool), VecDeque<OffsetDateTime>>,
}

impl Pools {
    pub fn new(limits: PoolLimits) -> Pools {
        Pools {
            limits,
            spent: HashMap::new(),
        }
    }

    fn current(
        &mut self,
        principal: &str,
        pool: Pool,
        now: OffsetDateTime,
    ) -> &mut VecDeque<OffsetDateTime> {
        let times = self.spent.entry((principal.to_owned(), pool)).or_default();
        while times.front().is_some_and(|&t| t <= now - WINDOW) {
            times.pop_front();
        }
        times
    }

    /// Counts one request; false when the pool is spent (the request is
    /// then not counted).
    pub fn try_take(&mut self, principal: &str, pool: Pool, now: OffsetDateTime) -> bool {
        let limit = pool.limit(&self.limits) as usize;
        let times = self.current(principal, pool, now);
        if times.len() >= limit {
            return false;
        }
        times.push_back(now);
        true
    }

    /// Counts `count` requests at `now` without serving them.
    pub fn spend(&mut self, principal: &str, pool: Pool, count: u32, now: OffsetDateTime) {
        let times = self.current(principal, pool, now);
        times.extend(std::iter::repeat_n(now, count as usize));
    }

    /// Requests counted in the last 24 hours.
    pub fn used(&mut self, principal: &str, pool: Pool, now: OffsetDateTime) -> u32 {
        u32::try_from(self.current(principal, pool, now).len()).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_spent_pool_refills_when_its_oldest_request_turns_24_hours_old() {
        let limits = PoolLimits {
            siem: 2,
            ..PoolLimits::default()
        };
        let mut pools = Pools::new(limits);
        let t0 = datetime!(2024-01-01 00:00 UTC);
        assert!(pools.try_take("p", Pool::Siem, t0));
        assert!(pools.try_take("p", Pool::Siem, t0 + Duration::hours(1)));
        assert!(!pools.try_take("p", Pool::Siem, t0 + Duration::hours(2)));
        assert!(pools.try_take("other", Pool::Siem, t0 + Duration::hours(2)));
        assert!(pools.try_take("p", Pool::ClicksPermitted, t0 + Duration::hours(2)));
        assert!(!pools.try_take("p", Pool::Siem, t0 + Duration::hours(24) - Duration::SECOND));
        assert!(pools.try_take("p", Pool::Siem, t0 + Duration::hours(24)));
        assert_eq!(pools.used("p", Pool::Siem, t0 + Duration::hours(24)), 2);
    }
}
