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
                   "migrations": if migrated { "ok" } else { "pending" },
                   "rate_limits": rate_limits(&state).await},
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

/// Where provider quotas are decided (SPEC §11): `local`, `shared`, or, while the shared store
/// fails, `local_fallback` (still ready: each process limits itself) or `store_unavailable`
/// (providers with `on_store_error = "deny"` refuse calls; the others still serve, so the
/// process stays ready). The worst provider's mode is the one named.
async fn rate_limits(state: &AppState) -> &'static str {
    use crate::resilience::QuotaMode;
    let rank = |m: &QuotaMode| match m {
        QuotaMode::Local => 0,
        QuotaMode::Shared => 1,
        QuotaMode::LocalFallback => 2,
        QuotaMode::Denying => 3,
    };
    // Concurrently: a hung store costs one timeout, not one per provider.
    let mut probes = tokio::task::JoinSet::new();
    for entry in state.registry.entries() {
        let entry = entry.clone();
        probes.spawn(async move { entry.guard.probe_quota().await });
    }
    probes.join_all().await.into_iter().max_by_key(rank).unwrap_or(QuotaMode::Local).as_str()
}
