//! The time formats TAP reads and writes, and ISO-8601 intervals.

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

/// Why an `interval`, `sinceTime` or duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TimeSyntaxError(String);

/// Reads an ISO-8601 instant as TAP accepts it: `Z`, `+00:00` or `-0700`
/// offsets, with or without fractional seconds.
pub fn parse_instant(text: &str) -> Result<OffsetDateTime, TimeSyntaxError> {
    let normalised = insert_offset_colon(text.trim());
    OffsetDateTime::parse(&normalised, &Rfc3339)
        .map(|t| t.to_offset(UtcOffset::UTC))
        .map_err(|e| {
            let hint = if text.contains(' ') {
                " (a '+' in an offset must be sent URL-encoded as %2B)"
            } else {
                ""
            };
            TimeSyntaxError(format!(
                "'{text}' is not an ISO-8601 date-time such as 2016-05-01T12:00:00Z: {e}{hint}"
            ))
        })
}

/// RFC 3339 wants `-07:00`; ISO-8601 also allows `-0700`, which TAP's
/// documentation uses in its own examples.
fn insert_offset_colon(text: &str) -> String {
    let bytes = text.as_bytes();
    let n = bytes.len();
    let ends_in_compact_offset = n > 5
        && matches!(bytes[n - 5], b'+' | b'-')
        && bytes[n - 4..].iter().all(u8::is_ascii_digit)
        && text[..n - 5].contains('T');
    if ends_in_compact_offset {
        format!("{}:{}", &text[..n - 2], &text[n - 2..])
    } else {
        text.to_owned()
    }
}

/// Reads an ISO-8601 duration of the form `P[nD][T[nH][nM][nS]]`, numbers
/// possibly fractional (`PT30M`, `PT1H`, `PT45.5S`, `P1D`). Years, months
/// and weeks are refused: their length is not fixed and TAP windows never
/// need them.
pub fn parse_duration(text: &str) -> Result<Duration, TimeSyntaxError> {
    let fail = |why: &str| {
        TimeSyntaxError(format!(
            "'{text}' is not an ISO-8601 duration such as PT30M: {why}"
        ))
    };
    let rest = text
        .strip_prefix('P')
        .ok_or_else(|| fail("it must start with P"))?;
    let mut total_seconds = 0f64;
    let mut in_time_part = false;
    let mut number = String::new();
    let mut saw_component = false;
    for c in rest.chars() {
        match c {
            'T' if !in_time_part && number.is_empty() => in_time_part = true,
            '0'..='9' | '.' | ',' => number.push(if c == ',' { '.' } else { c }),
            unit => {
                let value: f64 = number
                    .parse()
                    .map_err(|_| fail(&format!("no number before '{unit}'")))?;
                let unit_seconds = match (in_time_part, unit) {
                    (false, 'D') => 86_400.0,
                    (true, 'H') => 3_600.0,
                    (true, 'M') => 60.0,
                    (true, 'S') => 1.0,
                    _ => return Err(fail(&format!("unsupported unit '{unit}'"))),
                };
                total_seconds += value * unit_seconds;
                number.clear();
                saw_component = true;
            }
        }
    }
    if !number.is_empty() {
        return Err(fail("a number has no unit"));
    }
    if !saw_component {
        return Err(fail("it has no components"));
    }
    Duration::checked_seconds_f64(total_seconds).ok_or_else(|| fail("it is too long"))
}

/// Reads an ISO-8601 interval in any of the forms TAP accepts:
/// `start/end`, `duration/end` and `start/duration`.
pub fn parse_interval(text: &str) -> Result<(OffsetDateTime, OffsetDateTime), TimeSyntaxError> {
    let Some((left, right)) = text.split_once('/') else {
        return Err(TimeSyntaxError(format!(
            "'{text}' is not an ISO-8601 interval: expected start/end, duration/end or start/duration, e.g. 2016-05-01T12:00:00Z/2016-05-01T13:00:00Z"
        )));
    };
    match (left.starts_with('P'), right.starts_with('P')) {
        (false, false) => Ok((parse_instant(left)?, parse_instant(right)?)),
        (true, false) => {
            let end = parse_instant(right)?;
            let start = end
                .checked_sub(parse_duration(left)?)
                .ok_or_else(|| out_of_range(text))?;
            Ok((start, end))
        }
        (false, true) => {
            let start = parse_instant(left)?;
            let end = start
                .checked_add(parse_duration(right)?)
                .ok_or_else(|| out_of_range(text))?;
            Ok((start, end))
        }
        (true, true) => Err(TimeSyntaxError(format!(
            "'{text}' is not an ISO-8601 interval: two durations give no position in time"
        ))),
    }
}

