//! The provider-independent part of classifying an upstream answer to a cancel.
//!
//! Every adapter reads its provider's body its own way, but what a 429, a 5xx or a redirect
//! means does not depend on the provider, and neither does how much of a provider's text is kept.
//! Adapters call these helpers with the status they consider effective (a provider's body may
//! overrule the HTTP line, see SPEC §4).

use serde::{Deserialize, Deserializer};

use crate::{ErrorCode, HttpResponse, Outcome, Refusal, RefusalReason, UPSTREAM_TEXT_LIMIT, UpstreamFault};

/// What the provider itself said about one answer: its error code and message, kept verbatim
/// (only cut to [`UPSTREAM_TEXT_LIMIT`] bytes, so a hostile body cannot bloat records and logs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamText {
    pub code: Option<String>,
    pub message: Option<String>,
}

impl UpstreamText {
    pub fn new(code: Option<String>, message: Option<String>) -> Self {
        Self { code: code.map(bounded), message: message.map(bounded) }
    }

    pub fn refusal(&self, refusal: Refusal) -> Outcome {
        Outcome::Refused(refusal.with_upstream(self.code.clone(), self.message.clone()))
    }

    pub fn refused(&self, code: ErrorCode, detail: impl Into<String>) -> Outcome {
        self.refusal(Refusal::new(code, detail))
    }

    pub fn not_cancellable(&self, reason: RefusalReason, detail: impl Into<String>) -> Outcome {
        self.refusal(Refusal::not_cancellable(reason, detail))
    }

    pub fn fault(&self, fault: UpstreamFault) -> Outcome {
        Outcome::Fault(fault.with_upstream(self.code.clone(), self.message.clone()))
    }

    pub fn needs_review(&self, detail: impl Into<String>) -> Outcome {
        Outcome::NeedsReview {
            detail: detail.into(),
            upstream_code: self.code.clone(),
            upstream_message: self.message.clone(),
        }
    }
}

/// The outcome a status decides on its own, whatever the provider: 429, 5xx (510 included), and
/// the statuses that are neither a success nor an error (1xx, 3xx). `None` for 2xx and 4xx, which
/// each provider reads its own way.
///
/// `status` is the effective status; `response` is only read for `Retry-After`.
pub fn by_status(status: u16, response: &HttpResponse, upstream: &UpstreamText) -> Option<Outcome> {
    match status {
        429 => Some(Outcome::RateLimited {
            retry_after: response.retry_after(),
            upstream_message: upstream.message.clone(),
        }),
        500..=599 => Some(upstream.fault(UpstreamFault::transient(format!(
            "The provider failed with HTTP {status} before cancelling; the cancel can be sent again."
        )))),
        200..=299 | 400..=499 => None,
        // A 303 after a POST can mean "done, look there": the provider may have acted.
        _ => Some(upstream.fault(UpstreamFault::unknown_effect(format!(
            "The provider answered HTTP {status}, which is neither a success nor an error; it may have cancelled."
        )))),
    }
}

/// A success status whose body cannot be read: the provider may well have cancelled.
pub fn unreadable_success(status: u16, upstream: &UpstreamText) -> Outcome {
    upstream.fault(UpstreamFault::unknown_effect(format!(
        "The provider answered HTTP {status} with a body the gateway cannot read; it may have cancelled."
    )))
}

/// The provider refused our own credentials: an operator has to fix the account.
pub fn misconfigured(status: u16, upstream: &UpstreamText) -> Outcome {
    upstream.refused(
        ErrorCode::ProviderMisconfigured,
        format!("The provider refused the gateway's credentials for this account (HTTP {status})."),
    )
}

/// A 4xx the provider's documentation does not explain.
pub fn unexpected_client_error(status: u16, upstream: &UpstreamText) -> Outcome {
    if status == 422 {
        return upstream.refused(ErrorCode::UpstreamRejected, "The provider rejected the cancel request as invalid.");
    }
    upstream
        .refused(ErrorCode::UpstreamError, format!("The provider refused the cancel with an unexpected HTTP {status}."))
}

