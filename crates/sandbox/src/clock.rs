//! Time helpers: the sandbox keeps instants as UNIX milliseconds and renders them on the way out.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use time::{Date, OffsetDateTime};

/// Milliseconds in one hour.
pub(crate) const HOUR_MS: i64 = 3_600_000;

/// The current time as UNIX milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// Today's date in UTC (the accommodation partner compares check-in dates with it).
pub(crate) fn today_utc() -> Date {
    OffsetDateTime::now_utc().date()
}

/// UNIX milliseconds of a date-time (for the documented example's fixed timestamps).
pub(crate) fn ms_of(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// Renders UNIX milliseconds as RFC 3339 in UTC with exactly three fractional digits and a `Z`,
/// e.g. `2026-04-01T01:38:06.924Z`, the form of the providers' documented examples.
/// Implements `Display` so serde can write it without an intermediate `String`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rfc3339Ms(pub(crate) i64);

impl fmt::Display for Rfc3339Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        write!(
            f,
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
}

impl serde::Serialize for Rfc3339Ms {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Parses `YYYY-MM-DD`.
pub(crate) fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_milliseconds_and_z() {
        let t = time::macros::datetime!(2026-04-01 01:38:06.924 UTC);
        assert_eq!(Rfc3339Ms(ms_of(t)).to_string(), "2026-04-01T01:38:06.924Z");
        assert_eq!(Rfc3339Ms(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Rfc3339Ms(1_500).to_string(), "1970-01-01T00:00:01.500Z");
    }

    #[test]
    fn parses_dates() {
        assert_eq!(parse_date("2026-11-23").map(|d| d.to_string()), Some("2026-11-23".to_owned()));
        assert_eq!(parse_date("2026-13-01"), None);
        assert_eq!(parse_date("tomorrow"), None);
    }
}
