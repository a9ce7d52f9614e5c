//! `X-Request-Id` and `traceparent` in, the request's context out: a caller's well-formed id is
//! echoed, else one is generated; a well-formed `traceparent` is kept. Both go into the ONE
//! per-request context (`cancelgate_engine::context`), which this middleware creates around
//! every request: the executor sends them upstream, the logs and the metrics read it.
//!
//! Hand-written instead of tower-http's `SetRequestId`: that layer trusts any incoming value,
//! and an id flows into logs and upstream headers, so it must be validated first.

use axum::extract::Request;
use axum::response::Response;
use cancelgate_engine::context::{self, RequestContext, TraceParent};
pub use cancelgate_engine::context::{REQUEST_ID_HEADER as HEADER, RequestId};
use http::HeaderValue;

/// A part of the one edge layer (`routes::edge`): `inner` runs in the request's context.
pub async fn around<F, Fut>(mut request: Request, inner: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let headers = request.headers();
    let id = headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(RequestId::parse)
        .unwrap_or_else(RequestId::generate);
    let trace = headers.get(context::TRACEPARENT_HEADER).and_then(|v| v.to_str().ok()).and_then(TraceParent::parse);
    request.extensions_mut().insert(id.clone());
    let header = HeaderValue::from_str(id.as_str());
    let mut response = context::scope(RequestContext::new(id, trace), inner(request)).await;
    if let Ok(value) = header {
        response.headers_mut().insert(HEADER, value);
    }
    response
}
