//! How long and how much a caller may hold a connection: a slow or hostile client never pins a
//! connection (and its task and buffers) forever.
//!
//! Two pieces, because they live at two levels:
//! - [`body_deadline`], a middleware in the router: the whole request body must arrive within
//!   `limits.body_read_timeout_ms` of the request head, or reading it fails and the handler
//!   answers `400 invalid_request` (`param: "body"`). A trickle of one byte a second is cut too:
//!   the deadline is for the whole body, not between chunks.
//! - [`serve`], the accept loop: hyper's HTTP/1 server with a timer, so the request head (line
//!   and headers) must arrive within `limits.header_read_timeout_ms` (an idle keep-alive
//!   connection is closed after the same time), and with at most `limits.max_header_bytes` of
//!   head and `limits.max_headers` headers (over either, hyper answers `431` itself and closes:
//!   that answer is written before any routing, so it cannot carry the problem shape).
//!   `axum::serve` sets no timer, so with it a client that never finishes its headers holds the
//!   connection until the process stops.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::time::Sleep;
use tower::ServiceExt;

use crate::settings::Limits;

/// Per-connection limits of [`serve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// The request line and headers must arrive within this time of the connection's first
    /// byte (or of the previous answer, on a keep-alive connection).
    pub header_read_timeout: Duration,
    /// Bytes of request line and headers together.
    pub max_header_bytes: usize,
    /// Number of header fields.
    pub max_headers: usize,
    /// After the shutdown signal, how long open connections may finish their request.
    pub shutdown_grace: Duration,
}

impl ConnLimits {
    pub fn from_settings(limits: &Limits) -> Self {
        Self {
            header_read_timeout: Duration::from_millis(limits.header_read_timeout_ms),
            max_header_bytes: limits.max_header_bytes,
            max_headers: limits.max_headers,
            shutdown_grace: Duration::from_millis(limits.shutdown_grace_ms),
        }
    }
}

/// Serve `app` on `listener` with the connection limits, until `shutdown` completes; then stop
/// accepting, let open connections finish for at most `limits.shutdown_grace`, and return.
///
/// A drop-in for `axum::serve(listener, app).with_graceful_shutdown(shutdown)`, HTTP/1.1 only
/// (as the gateway's axum is built). Each request also carries `ConnectInfo<SocketAddr>` of the peer.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_headers(limits.max_headers);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request.map(Body::new))
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // Timeouts, oversized heads and resets are the client's business, not an incident.
                tracing::debug!(error = %error, peer = %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the shutdown grace period; closing them");
    }
    Ok(())
}

/// A request body that fails once `deadline` has passed, however its bytes trickle in.
#[derive(Debug)]
pub struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
}

impl DeadlineBody {
    pub fn new(inner: Body, within: Duration) -> Self {
        Self { inner, deadline: Box::pin(tokio::time::sleep(within)) }
    }
}

/// The body did not arrive within `limits.body_read_timeout_ms`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        Pin::new(&mut this.inner).poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Middleware: the request body must be read in full within `within` of the request head.
pub async fn body_deadline(State(within): State<Duration>, request: Request, next: Next) -> Response {
    next.run(request.map(|body| Body::new(DeadlineBody::new(body, within)))).await
}
