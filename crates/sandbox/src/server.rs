//! The accept loop. `axum::serve` cannot drop a connection in the middle of a request, and the
//! `reset` and `hang` faults need exactly that, so each connection is served by hyper's HTTP/1
//! server directly, with a per-connection [`ConnKill`] handle put in every request's extensions.
//! When a handler fires it, the connection is torn down and its socket closed with `SO_LINGER` 0,
//! which sends an RST.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::sim::stopped;

/// Asks the connection that carried a request to be dropped at once, with an RST.
#[derive(Debug, Clone)]
pub(crate) struct ConnKill(Arc<Notify>);

impl ConnKill {
    fn new() -> ConnKill {
        ConnKill(Arc::new(Notify::new()))
    }

    pub(crate) fn fire(&self) {
        self.0.notify_one();
    }
}

/// Serves `router` on `listener` until `stop` becomes `true` (or its sender is dropped); then
/// closes every open connection and returns.
///
/// Use this (not `axum::serve`) for a simulator router so the `reset` and `hang` faults work.
pub async fn serve(listener: TcpListener, router: Router, stop: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(stop.clone()) => break,
        };
        // Reap finished connection tasks so the set stays small.
        while connections.try_join_next().is_some() {}
        match accepted {
            Ok((stream, _peer)) => {
                connections.spawn(connection(stream, router.clone(), stop.clone()));
            }
            Err(e) => {
                // Typically EMFILE under load: back off briefly instead of spinning.
                tracing::warn!(error = %e, "sandbox accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    connections.shutdown().await;
}

async fn connection(stream: TcpStream, router: Router, stop: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let kill = ConnKill::new();
    let handle = kill.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut request = Request::from(request.map(axum::body::Body::new));
        request.extensions_mut().insert(handle.clone());
        let router = router.clone();
        async move { Ok::<_, Infallible>(router.oneshot(request).await.unwrap_or_else(|e| match e {})) }
    });
    // No header-read timeout: hyper's default (30 s) also runs while a keep-alive connection is
    // idle, and closing idle pooled connections would race with the gateway reusing them.
    let mut conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        result = &mut conn => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "sandbox connection ended with an error");
            }
        }
        () = kill.0.notified() => {
            let parts = conn.into_parts();
            if let Err(e) = parts.io.inner().set_zero_linger() {
                tracing::debug!(error = %e, "could not set SO_LINGER 0");
            }
            drop(parts);
        }
        () = stopped(stop) => {}
    }
}
