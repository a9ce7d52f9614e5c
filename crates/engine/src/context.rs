//! The per-request context: the request id, the caller's trace context and the provider label,
//! in ONE task-local. The facade's middleware creates it for every request; the driver carries
//! it into the tasks it spawns; the executor reads it to send `X-Request-Id` and `traceparent`
//! upstream; the facade's metrics read the provider label from it when the request ends.
//!
//! Ids are validated here, once: a caller's `X-Request-Id` or `traceparent` flows into logs and
//! upstream headers, so only a value that cannot inject anything is kept.

use std::sync::{Arc, Mutex, PoisonError};

/// The request id header, sent upstream and on every answer.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The W3C Trace Context header, forwarded upstream when the caller sent a valid one.
pub const TRACEPARENT_HEADER: &str = "traceparent";

const MAX_REQUEST_ID_LEN: usize = 128;

/// A request id: a caller's well-formed `X-Request-Id`, or one generated here.
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
        let ok = (1..=MAX_REQUEST_ID_LEN).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/' | b'+' | b'='));
        ok.then(|| Self(Arc::from(raw)))
    }
}

/// A validated W3C `traceparent` value.
///
/// Only version `00` in its exact form is taken (`00-<32 hex>-<16 hex>-<2 hex>`, lower case,
/// neither id all zeros); anything else is ignored, never echoed into a log or a header. The
/// gateway does not start traces of its own: with no valid header nothing is forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent(Arc<str>);

impl TraceParent {
    pub fn parse(raw: &str) -> Option<Self> {
        let parts: Vec<&str> = raw.split('-').collect();
        let [version, trace_id, parent_id, flags] = parts.as_slice() else {
            return None;
        };
        let hex =
            |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let zero = |s: &str| s.bytes().all(|b| b == b'0');
        let ok = *version == "00"
            && hex(trace_id, 32)
            && hex(parent_id, 16)
            && hex(flags, 2)
            && !zero(trace_id)
            && !zero(parent_id);
        ok.then(|| Self(Arc::from(raw)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 32 hex digits that name the whole trace.
    pub fn trace_id(&self) -> &str {
        &self.0[3..35]
    }
}

/// What one request (or a task working for it) knows about itself.
#[derive(Debug)]
pub struct RequestContext {
    pub request_id: RequestId,
    pub trace: Option<TraceParent>,
    /// The (known, configured) provider of the request, once a handler learned it: the metrics'
    /// label. Set from the request's task, read by the middleware when it answers.
    provider: Mutex<Option<String>>,
}

impl RequestContext {
    pub fn new(request_id: RequestId, trace: Option<TraceParent>) -> Arc<Self> {
        Arc::new(Self { request_id, trace, provider: Mutex::new(None) })
    }

    pub fn set_provider(&self, id: &str) {
        *self.provider.lock().unwrap_or_else(PoisonError::into_inner) = Some(id.to_owned());
    }

    pub fn provider(&self) -> Option<String> {
        self.provider.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

tokio::task_local! {
    static CURRENT: Arc<RequestContext>;
}

/// The context of the request being served on this task, if any.
pub fn current() -> Option<Arc<RequestContext>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// The id of the request being served on this task, if any.
pub fn request_id() -> Option<RequestId> {
    CURRENT.try_with(|c| c.request_id.clone()).ok()
}

/// The trace context of the request being served on this task, if the caller sent one.
pub fn trace() -> Option<TraceParent> {
    CURRENT.try_with(|c| c.trace.clone()).ok().flatten()
}

/// Run `fut` in `context`. The future's type is named, so a hand-written future (the gateway's
/// edge layer) can hold it in place.
pub fn scope<F: Future>(
    context: Arc<RequestContext>,
    fut: F,
) -> tokio::task::futures::TaskLocalFuture<Arc<RequestContext>, F> {
    CURRENT.scope(context, fut)
}

/// The future a spawned task runs for request `id`: the current trace context and span follow
/// it; its provider label is its own (a spawned task's label is no request's metric).
pub fn follow<F: Future>(id: RequestId, fut: F) -> impl Future<Output = F::Output> {
    use tracing::Instrument;
    scope(RequestContext::new(id, trace()), fut).instrument(tracing::Span::current())
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
                prop_assert!(s.len() <= MAX_REQUEST_ID_LEN && !s.is_empty());
                prop_assert!(!s.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b'"' || b == b'\\' || b >= 0x80));
                prop_assert!(http::HeaderValue::from_str(s).is_ok());
            }
        }
    }

    #[test]
    fn only_well_formed_version_00_is_accepted() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parsed = TraceParent::parse(good).unwrap();
        assert_eq!(parsed.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parsed.as_str(), good);
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nx: y",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }

    /// A spawned task keeps the request's id and trace, but not its provider label.
    #[tokio::test]
    async fn a_followed_task_has_the_id_and_trace_and_a_label_of_its_own() {
        let trace = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let context = RequestContext::new(RequestId::generate(), trace.clone());
        let id = context.request_id.clone();
        let seen = scope(context.clone(), async {
            follow(id.clone(), async {
                if let Some(c) = current() {
                    c.set_provider("chargeapi");
                }
                (request_id(), self::trace())
            })
            .await
        })
        .await;
        assert_eq!(seen, (Some(id), trace));
        assert_eq!(context.provider(), None);
        assert_eq!(request_id(), None, "outside a scope there is no request");
    }
}
