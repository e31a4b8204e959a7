//! ThreatQ's one date format.

use time::{OffsetDateTime, UtcOffset};

/// `YYYY-MM-DD HH:MM:SS` in UTC: the only date format ThreatQ accepts
/// (docs/threatq-api.md, "Conventions"). Sub-seconds are dropped.
pub fn format_threatq_date(at: OffsetDateTime) -> String {
    let utc = at.to_offset(UtcOffset::UTC);
    // Written by hand rather than with a format description so there is no
    // formatting error path to handle for an ordinary timestamp.
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn dates_are_written_in_utc_without_t_zone_or_fraction() {
        assert_eq!(
            format_threatq_date(datetime!(2024-03-05 01:02:03.999 +02:00)),
            "2024-03-04 23:02:03"
        );
        assert_eq!(
            format_threatq_date(datetime!(0999-12-31 23:59:59 UTC)),
            "0999-12-31 23:59:59"
        );
    }
}
