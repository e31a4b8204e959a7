//! One run, in steps (docs/sync.md, docs/architecture.md "One window's
//! path"):
//!
//! 1. [`prepare`]: config, bounds, the lock, ThreatQ (login, the names it
//!    must know), the TAP settings, the sandbox, the state store, the plan;
//! 2. replay: what earlier runs could not deliver goes first (dead letters
//!    [`deliver::redeliver`], verdicts not yet applied [`verdicts::apply`],
//!    quarantined records a newer version may map [`fetch::map_records`]);
//! 3. per window: [`fetch::fetch`] (the sandboxed TAP component) ->
//!    [`message_index::link_earlier_messages`] and
//!    [`enrichment::link_late_campaigns`] -> [`deliver::forward`]
//!    (ThreatQ) -> [`verdicts::apply`] -> [`settle::settle`] -> one store
//!    transaction.
//!
//! Each step takes what it needs as arguments and returns what it did; only
//! the [`Pipeline`] here holds the run's context (what was prepared, the
//! summary, what this run remembers across windows), and only it writes the
//! summary, from the tallies the steps return. Every failure leaves through
//! [`Pipeline::abandon`] with every earlier window's checkpoint intact.

mod deliver;
mod enrichment;
mod fetch;
mod limits;
mod message_index;
mod options;
mod outcome;
mod people;
mod prepare;
mod settle;
mod verdicts;

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use anyhow::anyhow;
use tap_runtime::{PersonMark, QuarantinedRecord, RequestCounts, Settings, SyncResult};
use time::{Duration, OffsetDateTime};
use tracing::{info, warn};

use crate::batch::take_batch;
use crate::plan::Window;
use crate::report::{Progress, RunSummary, Tally, rfc3339};
use crate::state::{Quarantined, VerdictRow};

use deliver::Delivery;
use enrichment::{EnrichedThisRun, EnrichmentSettings, Queue, QueueAllowances};
use fetch::Attempt;
use limits::Deadline;
pub use limits::RetryLimits;
pub use options::{DEFAULT_RUN_DEADLINE, NetworkFlags, RunMode, RunOptions};
pub use outcome::{FailureKind, RunFailure, RunOutcome};
use outcome::{Position, Stop, describe};
use prepare::Prepared;
use settle::{Mapped, Settled};

/// The source every object and attribute carries in ThreatQ.
pub const SOURCE_NAME: &str = "Proofpoint TAP";
/// Where compiled copies of the component are cached, inside the config directory.
pub const CACHE_DIR_NAME: &str = "tq-conn-proofpoint-tap.cache";
/// Record keys are kept this much longer than the overlap, for safety.
const KEY_HORIZON_SLACK: Duration = Duration::minutes(10);
/// Dead letters sent again per batch (each with its neighbours), and
/// waiting verdicts applied per commit: bounded, so one chunk is one commit
/// and a stop loses at most one chunk's work.
const REPLAY_CHUNK: usize = 200;
/// The share of the run deadline what earlier runs left (dead letters,
/// waiting verdicts) may take before the windows; what is left over goes
/// with the next run.
const REPLAY_SHARE: f64 = 0.25;

/// Runs the connector once against the config directory in `options`.
pub async fn run(options: &RunOptions) -> Result<RunOutcome, RunFailure> {
    let started = Instant::now();
    let mut summary = RunSummary::default();
    summary.dry_run = options.dry_run;
    let result = run_steps(options, &mut summary).await;
    summary.elapsed = started.elapsed();
    match result {
        Ok(Some(())) => Ok(RunOutcome::Completed(summary)),
        Ok(None) => Ok(RunOutcome::Disabled),
        Err(Stop::AlreadyRunning(holder)) => Ok(RunOutcome::AlreadyRunning(holder)),
        Err(Stop::TooLarge(error)) => Err(RunFailure {
            kind: FailureKind::Sandbox,
            error,
            summary,
        }),
        Err(Stop::Failed(kind, error)) => Err(RunFailure {
            kind,
            error,
            summary,
        }),
    }
}

