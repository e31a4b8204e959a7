//! Later verdicts (docs/mapping.md, "Verdict changes"): TAP's word on a
//! threat changes over time (active, cleared, false positive, and back),
//! and the indicator an earlier sighting made follows TAP's latest word.
//! The component reports each call's latest word per indicator; this
//! module decides which of them need ThreatQ ([`due`]), applies them under
//! the verdict policy within the run's deadline ([`apply`]), and says what
//! it did. The latest verdict per indicator, applied or waiting, is the
//! state store's `verdicts` table.

use std::collections::{HashMap, HashSet};

use anyhow::anyhow;
use tap_runtime::{Verdict, VerdictStatus};
use threatq_client::{Batch, Client, Collection, StoredIndicator, ThreatqError, TqObject};
use tracing::{debug, info, warn};

use super::SOURCE_NAME;
use super::limits::Deadline;
use super::outcome::{FailureKind, Stop};
use crate::report::Tally;
use crate::state::{NewDeadLetter, VerdictRow};

/// The attribute that shows TAP's verdict on an indicator.
const THREAT_STATUS: &str = "Threat Status";
const ACTIVE: &str = "active";
const FALSE_POSITIVE: &str = "falsePositive";
/// Why a verdict the deadline cut off waits.
const DEADLINE_REACHED: &str =
    "the run reached its deadline before this verdict was applied; the next run applies it";
/// Why a verdict for an indicator ThreatQ refused waits.
const DEAD_LETTER: &str = "ThreatQ refused the indicator, which is kept as a dead letter; the \
                           verdict is applied once the letter is delivered";

/// The statuses a verdict change works with (docs/mapping.md, "Verdict
/// changes").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct VerdictPolicy {
    /// The status the connector gives new indicators: only an indicator
    /// that still has it is moved, and one we moved returns to it.
    pub connector_status: String,
    /// Where a false positive's indicator is moved; `None` when ThreatQ
    /// does not know the default status (the attribute still changes).
    pub false_positive_status: Option<String>,
}

/// How TAP spells a status, as the Threat Status attribute shows it.
fn spelled(status: VerdictStatus) -> &'static str {
    match status {
        VerdictStatus::Active => ACTIVE,
        VerdictStatus::Cleared => "cleared",
        VerdictStatus::FalsePositive => FALSE_POSITIVE,
    }
}

/// What a verdict asks of ThreatQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Job {
    /// Apply TAP's new word; the row to record comes back.
    Apply(VerdictRow),
    /// An older word reached ThreatQ in the window's objects (a record
    /// indexed late carries the threat's earlier status into Threat
    /// Status): show the latest one, already applied, again. Nothing is
    /// recorded.
    Reassert(VerdictRow),
}

/// The indicators a batch sends, by (type, value).
fn sent_indicators(batch: &Batch) -> HashSet<(&str, &str)> {
    batch
        .objects
        .iter()
        .filter(|object| object.collection == Collection::Indicators)
        .filter_map(|object| Some((object.type_name.as_deref()?, object.value.as_str())))
        .collect()
}

/// Which of a result's verdicts need ThreatQ, given the latest verdict the
/// store holds for each indicator (`latest`) and the batch the result was
/// sent in: TAP's latest word wins, whatever happened before.
///
/// - A verdict is applied when it is newer than (or as new as) the latest
///   one held and differs from it, or the latest one still waits.
/// - `active` for an indicator with no verdict held needs nothing: the
///   indicator holds what an active threat gives it.
/// - An older word is not applied; if it differs and its indicator was
///   just sent (bringing the older Threat Status with it), the latest
///   verdict is shown again.
pub(super) fn due(
    verdicts: &[Verdict],
    latest: &HashMap<(String, String), VerdictRow>,
    batch: &Batch,
) -> Vec<Job> {
    let sent = sent_indicators(batch);
    let mut jobs = Vec::new();
    for verdict in verdicts {
        let row = VerdictRow {
            indicator_type: verdict.indicator_type.clone(),
            indicator_value: verdict.indicator_value.clone(),
            threat_id: verdict.threat_id.clone(),
            status: spelled(verdict.status).to_owned(),
            verdict_ms: verdict.threat_time_ms,
            status_set: None,
            error: None,
            attempts: 0,
            waiting_since: None,
        };
        let key = (row.indicator_type.clone(), row.indicator_value.clone());
        match latest.get(&key) {
            None if row.status == ACTIVE => {}
            None => jobs.push(Job::Apply(row)),
            Some(held) if row.verdict_ms < held.verdict_ms => {
                let brought_back = held.error.is_none()
                    && row.status != held.status
                    && sent.contains(&(key.0.as_str(), key.1.as_str()));
                if brought_back {
                    jobs.push(Job::Reassert(held.clone()));
                }
            }
            Some(held) if row.status == held.status && held.error.is_none() => {}
            // The same word seen again while it waits keeps its count and
            // its start, so the retry limits see it as one; a new word
            // starts afresh.
            Some(held) if row.status == held.status && row.verdict_ms == held.verdict_ms => {
                jobs.push(Job::Apply(held.clone()));
            }
            Some(held) => jobs.push(Job::Apply(VerdictRow {
                status_set: held.status_set.clone(),
                ..row
            })),
        }
    }
    jobs
}

