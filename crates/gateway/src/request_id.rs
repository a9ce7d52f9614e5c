//! `X-Request-Id` and `traceparent` in, the request's context out: a caller's well-formed id is
//! echoed, else one is generated; a well-formed `traceparent` is kept. Both go into the ONE
//! per-request context (`cancelgate_engine::context`), which this middleware creates around
//! every request: the executor sends them upstream, the logs and the metrics read it.
//!
//! Hand-written instead of tower-http's `SetRequestId`: that layer trusts any incoming value,
//! and an id flows into logs and upstream headers, so it must be validated first.

use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use cancelgate_engine::context::{self, RequestContext, TraceParent};
pub use cancelgate_engine::context::{REQUEST_ID_HEADER as HEADER, RequestId};
use http::HeaderValue;

/// The request's context, from its headers (a valid `X-Request-Id` kept, else one generated; a
/// well-formed `traceparent`), its id put in the request's extensions, and the [`Echo`] of the id
/// for the answer. A part of the one edge layer (`edge_layer::Edge`), which runs the request in
/// this context.
pub fn start(request: &mut Request) -> (Arc<RequestContext>, Echo) {
    let headers = request.headers();
    let id = headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(RequestId::parse)
        .unwrap_or_else(RequestId::generate);
    let trace = headers.get(context::TRACEPARENT_HEADER).and_then(|v| v.to_str().ok()).and_then(TraceParent::parse);
    request.extensions_mut().insert(id.clone());
    let echo = Echo(HeaderValue::from_str(id.as_str()).ok());
    (RequestContext::new(id, trace), echo)
}

/// The request id, for the answer's `X-Request-Id` (every answer carries it, errors included).
#[derive(Debug)]
pub struct Echo(Option<HeaderValue>);

impl Echo {
    pub fn apply(self, response: &mut Response) {
        if let Some(value) = self.0 {
            response.headers_mut().insert(HEADER, value);
        }
    }
}
