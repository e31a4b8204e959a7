//! When ThreatQ's refusals are about a setting or a rule on its side rather
//! than about the objects refused: one rule, judged at two moments. During a
//! forward, bisection stops early ([`SystemicRule::stops_bisection`]); after
//! one, the caller decides whether the window's refusals are bad data to keep
//! as dead letters or a reason to fail the window ([`SystemicRule::judge`]).
//!
//! The rule: ThreatQ refused at least [`SystemicRule::min_refusals`] objects
//! one by one and stored none. Whoever sends an email decides what TAP
//! reports of it, so refusals about content (a web firewall that blocks a
//! phishing URL, a value ThreatQ will not take) can be had at will, in any
//! number, in any collection, for one reason; they must never stop the feed,
//! or eight emails would stop it until TAP's history runs out. What an
//! attacker cannot make ThreatQ refuse is everything else of the same
//! window: the sender's IP address, other messages, other collections. A
//! cause on ThreatQ's side that refuses everything (a role that may not
//! write, a firewall that blocks every body, ThreatQ refusing the connector)
//! still shows at once, before anything is stored. A cause that refuses one
//! collection while others are stored cannot be told from content, so it is
//! kept as dead letters, loudly, with nothing lost (docs/sync.md,
//! "Nothing refused is lost").

use crate::model::ForwardReport;

/// How many refusals it takes before they are taken to be systemic.
///
/// Why 8 ([`SystemicRule::DEFAULT`]): bad data is rare and scattered (a
/// window's indicators are hundreds, its bad ones a few), so eight refused
/// with not one object stored is in practice a setting or a ThreatQ-side
/// rule, and such a cause refuses everything, so it shows at once. During
/// bisection, bisecting on would refuse every object of the window at two
/// requests each; eight caps that case at `2 * 8 * ceil(log2(500))` = 144
/// requests (each single refused costs at most two requests per halving
/// level; in practice the halvings are shared and it is about 40:
/// tests/refusals.rs). Fewer would let a handful of genuinely bad objects,
/// the first of a small window, fail the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemicRule {
    /// Objects refused one by one, with none stored, at least this many.
    pub min_refusals: usize,
}

impl SystemicRule {
    pub const DEFAULT: SystemicRule = SystemicRule { min_refusals: 8 };
    /// Never systemic: for objects already known to be refused one by one
    /// (dead letters), whose refusals say nothing about a setting.
    pub const OFF: SystemicRule = SystemicRule {
        min_refusals: usize::MAX,
    };

    /// During bisection: whether `refused_alone` objects refused one at a
    /// time, with `stored` objects of the forward stored so far (of this
    /// collection and the ones before it), mean ThreatQ refuses everything,
    /// so the forward stops with
    /// [`ThreatqError::SystemicRefusal`](crate::ThreatqError::SystemicRefusal).
    pub fn stops_bisection(&self, refused_alone: usize, stored: usize) -> bool {
        stored == 0 && refused_alone >= self.min_refusals
    }

    /// After a forward of `sent` objects: why its refusals are systemic, if
    /// they are: at least [`min_refusals`](Self::min_refusals) refused and
    /// not one object stored. Relations-only refusals do not count: those
    /// objects were stored.
    pub fn judge(&self, report: &ForwardReport, sent: usize) -> Option<String> {
        let refused = report.rejected.iter().filter(|r| !r.relations_only).count();
        (refused >= self.min_refusals && report.accepted_total() == 0).then(|| {
            format!(
                "ThreatQ refused all {refused} of the {sent} objects it was sent and stored none"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Collection, RejectedObject};

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
    fn bisection_stops_at_eight_refused_alone_with_nothing_stored() {
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
    fn everything_refused_and_nothing_stored_is_systemic() {
        let rejected = (0..8)
            .map(|n| refusal(Collection::Indicators, n, &format!("reason {n}")))
            .collect();
        let report = report(&[], rejected);
        let why = systemic(&report, 8).expect("systemic");
        assert!(why.contains("all 8 of the 8"), "{why}");
    }

    /// What an attacker can send: any number of bodies a firewall refuses,
    /// every event of a quiet window among them, all for one reason. The
    /// sender's address and IP are still stored, so the window goes on.
    #[test]
    fn refusals_of_any_number_for_one_reason_are_not_systemic_while_anything_is_stored() {
        let rejected = (0..30)
            .map(|n| refusal(Collection::Events, n, "HTTP 403: Request Rejected"))
            .chain(
                (30..60).map(|n| refusal(Collection::Indicators, n, "HTTP 403: Request Rejected")),
            )
            .collect();
        let report = report(&[(Collection::Indicators, 2)], rejected);
        assert_eq!(systemic(&report, 62), None);
    }
}