/// How the dead-letter table names an indicator.
pub(super) fn indicator_identity(type_name: &str, value: &str) -> String {
    TqObject {
        collection: Collection::Indicators,
        value: value.to_owned(),
        type_name: Some(type_name.to_owned()),
        happened_at: None,
        description: None,
        attributes: Vec::new(),
    }
    .identity()
}

/// The identities ([`indicator_identity`]) of the jobs' indicators.
pub(super) fn identities(jobs: &[Job]) -> Vec<String> {
    jobs.iter()
        .map(|job| match job {
            Job::Apply(row) | Job::Reassert(row) => {
                indicator_identity(&row.indicator_type, &row.indicator_value)
            }
        })
        .collect()
}

/// The identities of the indicators among a delivery's dead letters:
/// refused in the window being settled, not yet in the store.
pub(super) fn refused_indicators(letters: &[NewDeadLetter]) -> impl Iterator<Item = String> + '_ {
    letters
        .iter()
        .filter(|letter| letter.collection == Collection::Indicators && !letter.relations_only)
        .map(|letter| letter.identity.clone())
}

/// What applying verdicts came to.
#[derive(Debug, Default)]
pub(super) struct Applied {
    /// The rows to record: applied, or waiting with the reason.
    pub rows: Vec<VerdictRow>,
    pub tally: Tally,
    /// The run's deadline came: what was not applied waits in `rows`.
    pub deadline_reached: bool,
}

/// Applies each job to the indicator ThreatQ holds, after the window's
/// objects were accepted (so an indicator made in this window exists).
/// `dead_lettered` holds the identities ([`indicator_identity`]) of
/// indicators ThreatQ refused: a verdict for one ThreatQ does not hold
/// waits for the letter. Nothing is created for an indicator ThreatQ does
/// not hold otherwise (the verdict is recorded, so a later different one
/// is applied). A verdict ThreatQ refuses, or whose answer cannot be read,
/// waits with the reason; so does every verdict the run's deadline cuts off
/// (the rest are not started). A ThreatQ that cannot be used fails the
/// window; the failure still gives what was done before it (the rows
/// applied so far, which the caller commits, and their counts).
pub(super) async fn apply(
    threatq: &Client,
    policy: &VerdictPolicy,
    deadline: &Deadline,
    dead_lettered: &HashSet<String>,
    jobs: Vec<Job>,
) -> Result<Applied, (Stop, Applied)> {
    let mut applied = Applied::default();
    for job in jobs {
        // Checked before each verdict, not only while one is under way, so
        // a deadline already passed starts no request.
        applied.deadline_reached |= deadline.passed();
        let mut row = match job {
            Job::Reassert(row) => {
                if !applied.deadline_reached {
                    match deadline.within(reassert(threatq, &row)).await {
                        None => applied.deadline_reached = true,
                        Some(result) => {
                            if let Err(stop) = refused_or_stop(result, &row) {
                                return Err((stop, applied));
                            }
                        }
                    }
                }
                continue;
            }
            Job::Apply(row) => row,
        };
        let outcome = if applied.deadline_reached {
            None
        } else {
            deadline.within(apply_one(threatq, policy, &row)).await
        };
        let tried = outcome.is_some();
        match outcome {
            None => {
                applied.deadline_reached = true;
                // A verdict already waiting keeps the reason it had.
                row.error.get_or_insert_with(|| DEADLINE_REACHED.to_owned());
            }
            Some(Ok(Outcome::NoIndicator))
                if dead_lettered.contains(&indicator_identity(
                    &row.indicator_type,
                    &row.indicator_value,
                )) =>
            {
                info!(
                    indicator = %row.indicator_value,
                    verdict = %row.status,
                    "TAP's verdict names an indicator kept as a dead letter; it waits until the letter is delivered"
                );
                row.error = Some(DEAD_LETTER.to_owned());
            }
            Some(Ok(Outcome::NoIndicator)) => {
                debug!(
                    indicator = %row.indicator_value,
                    verdict = %row.status,
                    "TAP's verdict names an indicator ThreatQ does not hold; nothing to change"
                );
                row.status_set = None;
                row.error = None;
            }
            Some(Ok(Outcome::Done(status))) => {
                applied.tally.verdicts_applied += 1;
                row.status_set = match status {
                    Status::Untouched { standing } => standing,
                    Status::Changed { to } => {
                        applied.tally.statuses_changed += 1;
                        Some(to)
                    }
                    Status::Restored => {
                        applied.tally.statuses_changed += 1;
                        None
                    }
                    Status::LeftAlone => {
                        applied.tally.statuses_left_alone += 1;
                        None
                    }
                };
                row.error = None;
            }
            Some(Ok(Outcome::Unreadable(why))) => {
                warn!(
                    indicator = %row.indicator_value,
                    verdict = %row.status,
                    reason = %why,
                    "TAP's verdict cannot be applied yet; kept, and tried again by the next run"
                );
                row.error = Some(why);
            }
            Some(Err(error)) => {
                let why = error.to_string();
                if let Err(stop) = refused_or_stop(Err(error), &row) {
                    return Err((stop, applied));
                }
                row.error = Some(why);
            }
        }
        // What was tried and still waits counts toward the retry limits
        // (`[run] retry_max_attempts`); what the deadline cut off was not
        // tried.
        if tried && row.error.is_some() {
            row.attempts += 1;
        } else if row.error.is_none() {
            row.attempts = 0;
            row.waiting_since = None;
        }
        applied.rows.push(row);
    }
    Ok(applied)
}

