//! Extractors that reject with [`ApiError`], so every rejection has the problem shape.

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequestParts, Request};
use bytes::Bytes;
use cancelgate_core::ErrorCode;
use http::request::Parts;
use http::{HeaderMap, StatusCode, header};

use crate::clients::Client;
use crate::error::ApiError;
use crate::state::AppState;

const HEADER: &str = "Idempotency-Key";

/// The body of a `POST` that takes JSON, as every such route reads it first: in full, within
/// `limits.max_body_bytes` (`413 payload_too_large`) and `limits.body_read_timeout_ms` (`400`),
/// sent as `application/json` or without a content type (`400` naming `Content-Type`). The
/// route's own strict reader then parses it.
#[derive(Debug)]
pub struct JsonBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    // Not an async fn, and the read boxed: an async fn would keep the request (~240 bytes) twice
    // beside the read's own future, sizing every handler's future by it for the whole request.
    fn from_request(request: Request, state: &S) -> impl Future<Output = Result<Self, Self::Rejection>> + Send {
        // The body's own failure is answered first, then its content type.
        let content_type = check_content_type(request.headers());
        let read = Box::pin(Bytes::from_request(request, state));
        async move { Self::read(read.await, content_type) }
    }
}

impl JsonBody {
    fn read(body: Result<Bytes, BytesRejection>, content_type: Result<(), ApiError>) -> Result<Self, ApiError> {
        let body = body.map_err(body_rejection)?;
        content_type?;
        // A body that came in the same read as the request head is a slice of hyper's read
        // buffer (8 KB), which hyper then replaces with a fresh one to watch the connection: held
        // for the handler's life (a cancel waits on its provider), the slice would pin the old
        // buffer, 8 KB per request in flight. An exact-size copy of a small body frees it.
        Ok(Self(Bytes::copy_from_slice(&body)))
    }
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(ErrorCode::PayloadTooLarge, "The request body is over the size limit.")
    } else {
        ApiError::invalid(
            "body",
            "The request body could not be read: it was cut, malformed, or did not arrive within the time limit.",
        )
    }
}

/// A body is JSON; a missing content type is tolerated, a different one is a mistake.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("")) {
        None => Ok(()),
        Some(ct) if ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")) => Ok(()),
        Some(_) => Err(ApiError::invalid("Content-Type", "Send the body as `application/json`.")),
    }
}

/// The caller of a `/v1` route: authenticated, allowed the route's scope and within its quota
/// ([`crate::routes::authorize`]). Every `/v1` handler takes it first, after its state, so these
/// checks come before anything else the request carries is read.
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<Client>);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        crate::routes::authorize(parts, state)
    }
}

fn unauthorized() -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, "Send `Authorization: Bearer <client key>` with a valid key.")
}

/// The client whose key `Authorization: Bearer <key>` carries. The scheme is case-insensitive
/// (RFC 9110 §11.1): `Bearer`, `bearer` and `BEARER` are one scheme.
pub fn authenticate(headers: &http::HeaderMap, state: &AppState) -> Result<Arc<Client>, ApiError> {
    let value = headers.get(http::header::AUTHORIZATION).ok_or_else(unauthorized)?;
    let key = bearer_key(value.to_str().map_err(|_| unauthorized())?).ok_or_else(unauthorized)?;
    let client = state.clients.authenticate(key).ok_or_else(unauthorized)?;
    crate::telemetry::record("client", &client.name);
    Ok(client)
}

fn bearer_key(value: &str) -> Option<&str> {
    let (scheme, key) = value.split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}

