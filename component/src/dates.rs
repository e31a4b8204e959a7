//! The one place that reads TAP timestamps and writes ThreatQ dates.

use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// ThreatQ's `YYYY-MM-DD HH:MM:SS` (always UTC).
const THREATQ_DATE: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

/// A timestamp without an offset, which some TAP samples carry; TAP states
/// that all its timestamps are UTC, so such a value is read as UTC.
const NAIVE_UTC: &[BorrowedFormatItem<'static>] = format_description!(
    version = 2,
    "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
);

/// Reads a TAP timestamp: RFC 3339 (`2021-04-20T21:08:13.000Z`,
/// `...+00:00`), or the same without an offset, taken as UTC.
pub fn parse_tap_time(raw: &str) -> Result<OffsetDateTime, String> {
    let trimmed = raw.trim();
    if let Ok(t) = OffsetDateTime::parse(trimmed, &Rfc3339) {
        return Ok(t.to_offset(UtcOffset::UTC));
    }
    PrimitiveDateTime::parse(trimmed, NAIVE_UTC)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|_| format!("`{raw}` is not an ISO 8601 / RFC 3339 timestamp"))
}

/// Reads a window bound, which the contract requires to be RFC 3339.
pub fn parse_rfc3339(raw: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(raw.trim(), &Rfc3339)
        .map(|t| t.to_offset(UtcOffset::UTC))
        .map_err(|e| {
            format!("`{raw}` is not an RFC 3339 timestamp such as 2026-11-28T10:00:00Z ({e})")
        })
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, the form ThreatQ stores.
pub fn threatq_date(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(THREATQ_DATE)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// An RFC 3339 UTC timestamp ending in `Z`, as TAP's `interval` expects;
/// fractional seconds appear only when present.
pub fn rfc3339_utc(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Milliseconds since the Unix epoch, saturating far outside any real date.
pub fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_times_with_millis_offsets_or_no_offset_all_read_as_utc() {
        let z = parse_tap_time("2021-04-20T21:08:13.000Z").unwrap();
        let plus = parse_tap_time("2021-04-20T23:08:13+02:00").unwrap();
        let naive = parse_tap_time("2021-04-20T21:08:13").unwrap();
        assert_eq!(z, plus);
        assert_eq!(z, naive);
        assert!(parse_tap_time("yesterday").is_err());
    }

    #[test]
    fn threatq_dates_are_utc_without_fraction() {
        let t = parse_tap_time("2021-04-20T23:08:13.999+02:00").unwrap();
        assert_eq!(threatq_date(t), "2021-04-20 21:08:13");
    }

    #[test]
    fn interval_bounds_are_written_with_z() {
        let t = parse_rfc3339("2026-11-28T11:00:00+01:00").unwrap();
        assert_eq!(rfc3339_utc(t), "2026-11-28T10:00:00Z");
    }

    #[test]
    fn unix_ms_counts_milliseconds() {
        let t = parse_tap_time("1970-01-01T00:00:01.500Z").unwrap();
        assert_eq!(unix_ms(t), 1500);
    }
}
