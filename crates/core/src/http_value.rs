//! HTTP requests and responses as plain values: providers build and read them, only the
//! gateway's executor puts them on a wire.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, StatusCode};
use secrecy::SecretString;

/// How much of an upstream body is kept as text when it is not JSON (records, problems, logs).
pub const UPSTREAM_TEXT_LIMIT: usize = 4096;

/// The largest upstream JSON body kept verbatim in a record and echoed in `upstream.body`.
///
/// The executor may read far more (its `max_response_bytes`, 256 KiB by default) so that a
/// large but complete answer can still be classified; but every record stores, and every
/// problem and replay repeats, what is kept. A provider's real answers are well under 2 KiB, so
/// a JSON body over this size is kept like any other oversized body: as a text excerpt of at
/// most [`UPSTREAM_TEXT_LIMIT`] bytes.
pub const UPSTREAM_JSON_LIMIT: usize = 16 * 1024;

#[derive(Debug, Clone)]
pub enum HeaderValueKind {
    Plain(String),
    /// A credential: shown as `[REDACTED]` by `Debug`, exposed only by the executor.
    Secret(SecretString),
}

#[derive(Debug, Clone)]
pub struct Header {
    pub name: HeaderName,
    pub value: HeaderValueKind,
}

/// One upstream request, relative to the provider's configured base URL.
///
/// `Debug` shows the body's length only: a body may carry a credential (a connection code).
#[derive(Clone)]
pub struct HttpRequest {
    pub method: Method,
    /// Absolute path below the base URL, starting with `/`. Built only from validated parts.
    pub path: String,
    pub headers: Vec<Header>,
    pub body: Option<Bytes>,
}

impl HttpRequest {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self { method, path: path.into(), headers: Vec::new(), body: None }
    }

    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push(Header { name, value: HeaderValueKind::Plain(value.into()) });
        self
    }

    pub fn secret_header(mut self, name: HeaderName, value: SecretString) -> Self {
        self.headers.push(Header { name, value: HeaderValueKind::Secret(value) });
        self
    }

    /// `Authorization: Bearer <secret>`, the secret wrapped until the executor sends it.
    pub fn bearer(self, secret: &SecretString) -> Self {
        use secrecy::ExposeSecret;
        let value = SecretString::from(format!("Bearer {}", secret.expose_secret()));
        self.secret_header(http::header::AUTHORIZATION, value)
    }

    /// A JSON body with its content type.
    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.body = Some(Bytes::from(body.to_string()));
        self.header(http::header::CONTENT_TYPE, "application/json")
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &self.headers)
            .field("body_len", &self.body.as_ref().map(Bytes::len))
            .finish()
    }
}

/// One upstream answer: status, headers and the (bounded) raw body.
#[derive(Clone)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The body was longer than the executor's read limit and was cut.
    pub truncated: bool,
    /// The body read as JSON, kept: the adapter's classification and the record both read it,
    /// and a parse of a provider's ~1.6 KB answer was ~3.5 % of a cancel's instructions.
    parsed: ParsedJson,
}

/// The body's JSON and the body it was read from. The fields are public and may change after a
/// read (the executor scrubs secrets out of the body): a value kept from other bytes, or with
/// another `truncated`, is not used. The kept `Bytes` holds the bytes it read alive, so no other
/// body can take their address while it is kept: same address and length is the same bytes.
#[derive(Clone, Default)]
struct ParsedJson(OnceLock<(Bytes, bool, Option<serde_json::Value>)>);

impl HttpResponse {
    pub fn new(status: StatusCode, body: impl Into<Bytes>) -> Self {
        Self::with_headers(status, HeaderMap::new(), body.into(), false)
    }

    pub fn with_headers(status: StatusCode, headers: HeaderMap, body: Bytes, truncated: bool) -> Self {
        Self { status, headers, body, truncated, parsed: ParsedJson::default() }
    }

    fn read_from(&self, bytes: &Bytes, truncated: bool) -> bool {
        truncated == self.truncated && bytes.as_ptr() == self.body.as_ptr() && bytes.len() == self.body.len()
    }

