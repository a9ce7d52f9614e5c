//! `X-Request-Id`: echoed when the caller sent a well-formed one, generated otherwise, put on
//! every response, sent upstream and logged.
//!
//! Hand-written instead of tower-http's `SetRequestId`: that layer trusts any incoming value,
//! and an id flows into logs and upstream headers, so it must be validated first.

use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;

pub const HEADER: &str = "x-request-id";
const MAX_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn generate() -> Self {
        Self(Arc::from(format!("req_{}", ulid::Ulid::new())))
    }

    /// Accept a caller's id only if it cannot inject anything into a log line or a header.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = (1..=MAX_LEN).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/' | b'+' | b'='));
        ok.then(|| Self(Arc::from(raw)))
    }
}

tokio::task_local! {
    static CURRENT: RequestId;
}

/// The id of the request being served on this task, if any.
pub fn current() -> Option<RequestId> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Run `fut` with `id` as the current request id (the background driver uses it too). The
/// request's span and trace context, where there are any, follow `fut` into a spawned task.
pub fn scope<F: Future>(id: RequestId, fut: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(id, crate::telemetry::follow(fut))
}

pub async fn middleware(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(RequestId::parse)
        .unwrap_or_else(RequestId::generate);
    request.extensions_mut().insert(id.clone());
    let header = HeaderValue::from_str(id.as_str());
    let mut response = scope(id, next.run(request)).await;
    if let Ok(value) = header {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_ids_are_replaced() {
        for bad in ["", "a b", "a\r\nSet-Cookie: x", "é", &"a".repeat(129), "a\"b", "{x}"] {
            assert_eq!(RequestId::parse(bad), None, "{bad:?}");
        }
        assert!(RequestId::parse("0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0").is_some());
        assert!(RequestId::generate().as_str().starts_with("req_"));
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn an_accepted_id_cannot_inject_anything(raw in prop_oneof![".{0,140}", "[ -~]{0,140}", "[a-z0-9\\r\\n:=-]{0,20}"]) {
            if let Some(id) = RequestId::parse(&raw) {
                let s = id.as_str();
                prop_assert!(s.len() <= MAX_LEN && !s.is_empty());
                prop_assert!(!s.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b'"' || b == b'\\' || b >= 0x80));
                prop_assert!(HeaderValue::from_str(s).is_ok());
            }
        }
    }
}
