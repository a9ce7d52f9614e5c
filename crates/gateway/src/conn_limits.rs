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
//!   connection until the process stops. HTTP/2 with prior knowledge (h2c) is served by the same
//!   loop under the same limits ([`serve_draining`]), and the loop drains on SIGTERM ([`Drain`]).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use bytes::Bytes;
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
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

/// Connections the kernel completes and queues for the accept loop while it is busy (capped by
/// `net.core.somaxconn`). `TcpListener::bind` asks for 1,024: a burst of thousands of callers
/// (bench/inflight's 10,000) overflowed it (3,767 `ListenOverflows` in one run, 0 with this), and
/// each dropped handshake cost its caller a SYN retransmission of one second or more.
const ACCEPT_BACKLOG: u32 = 4096;

/// The gateway's listening socket: as `TcpListener::bind` makes it (`SO_REUSEADDR`, so a restart
/// does not wait for the old process's `TIME_WAIT`s), with a deeper accept queue.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Serve `app` on `listener` with the connection limits, until `shutdown` completes; then stop
/// accepting, let open connections finish for at most `limits.shutdown_grace`, and return.
///
/// A drop-in for `axum::serve(listener, app).with_graceful_shutdown(shutdown)`: HTTP/1.1, and
/// HTTP/2 with prior knowledge (h2c). Each request also carries `ConnectInfo<SocketAddr>` of
/// the peer. No drain period: see [`serve_draining`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_draining(listener, app, limits, Drain::none(), shutdown).await
}

/// Set once the shutdown signal has arrived: `/readyz` answers `503` and HTTP/1 answers carry
/// `Connection: close` from then on (see [`Drain`]). Cheap to clone; clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// How the gateway stops (SPEC §12). On the signal, [`Draining`] is set at once, so a load
/// balancer polling `/readyz` sees `503`, while connections keep being accepted and requests
/// served for `period` (`limits.drain_ms`), so it has time to notice. Every HTTP/1 answer from
/// then on carries `Connection: close`: a client's next request goes over a new connection,
/// accepted while draining and refused after, never onto one the gateway is about to close
/// (a request written to a closing keep-alive connection would get no answer). After the
/// period: no more accepting; requests already read are answered, within the shutdown grace.
#[derive(Debug, Clone)]
pub struct Drain {
    pub draining: Draining,
    pub period: Duration,
}

impl Drain {
    /// Stop accepting as soon as the signal arrives.
    pub fn none() -> Drain {
        Drain { draining: Draining::default(), period: Duration::ZERO }
    }
}

/// The HTTP/2 connection preface (RFC 9113 §3.4): how a client with prior knowledge begins.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
}

/// Which protocol the client speaks, from its first bytes (peeked, so the connection still
/// starts with them); `None` if it closed first. An HTTP/1 request line differs from the
/// preface by its second byte at the latest; only a client that sends the preface slowly makes
/// this wait, and the caller bounds the wait.
async fn sniff(stream: &TcpStream) -> std::io::Result<Option<Protocol>> {
    let mut buf = [0u8; H2_PREFACE.len()];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        if buf[..n] != H2_PREFACE[..n] {
            return Ok(Some(Protocol::Http1));
        }
        if n == H2_PREFACE.len() {
            return Ok(Some(Protocol::Http2));
        }
        // A prefix of the preface: `peek` would return the same bytes at once; wait for more.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// [`serve`] with a drain period between the shutdown signal and the end of accepting.
///
/// hyper-util's `auto` builder would pick the protocol too, but its HTTP/1 side cannot limit
/// the head's size (`limits.max_header_bytes`, 431) and its wait for the first bytes has no
/// timeout (a client that connects and sends nothing would hold the connection forever). So the
/// first bytes are peeked here, within `limits.header_read_timeout`, and the connection goes to
/// hyper's HTTP/1 server with every limit as before, or to its HTTP/2 server with the head
/// limit (`max_header_list_size`), keep-alive pings that drop a peer gone silent, and the idle
/// limit of an HTTP/1 keep-alive connection ([`serve_http2`]).
pub async fn serve_draining(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    drain: Drain,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_headers(limits.max_headers);
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(limits.header_read_timeout)
        .keep_alive_timeout(limits.header_read_timeout);
    let (http1, http2) = (Arc::new(http1), Arc::new(http2));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // Set once accepting stops: a connection whose first bytes have not come yet has asked
    // nothing, and is closed at once rather than waited for (as hyper closes an idle one).
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    // Pending until the signal; then the end of the drain period.
    let mut stop_accepting: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(std::future::pending());
    let mut signalled = false;
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
            () = &mut shutdown, if !signalled => {
                signalled = true;
                drain.draining.start();
                tracing::info!(drain_ms = drain.period.as_millis() as u64,
                    "draining: /readyz answers 503; still serving until the drain period ends");
                stop_accepting = Box::pin(tokio::time::sleep(drain.period));
                continue;
            }
            () = &mut stop_accepting => break,
        };
        let app = app.clone();
        let activity = Arc::new(Activity::new());
        let active = activity.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let busy = active.begin();
            let answer = app.clone().oneshot(request.map(Body::new));
            async move {
                let answer = answer.await;
                drop(busy);
                answer
            }
        });
        // Watched from the accept on: a connection still being sniffed counts as open too.
        let (http1, http2, watcher) = (http1.clone(), http2.clone(), graceful.watcher());
        let header_read_timeout = limits.header_read_timeout;
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let sniffed = tokio::select! {
                sniffed = tokio::time::timeout(header_read_timeout, sniff(&stream)) => sniffed,
                _ = stopped.wait_for(|stopped| *stopped) => return,
            };
            let protocol = match sniffed {
                Ok(Ok(Some(protocol))) => protocol,
                // Closed, failed, or silent for too long: nothing was asked.
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return,
            };
            let io = TokioIo::new(stream);
            let ended = match protocol {
                Protocol::Http1 => watcher.watch(http1.serve_connection(io, service)).await,
                Protocol::Http2 => {
                    let connection = http2.serve_connection(io, service);
                    serve_http2(connection, &activity, header_read_timeout, stopped, watcher).await
                }
            };
            if let Err(error) = ended {
                // Timeouts, oversized heads and resets are the client's business, not an incident.
                tracing::debug!(error = %error, peer = %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if !signalled {
        drain.draining.start();
    }
    let _ = stopping.send(true);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the shutdown grace period; closing them");
    }
    Ok(())
}