/// `Idempotency-Key`: 1–255 printable ASCII characters, sent as they are (`abc`) or as the IETF
/// draft's structured-field string (`"abc"`, RFC 8941 §3.3.3), which is the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    pub fn parse(raw: &[u8]) -> Result<Self, ApiError> {
        let key = match raw.first() {
            Some(b'"') => Cow::Owned(sf_string(raw)?),
            _ => Cow::Borrowed(raw),
        };
        let ok = (1..=Self::MAX_LEN).contains(&key.len()) && key.iter().all(|b| (0x20..=0x7e).contains(b));
        if !ok {
            return Err(ApiError::invalid(
                HEADER,
                format!("An idempotency key has 1 to {} printable ASCII characters.", Self::MAX_LEN),
            ));
        }
        Ok(Self(String::from_utf8_lossy(&key).into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The content of a structured-field string: `"`, printable ASCII where `"` and `\` appear only
/// escaped (`\"`, `\\`), `"`, and nothing after it.
fn sf_string(raw: &[u8]) -> Result<Vec<u8>, ApiError> {
    let invalid = || {
        ApiError::invalid(
            HEADER,
            "A quoted idempotency key is a structured-field string: printable ASCII between double quotes, \
             where a quote or a backslash inside is escaped by a backslash (`\\\"`, `\\\\`).",
        )
    };
    let mut key = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter().skip(1);
    loop {
        match bytes.next().ok_or_else(invalid)? {
            b'"' => break,
            b'\\' => match bytes.next() {
                Some(&b @ (b'"' | b'\\')) => key.push(b),
                _ => return Err(invalid()),
            },
            &b @ 0x20..=0x7e => key.push(b),
            _ => return Err(invalid()),
        }
    }
    if bytes.next().is_some() {
        return Err(invalid());
    }
    Ok(key)
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        let mut values = parts.headers.get_all(HEADER).iter();
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(v), None) => Self::parse(v.as_bytes()).map(Some),
            // Keeping the first would cancel under a key the caller may not have meant.
            (Some(_), Some(_)) => Err(ApiError::invalid(HEADER, "Send one `Idempotency-Key` header, not several.")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys() {
        assert!(IdempotencyKey::parse(b"order-1001/cancel").is_ok());
        assert!(IdempotencyKey::parse(&[b'a'; 255]).is_ok());
        for bad in [&b""[..], &[b'a'; 256][..], b"a\tb", b"\xc3\xa9", b"a\x7f"] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    use proptest::prelude::*;

    #[test]
    fn a_structured_field_string_is_the_same_key() {
        let key = |raw: &[u8]| IdempotencyKey::parse(raw).map(|k| k.as_str().to_owned());
        assert_eq!(key(br#""abc""#).unwrap(), "abc");
        assert_eq!(key(br#""a\"b\\c""#).unwrap(), r#"a"b\c"#);
        assert_eq!(key(br#""a b""#).unwrap(), "a b");
        assert_eq!(key(b"ab\"c").unwrap(), "ab\"c", "a quote inside an unquoted key is a character");
        assert_eq!(key(format!("\"{}\"", "k".repeat(255)).as_bytes()).unwrap().len(), 255);
        for bad in [
            &br#"""#[..],
            br#""""#,
            br#""abc"#,
            br#""abc"x"#,
            br#""abc" "#,
            br#""a"b""#,
            br#""a\b""#,
            br#""abc\""#,
            b"\"a\tb\"",
            b"\"caf\xc3\xa9\"",
        ] {
            let error = IdempotencyKey::parse(bad).unwrap_err();
            assert_eq!(error.param.as_deref(), Some("Idempotency-Key"), "{bad:?}");
        }
        assert!(IdempotencyKey::parse(format!("\"{}\"", "k".repeat(256)).as_bytes()).is_err());
        assert!(IdempotencyKey::parse(br#""a"b""#).unwrap_err().detail.contains("structured-field string"));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for ok in ["Bearer k", "bearer k", "BEARER k", "bEaReR k", "Bearer  k ", "Bearer \tk"] {
            assert_eq!(bearer_key(ok), Some("k"), "{ok:?}");
        }
        for bad in ["Bearer", "Bearer ", "bearer  ", "Basic k", "Bearerk", "Bearer\tk", " Bearer k", "Token k"] {
            assert_eq!(bearer_key(bad), None, "{bad:?}");
        }
    }

    proptest! {
        /// A quoted key and the same key unquoted are one key, whatever characters it holds.
        #[test]
        fn a_key_and_its_structured_field_string_are_the_same_key(key in "[ -~]{1,255}") {
            let quoted = format!("\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""));
            let parsed = IdempotencyKey::parse(quoted.as_bytes()).unwrap();
            prop_assert_eq!(parsed.as_str(), key.as_str());
            if !key.starts_with('"') {
                prop_assert_eq!(IdempotencyKey::parse(key.as_bytes()).unwrap(), parsed);
            }
        }

        /// An unquoted key is taken as it is: 1–255 printable ASCII characters, or refused.
        #[test]
        fn idempotency_key_is_printable_ascii_or_refused(
            raw in proptest::collection::vec(any::<u8>(), 0..300).prop_filter("unquoted", |r| r.first() != Some(&b'"'))
        ) {
            let expected = (1..=IdempotencyKey::MAX_LEN).contains(&raw.len()) && raw.iter().all(|b| (0x20..=0x7e).contains(b));
            match IdempotencyKey::parse(&raw) {
                Ok(key) => {
                    prop_assert!(expected);
                    prop_assert_eq!(key.as_str().as_bytes(), &raw[..]);
                    // Stored and logged: it can never carry a line break or a control character.
                    prop_assert!(http::HeaderValue::from_str(key.as_str()).is_ok());
                }
                Err(e) => {
                    prop_assert!(!expected);
                    prop_assert_eq!(e.param.as_deref(), Some("Idempotency-Key"));
                }
            }
        }
    }
}
