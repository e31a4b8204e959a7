//! The SIEM endpoints: parameters, TAP's window rules and the response.

use std::fmt::Write as _;

use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::drift;
use crate::faults::Drift;
use crate::params::Params;
use crate::records::{ThreatStatus, ThreatType};
use crate::store::{SiemArray, Store, ThreatFilter, parse_threat_status, parse_threat_type};
use crate::times::{
    format_event_time, format_query_end, parse_instant, parse_interval, round_to_minute, unix_ms,
};

/// TAP's own 400 texts (docs/tap-api.md, "Status codes and error texts").
pub const TOO_SHORT: &str =
    "The requested interval is too short. Requests must be for at least 30.00s of data";
pub const TOO_FAR_IN_THE_PAST: &str = "The requested start time is too far into the past. Requests for information up to 7.00d are accepted";
pub const STILL_CURRENT: &str = "The requested interval is still current.";
/// Inferred by analogy with the too-short text; not seen from real TAP.
pub const TOO_LONG: &str =
    "The requested interval is too long. Requests must be for at most 1.00h of data";
pub const MISSING_WINDOW: &str = "The request is missing a mandatory request parameter: exactly one of interval, sinceTime or sinceSeconds must be supplied.";

pub const MIN_WINDOW: Duration = Duration::seconds(30);
pub const MAX_SIEM_WINDOW: Duration = Duration::hours(1);
pub const MAX_HISTORY: Duration = Duration::days(7);