/// `Ok(None)` when the connector is disabled.
async fn run_steps(options: &RunOptions, summary: &mut RunSummary) -> Result<Option<()>, Stop> {
    let Some(prepared) = prepare::prepare(options).await? else {
        return Ok(None);
    };
    let windows = match options.mode {
        RunMode::Sync => prepared.plan.windows.clone(),
        RunMode::Replay => Vec::new(),
    };
    summary.planned(windows.len(), prepared.plan.clamped_gap);
    summary.observe_checkpoint(prepared.store.state());
    let mut pipeline = Pipeline {
        progress: Progress::new(windows.len(), options.show_progress),
        prepared,
        options,
        summary,
        enriched: EnrichedThisRun::default(),
        people_marks: Vec::new(),
    };
    pipeline
        .people()
        .await
        .map_err(|stop| pipeline.abandon(stop))?;
    pipeline
        .replay()
        .await
        .map_err(|stop| pipeline.abandon(stop))?;

    // A queue rather than the plan itself: a window too large for the
    // sandbox is replaced by its two halves, in place.
    let mut pending: VecDeque<Window> = windows.into_iter().collect();
    while let Some(window) = pending.pop_front() {
        match pipeline.window(&window).await {
            Ok(()) => {}
            Err(Stop::TooLarge(why)) if window.halves().is_some() => {
                let Some((first, second)) = window.halves() else {
                    unreachable!("checked by the guard")
                };
                pipeline.split(&window, &why);
                pending.push_front(second);
                pending.push_front(first);
            }
            Err(Stop::TooLarge(why)) => {
                let stop = Stop::Failed(
                    FailureKind::Sandbox,
                    why.context(format!(
                        "window {} is too large for the sandbox even at TAP's shortest \
                         window (30 s); raise the limit named above under [run] (memory_mib, tap_response_mib)",
                        describe(&window)
                    )),
                );
                return Err(pipeline.abandon(stop));
            }
            Err(stop) => return Err(pipeline.abandon(stop)),
        }
    }
    pipeline.finish()
}

/// The run once prepared: what it fetches with, where it forwards, the
/// store it commits to, what it remembers across windows, and what it
/// tells the operator. The steps never see it: each method below hands a
/// step the parts it needs, and writes what the step returned.
struct Pipeline<'r> {
    prepared: Prepared,
    options: &'r RunOptions,
    summary: &'r mut RunSummary,
    progress: Progress,
    /// Campaigns and threats enriched by earlier windows of this run.
    enriched: EnrichedThisRun,
    /// The people lists' marks, handed to every call of the run.
    people_marks: Vec<PersonMark>,
}

/// The verdicts a step hands [`Pipeline::apply_verdicts`].
enum Verdicts<'a> {
    /// A result's, judged against the latest ones the store holds.
    Of {
        result: &'a SyncResult,
        batch: &'a threatq_client::Batch,
    },
    /// Those earlier runs left waiting.
    Waiting(Vec<VerdictRow>),
}