fn out_of_range(text: &str) -> TimeSyntaxError {
    TimeSyntaxError(format!("'{text}' reaches outside the representable dates"))
}

/// Event times as TAP writes them: `2021-04-20T21:08:13.000Z`. Written by
/// hand rather than through `time`'s format descriptions: every served
/// record carries several, and the generic formatter dominated the cost
/// of loading a big tenant in debug builds.
pub fn format_event_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// `queryEndTime` as TAP writes it: `2023-06-28T09:32:00Z` (no fraction).
pub fn format_query_end(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Rounds to the nearest whole minute, half a minute rounding up, as TAP
/// does for the end of `sinceTime` and `sinceSeconds` windows.
pub fn round_to_minute(t: OffsetDateTime) -> OffsetDateTime {
    let nanos = t.unix_timestamp_nanos();
    let minute = 60_000_000_000i128;
    let rounded = (nanos + minute / 2).div_euclid(minute) * minute;
    OffsetDateTime::from_unix_timestamp_nanos(rounded).unwrap_or(t)
}

/// Milliseconds since the epoch, the simulator's index key.
pub fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn instants_accept_every_offset_spelling() {
        let utc = datetime!(2016-05-01 12:00:00 UTC);
        assert_eq!(parse_instant("2016-05-01T12:00:00Z").unwrap(), utc);
        assert_eq!(parse_instant("2016-05-01T12:00:00+00:00").unwrap(), utc);
        assert_eq!(parse_instant("2016-05-01T05:00:00-0700").unwrap(), utc);
        assert_eq!(
            parse_instant("2016-05-01T12:00:00.250Z").unwrap(),
            utc + Duration::milliseconds(250)
        );
    }

    #[test]
    fn unencoded_plus_is_explained() {
        let err = parse_instant("2016-05-01T12:00:00 00:00").unwrap_err();
        assert!(err.to_string().contains("%2B"), "{err}");
    }

    #[test]
    fn durations_read_hours_minutes_seconds_and_fractions() {
        assert_eq!(parse_duration("PT30M").unwrap(), Duration::minutes(30));
        assert_eq!(parse_duration("PT1H").unwrap(), Duration::hours(1));
        assert_eq!(parse_duration("PT45S").unwrap(), Duration::seconds(45));
        assert_eq!(parse_duration("PT1H30M").unwrap(), Duration::minutes(90));
        assert_eq!(
            parse_duration("PT0.5S").unwrap(),
            Duration::milliseconds(500)
        );
        assert_eq!(parse_duration("P1D").unwrap(), Duration::days(1));
        assert!(parse_duration("P1M").is_err());
        assert!(parse_duration("PT").is_err());
        assert!(parse_duration("PT5").is_err());
        assert!(parse_duration("30M").is_err());
    }

    #[test]
    fn intervals_read_all_three_forms() {
        let start = datetime!(2016-05-01 12:00:00 UTC);
        let end = datetime!(2016-05-01 12:30:00 UTC);
        assert_eq!(
            parse_interval("2016-05-01T12:00:00Z/2016-05-01T12:30:00Z").unwrap(),
            (start, end)
        );
        assert_eq!(
            parse_interval("PT30M/2016-05-01T12:30:00Z").unwrap(),
            (start, end)
        );
        assert_eq!(
            parse_interval("2016-05-01T05:00:00-0700/PT30M").unwrap(),
            (start, end)
        );
        assert!(parse_interval("PT30M/PT30M").is_err());
        assert!(parse_interval("2016-05-01T12:00:00Z").is_err());
    }

    #[test]
    fn minute_rounding_is_to_the_nearest_minute() {
        assert_eq!(
            round_to_minute(datetime!(2023-06-28 09:31:29 UTC)),
            datetime!(2023-06-28 09:31:00 UTC)
        );
        assert_eq!(
            round_to_minute(datetime!(2023-06-28 09:31:30 UTC)),
            datetime!(2023-06-28 09:32:00 UTC)
        );
    }

    #[test]
    fn formats_match_tap() {
        let t = datetime!(2021-04-20 21:08:13.5 UTC);
        assert_eq!(format_event_time(t), "2021-04-20T21:08:13.500Z");
        assert_eq!(format_query_end(t), "2021-04-20T21:08:13Z");
    }
}
