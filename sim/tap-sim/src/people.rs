//! `/v2/people/vap` (Very Attacked People) and `/v2/people/top-clickers`:
//! one page of a list, for a window of the last 14, 30 or 90 days
//! (docs/tap-api.md, "People API"). Each has a 50-a-day pool of its own.

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::params::Params;
use crate::pools::Pool;
use crate::records::Person;
use crate::reply::Reply;
use crate::stable;
use crate::store::Store;
use crate::times::format_query_end;

/// TAP's documented 400 text. The People API gives it for a missing or
/// malformed parameter alike, so the simulator does too, whatever is wrong.
pub const PEOPLE_BAD_REQUEST: &str = "The request is missing a mandatory request parameter, a parameter contains data which is incorrectly formatted, or the API doesn't have enough information to determine the identity of the customer.";

/// The windows TAP accepts, in days.
const WINDOWS: [i64; 3] = [14, 30, 90];
const MAX_TOP_CLICKERS_PAGE: usize = 200;

/// Where TAP's people come from; derived from the guid (see [`Person`]).
const LOCATIONS: &[&str] = &[
    "New York",
    "London",
    "Frankfurt",
    "Paris",
    "Tokyo",
    "Remote",
];
/// The second threat family a person's index or clicks are split into;
/// credential phishing is always the first, as it is for most people.
const SECOND_FAMILIES: &[&str] = &["Banking", "Stealer", "Loader", "Downloader"];
const FIRST_FAMILY: &str = "Credential Phishing";

/// Which of the two lists a path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    VeryAttacked,
    TopClickers,
}

impl List {
    pub fn of(path: &str) -> Option<List> {
        match path {
            "/v2/people/vap" => Some(List::VeryAttacked),
            "/v2/people/top-clickers" => Some(List::TopClickers),
            _ => None,
        }
    }

    pub fn pool(self) -> Pool {
        match self {
            List::VeryAttacked => Pool::PeopleVap,
            List::TopClickers => Pool::PeopleTopClickers,
        }
    }

    fn default_size(self) -> usize {
        match self {
            List::VeryAttacked => 1000,
            List::TopClickers => 100,
        }
    }

    /// TAP documents a maximum page size for top clickers only.
    fn max_size(self) -> usize {
        match self {
            List::VeryAttacked => usize::MAX,
            List::TopClickers => MAX_TOP_CLICKERS_PAGE,
        }
    }
}

/// One page request, once its parameters are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub list: List,
    pub window_days: i64,
    pub size: usize,
    /// 1-based.
    pub page: usize,
}

/// Reads `window` (required), `size` and `page`; `Err` is the 400 body.
pub fn parse(list: List, params: &Params) -> Result<Query, &'static str> {
    let single = |key| params.single(key).map_err(|_| PEOPLE_BAD_REQUEST);
    let window_days = single("window")?
        .and_then(|text| text.parse::<i64>().ok())
        .filter(|days| WINDOWS.contains(days))
        .ok_or(PEOPLE_BAD_REQUEST)?;
    let whole = |text: Option<&str>, default: usize, max: usize| match text {
        None => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or(PEOPLE_BAD_REQUEST),
    };
    Ok(Query {
        list,
        window_days,
        size: whole(single("size")?, list.default_size(), list.max_size())?,
        page: whole(single("page")?, 1, usize::MAX)?,
    })
}

/// One page of the list the query names. A page past the end has no users
/// but the same totals.
pub fn answer(store: &Store, query: &Query, now: OffsetDateTime) -> Reply {
    let interval = format!(
        "{}/{}",
        format_query_end(now - Duration::days(query.window_days)),
        format_query_end(now)
    );
    let people = match query.list {
        List::VeryAttacked => store.very_attacked_people(),
        List::TopClickers => store.top_clickers(),
    };
    let page = people
        .iter()
        .skip((query.page - 1).saturating_mul(query.size))
        .take(query.size);
    let body = match query.list {
        List::VeryAttacked => {
            let users: Vec<Value> = page.map(very_attacked).collect();
            let indices = people.iter().map(|p| f64::from(p.attack_index));
            let average = if people.is_empty() {
                0.0
            } else {
                indices.clone().sum::<f64>() / people.len() as f64
            };
            json!({
                "users": users,
                "totalVapUsers": people.len(),
                "interval": interval,
                // Rounded to one decimal, as TAP shows it.
                "averageAttackIndex": (average * 10.0).round() / 10.0,
                // Everyone listed is at or above it.
                "vapAttackIndexThreshold": indices.reduce(f64::min).unwrap_or(0.0),
            })
        }
        List::TopClickers => {
            let users: Vec<Value> = page.map(top_clicker).collect();
            json!({
                "users": users,
                "totalTopClickers": people.len(),
                "interval": interval,
            })
        }
    };
    Reply::json(body.to_string())
}

fn identity(p: &Person) -> Value {
    json!({
        "guid": p.guid,
        "customerUserId": null,
        "emails": p.emails,
        "name": p.name,
        "department": p.department,
        "location": stable::pick(LOCATIONS, &p.guid).copied().unwrap_or(""),
        "title": p.title,
        "vip": p.vip,
    })
}

/// `total` split between two families, three quarters to the first;
/// families with nothing are left out.
fn families(p: &Person, total: u32, key: &str) -> Vec<Value> {
    let second = stable::pick(SECOND_FAMILIES, &p.guid)
        .copied()
        .unwrap_or("Banking");
    let minor = total / 4;
    [(FIRST_FAMILY, total - minor), (second, minor)]
        .into_iter()
        .filter(|&(_, n)| n > 0)
        .map(|(name, n)| json!({"name": name, key: n}))
        .collect()
}

fn very_attacked(p: &Person) -> Value {
    json!({
        "identity": identity(p),
        "threatStatistics": {
            "attackIndex": p.attack_index,
            "families": families(p, p.attack_index, "score"),
        },
    })
}

fn top_clicker(p: &Person) -> Value {
    json!({
        "identity": identity(p),
        "clickStatistics": {
            "clickCount": p.click_count,
            "families": families(p, p.click_count, "clicks"),
        },
    })
}
