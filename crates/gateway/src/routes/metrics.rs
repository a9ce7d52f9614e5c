//! `GET /metrics`: Prometheus text format. The ledger's backlog, its `needs_review` count and the
//! circuits' states are read at each scrape.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use time::OffsetDateTime;

use crate::state::AppState;
use crate::telemetry;

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics",
    responses((status = 200, description = "Metrics.", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    match state.driver.ledger.stats().await {
        Ok(stats) => telemetry::set_ledger_backlog(&stats, OffsetDateTime::now_utc()),
        // The scrape still answers: the gauges keep their last values and /readyz says why.
        Err(e) => tracing::warn!(error = %e, "cannot read the ledger's backlog for /metrics"),
    }
    match state.driver.ledger.count(cancelgate_ledger::Status::NeedsReview).await {
        Ok(count) => telemetry::set_ledger_needs_review(count),
        Err(e) => tracing::warn!(error = %e, "cannot count the cancellations needing review for /metrics"),
    }
    match state.driver.ledger.size_bytes().await {
        Ok(bytes) => telemetry::set_ledger_bytes(bytes),
        Err(e) => tracing::warn!(error = %e, "cannot read the ledger's size for /metrics"),
    }
    crate::webhooks::metrics::refresh(&state.driver.ledger, &state.webhooks, OffsetDateTime::now_utc()).await;
    for entry in state.registry.entries() {
        telemetry::set_circuit_state(entry.id(), entry.guard.snapshot().circuit);
    }
    let mut response = telemetry::prometheus().render().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}
