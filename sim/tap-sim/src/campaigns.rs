//! `/v2/campaign/ids` and `/v2/campaign/{id}`.

use http::StatusCode;
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::params::Params;
use crate::reply::Reply;
use crate::siem::{MISSING_WINDOW, check_window};
use crate::store::Store;
use crate::times::{format_event_time, parse_interval};

/// By analogy with the SIEM texts; the real wording is unknown.
const TOO_LONG_FOR_IDS: &str =
    "The requested interval is too long. Requests must be for at most 1.00d of data";
const MAX_IDS_WINDOW: Duration = Duration::days(1);
const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 200;

/// Campaigns updated in the interval, newest first, one page of them.
/// A window without campaigns is a 404 with an empty body, as on real TAP;
/// a page past the end of a non-empty list is an empty list.
pub fn ids(store: &Store, params: &Params, now: OffsetDateTime) -> Reply {
    match ids_page(store, params, now) {
        Ok(reply) => reply,
        Err(text) => Reply::bad_request(text),
    }
}

fn ids_page(store: &Store, params: &Params, now: OffsetDateTime) -> Result<Reply, String> {
    let interval = params.single("interval")?.ok_or_else(|| {
        MISSING_WINDOW.replace(
            "exactly one of interval, sinceTime or sinceSeconds",
            "interval",
        )
    })?;
    let (start, end) = parse_interval(interval).map_err(|e| e.to_string())?;
    check_window(start, end, now, MAX_IDS_WINDOW, TOO_LONG_FOR_IDS)?;
    let size = match params.single("size")? {
        None => DEFAULT_PAGE_SIZE,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            _ => {
                return Err(format!(
                    "size must be a whole number from 1 to {MAX_PAGE_SIZE}; got '{text}'"
                ));
            }
        },
    };
    let page = match params.single("page")? {
        None => 1,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => return Err(format!("page must be a whole number from 1; got '{text}'")),
        },
    };
    let updated = store.campaigns_updated_in(start, end);
    if updated.is_empty() {
        return Ok(Reply::empty(StatusCode::NOT_FOUND));
    }
    let campaigns: Vec<_> = updated
        .into_iter()
        .skip((page - 1).saturating_mul(size))
        .take(size)
        .map(|(id, last)| json!({"id": id, "lastUpdatedAt": format_event_time(last)}))
        .collect();
    Ok(Reply::json(json!({ "campaigns": campaigns }).to_string()))
}

/// One campaign as loaded; 404 with an empty body when unknown.
pub fn one(store: &Store, id: &str) -> Reply {
    match store.campaign(id) {
        Some(campaign) => Reply::json(campaign.json.to_string()),
        None => Reply::empty(StatusCode::NOT_FOUND),
    }
}
