use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use cancelgate_ledger::{LedgerError, Outage};
use http::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::state::AppState;

/// `/readyz` answers within this, whatever the ledger does (SPEC §12: within 1 s), so a
/// prober's own timeout never hides the cause.
const READY_WITHIN: Duration = Duration::from_millis(900);

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "healthz",
    responses((status = 200, description = "Alive.", body = crate::openapi::HealthSchema)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready for traffic: configuration loaded, ledger reachable and migrated.
// Not shutting down, config loaded (or the process would not run), ledger migrated and taking
// writes. A read is not enough: a SQLite ledger on a full disk reads fine and refuses every
// write. `cause` names what failed, as the logs do (never a secret).
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "readyz",
    responses(
        (status = 200, description = "Ready.", body = crate::openapi::ReadinessSchema),
        (status = 503, description = "Not ready; `checks` says why.", body = crate::openapi::ReadinessSchema),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.draining.is_draining() {
        return not_ready(
            json!({"config": "ok", "ledger": "not_checked", "migrations": "not_checked",
                                "shutdown": "draining"}),
            "the gateway is shutting down",
        );
    }
    let ledger = tokio::time::timeout(READY_WITHIN, check_ledger(&state));
    let (checked, rate_limits) = tokio::join!(ledger, rate_limits(&state));
    let checked = checked.unwrap_or_else(|_| {
        Err(LedgerCheck::Failed {
            outage: Outage::Unreachable,
            cause: format!("the ledger did not answer within {} ms", READY_WITHIN.as_millis()),
        })
    });
    match checked {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "checks": {"config": "ok", "ledger": "ok", "migrations": "ok",
                                                       "rate_limits": rate_limits}})),
        )
            .into_response(),
        Err(LedgerCheck::Pending) => not_ready(
            json!({"config": "ok", "ledger": "ok", "migrations": "pending", "rate_limits": rate_limits}),
            "migrations are pending",
        ),
        Err(LedgerCheck::Failed { outage, cause }) => {
            tracing::warn!(cause = %cause, "not ready: the ledger cannot take writes");
            let checks = json!({"config": "ok", "ledger": outage.as_str(), "migrations": "unknown",
                                "rate_limits": rate_limits});
            not_ready(checks, &cause)
        }
    }
}

enum LedgerCheck {
    Pending,
    Failed { outage: Outage, cause: String },
}

impl From<LedgerError> for LedgerCheck {
    fn from(e: LedgerError) -> Self {
        LedgerCheck::Failed { outage: e.outage().unwrap_or(Outage::WriteFailing), cause: e.to_string() }
    }
}

async fn check_ledger(state: &AppState) -> Result<(), LedgerCheck> {
    let ledger = &state.driver.ledger;
    // Migrations stay applied once they are: read until seen, then never again.
    if !state.migrated.load(Ordering::Relaxed) {
        if !ledger.is_migrated().await? {
            return Err(LedgerCheck::Pending);
        }
        state.migrated.store(true, Ordering::Relaxed);
    }
    ledger.check_writable(&state.driver.owner, OffsetDateTime::now_utc()).await?;
    Ok(())
}

fn not_ready(checks: Value, cause: &str) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "not_ready", "checks": checks, "cause": cause})))
        .into_response()
}

/// Where provider quotas are decided (SPEC §11): `local`, `shared`, or, while the shared store
/// fails, `local_fallback` (still ready: each process limits itself) or `store_unavailable`
/// (providers with `on_store_error = "deny"` refuse calls; the others still serve, so the
/// process stays ready). The worst provider's mode is the one named. Each probe is bounded by
/// `redis.timeout_ms`, well within [`READY_WITHIN`].
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
