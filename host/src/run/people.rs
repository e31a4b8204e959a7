//! Step 1b: TAP's people lists (docs/sync.md, "People lists"). Once per
//! `[tap] people_refresh_hours` the component reads the Very Attacked
//! People and the top clickers through the sandbox, within their pools;
//! the store keeps what it read. Every call of the run then gets one mark
//! per listed address, from the lists read within twice the refresh
//! period. A list that cannot be read (a licence without the People API
//! answers 403) never fails the run: the run goes on without marks, is
//! asked again one refresh period later, and warns once a day.

use std::collections::BTreeMap;

use tap_runtime::{
    CallOutcome, PeopleAnswer, PeopleList, PeopleRequest, PersonMark, RuntimeError, SyncError,
    TapAccess,
};
use time::{Duration, OffsetDateTime};
use tracing::{debug, info, warn};

use super::fetch::Sandbox;
use super::limits::Deadline;
use super::outcome::Stop;
use crate::report::PeopleNote;
use crate::state::{
    Allowances, ListedAddress, PeopleKind, PeopleState, PeopleUpdate, StoredPeople,
};

/// A problem with the lists is warned about at most this often.
const WARN_EVERY: Duration = Duration::hours(24);

/// Whether the lists are due to be read at `now`.
pub(super) fn due(state: &PeopleState, now: OffsetDateTime, refresh: Duration) -> bool {
    state.attempted.is_none_or(|at| now - at >= refresh)
}

/// One `read-people` call through the sandbox, within what is left of the
/// two pools.
pub(super) async fn read(
    sandbox: &Sandbox,
    deadline: &Deadline,
    window_days: u32,
    allowances: &Allowances,
) -> Result<CallOutcome<PeopleAnswer>, Stop> {
    let access = TapAccess {
        tap_base_url: sandbox.outbound.origin.base_url(),
        // Our outbound hook adds `Authorization`.
        credentials: None,
    };
    let request = PeopleRequest {
        window_days,
        very_attacked_allowance: allowances.people_vap,
        top_clickers_allowance: allowances.people_top_clickers,
    };
    deadline
        .bound_preparation(
            sandbox
                .runtime
                .read_people(&sandbox.outbound, &access, &request),
        )
        .await
}

