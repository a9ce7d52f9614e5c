use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};

use crate::state::AppState;

/// The process is alive.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready to take traffic: config loaded (or the process would not run), ledger reachable and migrated.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let ledger = &state.driver.ledger;
    let (reachable, migrated) = match ledger.ping().await {
        Ok(()) => (true, ledger.is_migrated().await.unwrap_or(false)),
        Err(_) => (false, false),
    };
    let ready = reachable && migrated;
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": {"config": "ok", "ledger": if reachable { "ok" } else { "unreachable" },
                   "migrations": if migrated { "ok" } else { "pending" }},
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}
