//! What the three simulators share: the [`Sim`] trait, the cancel driver that consults the fault
//! rules, and the provider-independent part of the admin API (`/_sandbox/...`).

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::handler::Handler;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::SimulatedProvider;
use crate::fault::{self, FaultId, FaultRule, FaultSet};
use crate::server::ConnKill;
use crate::store::{CallCount, CallsReport, Counters};

/// A provider answer: a status and a JSON body.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn new(status: StatusCode, body: impl Into<Bytes>) -> Reply {
        Reply { status, body: body.into() }
    }

    pub(crate) fn json(status: StatusCode, value: &impl serde::Serialize) -> Reply {
        Reply { status, body: Bytes::from(serde_json::to_vec(value).unwrap_or_default()) }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (self.status, [(CONTENT_TYPE, http::HeaderValue::from_static("application/json"))], self.body).into_response()
    }
}

/// An admin API refusal: `{"error": "..."}` with a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AdminError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl AdminError {
    pub(crate) fn bad_request(message: impl Into<String>) -> AdminError {
        AdminError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    pub(crate) fn conflict(message: impl Into<String>) -> AdminError {
        AdminError { status: StatusCode::CONFLICT, message: message.into() }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> AdminError {
        AdminError { status: StatusCode::NOT_FOUND, message: message.into() }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

/// State every simulator has besides its records.
#[derive(Debug)]
pub(crate) struct Common {
    pub(crate) faults: FaultSet,
    /// Set to `true` when the sandbox stops: ends accept loops, connections and hangs.
    pub(crate) stop: watch::Sender<bool>,
}

impl Common {
    pub(crate) fn new(case_insensitive_references: bool) -> Common {
        Common { faults: FaultSet::new(case_insensitive_references), stop: watch::Sender::new(false) }
    }
}

/// Resolves once `stop` is `true` (or its sender is gone).
pub(crate) async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// One simulated provider, as the generic admin routes and the fault machinery see it.
pub(crate) trait Sim: Send + Sync + 'static {
    fn provider(&self) -> SimulatedProvider;
    fn common(&self) -> &Common;
    /// The storage key of a reference as the provider matches it (e.g. lower-cased UUIDs).
    fn key<'a>(&self, reference: &'a str) -> Cow<'a, str> {
        Cow::Borrowed(reference)
    }
    /// The request counters of this simulator's store.
    fn counters(&self) -> &dyn Counters;
    /// Counts one cancel request (all of them, with or without a usable reference).
    fn bump_total(&self) {
        self.counters().bump_total();
    }
    /// Counts one received cancel request for `key` without touching its state.
    fn count_received(&self, key: &str) {
        self.counters().count_received(key);
    }
    fn total(&self) -> u64 {
        self.counters().total()
    }
    fn calls(&self, key: &str) -> CallCount {
        self.counters().calls(key)
    }
    fn report(&self) -> CallsReport {
        self.counters().report()
    }
    fn reset_calls(&self) {
        self.counters().reset_calls();
    }
    /// Stores the seeded references.
    fn seed(&self);
    /// Restores the seeded references and forgets every other record and all counters.
    fn reseed(&self) {
        self.counters().clear();
        self.seed();
    }
    /// The admin view of one reference, `None` when it does not exist.
    fn state(&self, key: &str) -> Option<Value>;
    /// Creates a reference from the admin API's JSON spec; answers the created state.
    fn create(&self, spec: &[u8]) -> Result<Value, AdminError>;
    /// The provider's own error body for an injected `status` fault.
    fn error_body(&self, status: StatusCode) -> Bytes;
    /// A plausible success body, truncated for `malformed_json` faults that did not commit.
    fn success_sample(&self, reference: &str) -> Bytes;
}

/// Runs one cancel request: counts it, serves a fault if a rule hits it, else runs `normal`.
/// `reference` is the storage key (already normalized), when the request names one.
/// `normal` must count the request (`received`) itself, and `committed` if it cancels.
pub(crate) async fn drive<S: Sim>(
    sim: &S,
    reference: Option<&str>,
    kill: Option<Extension<ConnKill>>,
    normal: impl FnOnce() -> Reply,
) -> Response {
    let kill = kill.map(|Extension(k)| k);
    sim.bump_total();
    match sim.common().faults.pick(reference) {
        None => normal().into_response(),
        Some(active) => {
            let count_only = || {
                if let Some(key) = reference {
                    sim.count_received(key);
                }
            };
            fault::apply(sim, &active, reference, kill, normal, count_only).await
        }
    }
}

