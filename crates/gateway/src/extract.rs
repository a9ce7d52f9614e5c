//! Extractors that reject with [`ApiError`], so every rejection has the problem shape.

use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use cancelgate_core::ErrorCode;
use http::request::Parts;

use crate::clients::Client;
use crate::error::ApiError;
use crate::state::AppState;

/// The caller, authenticated by `Authorization: Bearer <client key>`.
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<Client>);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let unauthorized =
            || ApiError::new(ErrorCode::Unauthorized, "Send `Authorization: Bearer <client key>` with a valid key.");
        let header = parts.headers.get(http::header::AUTHORIZATION).ok_or_else(unauthorized)?;
        let value = header.to_str().map_err(|_| unauthorized())?;
        let key = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(unauthorized)?;
        let client = state.clients.authenticate(key).ok_or_else(unauthorized)?;
        crate::telemetry::record("client", &client.name);
        Ok(Caller(client))
    }
}

/// `Idempotency-Key`: 1–255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    pub fn parse(raw: &[u8]) -> Result<Self, ApiError> {
        let ok = (1..=Self::MAX_LEN).contains(&raw.len()) && raw.iter().all(|b| (0x20..=0x7e).contains(b));
        if !ok {
            return Err(ApiError::invalid(
                "Idempotency-Key",
                format!("An idempotency key has 1 to {} printable ASCII characters.", Self::MAX_LEN),
            ));
        }
        Ok(Self(String::from_utf8_lossy(raw).into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        match parts.headers.get("idempotency-key") {
            None => Ok(None),
            Some(v) => Self::parse(v.as_bytes()).map(Some),
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

    proptest! {
        #[test]
        fn idempotency_key_is_printable_ascii_or_refused(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
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