impl Pipeline<'_> {
    /// Where the run stands at `window`, for the words of an error.
    fn position<'w>(&self, window: &'w Window) -> Position<'w> {
        Position {
            window,
            windows_done: self.summary.windows_done,
            windows_planned: self.summary.windows_planned,
            checkpoint: self.summary.checkpoint,
        }
    }

    /// Writes what a step settled, in one transaction.
    fn commit(
        &mut self,
        settled: Settled<'_>,
        delivery: Delivery,
        verdicts: Vec<VerdictRow>,
    ) -> Result<(), Stop> {
        let commit = settle::settle(settled, delivery, verdicts);
        let now = self.options.clock();
        self.prepared
            .store
            .commit(&commit, now)
            .map_err(Stop::from(FailureKind::Local))?;
        self.summary.observe_checkpoint(self.prepared.store.state());
        Ok(())
    }

    /// Spends the budgets by what the host sent to TAP for one call,
    /// whatever ended it: a trap or a limit spends TAP budget as surely as
    /// an answer.
    fn spend(&mut self, requests: &RequestCounts) -> Result<(), Stop> {
        let now = self.options.clock();
        self.prepared
            .store
            .spend(requests, now)
            .map_err(Stop::from(FailureKind::Local))?;
        self.summary
            .observe_budgets(self.prepared.store.state(), now);
        Ok(())
    }

    /// A call's result as the run takes it. With summaries switched off
    /// (`threat_summaries_per_day = 0`) the component, given no allowance,
    /// reports every threat's summary deferred; nothing is owed then, so
    /// nothing is counted as deferred or waits in the queue (where it would
    /// only grow and expire).
    fn taken(&self, mut result: SyncResult) -> SyncResult {
        if self.prepared.tap.threat_summaries_per_day == 0 {
            result.enrichment.summaries_deferred.clear();
            result.counters.threat_summaries_deferred = 0;
        }
        result
    }

    /// Step 1b: reads TAP's people lists when they are due (not in a dry
    /// run, which writes nothing) and takes the marks every call of the
    /// run gets from the lists fresh enough. A list TAP does not give
    /// never stops the run.
    async fn people(&mut self) -> Result<(), Stop> {
        let now = self.options.clock();
        let refresh = self.prepared.tap.people_refresh;
        let local = |e| Stop::Failed(FailureKind::Local, e);
        let mut state = self.prepared.store.people().map_err(local)?;
        if !self.options.dry_run && people::due(&state, now, refresh) {
            let allowances = self.prepared.store.state().allowances(now);
            let outcome = people::read(
                &self.prepared.sandbox,
                &self.prepared.deadline,
                self.prepared.tap.people_window_days,
                &allowances,
            )
            .await?;
            self.spend(&outcome.requests)?;
            let update = people::reading(
                outcome.answer,
                &state,
                now,
                self.prepared.tap.people_window_days,
            );
            self.prepared
                .store
                .save_people(&update, now)
                .map_err(local)?;
            state = self.prepared.store.people().map_err(local)?;
        }
        let (marks, note) = people::marks(&state, now, refresh);
        self.people_marks = marks;
        self.summary.people = note;
        Ok(())
    }

    /// The component's settings for one call, with what is left of the
    /// budgets. A `sync` call needs SIEM budget; `map-records` makes no
    /// SIEM request.
    fn component_settings(&self, siem: bool) -> Result<Settings, Stop> {
        let now = self.options.clock();
        let store = &self.prepared.store;
        let state = store.state();
        let mut allowances = state.allowances(now);
        // One call's share of the day's summaries (`SUMMARIES_PER_CALL`):
        // what the queue is cut to and what the component may ask.
        allowances.threat_summaries = allowances.threat_summaries.min(fetch::SUMMARIES_PER_CALL);
        if siem {
            fetch::check_siem_budget(state, &allowances, now)?;
        }
        let plan = store
            .enrichment_plan(now, self.prepared.tap.refresh)
            .map_err(Stop::from(FailureKind::Local))?;
        let queue = if self.options.dry_run {
            Queue::Leave
        } else {
            Queue::Serve
        };
        let enrichment = EnrichmentSettings::of(
            plan,
            &self.enriched,
            queue,
            QueueAllowances {
                campaigns: allowances.campaigns,
                threats: allowances.threat_forensics,
                summaries: allowances.threat_summaries,
            },
        );
        Ok(fetch::component_settings(
            &self.prepared.tap,
            state,
            &allowances,
            enrichment,
            &self.people_marks,
        ))
    }

    /// Applies the verdicts that need ThreatQ, within `deadline`, and
    /// counts what they did. `delivery` is what ThreatQ made of the objects
    /// just sent: a verdict for an indicator it refused waits for the dead
    /// letter. Returns the rows to record and whether the deadline came
    /// (the rows then include those left waiting). When ThreatQ cannot be
    /// used part-way, the verdicts already applied are committed before
    /// the stop: ThreatQ holds what they did, and the store must know the
    /// status this connector set, to set it back when TAP changes its mind.
    async fn apply_verdicts(
        &mut self,
        verdicts: Verdicts<'_>,
        delivery: &Delivery,
        deadline: &Deadline,
    ) -> Result<(Vec<VerdictRow>, bool), Stop> {
        let store = &self.prepared.store;
        let jobs = match verdicts {
            Verdicts::Of { result, batch } => {
                if result.verdicts.is_empty() {
                    return Ok((Vec::new(), false));
                }
                let keys: Vec<(&str, &str)> = result
                    .verdicts
                    .iter()
                    .map(|v| (v.indicator_type.as_str(), v.indicator_value.as_str()))
                    .collect();
                let latest = store
                    .latest_verdicts(&keys)
                    .map_err(Stop::from(FailureKind::Local))?;
                verdicts::due(&result.verdicts, &latest, batch)
            }
            Verdicts::Waiting(rows) => rows.into_iter().map(verdicts::Job::Apply).collect(),
        };
        if jobs.is_empty() {
            return Ok((Vec::new(), false));
        }
        let mut dead_lettered = store
            .dead_lettered_indicators(&verdicts::identities(&jobs))
            .map_err(Stop::from(FailureKind::Local))?;
        dead_lettered.extend(verdicts::refused_indicators(&delivery.dead_letters));
        let prepared = &self.prepared;
        let answer = verdicts::apply(
            &prepared.threatq,
            &prepared.verdicts,
            deadline,
            &dead_lettered,
            jobs,
        )
        .await;
        match answer {
            Ok(applied) => {
                self.summary.add(&applied.tally);
                Ok((applied.rows, applied.deadline_reached))
            }
            Err((stop, applied)) => {
                self.summary.add(&applied.tally);
                self.commit(Settled::PendingVerdicts, Delivery::default(), applied.rows)?;
                Err(stop)
            }
        }
    }

    /// [`Self::apply_verdicts`] for the verdicts of a result just
    /// forwarded in `batch`, within the run's deadline.
    async fn apply_verdicts_of(
        &mut self,
        result: &SyncResult,
        batch: &threatq_client::Batch,
        delivery: &Delivery,
    ) -> Result<(Vec<VerdictRow>, bool), Stop> {
        let deadline = self.prepared.deadline.clone();
        self.apply_verdicts(Verdicts::Of { result, batch }, delivery, &deadline)
            .await
    }

    /// The deadline came while verdicts were applied: what `settled` says
    /// was committed, and how many verdicts now wait.
    fn verdicts_stop(&self, settled: &str) -> Stop {
        let waiting = self.prepared.store.state().pending_verdicts;
        self.prepared.deadline.verdicts_stop(settled, waiting)
    }

    /// Step 2: what earlier runs left undelivered goes first. A scheduled
    /// run gives it a share of its deadline (`REPLAY_SHARE`), `replay` the
    /// whole; whatever happens to it, the windows, the new data, come next.
    async fn replay(&mut self) -> Result<(), Stop> {
        if self.options.dry_run {
            return Ok(());
        }
        let share = match self.options.mode {
            RunMode::Sync => self.prepared.deadline.share(REPLAY_SHARE),
            RunMode::Replay => self.prepared.deadline.clone(),
        };
        self.replay_dead_letters(&share).await?;
        self.replay_verdicts(&share).await?;
        self.replay_quarantine().await
    }

    /// Dead letters of earlier runs, sent again in chunks, each chunk
    /// committed at once. Scheduled runs leave out the letters past their
    /// limits (`replay` sends them all). A chunk ThreatQ cannot take now
    /// (it did not answer within `share`, or could not be used for it) is
    /// kept with one more attempt, and the replay ends there: it never
    /// stops the windows (a ThreatQ that cannot be used stops them itself).
    async fn replay_dead_letters(&mut self, share: &Deadline) -> Result<(), Stop> {
        let letters = self
            .prepared
            .store
            .dead_letters()
            .map_err(Stop::from(FailureKind::Local))?;
        if letters.is_empty() {
            return Ok(());
        }
        let due = self.due_now(letters, "dead letters", |letter| {
            (letter.attempts, Some(letter.first_refused))
        });
        if due.is_empty() {
            return Ok(());
        }
        info!(
            count = due.len(),
            "sending the dead letters of earlier runs again"
        );
        for (sent, chunk) in due.chunks(REPLAY_CHUNK).enumerate() {
            let left = due.len() - sent * REPLAY_CHUNK;
            if share_spent(share, left, "dead letters") {
                break;
            }
            let prepared = &self.prepared;
            let answer =
                deliver::redeliver(&prepared.threatq, &prepared.forward_options, share, chunk)
                    .await;
            let redelivered = match answer {
                Ok(redelivered) => redelivered,
                Err(why) => {
                    let why = format!("{why:#}");
                    warn!(
                        error = %why,
                        letters = left,
                        "the dead letters could not be sent again now; they are kept, this \
                         chunk with one more attempt, and the run goes on with its windows"
                    );
                    self.commit(
                        Settled::Redelivered {
                            delivered: Vec::new(),
                            messages: Vec::new(),
                        },
                        deliver::tried_again(chunk, &why),
                        Vec::new(),
                    )?;
                    if self.options.mode == RunMode::Replay {
                        // `replay` is the operator asking for this very
                        // step: its failure is the answer.
                        return Err(Stop::Failed(
                            FailureKind::Threatq,
                            anyhow!("{why}; the dead letters are kept"),
                        ));
                    }
                    break;
                }
            };
            self.summary.add(&Tally {
                redelivered: redelivered.delivered.len() as u64,
                ..Tally::default()
            });
            let messages = message_index::delivered_messages(chunk, &redelivered.delivered);
            self.commit(
                Settled::Redelivered {
                    delivered: redelivered.delivered,
                    messages,
                },
                redelivered.delivery,
                Vec::new(),
            )?;
        }
        Ok(())
    }

    /// Verdicts earlier runs left waiting, tried again in chunks, each
    /// chunk committed at once, under the same limits and within the same
    /// `share` as the dead letters: what `share` cuts off waits for the
    /// next run; only the run's own deadline stops the run.
    async fn replay_verdicts(&mut self, share: &Deadline) -> Result<(), Stop> {
        let pending = self
            .prepared
            .store
            .pending_verdicts()
            .map_err(Stop::from(FailureKind::Local))?;
        let due = self.due_now(pending, "waiting verdicts", |row| {
            (row.attempts, row.waiting_since)
        });
        if due.is_empty() {
            return Ok(());
        }
        info!(
            count = due.len(),
            "applying TAP's verdicts earlier runs could not apply"
        );
        for (done, chunk) in due.chunks(REPLAY_CHUNK).enumerate() {
            if share_spent(share, due.len() - done * REPLAY_CHUNK, "verdicts") {
                break;
            }
            let (settled, deadline_reached) = self
                .apply_verdicts(
                    Verdicts::Waiting(chunk.to_vec()),
                    &Delivery::default(),
                    share,
                )
                .await?;
            self.commit(Settled::PendingVerdicts, Delivery::default(), settled)?;
            if deadline_reached {
                if self.prepared.deadline.passed() {
                    return Err(
                        self.verdicts_stop("no window was fetched and the checkpoint is unchanged")
                    );
                }
                share_spent(share, due.len() - done * REPLAY_CHUNK, "verdicts");
                break;
            }
        }
        Ok(())
    }

    /// What of `entries`, left by earlier runs, this run tries: `replay`
    /// all of them, a scheduled run those within the retry limits
    /// (`tried` gives an entry's attempts and since when it waits; none is
    /// now). The others stay in the store, and the run says so loudly.
    fn due_now<T>(
        &self,
        entries: Vec<T>,
        what: &str,
        tried: impl Fn(&T) -> (u32, Option<OffsetDateTime>),
    ) -> Vec<T> {
        if self.options.mode == RunMode::Replay {
            return entries;
        }
        let now = self.options.clock();
        let limits = self.prepared.retry_limits;
        let (due, parked): (Vec<T>, Vec<T>) = entries.into_iter().partition(|entry| {
            let (attempts, since) = tried(entry);
            !limits.passed(attempts, since.unwrap_or(now), now)
        });
        if !parked.is_empty() {
            warn!(
                count = parked.len(),
                max_attempts = limits.max_attempts,
                max_age_days = limits.max_age.whole_days(),
                "{what} passed their retry limits (`[run] retry_max_attempts`, \
                 `retry_max_age_days`): scheduled runs no longer try them; they stay in the state \
                 store. `tq-conn-proofpoint-tap replay --list` shows them with the reason, \
                 `replay` tries them once the cause is fixed"
            );
        }
        due
    }

    /// Quarantined records a newer version (or `replay`) may now map.
    async fn replay_quarantine(&mut self) -> Result<(), Stop> {
        let force = self.options.mode == RunMode::Replay;
        let waiting: Vec<Quarantined> = self
            .prepared
            .store
            .quarantined()
            .map_err(Stop::from(FailureKind::Local))?
            .into_iter()
            // The same version maps a record the same way: only a newer one,
            // or the operator's `replay`, is worth a try (and its TAP budget).
            .filter(|record| force || record.version != env!("CARGO_PKG_VERSION"))
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        info!(
            count = waiting.len(),
            "mapping quarantined TAP records again"
        );
        let records: Vec<QuarantinedRecord> = waiting
            .iter()
            .map(|record| QuarantinedRecord {
                section: record.section.clone(),
                raw: record.raw.clone(),
            })
            .collect();
        let settings = self.component_settings(false)?;
        let prepared = &self.prepared;
        let outcome =
            fetch::map_records(&prepared.sandbox, &prepared.deadline, &settings, &records).await?;
        self.spend(&outcome.requests)?;
        let mut result = match outcome.answer {
            Ok(Ok(result)) => self.taken(result),
            Ok(Err(error)) => {
                warn!(error = ?error, "could not map the quarantined records again; they are kept");
                return Ok(());
            }
            Err(error) => {
                warn!(error = %error, "could not map the quarantined records again; they are kept");
                return Ok(());
            }
        };
        let mut batch = take_batch(&mut result);
        self.link_earlier_objects(&result, &mut batch)?;
        let prepared = &self.prepared;
        let report = deliver::send_again(
            &prepared.threatq,
            &prepared.forward_options,
            &prepared.deadline,
            &batch,
            "ThreatQ could not be used to send the re-mapped quarantined records; they stay \
             quarantined",
        )
        .await?;
        let delivery = deliver::dead_letters(&report, &batch, "replay of quarantined records");
        let (remapped, still_quarantined) = sort_remapped(&waiting, &result);
        let enriched = enrichment_tally(&result);
        self.summary.add(&Tally {
            redelivered: remapped.len() as u64,
            threat_summaries: enriched.threat_summaries,
            threat_summaries_deferred: enriched.threat_summaries_deferred,
            people_marked_events: enriched.people_marked_events,
            ..Tally::default()
        });
        // What spans runs is kept as for a window; later verdicts in
        // re-mapped records are applied as well.
        let (verdicts, deadline_reached) =
            self.apply_verdicts_of(&result, &batch, &delivery).await?;
        self.commit(
            Settled::Remapped {
                mapped: Mapped {
                    result: &result,
                    batch: &batch,
                },
                remapped,
                still_quarantined,
            },
            delivery,
            verdicts,
        )?;
        if deadline_reached {
            return Err(self.verdicts_stop(
                "the re-mapped quarantined records were committed and no window was fetched",
            ));
        }
        Ok(())
    }

    /// Relates the result's objects to what earlier windows and runs sent:
    /// its clicks to their message events (through the message index), and
    /// its campaigns fetched late to the objects that named them (through
    /// the campaign mentions).
    fn link_earlier_objects(
        &mut self,
        result: &SyncResult,
        batch: &mut threatq_client::Batch,
    ) -> Result<(), Stop> {
        let store = &self.prepared.store;
        let clicks = message_index::link_earlier_messages(store, result, batch)
            .map_err(Stop::from(FailureKind::Local))?;
        let mentions = enrichment::link_late_campaigns(store, result, batch)
            .map_err(Stop::from(FailureKind::Local))?;
        let events = enrichment::link_late_summaries(store, result, batch)
            .map_err(Stop::from(FailureKind::Local))?;
        self.summary.add(&Tally {
            clicks_linked_to_earlier_messages: clicks,
            linked_to_late_campaigns: mentions + events,
            ..Tally::default()
        });
        Ok(())
    }

    /// Step 3, one window: fetch -> link -> forward -> verdicts -> commit.
    async fn window(&mut self, window: &Window) -> Result<(), Stop> {
        self.prepared.deadline.check(&self.position(window))?;
        let mut result = self.fetch(window).await?;
        self.summary.add(&fetched(&result));
        let mut batch = take_batch(&mut result);
        // The window's own objects; what follows are earlier objects
        // (message events, objects naming a campaign fetched late), sent
        // again only to carry a relation.
        let own = batch.objects.len();
        self.link_earlier_objects(&result, &mut batch)?;
        let delivery = if self.options.dry_run {
            Delivery::default()
        } else {
            let prepared = &self.prepared;
            let delivery = deliver::forward(
                &prepared.threatq,
                &prepared.forward_options,
                &prepared.deadline,
                &batch,
                own,
                &self.position(window),
            )
            .await?;
            self.summary.add(&Tally {
                rejected_objects: delivery.refused as u64,
                ..Tally::default()
            });
            delivery
        };
        if let Some(export) = self.prepared.export.as_mut() {
            export
                .write_batch(&batch)
                .map_err(Stop::from(FailureKind::Local))?;
        }
        self.summary
            .count_accepted(&batch.objects[..own], delivery.refused_identities());
        let query_end = fetch::checkpoint_for(&result, window);
        let refused = delivery.refused;
        let mut verdicts_cut_off = false;
        if !self.options.dry_run {
            let (verdicts, deadline_reached) =
                self.apply_verdicts_of(&result, &batch, &delivery).await?;
            // The window's objects are in ThreatQ: its commit must happen
            // even when the deadline cut the verdicts off (they wait in it).
            verdicts_cut_off = deadline_reached;
            let tap = &self.prepared.tap;
            let settled = Settled::Window {
                window,
                mapped: Mapped {
                    result: &result,
                    batch: &batch,
                },
                checkpoint: query_end,
                key_horizon: tap.overlap + KEY_HORIZON_SLACK,
                message_horizon: tap.message_horizon,
            };
            self.commit(settled, delivery, verdicts)?;
        }
        self.enriched.remember(&result);
        self.summary.window_done();
        let counters = &result.counters;
        info!(
            window = %describe(window),
            messages = counters.messages_delivered + counters.messages_blocked,
            clicks = counters.clicks_permitted + counters.clicks_blocked,
            objects = batch.objects.len(),
            relations = batch.relations.len(),
            quarantined = result.rejections.len(),
            refused,
            checkpoint = %rfc3339(query_end),
            "window forwarded"
        );
        self.progress.window_done(self.summary.objects_sent());
        if verdicts_cut_off {
            return Err(self.verdicts_stop(&format!(
                "window {} was committed and the checkpoint is now {}",
                describe(window),
                rfc3339(query_end)
            )));
        }
        Ok(())
    }

    /// Step 3a: the window from the sandbox, retrying what is worth
    /// retrying, each attempt's TAP requests spent as soon as it ends.
    async fn fetch(&mut self, window: &Window) -> Result<SyncResult, Stop> {
        let attempts = fetch::WINDOW_ATTEMPTS.min(self.options.retry.max_attempts.max(1));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let settings = self.component_settings(true)?;
            let at = self.position(window);
            let outcome = fetch::fetch(
                &self.prepared.sandbox,
                &self.prepared.deadline,
                &settings,
                &at,
            )
            .await?;
            self.spend(&outcome.requests)?;
            let (kind, error) = match fetch::judge(outcome, window) {
                Attempt::Fetched(result) => return Ok(self.taken(*result)),
                Attempt::TooLarge(why) => return Err(Stop::TooLarge(why)),
                Attempt::Failed {
                    error,
                    transient: true,
                    ..
                } if attempt < attempts => {
                    // The same backoff as every ThreatQ request: one policy.
                    let delay = self.options.retry.backoff(attempt);
                    warn!(
                        window = %describe(window),
                        attempt,
                        retry_in_ms = delay.as_millis() as u64,
                        error = %format!("{error:#}"),
                        "TAP window failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    continue;
                }
                Attempt::Failed { kind, error, .. } => (kind, error),
            };
            let at = self.position(window);
            return Err(Stop::Failed(
                kind,
                error.context(format!(
                    "window {} failed; the checkpoint stays at {}",
                    at.window(),
                    at.checkpoint()
                )),
            ));
        }
    }

    fn split(&mut self, window: &Window, why: &anyhow::Error) {
        warn!(
            window = %describe(window),
            reason = %format!("{why:#}"),
            "the window is too large for the sandbox; retrying it as two halves"
        );
        self.summary.window_split();
        self.progress.add_window();
    }

    /// The one way a failed run leaves: the progress bar is cleared and the
    /// summary shows the budgets. Nothing needs saving: TAP requests were
    /// recorded as they were made, and the failed window was never
    /// committed.
    fn abandon(&mut self, stop: Stop) -> Stop {
        self.progress.finish();
        self.summary
            .observe_budgets(self.prepared.store.state(), self.options.clock());
        stop
    }

    /// A run that forwarded every window still fails if anything is left
    /// undelivered in the store: cron mail must say so until it is dealt with.
    fn finish(self) -> Result<Option<()>, Stop> {
        self.progress.finish();
        let state = self.prepared.store.state();
        self.summary.observe_end(state, self.options.clock());
        if state.undelivered() > 0 && !self.options.dry_run {
            return Err(Stop::Failed(
                FailureKind::Undelivered,
                anyhow!(
                    "every window was forwarded, but {} refused by ThreatQ and {} TAP records \
                     that could not be mapped are kept undelivered in {}. Every run sends them \
                     again first; `tq-conn-proofpoint-tap replay --list` shows each with \
                     ThreatQ's answer, and `replay` sends them now once the cause is fixed",
                    plural(state.dead_letters, "object"),
                    state.quarantined,
                    self.prepared.store.path().display()
                ),
            ));
        }
        Ok(Some(()))
    }
}

