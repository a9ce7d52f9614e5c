use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const MIN_UNIX: f64 = -62_135_596_800.0; // 0001-01-01T00:00:00Z
const MAX_UNIX: f64 = 253_402_300_799.0; // 9999-12-31T23:59:59Z

/// A provider timestamp in any documented form: an RFC 3339 string, or UNIX seconds as a JSON
/// number (integer or fractional). Normalized to UTC. `None` for anything else.
pub fn parse_timestamp(value: &Value) -> Option<OffsetDateTime> {
    match value {
        Value::String(s) => OffsetDateTime::parse(s.trim(), &Rfc3339).ok().map(|t| t.to_offset(time::UtcOffset::UTC)),
        Value::Number(n) => {
            if let Some(secs) = n.as_i64() {
                return OffsetDateTime::from_unix_timestamp(secs).ok();
            }
            // Years 1..=9999 only: anything outside is not a timestamp a provider meant.
            let approx = n.as_f64()?;
            if !(MIN_UNIX..=MAX_UNIX).contains(&approx) {
                return None;
            }
            // From the number's text, not through f64, so `.201` stays exactly 201 ms.
            let nanos = decimal_nanos(&n.to_string()).unwrap_or_else(|| (approx * 1e9).round() as i128);
            OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
        }
        _ => None,
    }
}

/// `"-12.5"` → -12_500_000_000 ns, for plain decimals with at most 9 fraction digits.
fn decimal_nanos(text: &str) -> Option<i128> {
    let (negative, digits) = text.strip_prefix('-').map_or((false, text), |rest| (true, rest));
    let (whole, fraction) = digits.split_once('.')?;
    if fraction.len() > 9 || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i128 = whole.parse().ok()?;
    let fraction: i128 = format!("{fraction:0<9}").parse().ok()?;
    let nanos = whole * 1_000_000_000 + fraction;
    Some(if negative { -nanos } else { nanos })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    #[test]
    fn rfc3339_and_unix_seconds() {
        assert_eq!(parse_timestamp(&json!("2026-04-01T01:38:06.924Z")), Some(datetime!(2026-04-01 01:38:06.924 UTC)));
        assert_eq!(parse_timestamp(&json!("2026-04-01T03:38:06+02:00")), Some(datetime!(2026-04-01 01:38:06 UTC)));
        assert_eq!(parse_timestamp(&json!(1775007486)), Some(datetime!(2026-04-01 01:38:06 UTC)));
        assert_eq!(parse_timestamp(&json!(1775007486.5)), Some(datetime!(2026-04-01 01:38:06.5 UTC)));
        assert_eq!(parse_timestamp(&json!(1770835572.201)), Some(datetime!(2026-02-11 18:46:12.201 UTC)));
    }

    #[test]
    fn garbage_is_none() {
        for v in [json!(null), json!("yesterday"), json!(1e300), json!(u64::MAX), json!([]), json!(true)] {
            assert_eq!(parse_timestamp(&v), None, "{v}");
        }
    }
}