    fn parse(&self) -> Option<serde_json::Value> {
        if self.truncated {
            return None;
        }
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as JSON, when it is complete, valid JSON: parsed at the first read, then borrowed.
    pub fn json_ref(&self) -> Option<Cow<'_, serde_json::Value>> {
        let (bytes, truncated, value) = self.parsed.0.get_or_init(|| (self.body.clone(), self.truncated, self.parse()));
        if self.read_from(bytes, *truncated) { value.as_ref().map(Cow::Borrowed) } else { self.parse().map(Cow::Owned) }
    }

    /// The body as JSON, when it is complete, valid JSON.
    pub fn json_value(&self) -> Option<serde_json::Value> {
        self.json_ref().map(Cow::into_owned)
    }

    /// [`HttpResponse::json_value`], taking the kept value rather than copying it.
    fn take_json_value(&mut self) -> Option<serde_json::Value> {
        match self.parsed.0.take() {
            Some((bytes, truncated, value)) if self.read_from(&bytes, truncated) => value,
            _ => self.parse(),
        }
    }

    /// The body as a deserialized type, when it is complete and matches.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        if self.truncated {
            return None;
        }
        serde_json::from_slice(&self.body).ok()
    }

    /// What is recorded and echoed of the body: the JSON value verbatim when the body is JSON of
    /// at most [`UPSTREAM_JSON_LIMIT`] bytes, otherwise its text (lossy UTF-8) cut to
    /// [`UPSTREAM_TEXT_LIMIT`] bytes; `null` when empty. Takes the JSON kept by an earlier read.
    pub fn body_for_record(&mut self) -> serde_json::Value {
        if self.body.is_empty() {
            return serde_json::Value::Null;
        }
        if self.body.len() <= UPSTREAM_JSON_LIMIT
            && let Some(v) = self.take_json_value()
        {
            return v;
        }
        serde_json::Value::String(self.text_excerpt())
    }

    /// The body as text, lossy and cut at a character boundary to at most [`UPSTREAM_TEXT_LIMIT`]
    /// bytes. (Lossy decoding turns each invalid byte into a 3-byte U+FFFD, so the text is cut
    /// after decoding, not only before.)
    pub fn text_excerpt(&self) -> String {
        let end = self.body.len().min(UPSTREAM_TEXT_LIMIT);
        let mut text = String::from_utf8_lossy(&self.body[..end]).into_owned();
        if text.len() > UPSTREAM_TEXT_LIMIT {
            let mut cut = UPSTREAM_TEXT_LIMIT;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        text
    }

    /// `Retry-After` as a duration from now (see [`parse_retry_after`]).
    pub fn retry_after(&self) -> Option<Duration> {
        let raw = self.headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
        parse_retry_after(raw, SystemTime::now())
    }
}