/// Which quarantined records `map-records` mapped now (their ids), and
/// which it still cannot (id, reason). Matched on the record itself:
/// `map-records` gives back the section and raw text of a record it still
/// cannot map exactly as it was given (its key may differ, e.g. for a
/// section it does not know).
fn sort_remapped(waiting: &[Quarantined], result: &SyncResult) -> (Vec<i64>, Vec<(i64, String)>) {
    let unmapped: BTreeMap<(&str, &str), &str> = result
        .rejections
        .iter()
        .map(|r| ((r.section.as_str(), r.raw.as_str()), r.reason.as_str()))
        .collect();
    let mut remapped = Vec::new();
    let mut still = Vec::new();
    for record in waiting {
        match unmapped.get(&(record.section.as_str(), record.raw.as_str())) {
            Some(reason) => still.push((record.id, (*reason).to_owned())),
            None => remapped.push(record.id),
        }
    }
    info!(
        mapped = remapped.len(),
        still_unmappable = still.len(),
        "quarantined TAP records mapped again"
    );
    (remapped, still)
}

/// What a window's call fetched, as the summary counts it; each
/// quarantined record is logged.
fn fetched(result: &SyncResult) -> Tally {
    for rejection in &result.rejections {
        warn!(record = %rejection.key, reason = %rejection.reason, "TAP record quarantined");
    }
    let counters = &result.counters;
    Tally {
        rejected_records: result.rejections.len() as u64,
        messages: u64::from(counters.messages_delivered + counters.messages_blocked),
        clicks: u64::from(counters.clicks_permitted + counters.clicks_blocked),
        already_sent_skipped: u64::from(counters.already_sent_skipped),
        ..enrichment_tally(result)
    }
}

/// What a call's summaries and people marks did, as the summary counts it.
fn enrichment_tally(result: &SyncResult) -> Tally {
    let counters = &result.counters;
    Tally {
        threat_summaries: result.enrichment.threats_summarised.len() as u64,
        threat_summaries_deferred: u64::from(counters.threat_summaries_deferred),
        people_marked_events: u64::from(counters.people_marked_events),
        ..Tally::default()
    }
}

/// Whether the replay's share of the run deadline is spent; `left` of
/// `what` then wait for the next run, which the log says.
fn share_spent(share: &Deadline, left: usize, what: &str) -> bool {
    let spent = share.passed();
    if spent {
        warn!(
            left,
            "the share of the run deadline for what earlier runs left is spent; the other \
             {what} are tried by the next run"
        );
    }
    spent
}

fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}
