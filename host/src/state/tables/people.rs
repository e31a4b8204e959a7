//! TAP's people lists as last read (docs/sync.md, "People lists"):
//!
//! - `people`: one row per address on a list, with the VIP flag and the
//!   list's score (attack index, click count); nothing else of the person
//!   is kept;
//! - `people_lists`: when each list was read, for which window, TAP's
//!   interval, and whether every page was read;
//! - `people_reads`: when the lists were last asked for (read or not) and
//!   when a run last warned that they could not be read, so a tenant
//!   without the People API is asked once per refresh period and warned
//!   once a day.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use time::OffsetDateTime;

use crate::state::{from_unix_ms, unix_ms};

pub(in crate::state) const SCHEMA: &str = "
CREATE TABLE people (
    list  TEXT NOT NULL,
    email TEXT NOT NULL,
    vip   INTEGER NOT NULL,
    score INTEGER NOT NULL,
    PRIMARY KEY (list, email)
);
CREATE TABLE people_lists (
    list        TEXT PRIMARY KEY,
    interval    TEXT NOT NULL,
    window_days INTEGER NOT NULL,
    read_ms     INTEGER NOT NULL,
    complete    INTEGER NOT NULL
);
CREATE TABLE people_reads (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    attempted_ms INTEGER NOT NULL,
    warned_ms    INTEGER,
    problem      TEXT
);
";

/// Which of TAP's people lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeopleKind {
    /// `/v2/people/vap`: Very Attacked People, scored by attack index.
    VeryAttacked,
    /// `/v2/people/top-clickers`, scored by click count.
    TopClickers,
}

impl PeopleKind {
    pub const ALL: [PeopleKind; 2] = [PeopleKind::VeryAttacked, PeopleKind::TopClickers];

    pub fn label(self) -> &'static str {
        match self {
            PeopleKind::VeryAttacked => "vap",
            PeopleKind::TopClickers => "top-clickers",
        }
    }
}

/// One address on a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedAddress {
    /// Lower case.
    pub email: String,
    pub vip: bool,
    pub score: u32,
}

/// One list as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPeople {
    pub kind: PeopleKind,
    /// TAP's `interval`, as it gave it.
    pub interval: String,
    pub window_days: u32,
    pub read_at: OffsetDateTime,
    /// Every page was read.
    pub complete: bool,
    pub addresses: Vec<ListedAddress>,
}

/// What the store holds of the people lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeopleState {
    pub lists: Vec<StoredPeople>,
    /// When a run last asked for the lists, read or not.
    pub attempted: Option<OffsetDateTime>,
    /// When a run last warned that a list could not be read.
    pub warned: Option<OffsetDateTime>,
    /// What the last reading could not do, in words for the operator.
    pub problem: Option<String>,
}

impl PeopleState {
    pub fn list(&self, kind: PeopleKind) -> Option<&StoredPeople> {
        self.lists.iter().find(|l| l.kind == kind)
    }
}

/// What one reading changes: the lists read (each replaces the one kept),
/// and whether a warning was given now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeopleUpdate {
    pub lists: Vec<StoredPeople>,
    pub warned: bool,
    /// What this reading could not do; none when both lists were read.
    pub problem: Option<String>,
    /// Whether this reading counts as the period's attempt. One that
    /// failed for a passing reason (TAP's 5xx, no answer, the sandbox) does
    /// not: the next run asks again, within the pools.
    pub counts_as_attempt: bool,
}