/// What one reading changes in the store: each list read replaces the one
/// kept (a list the budget did not allow a single page of does not), and
/// what could not be read is the problem, warned about once a day.
pub(super) fn reading(
    answer: Result<PeopleAnswer, RuntimeError>,
    state: &PeopleState,
    now: OffsetDateTime,
    window_days: u32,
) -> PeopleUpdate {
    let mut update = PeopleUpdate {
        counts_as_attempt: true,
        ..PeopleUpdate::default()
    };
    let mut problems = Vec::new();
    // Whether every failure was a passing one (nothing read because of a
    // 5xx, no answer or the sandbox): then the next run asks again rather
    // than a refresh period later.
    let mut passing = true;
    match answer {
        Err(e) => problems.push(format!("the TAP component could not read them: {e}")),
        Ok(answer) => {
            for (kind, list) in [
                (PeopleKind::VeryAttacked, answer.very_attacked),
                (PeopleKind::TopClickers, answer.top_clickers),
            ] {
                match list {
                    Ok(list) => {
                        if let Some(problem) = list_problem(kind, &list) {
                            problems.push(problem);
                            passing = false;
                        }
                        if list.complete || !list.people.is_empty() {
                            update.lists.push(stored(kind, list, now, window_days));
                        }
                    }
                    Err(e) => {
                        passing &= matches!(
                            e,
                            SyncError::ServerError(_)
                                | SyncError::Transport(_)
                                | SyncError::BadResponse(_)
                        );
                        problems.push(format!("{}: {}", name(kind), failure(&e)));
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        info!(
            lists = update.lists.len(),
            "TAP people lists read (Very Attacked People, top clickers)"
        );
        return update;
    }
    let problem = problems.join("; ");
    let warn_now = state.warned.is_none_or(|at| now - at >= WARN_EVERY);
    if warn_now {
        warn!(
            problem = %problem,
            "TAP's people lists are not fully available: events are marked from what there is \
             (Very Attacked Person, Top Clicker, VIP), the run goes on; asked again after \
             [tap] people_refresh_hours, warned again in 24 hours"
        );
    } else {
        debug!(problem = %problem, "TAP's people lists are still not fully available");
    }
    update.warned = warn_now;
    update.problem = Some(problem);
    update.counts_as_attempt = !(passing && update.lists.is_empty());
    update
}

fn name(kind: PeopleKind) -> &'static str {
    match kind {
        PeopleKind::VeryAttacked => "Very Attacked People (/v2/people/vap)",
        PeopleKind::TopClickers => "top clickers (/v2/people/top-clickers)",
    }
}

/// What is wrong with a list TAP answered: nothing in it, or not all of it.
fn list_problem(kind: PeopleKind, list: &PeopleList) -> Option<String> {
    if list.requests == 0 {
        return Some(format!(
            "{}: its TAP budget (50 requests in 24 hours) is spent",
            name(kind)
        ));
    }
    if list.people.is_empty() {
        return Some(format!("{}: TAP's list is empty", name(kind)));
    }
    (!list.complete).then(|| {
        format!(
            "{}: only the first {} pages were read before the TAP budget ran out",
            name(kind),
            list.requests
        )
    })
}

/// A failed list, in words an operator can act on.
fn failure(error: &SyncError) -> String {
    match error {
        SyncError::Forbidden(f) => format!(
            "TAP answered 403 ({}): this TAP licence has no People API",
            f.message
        ),
        SyncError::Unauthorized(f) => format!("TAP answered 401 ({})", f.message),
        SyncError::RateLimited(f) => format!(
            "TAP answered 429 ({}): its 50 requests a day are spent",
            f.message
        ),
        SyncError::BadRequest(f) | SyncError::ServerError(f) => {
            format!("TAP answered {} ({})", f.status, f.message)
        }
        SyncError::BadResponse(why) | SyncError::Transport(why) | SyncError::InvalidInput(why) => {
            why.clone()
        }
    }
}

fn stored(
    kind: PeopleKind,
    list: PeopleList,
    now: OffsetDateTime,
    window_days: u32,
) -> StoredPeople {
    let mut addresses: BTreeMap<String, ListedAddress> = BTreeMap::new();
    for person in list.people {
        for email in person.emails {
            let entry = addresses.entry(email.clone()).or_insert(ListedAddress {
                email,
                vip: false,
                score: 0,
            });
            entry.vip |= person.vip;
            entry.score = entry.score.max(person.score);
        }
    }
    StoredPeople {
        kind,
        interval: list.interval,
        window_days,
        read_at: now,
        complete: list.complete,
        addresses: addresses.into_values().collect(),
    }
}

/// The marks every call of the run gets: one per address on a list read
/// within twice `refresh` (an older list says too little of today), and
/// what the summary line says of them.
pub(super) fn marks(
    state: &PeopleState,
    now: OffsetDateTime,
    refresh: Duration,
) -> (Vec<PersonMark>, PeopleNote) {
    let fresh: Vec<&StoredPeople> = state
        .lists
        .iter()
        .filter(|list| now - list.read_at <= refresh * 2)
        .collect();
    let mut marks: BTreeMap<&str, PersonMark> = BTreeMap::new();
    for list in &fresh {
        for address in &list.addresses {
            let mark = marks.entry(&address.email).or_insert(PersonMark {
                email: address.email.clone(),
                very_attacked: None,
                top_clicker: false,
                vip: false,
            });
            mark.vip |= address.vip;
            match list.kind {
                PeopleKind::VeryAttacked => mark.very_attacked = Some(address.score),
                PeopleKind::TopClickers => mark.top_clicker = true,
            }
        }
    }
    let size = |kind: PeopleKind| {
        fresh
            .iter()
            .filter(|l| l.kind == kind)
            .map(|l| l.addresses.len())
            .sum::<usize>()
    };
    let note = if marks.is_empty() {
        match (&state.problem, state.lists.is_empty()) {
            (Some(problem), _) => PeopleNote::Unavailable(problem.clone()),
            (None, false) => PeopleNote::Unavailable(
                "the lists kept are older than twice [tap] people_refresh_hours".into(),
            ),
            (None, true) => PeopleNote::None,
        }
    } else {
        PeopleNote::Used {
            very_attacked: size(PeopleKind::VeryAttacked),
            top_clickers: size(PeopleKind::TopClickers),
            age: fresh
                .iter()
                .map(|l| now - l.read_at)
                .max()
                .unwrap_or_default(),
        }
    };
    (marks.into_values().collect(), note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tap_runtime::{Person, TapFailure};
    use time::macros::datetime;

    fn failure(status: u16) -> SyncError {
        let f = TapFailure {
            endpoint: "/v2/people/vap".into(),
            status,
            message: "m".into(),
        };
        match status {
            403 => SyncError::Forbidden(f),
            _ => SyncError::ServerError(f),
        }
    }

    fn listed(emails: &[&str]) -> PeopleList {
        PeopleList {
            interval: "i".into(),
            people: vec![Person {
                emails: emails.iter().map(|e| (*e).to_string()).collect(),
                vip: true,
                score: 7,
            }],
            complete: true,
            requests: 1,
        }
    }

    #[test]
    fn a_403_counts_as_the_attempt_a_5xx_does_not_and_a_warning_comes_once_a_day() {
        let t = datetime!(2026-12-08 10:00:00 UTC);
        let state = PeopleState::default();
        let answer = |status| PeopleAnswer {
            very_attacked: Err(failure(status)),
            top_clickers: Err(failure(status)),
        };
        let forbidden = reading(Ok(answer(403)), &state, t, 30);
        assert!(forbidden.counts_as_attempt && forbidden.warned);
        assert!(forbidden.problem.unwrap().contains("no People API"));
        let flaky = reading(Ok(answer(502)), &state, t, 30);
        assert!(!flaky.counts_as_attempt);
        let warned = PeopleState {
            warned: Some(t - Duration::hours(23)),
            ..PeopleState::default()
        };
        assert!(!reading(Ok(answer(403)), &warned, t, 30).warned);
        assert!(reading(Ok(answer(403)), &warned, t + Duration::hours(1), 30).warned);
    }

    #[test]
    fn marks_merge_both_lists_and_skip_lists_past_twice_the_refresh() {
        let t = datetime!(2026-12-08 10:00:00 UTC);
        let update = reading(
            Ok(PeopleAnswer {
                very_attacked: Ok(listed(&["a@x.zz"])),
                top_clickers: Ok(listed(&["a@x.zz", "b@x.zz"])),
            }),
            &PeopleState::default(),
            t,
            30,
        );
        assert!(update.problem.is_none() && update.counts_as_attempt);
        let state = PeopleState {
            lists: update.lists,
            ..PeopleState::default()
        };
        let (fresh, note) = marks(&state, t + Duration::hours(1), Duration::hours(24));
        assert_eq!(fresh.len(), 2);
        assert_eq!(fresh[0].very_attacked, Some(7));
        assert!(fresh[0].top_clicker && fresh[0].vip);
        assert_eq!(fresh[1].very_attacked, None);
        assert!(matches!(
            note,
            PeopleNote::Used {
                very_attacked: 1,
                top_clickers: 2,
                ..
            }
        ));
        let (stale, note) = marks(&state, t + Duration::hours(49), Duration::hours(24));
        assert!(stale.is_empty());
        assert!(matches!(note, PeopleNote::Unavailable(_)));
    }
}
