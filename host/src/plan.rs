//! Window planning: which SIEM windows a run asks TAP for.
//!
//! TAP's SIEM API answers at most one hour per request, at least 30 seconds,
//! never older than 7 days and never a window that is "still current"
//! (docs/sync.md, "Windows"; docs/tap-api.md, "Window rules"). A run covers
//! `[cursor - overlap, now - safety margin)` cut into windows of at most one
//! hour; a tail shorter than 30 s is merged into the window before it, or
//! left for the next run when there is no window before it.

use time::{Duration, OffsetDateTime};

/// The longest window TAP accepts.
pub const MAX_WINDOW: Duration = Duration::hours(1);
/// The shortest window TAP accepts.
pub const MIN_WINDOW: Duration = Duration::seconds(30);
/// How far back TAP answers; we stay a few minutes inside it so that a
/// window planned now is still legal when its request reaches TAP.
pub const MAX_LOOKBACK: Duration = Duration::days(7);
const LOOKBACK_SLACK: Duration = Duration::minutes(5);

/// One SIEM query window, half open: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
}

impl Window {
    pub fn len(&self) -> Duration {
        self.end - self.start
    }

    /// The two halves of this window, if both stay legal for TAP (at least
    /// `MIN_WINDOW` each): how a window too large for the sandbox is retried.
    pub fn halves(&self) -> Option<(Window, Window)> {
        if self.len() < MIN_WINDOW * 2 {
            return None;
        }
        let middle = self.start + self.len() / 2;
        Some((
            Window {
                start: self.start,
                end: middle,
            },
            Window {
                start: middle,
                end: self.end,
            },
        ))
    }
}

/// What the planner needs to know.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput {
    pub now: OffsetDateTime,
    /// The `queryEndTime` of the last window ThreatQ accepted; none on a first run.
    pub cursor: Option<OffsetDateTime>,
    /// Hours of history for a first run (1 to 48).
    pub history_hours: u32,
    /// How far behind the cursor to re-read, for events TAP indexes late.
    pub overlap: Duration,
    /// How far behind `now` to stop, so no window is "still current".
    pub safety_margin: Duration,
}

/// The windows of one run, and what the planner had to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub windows: Vec<Window>,
    /// Set when the cursor was older than TAP's 7-day look-back: the span
    /// `[from, to)` can no longer be fetched and is lost.
    pub clamped_gap: Option<Window>,
}

pub fn plan(input: &PlanInput) -> Plan {
    let end = truncate_to_second(input.now - input.safety_margin);
    let wanted_start = match input.cursor {
        Some(cursor) => cursor - input.overlap,
        None => input.now - Duration::hours(i64::from(input.history_hours)),
    };
    let wanted_start = truncate_to_second(wanted_start);
    let oldest_legal = truncate_to_second(input.now - MAX_LOOKBACK + LOOKBACK_SLACK);

    let (start, clamped_gap) = if wanted_start < oldest_legal {
        // Only a real cursor (data we meant to fetch) makes a gap worth
        // reporting; the overlap alone reaching past 7 days loses nothing.
        let gap = input
            .cursor
            .filter(|cursor| *cursor < oldest_legal)
            .map(|cursor| Window {
                start: cursor,
                end: oldest_legal,
            });
        (oldest_legal, gap)
    } else {
        (wanted_start, None)
    };

    Plan {
        windows: split(start, end),
        clamped_gap,
    }
}

/// Cuts `[start, end)` into windows of at most one hour, none shorter than
/// 30 s: a short tail joins the window before it (which then stays within
/// one hour because the previous window is shortened to make room).
fn split(start: OffsetDateTime, end: OffsetDateTime) -> Vec<Window> {
    let mut windows = Vec::new();
    if end - start < MIN_WINDOW {
        return windows;
    }
    let mut cursor = start;
    while cursor < end {
        let remaining = end - cursor;
        if remaining <= MAX_WINDOW {
            windows.push(Window { start: cursor, end });
            break;
        }
        let after_full = remaining - MAX_WINDOW;
        let step = if after_full < MIN_WINDOW {
            // A full hour now would leave a tail TAP refuses: take a bit
            // less so the last window is exactly the minimum.
            MAX_WINDOW - (MIN_WINDOW - after_full)
        } else {
            MAX_WINDOW
        };
        windows.push(Window {
            start: cursor,
            end: cursor + step,
        });
        cursor += step;
    }
    windows
}