/// A body that is short plain text (or a bare JSON string), taken as the provider's message, for
/// providers that answer errors without JSON. `None` for empty, cut, non-UTF-8, markup, broken JSON
/// or page-sized bodies: those are kept in the record, but are not a message anyone wrote for us.
pub fn text_message(response: &HttpResponse) -> Option<String> {
    if response.truncated || response.body.len() > UPSTREAM_TEXT_LIMIT {
        return None;
    }
    let text = std::str::from_utf8(&response.body).ok()?.trim();
    // A JSON body is read by the adapter; only a bare JSON string is a message of its own.
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        return value.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    }
    // Markup is a page and a broken `{`/`[` is cut JSON: neither is a message.
    if text.is_empty()
        || text.starts_with(['<', '{', '['])
        || text.chars().any(|c| c.is_control() && !c.is_whitespace())
    {
        return None;
    }
    Some(text.to_owned())
}

/// The body as `T` when it is complete JSON *and* an object. (A serde struct would also accept a
/// JSON array positionally, and `["cancelled"]` is not a reservation.)
pub fn json_object<T: serde::de::DeserializeOwned>(response: &HttpResponse) -> Option<T> {
    // From the response's kept JSON (read once for the classification and the record), borrowed.
    let value = response.json_ref()?;
    if !value.is_object() {
        return None;
    }
    T::deserialize(&*value).ok()
}

/// `value` as `T` when it is a JSON object of that shape.
pub fn from_object<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Option<T> {
    if !value.is_object() {
        return None;
    }
    T::deserialize(value).ok()
}

