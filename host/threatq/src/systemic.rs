//! When ThreatQ's refusals are about a setting or a rule on its side rather
//! than about the objects refused: one rule, judged at two moments. During a
//! forward, bisection stops early ([`SystemicRule::stops_bisection`]); after
//! one, the caller decides whether the window's refusals are bad data to keep
//! as dead letters or a reason to fail the window ([`SystemicRule::judge`]).

use std::collections::BTreeMap;

use crate::model::{Collection, ForwardReport};

/// How many refusals it takes before they are taken to be systemic.
///
/// Why 8 ([`SystemicRule::DEFAULT`]): bad data is rare and scattered (a
/// window's indicators are hundreds, its bad ones a few), so eight refused
/// with not one accepted, or eight for one reason making most of a window,
/// is in practice a setting or a ThreatQ-side rule (a status ThreatQ does
/// not know, a role that may not write, a web firewall that blocks every
/// body), and a wrong setting refuses everything, so it shows at once.
/// During bisection, bisecting on would refuse every object of the window at
/// two requests each; eight caps that case at `2 * 8 * ceil(log2(500))` =
/// 144 requests per collection (each single refused costs at most two
/// requests per halving level; in practice the halvings are shared and it
/// is about 40: tests/refusals.rs). Fewer would let a handful of genuinely
/// bad objects (a WAF that blocks one URL), the only ones of their
/// collection in a small window, fail the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemicRule {
    /// Refusals (of one collection, or for one reason) at least this many.
    pub min_refusals: usize,
}

impl SystemicRule {
    pub const DEFAULT: SystemicRule = SystemicRule { min_refusals: 8 };
    /// Never systemic: for objects already known to be refused one by one
    /// (dead letters), whose refusals say nothing about a setting.
    pub const OFF: SystemicRule = SystemicRule {
        min_refusals: usize::MAX,
    };

    /// During bisection of one collection's pass: whether `refused_alone`
    /// objects refused one at a time, with `accepted` of that collection
    /// accepted so far in the pass, mean the refusal is about the
    /// collection, so the forward stops with
    /// [`ThreatqError::SystemicRefusal`](crate::ThreatqError::SystemicRefusal).
    pub fn stops_bisection(&self, refused_alone: usize, accepted: usize) -> bool {
        accepted == 0 && refused_alone >= self.min_refusals
    }

    /// After a forward of `sent` objects: why its refusals are systemic, if
    /// they are. Either every object of a collection was refused (at least
    /// [`min_refusals`](Self::min_refusals) and none stored), or one reason
    /// covers at least `min_refusals` and more than half of what was sent.
    /// Relations-only refusals do not count: those objects were stored.
    pub fn judge(&self, report: &ForwardReport, sent: usize) -> Option<String> {
        let mut by_kind: BTreeMap<Collection, usize> = BTreeMap::new();
        let mut by_reason: BTreeMap<&str, usize> = BTreeMap::new();
        for rejected in report.rejected.iter().filter(|r| !r.relations_only) {
            *by_kind.entry(rejected.collection).or_default() += 1;
            *by_reason.entry(rejected.reason.as_str()).or_default() += 1;
        }
        for (collection, refused) in &by_kind {
            let stored = report.accepted.get(collection).copied().unwrap_or(0);
            if *refused >= self.min_refusals && stored == 0 {
                return Some(format!(
                    "ThreatQ refused every one of the {refused} {collection} it was sent"
                ));
            }
        }
        let (reason, count) = by_reason.into_iter().max_by_key(|(_, count)| *count)?;
        (count >= self.min_refusals && count * 2 > sent).then(|| {
            format!(
                "ThreatQ refused {count} of the {sent} objects it was sent for one reason: {reason}"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RejectedObject;

    fn systemic(report: &ForwardReport, sent: usize) -> Option<String> {
        SystemicRule::DEFAULT.judge(report, sent)
    }

    fn refusal(collection: Collection, n: usize, reason: &str) -> RejectedObject {
        RejectedObject {
            collection,
            identity: format!("object {n}"),
            reason: reason.to_owned(),
            index: n,
            status: Some(422),
            relations_only: false,
        }
    }

    fn report(accepted: &[(Collection, usize)], rejected: Vec<RejectedObject>) -> ForwardReport {
        ForwardReport {
            accepted: accepted.iter().copied().collect(),
            rejected,
            ..ForwardReport::default()
        }
    }

    #[test]
    fn bisection_stops_at_eight_refused_alone_with_none_accepted() {
        let rule = SystemicRule::DEFAULT;
        assert!(!rule.stops_bisection(7, 0));
        assert!(rule.stops_bisection(8, 0));
        assert!(!rule.stops_bisection(8, 1));
        assert!(!SystemicRule::OFF.stops_bisection(usize::MAX - 1, 0));
    }

    #[test]
    fn a_few_odd_refusals_are_not_systemic() {
        let rejected = (0..3)
            .map(|n| refusal(Collection::Indicators, n, "blocked"))
            .collect();
        let report = report(&[(Collection::Indicators, 40)], rejected);
        assert_eq!(systemic(&report, 43), None);
    }

    #[test]
    fn every_object_of_a_kind_refused_is_systemic() {
        let rejected = (0..8)
            .map(|n| refusal(Collection::Indicators, n, &format!("reason {n}")))
            .collect();
        let report = report(&[(Collection::Events, 100)], rejected);
        let why = systemic(&report, 108).expect("systemic");
        assert!(why.contains("every one of the 8 indicators"), "{why}");
    }

    #[test]
    fn most_of_a_window_for_one_reason_is_systemic() {
        let rejected = (0..30)
            .map(|n| refusal(Collection::Events, n, "The selected status is invalid."))
            .collect();
        let report = report(&[(Collection::Events, 10)], rejected);
        let why = systemic(&report, 40).expect("systemic");
        assert!(
            why.contains("30 of the 40") && why.contains("status is invalid"),
            "{why}"
        );
    }
}
