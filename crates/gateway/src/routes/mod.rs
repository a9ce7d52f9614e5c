//! The HTTP surface: one function builds the whole router, layers in one place.

mod cancellations;
mod errors;
mod health;
mod metrics;
mod providers;

pub use providers::{LatencyMs, ProviderHealth, ProviderList, ProviderRateLimit, ProviderView};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use cancelgate_core::ErrorCode;

use crate::conn_limits;
use crate::error::ApiError;
use crate::state::AppState;
use crate::{openapi, request_id, telemetry};

/// Every route (method, path) the router serves; `openapi.rs` documents each of them.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/cancellations"),
    ("GET", "/v1/cancellations"),
    ("GET", "/v1/cancellations/{id}"),
    ("GET", "/v1/providers"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/errors"),
    ("GET", "/errors/{code}"),
];

/// `/openapi.json` and the interactive docs under `/docs` (assets bundled in the binary).
fn docs() -> Router<AppState> {
    let config = utoipa_swagger_ui::Config::new(["/openapi.json"]).validator_url("none");
    utoipa_swagger_ui::SwaggerUi::new("/docs").url("/openapi.json", openapi::openapi()).config(config).into()
}

pub fn router(state: AppState) -> Router {
    let draining = state.draining.clone();
    let max_body = state.settings.limits.max_body_bytes;
    let body_within = std::time::Duration::from_millis(state.settings.limits.body_read_timeout_ms);
    let v1 = Router::new()
        .route("/v1/cancellations", post(cancellations::create).get(cancellations::list))
        .route("/v1/cancellations/{id}", get(cancellations::get))
        .route("/v1/providers", get(providers::list));
    Router::new()
        .merge(v1)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/errors", get(errors::index))
        .route("/errors/{code}", get(errors::page))
        .route("/metrics", get(metrics::metrics))
        .merge(docs())
        .fallback(|| async { ApiError::not_found("No such route.") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::MethodNotAllowed, "This route does not accept this method; see `Allow`.")
        })
        .layer(DefaultBodyLimit::max(max_body))
        // A body that trickles in (or never comes) is cut after `limits.body_read_timeout_ms`.
        .layer(axum::middleware::from_fn_with_state(body_within, conn_limits::body_deadline))
        // The request span and metrics: inside the request id, which they record.
        .layer(axum::middleware::from_fn(telemetry::middleware))
        // Outermost: every response, errors and fallbacks included, carries the request id.
        .layer(axum::middleware::from_fn(request_id::middleware))
        // Once draining, HTTP/1 answers close their connection (see `conn_limits::Drain`).
        .layer(axum::middleware::from_fn_with_state(draining, conn_limits::close_while_draining))
        .with_state(state)
}
