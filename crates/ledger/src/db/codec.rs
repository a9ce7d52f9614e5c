//! What crosses the boundary to either backend: statements, bind values, times and rows.

use rusqlite::types::Value as SqlValue;
use serde_json::Value;
use sqlx::Row as _;
use sqlx::postgres::{PgRow, Postgres};
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::error::LedgerError;
use crate::sqlite::SqliteRow;
use crate::stored_json::StoredJson;

/// One statement, spelled for each backend. Most statements are spelled the same (`$n`
/// placeholders work on both); see [`Sql::both`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sql<'a> {
    pub sqlite: &'a str,
    pub pg: &'a str,
}

impl<'a> Sql<'a> {
    pub(crate) const fn both(sql: &'a str) -> Sql<'a> {
        Sql { sqlite: sql, pg: sql }
    }
}

/// A bind value. Times and JSON are encoded per backend.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(bool),
    Time(Option<OffsetDateTime>),
    Json(Option<Value>),
    /// JSON already serialized (see [`StoredJson`]): written as its text.
    Stored(Option<StoredJson>),
}

impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(Some(v.to_owned()))
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Arg {
        Arg::Text(Some(v))
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Arg {
        Arg::Text(Some(v.clone()))
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Arg {
        Arg::Text(v.map(str::to_owned))
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Arg {
        Arg::Int(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Arg {
        Arg::Bool(v)
    }
}
impl From<OffsetDateTime> for Arg {
    fn from(v: OffsetDateTime) -> Arg {
        Arg::Time(Some(v))
    }
}
impl From<Option<OffsetDateTime>> for Arg {
    fn from(v: Option<OffsetDateTime>) -> Arg {
        Arg::Time(v)
    }
}
impl From<Option<Value>> for Arg {
    fn from(v: Option<Value>) -> Arg {
        // JSON `null` is stored as SQL NULL: "no error" and "error: null" are one thing.
        Arg::Json(v.filter(|v| !v.is_null()))
    }
}
impl From<Option<StoredJson>> for Arg {
    fn from(v: Option<StoredJson>) -> Arg {
        // As for `Value`: JSON `null` is stored as SQL NULL.
        Arg::Stored(v.filter(|v| !v.is_null()))
    }
}
impl From<Value> for Arg {
    fn from(v: Value) -> Arg {
        Arg::Json(Some(v))
    }
}

/// `args![a, b, …]`: a `Vec<Arg>` from values convertible into [`Arg`].
macro_rules! args {
    ($($v:expr),* $(,)?) => { vec![$($crate::db::Arg::from($v)),*] };
}
pub(crate) use args;

const TIME_TEXT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// A time as SQLite stores it: UTC, microseconds, fixed width, so text order is time order.
/// Written digit by digit: `time`'s formatter walks its format description on every call
/// (~3,500 instructions, and a cancel writes six times); [`TIME_TEXT`] is the same text, and
/// stays the way for years the fixed width cannot hold.
pub(crate) fn time_text(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let Ok(year @ 0..=9999) = u32::try_from(t.year()) else {
        // Formatting with a fixed description only fails on years outside 0000..=9999, which
        // the ledger never sees; fall back to RFC 3339 rather than panic.
        return t.format(TIME_TEXT).unwrap_or_else(|_| t.to_string());
    };
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    for (at, width, n) in [
        (0, 4, year),
        (5, 2, u32::from(u8::from(t.month()))),
        (8, 2, u32::from(t.day())),
        (11, 2, u32::from(t.hour())),
        (14, 2, u32::from(t.minute())),
        (17, 2, u32::from(t.second())),
        (20, 6, t.microsecond()),
    ] {
        let mut n = n;
        for digit in text[at..at + width].iter_mut().rev() {
            *digit = b'0' + (n % 10) as u8;
            n /= 10;
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// The time [`time_text`] wrote. Its own shape is read digit by digit; anything else goes to
/// `time`'s parser, which says what is wrong with it.
pub(crate) fn parse_time_text(s: &str) -> Result<OffsetDateTime, LedgerError> {
    if let Some(t) = parse_fixed_width(s.as_bytes()) {
        return Ok(t);
    }
    PrimitiveDateTime::parse(s, TIME_TEXT)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|e| LedgerError::Corrupt(format!("time {s:?}: {e}")))
}

fn parse_fixed_width(b: &[u8]) -> Option<OffsetDateTime> {
    let shape = b.len() == 27
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[26] == b'Z';
    if !shape {
        return None;
    }
    let number = |at: usize, width: usize| {
        b[at..at + width].iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    let small = |at: usize| number(at, 2).and_then(|n| u8::try_from(n).ok());
    let month = Month::try_from(small(5)?).ok()?;
    let date = Date::from_calendar_date(i32::try_from(number(0, 4)?).ok()?, month, small(8)?).ok()?;
    let time = Time::from_hms_micro(small(11)?, small(14)?, small(17)?, number(20, 6)?).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// UTC with microsecond precision: what both backends store, so a value reads back equal to
/// what was written, whichever the backend.
pub(crate) fn normalize_time(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(UtcOffset::UTC);
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000).unwrap_or(t)
}

/// A result row of either backend.
pub(crate) enum Row {
    Sqlite(SqliteRow),
    Pg(PgRow),
}

pub(crate) fn bind_pg(sql: &str, args: Vec<Arg>) -> sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments> {
    let mut q = sqlx::query(sql);
    for arg in args {
        q = match arg {
            Arg::Text(v) => q.bind(v),
            Arg::Int(v) => q.bind(v),
            Arg::Bool(v) => q.bind(v),
            Arg::Time(v) => q.bind(v.map(normalize_time)),
            Arg::Json(v) => q.bind(v),
            Arg::Stored(v) => q.bind(v.map(sqlx::types::Json)),
        };
    }
    q
}

/// Decoding of one column. PostgreSQL through sqlx's types; SQLite from its storage classes
/// (text, integer, blob; JSON and times are text, booleans integers).
impl Row {
    fn pg<T>(&self, column: &str) -> Result<T, LedgerError>
    where
        T: for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
    {
        match self {
            Row::Pg(r) => r.try_get::<T, _>(column).map_err(|e| LedgerError::Corrupt(format!("column {column}: {e}"))),
            Row::Sqlite(_) => Err(LedgerError::Corrupt(format!("column {column}: not a PostgreSQL row"))),
        }
    }

    /// The SQLite value, `None` for NULL.
    fn lite(&self, column: &str) -> Result<Option<&SqlValue>, LedgerError> {
        match self {
            Row::Sqlite(r) => Ok(Some(r.value(column)?).filter(|v| !matches!(v, SqlValue::Null))),
            Row::Pg(_) => Err(LedgerError::Corrupt(format!("column {column}: not a SQLite row"))),
        }
    }

    pub(crate) fn required<T>(column: &str, value: Option<T>) -> Result<T, LedgerError> {
        value.ok_or_else(|| LedgerError::Corrupt(format!("column {column}: unexpected NULL")))
    }

    fn mismatch(column: &str, want: &str, got: &SqlValue) -> LedgerError {
        LedgerError::Corrupt(format!("column {column}: expected {want}, found {:?}", got.data_type()))
    }

    pub(crate) fn opt_text(&self, column: &str) -> Result<Option<String>, LedgerError> {
        match self {
            Row::Pg(_) => self.pg(column),
            Row::Sqlite(_) => match self.lite(column)? {
                None => Ok(None),
                Some(SqlValue::Text(s)) => Ok(Some(s.clone())),
                Some(other) => Err(Self::mismatch(column, "text", other)),
            },
        }
    }

    pub(crate) fn text(&self, column: &str) -> Result<String, LedgerError> {
        Self::required(column, self.opt_text(column)?)
    }

    pub(crate) fn opt_int(&self, column: &str) -> Result<Option<i64>, LedgerError> {
        match self {
            Row::Pg(_) => self.pg(column),
            Row::Sqlite(_) => match self.lite(column)? {
                None => Ok(None),
                Some(SqlValue::Integer(i)) => Ok(Some(*i)),
                Some(other) => Err(Self::mismatch(column, "integer", other)),
            },
        }
    }

    pub(crate) fn int(&self, column: &str) -> Result<i64, LedgerError> {
        Self::required(column, self.opt_int(column)?)
    }

    pub(crate) fn bool(&self, column: &str) -> Result<bool, LedgerError> {
        match self {
            Row::Pg(_) => self.pg(column),
            Row::Sqlite(_) => Ok(self.int(column)? != 0),
        }
    }

    pub(crate) fn bytes(&self, column: &str) -> Result<Vec<u8>, LedgerError> {
        match self {
            Row::Pg(_) => self.pg(column),
            Row::Sqlite(_) => match Self::required(column, self.lite(column)?)? {
                SqlValue::Blob(b) => Ok(b.clone()),
                other => Err(Self::mismatch(column, "blob", other)),
            },
        }
    }

    pub(crate) fn opt_json(&self, column: &str) -> Result<Option<Value>, LedgerError> {
        match self {
            Row::Pg(_) => self.pg(column),
            Row::Sqlite(_) => self
                .opt_text(column)?
                .map(|text| {
                    serde_json::from_str(&text).map_err(|e| LedgerError::Corrupt(format!("column {column}: {e}")))
                })
                .transpose(),
        }
    }

    /// A JSON column kept as its text (see [`StoredJson`]): checked, not parsed into a tree.
    pub(crate) fn opt_stored_json(&self, column: &str) -> Result<Option<StoredJson>, LedgerError> {
        let corrupt = |e: serde_json::Error| LedgerError::Corrupt(format!("column {column}: {e}"));
        match self {
            Row::Pg(_) => Ok(self.pg::<Option<sqlx::types::Json<StoredJson>>>(column)?.map(|j| j.0)),
            Row::Sqlite(_) => {
                self.opt_text(column)?.map(|text| StoredJson::from_text(text).map_err(corrupt)).transpose()
            }
        }
    }

    pub(crate) fn json(&self, column: &str) -> Result<Value, LedgerError> {
        Self::required(column, self.opt_json(column)?)
    }

    pub(crate) fn opt_time(&self, column: &str) -> Result<Option<OffsetDateTime>, LedgerError> {
        match self {
            Row::Sqlite(_) => self.opt_text(column)?.as_deref().map(parse_time_text).transpose(),
            Row::Pg(r) => r
                .try_get::<Option<OffsetDateTime>, _>(column)
                .map(|t| t.map(normalize_time))
                .map_err(|e| LedgerError::Corrupt(format!("column {column}: {e}"))),
        }
    }

    pub(crate) fn time(&self, column: &str) -> Result<OffsetDateTime, LedgerError> {
        Self::required(column, self.opt_time(column)?)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn time_text_is_fixed_width_utc_and_round_trips() {
        let cases = [
            (datetime!(2026-04-01 01:38:06.924 UTC), "2026-04-01T01:38:06.924000Z"),
            (datetime!(2026-04-01 03:38:06 +02:00), "2026-04-01T01:38:06.000000Z"),
            (datetime!(2026-04-01 01:38:06.123456789 UTC), "2026-04-01T01:38:06.123456Z"),
        ];
        for (t, want) in cases {
            assert_eq!(time_text(t), want);
            assert_eq!(parse_time_text(want).unwrap(), normalize_time(t));
        }
    }

    #[test]
    fn time_text_is_what_the_format_description_writes_and_reads() {
        // ~20,000 instants from 1970 to 9999, each second and microsecond field exercised.
        let step = time::Duration::new(15_778_463, 123_457_000);
        let mut next = Some(datetime!(1970-01-01 00:00:00 UTC));
        while let Some(t) = next {
            let text = time_text(t);
            assert_eq!(text, t.format(TIME_TEXT).unwrap());
            assert_eq!(parse_time_text(&text).unwrap(), normalize_time(t));
            let described = PrimitiveDateTime::parse(&text, TIME_TEXT).ok().map(PrimitiveDateTime::assume_utc);
            assert_eq!(parse_fixed_width(text.as_bytes()), described);
            next = t.checked_add(step);
        }
        for bad in [
            "2026-02-30T00:00:00.000000Z",
            "2026-13-01T00:00:00.000000Z",
            "2026-01-01T24:00:00.000000Z",
            "2026-01-01T00:60:00.000000Z",
            "2026-01-01T00:00:60.000000Z",
            "2026-01-01T00:00:00.00000aZ",
            "2026-01-01T00:00:00.000000z",
            "+026-01-01T00:00:00.000000Z",
        ] {
            assert!(parse_fixed_width(bad.as_bytes()).is_none(), "{bad}");
            assert!(matches!(parse_time_text(bad), Err(LedgerError::Corrupt(_))), "{bad}");
        }
    }

    #[test]
    fn time_text_orders_like_time() {
        let times = [
            datetime!(2026-04-01 01:38:06 UTC),
            datetime!(2026-04-01 01:38:06.5 UTC),
            datetime!(2026-04-01 01:38:06.924 UTC),
            datetime!(2026-04-01 01:38:07 UTC),
            datetime!(2026-12-31 23:59:59.999999 UTC),
        ];
        for pair in times.windows(2) {
            assert!(time_text(pair[0]) < time_text(pair[1]), "{pair:?}");
        }
    }

    #[test]
    fn corrupt_time_text_is_an_error() {
        assert!(matches!(parse_time_text("2026-04-01 01:38:06"), Err(LedgerError::Corrupt(_))));
    }
}