fn truncate_to_second(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_cover_the_window_and_stop_at_taps_minimum() {
        let start = OffsetDateTime::UNIX_EPOCH;
        let hour = Window {
            start,
            end: start + Duration::hours(1),
        };
        let (first, second) = hour.halves().expect("an hour splits");
        assert_eq!(
            (first.start, first.end, second.end),
            (start, start + Duration::minutes(30), hour.end)
        );
        assert_eq!(first.end, second.start);
        let minute = Window {
            start,
            end: start + Duration::seconds(60),
        };
        assert!(minute.halves().is_some());
        let short = Window {
            start,
            end: start + Duration::seconds(59),
        };
        assert_eq!(short.halves(), None, "a half would be under 30 s");
    }
    use time::macros::datetime;

    fn input(now: OffsetDateTime, cursor: Option<OffsetDateTime>) -> PlanInput {
        PlanInput {
            now,
            cursor,
            history_hours: 24,
            overlap: Duration::minutes(30),
            safety_margin: Duration::minutes(2),
        }
    }

    fn assert_legal(plan: &Plan) {
        for w in &plan.windows {
            assert!(w.len() >= MIN_WINDOW, "window too short: {w:?}");
            assert!(w.len() <= MAX_WINDOW, "window too long: {w:?}");
        }
        for pair in plan.windows.windows(2) {
            assert_eq!(pair[0].end, pair[1].start, "windows must be contiguous");
        }
    }

    #[test]
    fn first_run_covers_history_hours_up_to_the_safety_margin() {
        let now = datetime!(2026-11-28 12:00:00 UTC);
        let plan = plan(&input(now, None));
        assert_legal(&plan);
        assert_eq!(
            plan.windows.first().unwrap().start,
            now - Duration::hours(24)
        );
        assert_eq!(plan.windows.last().unwrap().end, now - Duration::minutes(2));
        assert_eq!(plan.windows.len(), 24);
        assert_eq!(plan.clamped_gap, None);
    }

    #[test]
    fn later_run_starts_one_overlap_before_the_cursor() {
        let now = datetime!(2026-11-28 12:00:00 UTC);
        let cursor = datetime!(2026-11-28 10:00:00 UTC);
        let plan = plan(&input(now, Some(cursor)));
        assert_legal(&plan);
        assert_eq!(plan.windows[0].start, cursor - Duration::minutes(30));
        assert_eq!(plan.windows.last().unwrap().end, now - Duration::minutes(2));
    }

    #[test]
    fn short_tail_is_merged_so_no_window_is_under_thirty_seconds() {
        let start = datetime!(2026-11-28 10:00:00 UTC);
        let end = start + Duration::hours(1) + Duration::seconds(10);
        let windows = split(start, end);
        assert_eq!(windows.len(), 2);
        assert_eq!(windows[1].len(), MIN_WINDOW);
        assert_eq!(windows[1].end, end);
    }

    #[test]
    fn span_shorter_than_thirty_seconds_is_left_for_the_next_run() {
        let now = datetime!(2026-11-28 12:00:00 UTC);
        let mut i = input(
            now,
            Some(now - Duration::minutes(2) - Duration::seconds(10)),
        );
        i.overlap = Duration::ZERO;
        assert!(plan(&i).windows.is_empty());
    }

    #[test]
    fn cursor_older_than_seven_days_is_clamped_and_the_gap_reported() {
        let now = datetime!(2026-11-28 12:00:00 UTC);
        let cursor = now - Duration::days(9);
        let plan = plan(&input(now, Some(cursor)));
        assert_legal(&plan);
        let oldest = now - MAX_LOOKBACK + LOOKBACK_SLACK;
        assert_eq!(plan.windows[0].start, oldest);
        assert_eq!(
            plan.clamped_gap,
            Some(Window {
                start: cursor,
                end: oldest
            })
        );
    }

    #[test]
    fn overlap_reaching_past_seven_days_is_clamped_without_a_gap() {
        let now = datetime!(2026-11-28 12:00:00 UTC);
        let cursor = now - MAX_LOOKBACK + LOOKBACK_SLACK + Duration::minutes(1);
        let plan = plan(&input(now, Some(cursor)));
        assert_eq!(plan.clamped_gap, None);
        assert_legal(&plan);
    }

    #[test]
    fn every_span_splits_into_legal_contiguous_windows() {
        let start = datetime!(2026-11-28 00:00:00 UTC);
        for secs in [
            30, 31, 59, 3600, 3601, 3629, 3630, 3631, 7199, 7200, 7229, 172_800, 172_829,
        ] {
            let end = start + Duration::seconds(secs);
            let windows = split(start, end);
            let plan = Plan {
                windows,
                clamped_gap: None,
            };
            assert_legal(&plan);
            assert_eq!(plan.windows.first().unwrap().start, start, "{secs}");
            assert_eq!(plan.windows.last().unwrap().end, end, "{secs}");
        }
    }
}
