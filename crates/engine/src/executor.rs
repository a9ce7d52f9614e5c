//! The only place that sends requests upstream: reqwest, one client (connection pool) per provider.
//!
//! The pool has a cap: at most `providers.<id>.max_connections` requests are out at once (over
//! HTTP/1.1, one connection each); the next ones wait their turn in a queue (first come, first
//! served) holding only their built request, not a connection and its buffers. A slow provider
//! with thousands of cancels waiting costs thousands of small futures, not thousands of sockets.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cancelgate_core::{HeaderValueKind, HttpRequest, HttpResponse, ProviderId, TransportError, TransportErrorKind};
use http::HeaderValue;
use secrecy::ExposeSecret;
use tokio::sync::Semaphore;

use crate::context;
use crate::settings::ProviderSettings;

#[derive(Debug, Clone)]
pub struct Executor {
    client: reqwest::Client,
    /// Base URL without a trailing slash; adapters' paths start with one.
    base: String,
    max_response_bytes: usize,
    /// Leave to hold one upstream connection (`providers.<id>.max_connections`).
    connections: Arc<Semaphore>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct ClientBuildError(String);

impl Executor {
    pub fn new(settings: &ProviderSettings) -> Result<Self, ClientBuildError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
            .timeout(Duration::from_millis(settings.timeout_ms))
            // A cancel must reach the configured host or fail; never follow a redirect elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(settings.max_connections)
            .user_agent(concat!("cancelgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientBuildError(e.without_url().to_string()))?;
        let base = settings.base_url.as_str().trim_end_matches('/').to_owned();
        Ok(Self {
            client,
            base,
            max_response_bytes: settings.max_response_bytes,
            connections: Arc::new(Semaphore::new(settings.max_connections)),
        })
    }

    async fn read_bounded(&self, mut response: reqwest::Response) -> Result<(Bytes, bool), reqwest::Error> {
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await? {
            let room = self.max_response_bytes.saturating_sub(body.len());
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                return Ok((body.freeze(), true));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body.freeze(), false))
    }