/// The SIEM endpoints and the arrays each returns.
pub fn arrays_of(endpoint: &str) -> Option<&'static [SiemArray]> {
    use SiemArray::*;
    Some(match endpoint {
        "all" => &[
            ClicksBlocked,
            ClicksPermitted,
            MessagesBlocked,
            MessagesDelivered,
        ],
        "issues" => &[ClicksPermitted, MessagesDelivered],
        "clicks/blocked" => &[ClicksBlocked],
        "clicks/permitted" => &[ClicksPermitted],
        "messages/blocked" => &[MessagesBlocked],
        "messages/delivered" => &[MessagesDelivered],
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Syslog,
}

/// A SIEM request that passed TAP's rules.
#[derive(Debug, Clone)]
pub struct SiemRequest {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub query_end: String,
    pub format: Format,
    pub filter: ThreatFilter,
}

/// Checks a window against TAP's rules, in the order: reversed, too short,
/// too long, too old, still current. Reversed windows get an empty body,
/// as on real TAP.
pub fn check_window(
    start: OffsetDateTime,
    end: OffsetDateTime,
    now: OffsetDateTime,
    max_len: Duration,
    too_long_text: &str,
) -> Result<(), String> {
    if end < start {
        return Err(String::new());
    }
    if end - start < MIN_WINDOW {
        return Err(TOO_SHORT.to_owned());
    }
    if end - start > max_len {
        return Err(too_long_text.to_owned());
    }
    if start < now - MAX_HISTORY {
        return Err(TOO_FAR_IN_THE_PAST.to_owned());
    }
    if end > now {
        return Err(STILL_CURRENT.to_owned());
    }
    Ok(())
}

/// Reads and checks a SIEM request's parameters; `Err` holds the 400 body.
pub fn parse_request(params: &Params, now: OffsetDateTime) -> Result<SiemRequest, String> {
    let format = match params.single("format")? {
        None => Format::Syslog,
        Some(f) if f.eq_ignore_ascii_case("json") => Format::Json,
        Some(f) if f.eq_ignore_ascii_case("syslog") => Format::Syslog,
        Some(other) => {
            return Err(format!(
                "The format '{other}' is not supported. Use format=json or format=syslog."
            ));
        }
    };
    let interval = params.single("interval")?;
    let since_time = params.single("sinceTime")?;
    let since_seconds = params.single("sinceSeconds")?;
    let rounded_now = round_to_minute(now);
    let (start, end, query_end) = match (interval, since_time, since_seconds) {
        (Some(interval), None, None) => {
            let (start, end) = parse_interval(interval).map_err(|e| e.to_string())?;
            (start, end, end)
        }
        (None, Some(since), None) => {
            let start = parse_instant(since).map_err(|e| e.to_string())?;
            (start, rounded_now, rounded_now)
        }
        (None, None, Some(seconds)) => {
            let seconds: u32 = seconds.parse().map_err(|_| {
                format!(
                    "sinceSeconds must be a whole number of seconds, such as 300; got '{seconds}'"
                )
            })?;
            let start = rounded_now - Duration::seconds(i64::from(seconds));
            (start, rounded_now, rounded_now)
        }
        _ => return Err(MISSING_WINDOW.to_owned()),
    };
    // The server picks the end of sinceTime / sinceSeconds windows itself;
    // rounding may put it up to 30 s ahead, which TAP does not refuse.
    let still_current_after = if interval.is_some() {
        now
    } else {
        now.max(end)
    };
    check_window(start, end, still_current_after, MAX_SIEM_WINDOW, TOO_LONG)?;
    Ok(SiemRequest {
        start,
        end,
        query_end: format_query_end(query_end),
        format,
        filter: parse_filter(params)?,
    })
}

fn parse_filter(params: &Params) -> Result<ThreatFilter, String> {
    let types = params.all("threatType");
    let statuses = params.all("threatStatus");
    let types = if types.is_empty() {
        None
    } else {
        Some(
            types
                .into_iter()
                .map(|t| {
                    parse_threat_type(t).ok_or_else(|| {
                        format!("Unknown threatType '{t}'. Accepted values: url, attachment, messageText.")
                    })
                })
                .collect::<Result<Vec<ThreatType>, String>>()?,
        )
    };
    let statuses = if statuses.is_empty() {
        None
    } else {
        Some(
            statuses
                .into_iter()
                .map(|s| {
                    parse_threat_status(s).ok_or_else(|| {
                        format!("Unknown threatStatus '{s}'. Accepted values: active, cleared, falsePositive.")
                    })
                })
                .collect::<Result<Vec<ThreatStatus>, String>>()?,
        )
    };
    Ok(ThreatFilter { types, statuses })
}

/// A rendered SIEM answer.
pub struct SiemBody {
    pub records: usize,
    pub text: String,
}

/// Writes the JSON response: `queryEndTime` and the endpoint's arrays,
/// from records stored as text (or re-spelled when drift is on).
pub fn render_json(
    store: &Store,
    arrays: &[SiemArray],
    request: &SiemRequest,
    now: OffsetDateTime,
    drift: Drift,
) -> SiemBody {
    let (start_ms, end_ms, now_ms) = (unix_ms(request.start), unix_ms(request.end), unix_ms(now));
    let mut text = String::with_capacity(1024);
    let mut records = 0;
    let _ = write!(text, "{{\"queryEndTime\":\"{}\"", request.query_end);
    for &array in arrays {
        let _ = write!(text, ",\"{}\":[", array.key());
        let mut first = true;
        for record in store
            .siem_window(array, start_ms, end_ms, now_ms)
            .filter(|r| request.filter.matches(&r.tags))
        {
            if !first {
                text.push(',');
            }
            first = false;
            records += 1;
            if drift.is_none() {
                text.push_str(&record.json);
            } else {
                text.push_str(&drifted(&record.json, drift));
            }
        }
        text.push(']');
    }
    text.push('}');
    SiemBody { records, text }
}

fn drifted(json: &str, drift: Drift) -> String {
    match serde_json::from_str::<Value>(json) {
        Ok(mut value) => {
            drift::apply(drift, &mut value);
            value.to_string()
        }
        Err(_) => json.to_owned(),
    }
}

/// Writes the syslog response: one RFC 5424 line per record, the data in
/// structured-data and the message part empty, CRLF-separated. Its only
/// job is to look nothing like JSON, so a client that forgot
/// `format=json` fails loudly instead of reading nothing.
pub fn render_syslog(
    store: &Store,
    arrays: &[SiemArray],
    request: &SiemRequest,
    now: OffsetDateTime,
) -> SiemBody {
    let (start_ms, end_ms, now_ms) = (unix_ms(request.start), unix_ms(request.end), unix_ms(now));
    let mut text = String::new();
    let mut records = 0;
    for &array in arrays {
        for record in store
            .siem_window(array, start_ms, end_ms, now_ms)
            .filter(|r| request.filter.matches(&r.tags))
        {
            records += 1;
            let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&record.json) else {
                continue;
            };
            let _ = write!(
                text,
                "<14>1 {} tap-api-v2.proofpoint.com tap - {} [tap@0",
                format_event_time(now),
                array.key()
            );
            for (key, value) in fields {
                let value = match value {
                    Value::String(s) => s,
                    Value::Null => continue,
                    other => other.to_string(),
                };
                let escaped = value
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace(']', "\\]");
                let _ = write!(text, " {key}=\"{escaped}\"");
            }
            text.push_str("] \r\n");
        }
    }
    SiemBody { records, text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2024-03-25 20:25:40 UTC);

    fn request(query: &str) -> Result<SiemRequest, String> {
        parse_request(&Params::parse(Some(query)), NOW)
    }

    #[test]
    fn since_seconds_ends_at_now_rounded_to_the_minute() {
        let r = request("format=json&sinceSeconds=300").unwrap();
        assert_eq!(r.end, datetime!(2024-03-25 20:26:00 UTC));
        assert_eq!(r.start, datetime!(2024-03-25 20:21:00 UTC));
        assert_eq!(r.query_end, "2024-03-25T20:26:00Z");
        // The rounded end lies after "now", yet TAP serves it.
        assert!(r.end > NOW);
    }

    #[test]
    fn interval_end_becomes_query_end_time_without_fraction() {
        let r =
            request("format=JSON&interval=2024-03-25T19:00:00Z/2024-03-25T19:59:59.750Z").unwrap();
        assert_eq!(r.query_end, "2024-03-25T19:59:59Z");
        assert_eq!(r.format, Format::Json);
    }

    #[test]
    fn missing_format_means_syslog() {
        assert_eq!(request("sinceSeconds=60").unwrap().format, Format::Syslog);
        assert!(request("format=xml&sinceSeconds=60").is_err());
    }

    #[test]
    fn filters_are_repeatable_and_unknown_values_refused() {
        let r = request("format=json&sinceSeconds=60&threatType=url&threatType=ATTACHMENT&threatStatus=falsePositive").unwrap();
        assert_eq!(
            r.filter.types,
            Some(vec![ThreatType::Url, ThreatType::Attachment])
        );
        assert_eq!(r.filter.statuses, Some(vec![ThreatStatus::FalsePositive]));
        assert!(request("format=json&sinceSeconds=60&threatType=pdf").is_err());
    }

    #[test]
    fn since_seconds_must_be_a_number() {
        let err = request("format=json&sinceSeconds=five").unwrap_err();
        assert!(err.contains("whole number"), "{err}");
    }
}
