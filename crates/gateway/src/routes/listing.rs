//! The rules every cursor-paginated listing's query shares (SPEC §2: `GET /v1/cancellations`,
//! SPEC §8: `GET /v1/events`): only the documented parameters, each at most once, `limit` from 1
//! to 100 (default 20), `starting_after` as given. Each listing checks its own filters; an
//! unknown or repeated parameter is a `400` naming it, never a silently ignored one.

use crate::error::ApiError;

/// `limit` when the query has none.
pub(crate) const DEFAULT_LIMIT: u32 = 20;

/// The checked `(parameter, value)` pairs of `query`, each `parameter` one of `params` (as the
/// `&'static str` of that list, so a listing can `match` on it), none twice. `unknown` says what
/// the listing takes, for the caller who sent something else.
pub(crate) fn params(
    query: Option<&str>,
    params: &'static [&'static str],
    unknown: &'static str,
) -> Result<Vec<(&'static str, String)>, ApiError> {
    let mut seen = vec![false; params.len()];
    let mut pairs = Vec::new();
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let Some(index) = params.iter().position(|p| *p == name) else {
            return Err(ApiError::invalid(name, unknown));
        };
        let param = params[index];
        if std::mem::replace(&mut seen[index], true) {
            return Err(ApiError::invalid(param, format!("`{param}` is given more than once.")));
        }
        pairs.push((param, value.into_owned()));
    }
    Ok(pairs)
}

/// The page size `value` asks for: a whole number from 1 to 100.
pub(crate) fn limit(value: &str) -> Result<u32, ApiError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=100).contains(n))
        .ok_or_else(|| ApiError::invalid("limit", "`limit` is a whole number from 1 to 100."))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: [&str; 3] = ["limit", "starting_after", "type"];

    #[test]
    fn only_documented_parameters_each_once() {
        let got = params(Some("limit=5&type=a%20b"), &PARAMS, "takes limit").unwrap();
        assert_eq!(got, vec![("limit", "5".to_owned()), ("type", "a b".to_owned())]);
        assert!(params(None, &PARAMS, "").unwrap().is_empty());
        let unknown = params(Some("color=red"), &PARAMS, "takes limit").unwrap_err();
        assert_eq!(unknown.status(), http::StatusCode::BAD_REQUEST);
        assert!(params(Some("limit=1&limit=2"), &PARAMS, "").is_err(), "repeated");
    }

    #[test]
    fn limit_is_one_to_a_hundred() {
        assert_eq!(limit("1").unwrap(), 1);
        assert_eq!(limit("100").unwrap(), 100);
        for bad in ["0", "101", "-1", "ten", "", "1.5"] {
            assert!(limit(bad).is_err(), "{bad}");
        }
    }
}
