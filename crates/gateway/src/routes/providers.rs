//! `GET /v1/providers`: what each provider is and how it is doing. Account names only, never
//! credentials.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::extract::Caller;
use crate::state::AppState;

pub async fn list(State(state): State<AppState>, Caller(_client): Caller) -> Json<Value> {
    let data: Vec<Value> = state
        .registry
        .entries()
        .map(|entry| {
            let health = entry.guard.snapshot();
            json!({
                "id": entry.id(),
                "object": "provider",
                "enabled": entry.settings.enabled,
                "accounts": entry.accounts.keys().collect::<Vec<_>>(),
                "health": {
                    "circuit": health.circuit.as_str(),
                    "success_rate": health.success_rate,
                    "latency_ms": {"p50": health.latency_p50_ms, "p99": health.latency_p99_ms},
                    "in_flight": health.in_flight,
                    "max_in_flight": health.max_in_flight,
                },
                "rate_limit": {
                    "per_second": health.rate_limit_per_second,
                    "limited_for_ms": health.rate_limited_for.map(|d| d.as_millis() as u64),
                },
            })
        })
        .collect();
    Json(json!({"object": "list", "data": data}))
}
