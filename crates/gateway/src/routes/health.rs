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
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready to take traffic: not shutting down, config loaded (or the process would not run),
/// ledger migrated and taking writes. A read is not enough: a SQLite ledger on a full disk reads
/// fine and refuses every write. `cause` names what failed, as the logs do (never a secret).
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.draining.is_draining() {
        return not_ready(
            json!({"config": "ok", "ledger": "not_checked", "migrations": "not_checked",
                                "shutdown": "draining"}),
            "the gateway is shutting down",
        );
    }
    let checked = tokio::time::timeout(READY_WITHIN, check_ledger(&state)).await.unwrap_or_else(|_| {
        Err(LedgerCheck::Failed {
            outage: Outage::Unreachable,
            cause: format!("the ledger did not answer within {} ms", READY_WITHIN.as_millis()),
        })
    });
    match checked {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "checks": {"config": "ok", "ledger": "ok", "migrations": "ok"}})),
        )
            .into_response(),
        Err(LedgerCheck::Pending) => {
            not_ready(json!({"config": "ok", "ledger": "ok", "migrations": "pending"}), "migrations are pending")
        }
        Err(LedgerCheck::Failed { outage, cause }) => {
            tracing::warn!(cause = %cause, "not ready: the ledger cannot take writes");
            not_ready(json!({"config": "ok", "ledger": outage.as_str(), "migrations": "unknown"}), &cause)
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