pub(in crate::state) fn read(conn: &Connection) -> rusqlite::Result<PeopleState> {
    let mut state = PeopleState::default();
    let mut lists =
        conn.prepare("SELECT list, interval, window_days, read_ms, complete FROM people_lists")?;
    let mut addresses = conn.prepare(
        "SELECT email, vip, score FROM people WHERE list = ?1 ORDER BY score DESC, email",
    )?;
    for kind in PeopleKind::ALL {
        let row = lists
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, u32>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, bool>(4)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .find(|(label, ..)| label == kind.label());
        let Some((_, interval, window_days, read_ms, complete)) = row else {
            continue;
        };
        let listed = addresses
            .query_map([kind.label()], |row| {
                Ok(ListedAddress {
                    email: row.get(0)?,
                    vip: row.get(1)?,
                    score: row.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        state.lists.push(StoredPeople {
            kind,
            interval,
            window_days,
            read_at: from_unix_ms(read_ms),
            complete,
            addresses: listed,
        });
    }
    let reads = conn
        .query_row(
            "SELECT attempted_ms, warned_ms, problem FROM people_reads WHERE id = 1",
            [],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, Option<i64>>(1)?,
                    row.get::<_, Option<String>>(2)?,
                ))
            },
        )
        .optional()?;
    if let Some((attempted, warned, problem)) = reads {
        state.attempted = Some(from_unix_ms(attempted));
        state.warned = warned.map(from_unix_ms);
        state.problem = problem;
    }
    Ok(state)
}

/// One reading, at `at`: the lists read replace the ones kept; the attempt
/// (and a warning given now) is noted.
pub(in crate::state) fn write(
    tx: &Transaction<'_>,
    update: &PeopleUpdate,
    at: OffsetDateTime,
) -> rusqlite::Result<()> {
    let at_ms = unix_ms(at);
    for list in &update.lists {
        let label = list.kind.label();
        tx.execute("DELETE FROM people WHERE list = ?1", [label])?;
        // Each address once: the run merged TAP's repeats (`run/people.rs`).
        let mut insert = tx.prepare_cached(
            "INSERT INTO people (list, email, vip, score) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for address in &list.addresses {
            insert.execute(params![label, address.email, address.vip, address.score])?;
        }
        tx.execute(
            "INSERT INTO people_lists (list, interval, window_days, read_ms, complete)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (list) DO UPDATE SET interval = excluded.interval,
                 window_days = excluded.window_days, read_ms = excluded.read_ms,
                 complete = excluded.complete",
            params![
                label,
                list.interval,
                list.window_days,
                unix_ms(list.read_at),
                list.complete
            ],
        )?;
    }
    let warned_ms = update.warned.then_some(at_ms);
    // A reading that does not count leaves the last attempt's time (0, the
    // epoch, when there was none: the lists are due).
    let attempted_ms = update.counts_as_attempt.then_some(at_ms);
    tx.execute(
        "INSERT INTO people_reads (id, attempted_ms, warned_ms, problem)
         VALUES (1, coalesce(?1, 0), ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET
             attempted_ms = coalesce(?1, people_reads.attempted_ms),
             warned_ms = coalesce(excluded.warned_ms, people_reads.warned_ms),
             problem = excluded.problem",
        params![attempted_ms, warned_ms, update.problem],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Store;
    use time::Duration;
    use time::macros::datetime;

    fn list(kind: PeopleKind, at: OffsetDateTime, emails: &[&str]) -> StoredPeople {
        StoredPeople {
            kind,
            interval: "a/b".into(),
            window_days: 30,
            read_at: at,
            complete: true,
            addresses: emails
                .iter()
                .enumerate()
                .map(|(i, e)| ListedAddress {
                    email: (*e).into(),
                    vip: i == 0,
                    score: 100 * (i as u32 + 1),
                })
                .collect(),
        }
    }

    #[test]
    fn a_reading_replaces_its_lists_and_keeps_the_attempt_and_the_warning() {
        let dir = tempfile::tempdir().unwrap();
        let t = datetime!(2026-12-08 10:00:00 UTC);
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(store.people().unwrap(), PeopleState::default());
        store
            .save_people(
                &PeopleUpdate {
                    lists: vec![
                        list(PeopleKind::VeryAttacked, t, &["a@x.zz", "b@x.zz"]),
                        list(PeopleKind::TopClickers, t, &["c@x.zz"]),
                    ],
                    warned: false,
                    problem: None,
                    counts_as_attempt: true,
                },
                t,
            )
            .unwrap();
        let state = store.people().unwrap();
        assert_eq!(state.attempted, Some(t));
        assert_eq!(state.warned, None);
        let vap = state.list(PeopleKind::VeryAttacked).unwrap();
        assert_eq!(vap.addresses.len(), 2);
        assert_eq!(vap.addresses[0].email, "b@x.zz", "highest score first");

        // A 403 later: the lists stay, the problem and the warning are kept.
        let later = t + Duration::hours(24);
        store
            .save_people(
                &PeopleUpdate {
                    lists: vec![list(PeopleKind::VeryAttacked, later, &["d@x.zz"])],
                    warned: true,
                    problem: Some("403".into()),
                    counts_as_attempt: true,
                },
                later,
            )
            .unwrap();
        let state = store.people().unwrap();
        assert_eq!(state.warned, Some(later));
        assert_eq!(state.problem.as_deref(), Some("403"));
        assert_eq!(
            state
                .list(PeopleKind::VeryAttacked)
                .unwrap()
                .addresses
                .len(),
            1
        );
        assert_eq!(state.list(PeopleKind::TopClickers).unwrap().read_at, t);

        // A passing failure does not count as the period's attempt.
        store
            .save_people(
                &PeopleUpdate {
                    problem: Some("502".into()),
                    ..PeopleUpdate::default()
                },
                later + Duration::hours(1),
            )
            .unwrap();
        let state = store.people().unwrap();
        assert_eq!(state.attempted, Some(later));
        assert_eq!(state.warned, Some(later), "kept when not warned again");
        assert_eq!(state.problem.as_deref(), Some("502"));
    }
}