/// A `Retry-After` value (RFC 9110 §10.2.3) as a wait from `now`: delta-seconds (`120`) or an
/// HTTP-date (`Wed, 21 Oct 2026 07:28:00 GMT`; one already past is no wait). Anything else is
/// `None`: the caller's own schedule applies. The one parser for provider answers and webhook
/// receivers alike.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status.as_u16())
            .field("body", &self.text_excerpt())
            .field("truncated", &self.truncated)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_is_redacted_in_debug() {
        let req = HttpRequest::new(Method::POST, "/x").bearer(&SecretString::from("sk_live_abc".to_owned()));
        let printed = format!("{req:?}");
        assert!(!printed.contains("sk_live_abc"), "{printed}");
    }

    #[test]
    fn request_debug_never_shows_the_body() {
        let req = HttpRequest::new(Method::POST, "/x").json(&serde_json::json!({"code": "conn_code_secret"}));
        assert!(!format!("{req:?}").contains("conn_code_secret"));
    }

    #[test]
    fn record_body_is_json_or_bounded_text() {
        let mut json = HttpResponse::new(StatusCode::OK, r#"{"a":1}"#);
        assert_eq!(json.body_for_record(), serde_json::json!({"a": 1}));
        let mut html = HttpResponse::new(StatusCode::BAD_GATEWAY, "<html>".repeat(5000));
        let serde_json::Value::String(text) = html.body_for_record() else { panic!("expected text") };
        assert!(text.len() <= UPSTREAM_TEXT_LIMIT);
        assert_eq!(HttpResponse::new(StatusCode::OK, "").body_for_record(), serde_json::Value::Null);
    }

    #[test]
    fn the_json_kept_from_a_read_is_never_the_json_of_other_bytes() {
        let mut res = HttpResponse::new(StatusCode::OK, r#"{"a":1}"#);
        assert_eq!(res.json_value(), Some(serde_json::json!({"a": 1})));
        // Replaced after the read (as the executor's scrub does): the new bytes are read, even at
        // the same length.
        res.body = Bytes::from(r#"{"a":2}"#.to_owned());
        assert_eq!(res.json_value(), Some(serde_json::json!({"a": 2})));
        assert_eq!(res.body_for_record(), serde_json::json!({"a": 2}));
        // Cut after the read: not JSON any more.
        let mut res = HttpResponse::new(StatusCode::OK, r#"{"a":1}"#);
        assert!(res.json_ref().is_some());
        res.truncated = true;
        assert_eq!(res.json_value(), None);
        // The record takes the kept value; a later read parses again, alike.
        let mut res = HttpResponse::new(StatusCode::OK, r#"{"a":[1,2]}"#);
        assert!(res.json_ref().is_some());
        assert_eq!(res.body_for_record(), serde_json::json!({"a": [1, 2]}));
        assert_eq!(res.json_value(), Some(serde_json::json!({"a": [1, 2]})));
        assert_eq!(res.clone().body_for_record(), serde_json::json!({"a": [1, 2]}));
    }

    #[test]
    fn text_excerpt_never_splits_into_invalid_utf8() {
        let body = "é".repeat(UPSTREAM_TEXT_LIMIT);
        let res = HttpResponse::new(StatusCode::OK, body);
        assert!(res.text_excerpt().len() <= UPSTREAM_TEXT_LIMIT);
    }

    #[test]
    fn invalid_utf8_never_grows_past_the_text_limit() {
        // Every byte invalid: lossy decoding alone would triple the size.
        let mut res = HttpResponse::new(StatusCode::BAD_GATEWAY, vec![0xff_u8; 3 * UPSTREAM_TEXT_LIMIT]);
        let serde_json::Value::String(text) = res.body_for_record() else { panic!("expected text") };
        assert!(text.len() <= UPSTREAM_TEXT_LIMIT, "{}", text.len());
        assert!(text.starts_with('\u{fffd}'));
    }

    #[test]
    fn large_json_is_kept_as_bounded_text_not_verbatim() {
        let small = serde_json::json!({"message": "x".repeat(UPSTREAM_JSON_LIMIT - 100)}).to_string();
        assert!(HttpResponse::new(StatusCode::BAD_REQUEST, small).body_for_record().is_object());
        let large = serde_json::json!({"message": "x".repeat(UPSTREAM_JSON_LIMIT)}).to_string();
        let mut large = HttpResponse::new(StatusCode::BAD_REQUEST, large);
        assert!(large.json_value().is_some(), "still readable by the classifier");
        let serde_json::Value::String(text) = large.body_for_record() else { panic!("expected text") };
        assert!(text.len() <= UPSTREAM_TEXT_LIMIT);
    }

    #[test]
    fn truncated_json_is_not_json() {
        let mut res = HttpResponse::new(StatusCode::OK, r#"{"a":1}"#);
        res.truncated = true;
        assert_eq!(res.json_value(), None);
    }

    #[test]
    fn retry_after_as_an_http_date_is_the_wait_until_then() {
        let now = httpdate::parse_http_date("Wed, 02 Dec 2026 10:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after("Wed, 02 Dec 2026 10:00:30 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Wed, 02 Dec 2026 09:00:00 GMT", now), Some(Duration::ZERO), "past: no wait");
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        for bad in ["", "-1", "soon", "1.5", "Wed, 02 Dec 2026"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn retry_after_in_seconds() {
        let mut res = HttpResponse::new(StatusCode::TOO_MANY_REQUESTS, "");
        res.headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("7"));
        assert_eq!(res.retry_after(), Some(Duration::from_secs(7)));
    }
}