/// The requests of one connection being answered, and when that last changed.
#[derive(Debug)]
struct Activity {
    active: std::sync::atomic::AtomicUsize,
    since: std::sync::Mutex<std::time::Instant>,
}

/// Held while one request is being answered.
struct Busy(Arc<Activity>);

impl Activity {
    fn new() -> Activity {
        Activity { active: 0.into(), since: std::sync::Mutex::new(std::time::Instant::now()) }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.active.fetch_add(1, Ordering::Relaxed);
        self.touch();
        Busy(self.clone())
    }

    fn touch(&self) {
        if let Ok(mut since) = self.since.lock() {
            *since = std::time::Instant::now();
        }
    }

    /// How long no request has been in progress (zero while one is).
    fn idle_for(&self) -> Duration {
        if self.active.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        self.since.lock().map(|since| since.elapsed()).unwrap_or_default()
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// An HTTP/2 connection under the limits an HTTP/1 one has from hyper: one with no request in
/// progress for `idle_after` (`limits.header_read_timeout`, the keep-alive limit of HTTP/1) is
/// closed gracefully (GOAWAY), as it is when accepting stops. `watcher` is held until the
/// connection ends, so the shutdown grace waits for its streams.
async fn serve_http2<C>(
    connection: C,
    activity: &Activity,
    idle_after: Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    watcher: hyper_util::server::graceful::Watcher,
) -> Result<(), hyper::Error>
where
    C: hyper_util::server::graceful::GracefulConnection<Error = hyper::Error>,
{
    let _watched = watcher;
    let mut connection = std::pin::pin!(connection);
    let mut ticks = tokio::time::interval((idle_after / 4).max(Duration::from_millis(1)));
    let mut closing = false;
    loop {
        tokio::select! {
            ended = connection.as_mut() => return ended,
            _ = stopped.wait_for(|stopped| *stopped), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            _ = ticks.tick(), if !closing => {
                if activity.idle_for() >= idle_after {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Once draining, every HTTP/1 answer says `Connection: close` (see [`Drain`]). HTTP/2 has no
/// such header; its connections end with a GOAWAY after the drain period. Taken from the request
/// as it arrives, applied to its answer: a part of the one edge layer (`edge_layer::Edge`).
#[derive(Debug)]
pub struct CloseWhileDraining(Option<Draining>);

impl CloseWhileDraining {
    pub fn of(draining: &Draining, request: &Request) -> Self {
        Self((request.version() < http::Version::HTTP_2).then(|| draining.clone()))
    }

    pub fn apply(self, response: &mut Response) {
        if self.0.is_some_and(|draining| draining.is_draining()) {
            response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
        }
    }
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

/// The request with a body that must be read in full within `within` of the request head.
pub fn body_deadline(request: Request, within: Duration) -> Request {
    request.map(|body| Body::new(DeadlineBody::new(body, within)))
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpStream;

    use super::listen;

    /// A restarted gateway binds its port at once, though the connections its predecessor closed
    /// still sit in `TIME_WAIT` on it (a plain bind, without `SO_REUSEADDR`, is refused).
    #[tokio::test]
    async fn a_restart_binds_the_port_its_predecessor_left_in_time_wait() {
        let first = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (server_side, _) = first.accept().await.unwrap();
        // The server closes first: its side of the connection goes to TIME_WAIT.
        drop(server_side);
        let mut buf = [0u8; 1];
        assert_eq!(client.read(&mut buf).await.unwrap(), 0, "the server closed");
        drop(client);
        drop(first);
        let again = listen(addr).expect("the port is bound again at once");
        assert_eq!(again.local_addr().unwrap(), addr);
    }
}
