//! The caller's own quota (SPEC §3, §4): one limiter per configured client, checked by a route
//! layer on every `/v1` route ([`enforce`], inside `routes::authorize`, which names the client).
//! The console (`/console`) and the operations endpoints (`/healthz`, `/readyz`, `/metrics`,
//! `/openapi.json`, `/docs`, `/errors`) are outside `/v1` and not limited.
//!
//! What a request costs: one unit, whatever the route. A batch (`POST /v1/cancellation-batches`)
//! is one request and costs one unit like any other, as it did when the check was inside its
//! handler: its items are bounded by the batch's own size limit and each item passes its
//! provider's quota, bulkhead and breaker on its own (SPEC §10), which is what protects the
//! providers. Load shed here is shed before anything is read, recorded or sent.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cancelgate_core::ErrorCode;

use crate::clients::Clients;
use crate::error::ApiError;
use crate::extract::Caller;
use crate::state::AppState;
use cancelgate_engine::resilience::RateLimit;

/// One limiter per configured client, built at start (the set of clients is static).
#[derive(Debug, Default)]
pub struct ClientLimits {
    by_client: HashMap<String, RateLimit>,
}

impl ClientLimits {
    pub fn new(clients: &Clients) -> Self {
        let by_client =
            clients.iter().map(|c| (c.name.clone(), RateLimit::per_second(c.per_second, c.burst))).collect();
        Self { by_client }
    }

    /// `Err(wait)` when the client's quota is used up.
    pub fn check(&self, client: &str) -> Result<(), Duration> {
        self.by_client.get(client).map_or(Ok(()), RateLimit::check)
    }
}

/// The answer to a client whose quota is used up: `429 rate_limited` with `Retry-After`.
pub fn exhausted(wait: Duration) -> ApiError {
    ApiError::new(ErrorCode::RateLimited, "This client's request quota is used up.").with_retry_after(wait)
}

/// The route layer: one unit of the caller's quota per request, or `429` before the handler
/// reads anything. It runs after `routes::authorize`; a request without a [`Caller`] cannot
/// reach it (authorize answers first), and is refused rather than let through unmetered.
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(Caller(client)) = request.extensions().get::<Caller>() else {
        return crate::extract::unauthorized().into_response();
    };
    if let Err(wait) = state.client_limits.check(&client.name) {
        return exhausted(wait).into_response();
    }
    next.run(request).await
}
