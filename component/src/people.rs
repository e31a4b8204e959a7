//! One `read-people(access, request)` call: every page of TAP's Very
//! Attacked People and top clickers lists, each within its allowance
//! (docs/mapping.md, "People"). Each list stands or fails on its own; the
//! host decides how often to ask, counts the pools and keeps the lists.

use crate::bindings::{PeopleAnswer, PeopleList, PeopleRequest, Person, SyncError, TapAccess};
use crate::tap::endpoints::{self, PEOPLE_TOP_CLICKERS, PEOPLE_VAP};
use crate::tap::errors::status_error;
use crate::tap::people::{ListKind, parse_people_page};
use crate::transport::{HostServices, LogLevel, TapBaseUrl, Transport, logged_get};

/// The windows TAP's People API accepts, in days.
const WINDOWS: [u32; 3] = [14, 30, 90];

/// Reads both lists. A bad base URL or window fails both alike.
pub fn read_people<T, H, C>(
    access: &TapAccess,
    request: &PeopleRequest,
    connect: C,
    host: &mut H,
) -> PeopleAnswer
where
    T: Transport,
    H: HostServices,
    C: FnOnce(TapBaseUrl) -> T,
{
    let checked = TapBaseUrl::parse(&access.tap_base_url).and_then(|base| {
        if WINDOWS.contains(&request.window_days) {
            Ok(base)
        } else {
            Err(format!(
                "people-request.window-days is {}; TAP's People API takes 14, 30 or 90",
                request.window_days
            ))
        }
    });
    let base = match checked {
        Ok(base) => base,
        Err(e) => {
            return PeopleAnswer {
                very_attacked: Err(SyncError::InvalidInput(e.clone())),
                top_clickers: Err(SyncError::InvalidInput(e)),
            };
        }
    };
    let mut transport = connect(base);
    let very_attacked = read_list(
        &mut transport,
        host,
        ListKind::VeryAttacked,
        request.window_days,
        request.very_attacked_allowance,
    );
    let top_clickers = read_list(
        &mut transport,
        host,
        ListKind::TopClickers,
        request.window_days,
        request.top_clickers_allowance,
    );
    PeopleAnswer {
        very_attacked,
        top_clickers,
    }
}

/// Every page of one list while the allowance lasts: a page with fewer
/// users than asked for, or TAP's total reached, is the last.
fn read_list<T: Transport, H: HostServices>(
    transport: &mut T,
    host: &mut H,
    kind: ListKind,
    window_days: u32,
    allowance: u32,
) -> Result<PeopleList, SyncError> {
    let endpoint = match kind {
        ListKind::VeryAttacked => PEOPLE_VAP,
        ListKind::TopClickers => PEOPLE_TOP_CLICKERS,
    };
    let size = kind.page_size();
    let mut list = PeopleList {
        interval: String::new(),
        people: Vec::new(),
        complete: false,
        requests: 0,
    };
    let mut users_read: u64 = 0;
    let mut unreadable = 0;
    for page in 1.. {
        if list.requests >= allowance {
            host.log(
                LogLevel::Warn,
                "TAP people list only partly read: its request allowance ran out",
                &[
                    ("endpoint", endpoint.to_string()),
                    ("pages", list.requests.to_string()),
                ],
            );
            break;
        }
        list.requests += 1;
        let path = endpoints::people(endpoint, window_days, size, page);
        let response = logged_get(transport, host, &path)
            .map_err(|e| SyncError::Transport(format!("GET {endpoint}: {e}")))?;
        let parsed = match response.status {
            204 => {
                list.complete = true;
                break;
            }
            200..=299 => parse_people_page(&response.body, kind).map_err(|e| {
                SyncError::BadResponse(format!(
                    "{endpoint} answered {} with a body that is not the JSON TAP documents: {e}",
                    response.status
                ))
            })?,
            status => return Err(status_error(endpoint, status, &response.body)),
        };
        if list.interval.is_empty() {
            list.interval = parsed.interval.unwrap_or_default();
        }
        users_read += parsed.users_on_page as u64;
        unreadable += parsed.unreadable;
        list.people
            .extend(parsed.people.into_iter().map(|p| Person {
                emails: p.emails,
                vip: p.vip,
                score: p.score,
            }));
        let last_page = parsed.users_on_page < size as usize
            || parsed.total.is_some_and(|total| users_read >= total);
        if last_page {
            list.complete = true;
            break;
        }
    }
    if unreadable > 0 {
        host.log(
            LogLevel::Warn,
            "TAP people list entries without an address or of another shape were skipped",
            &[
                ("endpoint", endpoint.to_string()),
                ("skipped", unreadable.to_string()),
            ],
        );
    }
    Ok(list)
}
