//! The one layer around every request (`routes::router` puts it on every route and fallback):
//! once draining, HTTP/1 answers close their connection (`conn_limits::CloseWhileDraining`);
//! the request runs in its context (`request_id::start`) and its span, and every answer carries
//! the request id; the request's span and metrics get its answer (`telemetry::RequestRecord`);
//! a body that trickles in (or never comes) is cut after `limits.body_read_timeout_ms`
//! (`conn_limits::body_deadline`).
//!
//! A tower service with its own future rather than an `axum::middleware::from_fn` layer: all of
//! the above is decided when the request arrives, and what the answer needs afterwards is a few
//! values beside the route's future, polled in place. A `from_fn` layer boxes its future and
//! `Next`'s, and an async fn that takes the request keeps the request (~240 bytes) twice, once
//! per nested step: ~2 KB per request in flight for as long as it is (a cancel waits on its
//! provider), measured with `-Zprint-type-sizes` and `bench/inflight`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use cancelgate_engine::context::{self, RequestContext};
use tokio::task::futures::TaskLocalFuture;
use tracing::Instrument;
use tracing::instrument::Instrumented;

use crate::conn_limits::{self, CloseWhileDraining, Draining};
use crate::request_id::{self, Echo};
use crate::telemetry::RequestRecord;

/// The edge layer: what it needs beside the request.
#[derive(Debug, Clone)]
pub struct EdgeLayer {
    pub draining: Draining,
    pub body_within: Duration,
}

impl<S> tower::Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge { inner, layer: self.clone() }
    }
}

/// A route (or fallback) inside the edge layer.
#[derive(Debug, Clone)]
pub struct Edge<S> {
    inner: S,
    layer: EdgeLayer,
}

impl<S> tower::Service<Request> for Edge<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let close = CloseWhileDraining::of(&self.layer.draining, &request);
        let (context, echo) = request_id::start(&mut request);
        let record = RequestRecord::start(&request, &context);
        let span = record.span().clone();
        let answer = self.inner.call(conn_limits::body_deadline(request, self.layer.body_within)).instrument(span);
        EdgeFuture { answer: context::scope(context, answer), ends: Some(Ends { record, echo, close }) }
    }
}

/// What the answer gets once it is there.
#[derive(Debug)]
struct Ends {
    record: RequestRecord,
    echo: Echo,
    close: CloseWhileDraining,
}

pin_project_lite::pin_project! {
    /// The route's answer, in the request's context and span, then [`Ends`] applied to it.
    pub struct EdgeFuture<F> {
        #[pin]
        answer: TaskLocalFuture<Arc<RequestContext>, Instrumented<F>>,
        ends: Option<Ends>,
    }
}

impl<F> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = ready!(this.answer.poll(cx));
        if let Some(Ends { record, echo, close }) = this.ends.take() {
            record.finish(&response);
            echo.apply(&mut response);
            close.apply(&mut response);
        }
        Poll::Ready(Ok(response))
    }
}