/// One indicator's refusal (or an answer we cannot read) lets the feed go
/// on, logged; a ThreatQ that cannot be used fails the window.
fn refused_or_stop(result: Result<(), ThreatqError>, row: &VerdictRow) -> Result<(), Stop> {
    match result {
        Ok(()) => Ok(()),
        Err(
            error @ (ThreatqError::Refused { .. }
            | ThreatqError::UnexpectedResponse { .. }
            | ThreatqError::ErrorsInSuccess { .. }),
        ) => {
            warn!(
                indicator = %row.indicator_value,
                verdict = %row.status,
                error = %error,
                "ThreatQ refused to apply TAP's verdict to the indicator; kept, and tried again by the next run"
            );
            Ok(())
        }
        Err(error) => {
            let stop = Stop::Failed(
                FailureKind::Threatq,
                anyhow!(error).context(format!(
                    "applying TAP's verdict `{}` to indicator {} failed; the window is not \
                     committed, so the next run sends it again",
                    row.status, row.indicator_value
                )),
            );
            Err(stop)
        }
    }
}

enum Outcome {
    Done(Status),
    NoIndicator,
    /// The indicator's status could not be read, so whether an analyst
    /// set it cannot be told: the verdict waits.
    Unreadable(String),
}

/// What a verdict did to the indicator's status.
enum Status {
    /// No status change (a cleared or active threat whose indicator we
    /// never moved, no target status, or the indicator already has it);
    /// `standing` is the status we set earlier that still stands.
    Untouched { standing: Option<String> },
    /// A false positive moved the indicator to `to`.
    Changed { to: String },
    /// The threat is active or cleared again: the indicator we moved is
    /// back at the connector's status.
    Restored,
    /// An analyst (or another source) decides the status: left as it is.
    LeftAlone,
}

/// Finds the indicator, makes our Threat Status show the verdict, and
/// moves the status as the verdict and the policy say.
async fn apply_one(
    threatq: &Client,
    policy: &VerdictPolicy,
    row: &VerdictRow,
) -> Result<Outcome, ThreatqError> {
    let Some(indicator) = threatq
        .find_indicator(&row.indicator_type, &row.indicator_value)
        .await?
    else {
        return Ok(Outcome::NoIndicator);
    };
    threatq
        .set_indicator_attribute(&indicator, THREAT_STATUS, &row.status, SOURCE_NAME)
        .await?;
    if row.status == FALSE_POSITIVE {
        false_positive(threatq, policy, row, &indicator).await
    } else {
        not_false_positive(threatq, policy, row, &indicator).await
    }
}

