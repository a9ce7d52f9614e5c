//! `GET /v1/providers`: what each provider is and how it is doing. Account names only, never
//! credentials.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::extract::Caller;
use crate::openapi::problems;
use crate::state::AppState;

/// `GET /v1/providers`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderList {
    #[schema(example = "list")]
    pub object: &'static str,
    pub data: Vec<ProviderView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderView {
    #[schema(example = "chargeapi")]
    pub id: &'static str,
    #[schema(example = "provider")]
    pub object: &'static str,
    pub enabled: bool,
    /// Configured account names (never their credentials).
    pub accounts: Vec<String>,
    pub health: ProviderHealth,
    pub rate_limit: ProviderRateLimit,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderHealth {
    /// `closed`, `open` or `half_open`.
    #[schema(example = "closed")]
    pub circuit: &'static str,
    /// Share of calls in the breaker's window that got an answer (refusals included); null before any.
    pub success_rate: Option<f64>,
    pub latency_ms: LatencyMs,
    pub in_flight: usize,
    pub max_in_flight: usize,
}

/// Over the most recent upstream calls; null before any.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatencyMs {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderRateLimit {
    pub per_second: u32,
    /// Set while the provider's own 429 keeps the gateway away.
    pub limited_for_ms: Option<u64>,
}

problems!(
    /// `GET /v1/providers` answers nothing but the list; its `Caller` may refuse first.
    ListProblems = V1_LAYERS + []
);

/// Each provider: accounts (names only) and health.
#[utoipa::path(
    get, path = "/v1/providers", tag = "providers", operation_id = "listProviders",
    responses((status = 200, description = "The configured providers.", body = ProviderList), ListProblems),
    security(("bearer" = []))
)]
pub async fn list(State(state): State<AppState>, Caller(_client): Caller) -> Json<ProviderList> {
    Json(ProviderList { object: "list", data: views(&state) })
}

/// Every provider as `GET /v1/providers` shows it (the console's health page shows the same).
pub(crate) fn views(state: &AppState) -> Vec<ProviderView> {
    state
        .registry
        .entries()
        .map(|entry| {
            let health = entry.guard.snapshot();
            ProviderView {
                id: entry.id(),
                object: "provider",
                enabled: entry.settings.enabled,
                accounts: entry.accounts.keys().cloned().collect(),
                health: ProviderHealth {
                    circuit: health.circuit.as_str(),
                    success_rate: health.success_rate,
                    latency_ms: LatencyMs { p50: health.latency_p50_ms, p99: health.latency_p99_ms },
                    in_flight: health.in_flight,
                    max_in_flight: health.max_in_flight,
                },
                rate_limit: ProviderRateLimit {
                    per_second: health.rate_limit_per_second,
                    limited_for_ms: health.rate_limited_for.map(|d| d.as_millis() as u64),
                },
            }
        })
        .collect()
}
