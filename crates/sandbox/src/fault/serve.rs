//! How a fault is served: the answer, the delay, or the dropped connection a rule asks for.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, StatusCode};

use super::set::ActiveFault;
use super::{DEFAULT_HANG, Fault};
use crate::server::ConnKill;
use crate::sim::{Reply, Sim, stopped};

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const HTML: HeaderValue = HeaderValue::from_static("text/html");

/// Serves `active` for one cancel request. `normal` runs the provider's real cancel logic (it
/// counts the request and may change the state); `count_only` only counts the request.
pub(crate) async fn apply<S: Sim>(
    sim: &S,
    active: &ActiveFault,
    reference: Option<&str>,
    kill: Option<ConnKill>,
    normal: impl FnOnce() -> Reply,
    count_only: impl FnOnce(),
) -> Response {
    let fault = &active.rule.fault;
    tracing::debug!(provider = sim.provider().id(), fault = %active.id, kind = fault.kind(), reference, "fault");
    let committed = match fault {
        Fault::Latency { ms } => {
            tokio::time::sleep(Duration::from_millis(*ms)).await;
            return normal().into_response();
        }
        _ if active.rule.commit => Some(normal()),
        _ => {
            count_only();
            None
        }
    };
    match fault {
        Fault::Status { status, retry_after, body } => {
            let status = status_of(*status);
            let (content_type, body) = match body {
                None => (JSON, sim.error_body(status)),
                Some(serde_json::Value::String(text)) => (TEXT, Bytes::from(text.clone())),
                Some(value) => (JSON, Bytes::from(serde_json::to_vec(value).unwrap_or_default())),
            };
            let mut response = (status, [(CONTENT_TYPE, content_type)], body).into_response();
            if let Some(seconds) = retry_after {
                response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(*seconds));
            }
            response
        }
        Fault::Reset => abort(kill, sim).await,
        Fault::Hang { ms } => {
            let hold = ms.map_or(DEFAULT_HANG, Duration::from_millis);
            tokio::select! {
                () = stopped(sim.common().stop.subscribe()) => {}
                () = tokio::time::sleep(hold) => {}
            }
            abort(kill, sim).await
        }
        Fault::MalformedJson { status } => {
            let full = match committed {
                Some(reply) => reply.body,
                None => sim.success_sample(reference.unwrap_or("unknown")),
            };
            let cut = full.slice(..(full.len() / 2).max(1).min(full.len()));
            (status_of(*status), [(CONTENT_TYPE, JSON)], cut).into_response()
        }
        Fault::Html { status } => {
            let status = status_of(*status);
            let line = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
            let page = format!(
                "<html>\r\n<head><title>{line}</title></head>\r\n<body>\r\n<center><h1>{line}</h1></center>\r\n\
                 <hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
            );
            (status, [(CONTENT_TYPE, HTML)], page).into_response()
        }
        Fault::Empty { status } => (status_of(*status), [(CONTENT_TYPE, JSON)], Bytes::new()).into_response(),
        Fault::Text { status, body } => (status_of(*status), [(CONTENT_TYPE, TEXT)], body.clone()).into_response(),
        // Handled above; kept so the match stays exhaustive without a wildcard.
        Fault::Latency { .. } => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn status_of(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Drops the connection with an RST and never answers. Without a connection handle (the router
/// served by something else than [`crate::serve`]) it can only wait for the sandbox to stop.
async fn abort<S: Sim>(kill: Option<ConnKill>, sim: &S) -> Response {
    let stop = sim.common().stop.subscribe();
    if let Some(kill) = kill {
        kill.fire();
    }
    stopped(stop).await;
    StatusCode::SERVICE_UNAVAILABLE.into_response()
}