/// TAP's false positive: the indicator moves to the false-positive status
/// only while it still has the connector's status and is ours (we made it,
/// or no other source names it).
async fn false_positive(
    threatq: &Client,
    policy: &VerdictPolicy,
    row: &VerdictRow,
    indicator: &StoredIndicator,
) -> Result<Outcome, ThreatqError> {
    let Some(target) = policy.false_positive_status.as_deref() else {
        return Ok(Outcome::Done(Status::Untouched { standing: None }));
    };
    let Some(current) = indicator.status.as_deref() else {
        return Ok(unreadable_status());
    };
    if current == target {
        // Our earlier move (a verdict tried again) still stands.
        let standing = row.status_set.clone().filter(|set| set == target);
        return Ok(Outcome::Done(Status::Untouched { standing }));
    }
    if !indicator.ownership(SOURCE_NAME).is_ours() {
        info!(
            indicator = %row.indicator_value,
            threat_id = %row.threat_id,
            status = current,
            other_sources = %indicator.other_sources(SOURCE_NAME).join(", "),
            "TAP now judges the threat a false positive, but another source made the indicator: \
             status left alone, only our Threat Status updated"
        );
        return Ok(Outcome::Done(Status::LeftAlone));
    }
    if current != policy.connector_status {
        info!(
            indicator = %row.indicator_value,
            threat_id = %row.threat_id,
            status = current,
            connector_status = %policy.connector_status,
            "TAP now judges the threat a false positive, but the indicator's status was set by \
             someone else: status left alone, Threat Status attribute updated"
        );
        return Ok(Outcome::Done(Status::LeftAlone));
    }
    threatq.set_indicator_status(indicator.id, target).await?;
    info!(
        indicator = %row.indicator_value,
        threat_id = %row.threat_id,
        from = %policy.connector_status,
        to = target,
        "TAP now judges the threat a false positive: indicator status changed"
    );
    Ok(Outcome::Done(Status::Changed {
        to: target.to_owned(),
    }))
}

/// TAP's `active` or `cleared`: an indicator we moved for an earlier false
/// positive returns to the connector's status, unless someone changed it
/// meanwhile.
async fn not_false_positive(
    threatq: &Client,
    policy: &VerdictPolicy,
    row: &VerdictRow,
    indicator: &StoredIndicator,
) -> Result<Outcome, ThreatqError> {
    let Some(set) = row.status_set.as_deref() else {
        info!(indicator = %row.indicator_value, verdict = %row.status, "indicator's Threat Status updated");
        return Ok(Outcome::Done(Status::Untouched { standing: None }));
    };
    let Some(current) = indicator.status.as_deref() else {
        return Ok(unreadable_status());
    };
    if current != set {
        info!(
            indicator = %row.indicator_value,
            threat_id = %row.threat_id,
            verdict = %row.status,
            status = current,
            "TAP no longer judges the threat a false positive, but the indicator's status was \
             changed since we set it: status left alone, Threat Status attribute updated"
        );
        return Ok(Outcome::Done(Status::LeftAlone));
    }
    threatq
        .set_indicator_status(indicator.id, &policy.connector_status)
        .await?;
    info!(
        indicator = %row.indicator_value,
        threat_id = %row.threat_id,
        verdict = %row.status,
        from = set,
        to = %policy.connector_status,
        "TAP no longer judges the threat a false positive: indicator status returned"
    );
    Ok(Outcome::Done(Status::Restored))
}

fn unreadable_status() -> Outcome {
    Outcome::Unreadable(
        "ThreatQ's answer names the indicator's status by neither name nor a readable field, so \
         whether an analyst chose it cannot be told"
            .to_owned(),
    )
}