/// `s` cut to at most [`UPSTREAM_TEXT_LIMIT`] bytes, at a character boundary.
pub fn bounded(mut s: String) -> String {
    if s.len() > UPSTREAM_TEXT_LIMIT {
        let mut end = UPSTREAM_TEXT_LIMIT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// For `#[serde(default, deserialize_with = "lenient")]` on an `Option` field of a provider's wire
/// struct: a field of an unexpected type becomes `None` instead of failing the whole body, so one
/// odd field never hides what the rest of the answer says.
pub fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(T::deserialize(value).ok())
}

/// Whether a provider's status word says cancelled: `cancelled` or `canceled`, in any case (the
/// providers' pages spell it both ways).
pub fn is_cancelled_word(state: &str) -> bool {
    state.eq_ignore_ascii_case("cancelled") || state.eq_ignore_ascii_case("canceled")
}

/// A provider value fit to appear in our own sentence: short and printable, quoted in backticks,
/// or not shown.
pub fn quoted(value: &str) -> String {
    if value.len() <= 40 && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        format!("`{value}`")
    } else {
        "an unexpected value".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::StatusCode;

    use super::*;
    use crate::Effect;

    fn response(status: u16, body: &'static str) -> HttpResponse {
        HttpResponse::new(StatusCode::from_u16(status).unwrap(), body)
    }

    #[test]
    fn rate_limit_keeps_retry_after_and_message() {
        let mut res = response(429, "");
        res.headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("3"));
        let upstream = UpstreamText::new(None, Some("slow down".into()));
        assert_eq!(
            by_status(429, &res, &upstream),
            Some(Outcome::RateLimited {
                retry_after: Some(Duration::from_secs(3)),
                upstream_message: Some("slow down".into())
            })
        );
    }

    #[test]
    fn server_errors_are_transient_and_odd_statuses_unknown() {
        let up = UpstreamText::default();
        for status in [500, 502, 503, 510, 599] {
            let Some(Outcome::Fault(f)) = by_status(status, &response(status, ""), &up) else { panic!("{status}") };
            assert_eq!(f.effect, Effect::NotApplied);
        }
        for status in [100, 301, 303, 399] {
            let Some(Outcome::Fault(f)) = by_status(status, &response(status, ""), &up) else { panic!("{status}") };
            assert_eq!(f.effect, Effect::Unknown);
        }
        for status in [200, 202, 400, 404, 499] {
            assert_eq!(by_status(status, &response(status, ""), &up), None, "{status}");
        }
    }

    #[test]
    fn text_message_only_for_short_plain_text() {
        assert_eq!(
            text_message(&response(400, "  Reservation is already cancelled\n")).as_deref(),
            Some("Reservation is already cancelled")
        );
        for body in ["", "   ", "<html><body>Bad</body></html>", "a\u{0}b", "{", r#"{"message": "cut"#, "[1,"] {
            assert_eq!(text_message(&response(400, body)), None, "{body:?}");
        }
        let mut cut = response(400, "already cancelled");
        cut.truncated = true;
        assert_eq!(text_message(&cut), None);
        assert_eq!(text_message(&HttpResponse::new(StatusCode::BAD_REQUEST, vec![0xff, 0xfe])), None);
        assert_eq!(
            text_message(&HttpResponse::new(StatusCode::BAD_REQUEST, "x".repeat(UPSTREAM_TEXT_LIMIT + 1))),
            None
        );
        assert_eq!(text_message(&response(400, r#""already cancelled""#)).as_deref(), Some("already cancelled"));
        for json in [r#"{"message":"x"}"#, "[1]", "42", "true", "null"] {
            assert_eq!(text_message(&response(400, json)), None, "{json}");
        }
    }

    #[test]
    fn json_object_refuses_other_json() {
        #[derive(Deserialize)]
        struct Wire {
            #[allow(dead_code)]
            status: String,
        }
        assert!(json_object::<Wire>(&response(200, r#"{"status":"cancelled"}"#)).is_some());
        for body in [r#"["cancelled"]"#, r#""cancelled""#, "", "{", r#"{"status":1}"#] {
            assert!(json_object::<Wire>(&response(200, body)).is_none(), "{body}");
        }
    }

    #[test]
    fn bounded_cuts_at_a_char_boundary() {
        let cut = bounded("é".repeat(UPSTREAM_TEXT_LIMIT));
        assert!(cut.len() <= UPSTREAM_TEXT_LIMIT && cut.chars().all(|c| c == 'é'));
        assert_eq!(bounded("short".into()), "short");
    }

    #[test]
    fn lenient_fields_of_the_wrong_type_become_none() {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default, deserialize_with = "lenient")]
            code: Option<String>,
            #[serde(default, deserialize_with = "lenient")]
            n: Option<u16>,
        }
        let w: Wire = serde_json::from_str(r#"{"code": 7, "n": 404}"#).unwrap();
        assert_eq!((w.code, w.n), (None, Some(404)));
        let w: Wire = serde_json::from_str(r#"{"code": "x", "n": "404"}"#).unwrap();
        assert_eq!((w.code.as_deref(), w.n), (Some("x"), None));
        let w: Wire = serde_json::from_str("{}").unwrap();
        assert_eq!((w.code, w.n), (None, None));
    }

    #[test]
    fn client_errors_and_credentials() {
        let up = UpstreamText::new(Some("c".into()), Some("m".into()));
        let Outcome::Refused(r) = unexpected_client_error(422, &up) else { panic!() };
        assert_eq!((r.code, r.upstream_code.as_deref()), (ErrorCode::UpstreamRejected, Some("c")));
        let Outcome::Refused(r) = unexpected_client_error(418, &up) else { panic!() };
        assert_eq!(r.code, ErrorCode::UpstreamError);
        let Outcome::Refused(r) = misconfigured(401, &up) else { panic!() };
        assert_eq!((r.code, r.upstream_message.as_deref()), (ErrorCode::ProviderMisconfigured, Some("m")));
        let Outcome::Fault(f) = unreadable_success(200, &up) else { panic!() };
        assert_eq!((f.effect, f.upstream_message.as_deref()), (Effect::Unknown, Some("m")));
    }

    #[test]
    fn cancelled_words_and_quoted_values() {
        for word in ["cancelled", "Canceled", "CANCELLED"] {
            assert!(is_cancelled_word(word), "{word}");
        }
        for word in ["cancel", "cancelling", "", "not cancelled"] {
            assert!(!is_cancelled_word(word), "{word}");
        }
        assert_eq!(quoted("pending"), "`pending`");
        assert_eq!(quoted(&"x".repeat(41)), "an unexpected value");
        assert_eq!(quoted("a\nb"), "an unexpected value");
    }
}
