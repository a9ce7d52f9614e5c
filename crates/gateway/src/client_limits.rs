//! The caller's own quota (SPEC §3, §4): one limiter per configured client, checked on every
//! `/v1` route ([`admit`], by `routes::authorize`, the handler's `Caller`, once it has named the
//! client).
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

use cancelgate_core::ErrorCode;

use crate::clients::Clients;
use crate::error::ApiError;
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
fn exhausted(wait: Duration) -> ApiError {
    ApiError::new(ErrorCode::RateLimited, "This client's request quota is used up.").with_retry_after(wait)
}

/// One unit of `client`'s quota, or the `429` to answer before the handler reads anything.
pub fn admit(limits: &ClientLimits, client: &str) -> Result<(), ApiError> {
    limits.check(client).map_err(exhausted)
}