/// Shows the latest verdict, already applied, in our Threat Status again.
async fn reassert(threatq: &Client, row: &VerdictRow) -> Result<(), ThreatqError> {
    let Some(indicator) = threatq
        .find_indicator(&row.indicator_type, &row.indicator_value)
        .await?
    else {
        return Ok(());
    };
    threatq
        .set_indicator_attribute(&indicator, THREAT_STATUS, &row.status, SOURCE_NAME)
        .await?;
    info!(
        indicator = %row.indicator_value,
        verdict = %row.status,
        "an older TAP record named the indicator again; its Threat Status shows TAP's latest verdict"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(value: &str, status: VerdictStatus, at: i64) -> Verdict {
        Verdict {
            threat_id: "t".to_owned(),
            status,
            threat_time_ms: at,
            indicator_type: "URL".to_owned(),
            indicator_value: value.to_owned(),
        }
    }

    fn row(value: &str, status: &str, at: i64) -> VerdictRow {
        VerdictRow {
            indicator_type: "URL".to_owned(),
            indicator_value: value.to_owned(),
            threat_id: "t".to_owned(),
            status: status.to_owned(),
            verdict_ms: at,
            status_set: None,
            error: None,
            attempts: 0,
            waiting_since: None,
        }
    }

    fn held(rows: &[VerdictRow]) -> HashMap<(String, String), VerdictRow> {
        rows.iter()
            .map(|r| {
                (
                    (r.indicator_type.clone(), r.indicator_value.clone()),
                    r.clone(),
                )
            })
            .collect()
    }

    fn batch_of(values: &[&str]) -> Batch {
        Batch {
            objects: values
                .iter()
                .map(|value| TqObject {
                    collection: Collection::Indicators,
                    value: (*value).to_owned(),
                    type_name: Some("URL".to_owned()),
                    happened_at: None,
                    description: None,
                    attributes: Vec::new(),
                })
                .collect(),
            relations: Vec::new(),
        }
    }

    #[test]
    fn the_latest_word_is_due_when_it_differs_from_what_is_held() {
        use VerdictStatus::*;
        let whitelisted = VerdictRow {
            status_set: Some("Whitelisted".to_owned()),
            ..row("http://fp/", FALSE_POSITIVE, 100)
        };
        let waiting = VerdictRow {
            error: Some("HTTP 422".to_owned()),
            ..row("http://waits/", "cleared", 100)
        };
        let latest = held(&[whitelisted.clone(), waiting.clone()]);
        let jobs = due(
            &[
                // Nothing held: active needs nothing, the others are due.
                verdict("http://new-active/", Active, 50),
                verdict("http://new-fp/", FalsePositive, 50),
                // Active again, later: due, knowing what we set.
                verdict("http://fp/", Active, 200),
                // The same word again: nothing to do; a waiting one is
                // tried again.
                verdict("http://waits/", Cleared, 150),
            ],
            &latest,
            &Batch::default(),
        );
        assert_eq!(
            jobs,
            [
                Job::Apply(row("http://new-fp/", FALSE_POSITIVE, 50)),
                Job::Apply(VerdictRow {
                    status_set: Some("Whitelisted".to_owned()),
                    ..row("http://fp/", ACTIVE, 200)
                }),
                Job::Apply(row("http://waits/", "cleared", 150)),
            ]
        );
        let again = due(
            &[verdict("http://fp/", FalsePositive, 300)],
            &latest,
            &Batch::default(),
        );
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn an_older_word_is_never_applied_and_shows_the_latest_again_only_when_it_was_sent() {
        use VerdictStatus::*;
        let whitelisted = row("http://fp/", FALSE_POSITIVE, 100);
        let latest = held(std::slice::from_ref(&whitelisted));
        let older = [verdict("http://fp/", Active, 90)];
        assert!(due(&older, &latest, &Batch::default()).is_empty());
        assert_eq!(
            due(&older, &latest, &batch_of(&["http://fp/"])),
            [Job::Reassert(whitelisted.clone())]
        );
        // The same status, older: nothing brought back.
        let same = [verdict("http://fp/", FalsePositive, 90)];
        assert!(due(&same, &latest, &batch_of(&["http://fp/"])).is_empty());
        // A latest verdict still waiting is not shown: it is applied by
        // the next run.
        let waiting = VerdictRow {
            error: Some("HTTP 422".to_owned()),
            ..whitelisted
        };
        assert!(due(&older, &held(&[waiting]), &batch_of(&["http://fp/"])).is_empty());
        // As new as the one held and different: applied.
        assert_eq!(
            due(
                &[verdict("http://fp/", Cleared, 100)],
                &latest,
                &Batch::default()
            )
            .len(),
            1
        );
    }

    /// The retry limits count one waiting word once: seen again in an
    /// overlap, it keeps its attempts and its start; a new word starts
    /// afresh.
    #[test]
    fn a_waiting_word_seen_again_keeps_its_attempts_and_a_new_word_starts_afresh() {
        use VerdictStatus::*;
        let since = time::macros::datetime!(2026-12-01 00:00 UTC);
        let waiting = VerdictRow {
            error: Some("HTTP 422".to_owned()),
            attempts: 5,
            waiting_since: Some(since),
            ..row("http://waits/", "cleared", 100)
        };
        let latest = held(std::slice::from_ref(&waiting));
        assert_eq!(
            due(
                &[verdict("http://waits/", Cleared, 100)],
                &latest,
                &Batch::default()
            ),
            [Job::Apply(waiting.clone())]
        );
        assert_eq!(
            due(
                &[verdict("http://waits/", FalsePositive, 200)],
                &latest,
                &Batch::default()
            ),
            [Job::Apply(row("http://waits/", FALSE_POSITIVE, 200))]
        );
    }

    #[test]
    fn an_indicator_is_named_as_the_dead_letters_name_it() {
        assert_eq!(indicator_identity("URL", "http://a/"), "http://a/ (URL)");
    }
}
