//! INTERIM: the per-client limiter, kept here only so this branch builds while the facade's
//! `client_limits.rs` (the client rate limit as a layer) is written on its own branch. On merge,
//! that file replaces this one: delete this file and the `resilience` re-export in `lib.rs`.

use std::collections::HashMap;
use std::time::Duration;

use cancelgate_engine::resilience::RateLimit;

use crate::clients::Clients;

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