    /// Sends one request to the provider and reads its answer, bounded.
    ///
    /// Waits (queued, never refused) while `max_connections` requests are already out: the
    /// attempt's own timeout starts once it has a connection.
    pub async fn send(&self, provider: ProviderId, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        // The semaphore is never closed; should it be, nothing was sent.
        let _connection = self.connections.acquire().await.map_err(|_| {
            TransportError::new(TransportErrorKind::NotSent, "the provider's connection pool is closed".to_owned())
        })?;
        let _in_flight = crate::telemetry::InFlight::start(provider.as_str());
        let url = format!("{}{}", self.base, request.path);
        let mut builder = self.client.request(request.method, url);
        for header in request.headers {
            let value = match &header.value {
                HeaderValueKind::Plain(v) => HeaderValue::from_str(v),
                HeaderValueKind::Secret(v) => HeaderValue::from_str(v.expose_secret()).map(|mut v| {
                    v.set_sensitive(true);
                    v
                }),
            };
            let value = value.map_err(|_| {
                TransportError::new(
                    TransportErrorKind::NotSent,
                    format!("header {} has a value HTTP cannot carry", header.name),
                )
            })?;
            builder = builder.header(header.name, value);
        }
        if let Some(context) = context::current() {
            builder = builder.header(context::REQUEST_ID_HEADER, context.request_id.as_str());
            if let Some(trace) = &context.trace {
                builder = builder.header(context::TRACEPARENT_HEADER, trace.as_str());
            }
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let response = builder.send().await.map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        // Boxed: inline, the body's read would be the largest of this future's waits, and size it
        // (and the driver's task around it) for the whole wait for a connection and an answer.
        let (body, truncated) = Box::pin(self.read_bounded(response)).await.map_err(transport_error)?;
        Ok(HttpResponse::with_headers(status, headers, body, truncated))
    }
}

/// Whether the provider may have received the request decides everything downstream.
fn transport_error(error: reqwest::Error) -> TransportError {
    let kind = if error.is_connect() {
        TransportErrorKind::NotSent
    } else if error.is_timeout() {
        TransportErrorKind::Timeout
    } else {
        TransportErrorKind::Reset
    };
    // `without_url`: the URL holds the reference, which is fine, but never print more than needed.
    let detail = error_chain(&error.without_url());
    TransportError::new(kind, detail)
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http::Method;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    fn settings(base_url: &str, max_connections: usize) -> ProviderSettings {
        let toml = format!("base_url = \"{base_url}\"\nmax_connections = {max_connections}\n");
        config::Config::builder()
            .add_source(config::File::from_str(&toml, config::FileFormat::Toml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap()
    }

    /// An upstream that counts connections and request heads, and answers each request only once
    /// `released` allows one more answer.
    struct Upstream {
        connections: AtomicUsize,
        requests: AtomicUsize,
        released: tokio::sync::watch::Sender<usize>,
    }

    async fn upstream() -> (Arc<Upstream>, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (released, _) = tokio::sync::watch::channel(0);
        let up = Arc::new(Upstream { connections: 0.into(), requests: 0.into(), released });
        let server = up.clone();
        tokio::spawn(async move {
            let answered = Arc::new(AtomicUsize::new(0));
            while let Ok((mut stream, _)) = listener.accept().await {
                server.connections.fetch_add(1, Ordering::SeqCst);
                let (server, answered) = (server.clone(), answered.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    loop {
                        let Ok(n) = stream.read(&mut buf).await else { return };
                        if n == 0 {
                            return;
                        }
                        head.extend_from_slice(&buf[..n]);
                        while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                            head.drain(..end + 4);
                            server.requests.fetch_add(1, Ordering::SeqCst);
                            let mut allowed = server.released.subscribe();
                            let mine = answered.fetch_add(1, Ordering::SeqCst) + 1;
                            let _ = allowed.wait_for(|n| *n >= mine).await;
                            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                            if stream.write_all(answer).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (up, base)
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        let started = std::time::Instant::now();
        while !done() {
            assert!(started.elapsed() < Duration::from_secs(10), "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn over_the_connection_cap_a_request_waits_for_a_connection_instead_of_failing() {
        let (up, base) = upstream().await;
        let executor = Executor::new(&settings(&base, 1)).unwrap();
        let send = |executor: &Executor| {
            let executor = executor.clone();
            tokio::spawn(async move {
                executor.send(ProviderId::new("chargeapi"), HttpRequest::new(Method::GET, "/x")).await
            })
        };
        let first = send(&executor);
        until("the first request arrives", || up.requests.load(Ordering::SeqCst) == 1).await;
        let second = send(&executor);
        // With a cap of 1 the second request is not sent (no second connection) while the first is out.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(up.requests.load(Ordering::SeqCst), 1, "the second request went out over the cap");
        assert_eq!(up.connections.load(Ordering::SeqCst), 1);
        assert!(!second.is_finished(), "the second request must wait, not fail");
        up.released.send_replace(1);
        assert_eq!(first.await.unwrap().unwrap().status, 200);
        until("the second request arrives", || up.requests.load(Ordering::SeqCst) == 2).await;
        up.released.send_replace(2);
        let answer = second.await.unwrap().unwrap();
        assert_eq!((answer.status.as_u16(), &answer.body[..]), (200, &b"ok"[..]));
        assert_eq!(up.connections.load(Ordering::SeqCst), 1, "one connection, reused");
    }

    #[tokio::test]
    async fn the_cap_is_per_provider_setting() {
        let (up, base) = upstream().await;
        let executor = Executor::new(&settings(&base, 2)).unwrap();
        let sends: Vec<_> = (0..3)
            .map(|_| {
                let executor = executor.clone();
                tokio::spawn(async move {
                    executor.send(ProviderId::new("chargeapi"), HttpRequest::new(Method::GET, "/x")).await
                })
            })
            .collect();
        until("two requests arrive", || up.requests.load(Ordering::SeqCst) == 2).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(up.requests.load(Ordering::SeqCst), 2, "a third request went out over a cap of 2");
        up.released.send_replace(3);
        for send in sends {
            assert_eq!(send.await.unwrap().unwrap().status, 200);
        }
        assert!(up.connections.load(Ordering::SeqCst) <= 2);
    }
}