/// A simulator's router: its cancel route, the admin API (`create_path` creates a reference), and
/// the provider's own answer to any other request (`not_found`).
pub(crate) fn sim_router<S: Sim, H: Handler<T, Arc<S>>, T: 'static>(
    sim: Arc<S>,
    cancel_path: &str,
    cancel: MethodRouter<Arc<S>>,
    create_path: &str,
    not_found: H,
) -> Router {
    Router::new().route(cancel_path, cancel).merge(admin_routes::<S>(create_path)).fallback(not_found).with_state(sim)
}

/// The provider-independent admin routes, plus create (`create_path`) and state.
fn admin_routes<S: Sim>(create_path: &str) -> Router<Arc<S>> {
    Router::new()
        .route(create_path, post(create::<S>))
        .route("/_sandbox/state/{reference}", get(state::<S>))
        .route("/_sandbox/faults", post(add_fault::<S>).get(list_faults::<S>).delete(clear_faults::<S>))
        .route("/_sandbox/faults/{id}", delete(remove_fault::<S>))
        .route("/_sandbox/calls", get(calls::<S>).delete(reset_calls::<S>))
        .route("/_sandbox/calls/{reference}", get(calls_one::<S>))
        .route("/_sandbox/reset", post(reset::<S>))
}

async fn create<S: Sim>(State(sim): State<Arc<S>>, body: Bytes) -> Response {
    match sim.create(&body) {
        Ok(created) => (StatusCode::CREATED, Json(created)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn state<S: Sim>(State(sim): State<Arc<S>>, Path(reference): Path<String>) -> Response {
    match sim.state(&sim.key(&reference)) {
        Some(state) => Json(state).into_response(),
        None => AdminError::not_found(format!("unknown reference: {reference}")).into_response(),
    }
}

async fn add_fault<S: Sim>(State(sim): State<Arc<S>>, body: Bytes) -> Response {
    let rule: FaultRule = match serde_json::from_slice(&body) {
        Ok(rule) => rule,
        Err(e) => return AdminError::bad_request(format!("invalid fault rule: {e}")).into_response(),
    };
    let id = sim.common().faults.add(rule.clone());
    tracing::debug!(provider = sim.provider().id(), fault = %id, "fault injected");
    let mut view = serde_json::to_value(&rule).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut view {
        map.insert("id".to_owned(), Value::String(id.to_string()));
    }
    (StatusCode::CREATED, Json(view)).into_response()
}

async fn list_faults<S: Sim>(State(sim): State<Arc<S>>) -> Response {
    Json(json!({ "faults": sim.common().faults.list() })).into_response()
}

async fn clear_faults<S: Sim>(State(sim): State<Arc<S>>) -> Response {
    Json(json!({ "cleared": sim.common().faults.clear() })).into_response()
}

async fn remove_fault<S: Sim>(State(sim): State<Arc<S>>, Path(id): Path<String>) -> Response {
    match id.parse::<FaultId>() {
        Ok(fid) if sim.common().faults.remove(fid) => Json(json!({ "deleted": id })).into_response(),
        _ => AdminError::not_found(format!("no such fault: {id}")).into_response(),
    }
}

async fn calls<S: Sim>(State(sim): State<Arc<S>>) -> Response {
    Json(sim.report()).into_response()
}

async fn calls_one<S: Sim>(State(sim): State<Arc<S>>, Path(reference): Path<String>) -> Response {
    Json(sim.calls(&sim.key(&reference))).into_response()
}

async fn reset_calls<S: Sim>(State(sim): State<Arc<S>>) -> Response {
    sim.reset_calls();
    Json(json!({ "reset": true })).into_response()
}

async fn reset<S: Sim>(State(sim): State<Arc<S>>) -> Response {
    sim.common().faults.clear();
    sim.reseed();
    Json(json!({ "reset": true })).into_response()
}

/// Parses an admin JSON body; an empty body is `{}`.
pub(crate) fn parse_spec<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|e| AdminError::bad_request(format!("invalid body: {e}")))
}

/// Admin-created references: 1–128 of `A–Z a–z 0–9 _ -`.
pub(crate) fn check_reference(reference: &str) -> Result<(), AdminError> {
    let ok = !reference.is_empty()
        && reference.len() <= 128
        && reference.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok { Ok(()) } else { Err(AdminError::bad_request("references are 1-128 of A-Z a-z 0-9 _ -")) }
}

/// `prefix` followed by `n` random ASCII letters and digits.
pub(crate) fn random_id(prefix: &str, n: usize) -> String {
    let mut id = String::with_capacity(prefix.len() + n);
    id.push_str(prefix);
    id.extend(std::iter::repeat_with(fastrand::alphanumeric).take(n));
    id
}

/// The `Authorization: Bearer <token>` token, if any.
pub(crate) fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}
