use std::sync::Arc;

use crate::client_limits::ClientLimits;
use crate::clients::Clients;
use crate::conn_limits::Draining;
use crate::driver::Driver;
use crate::registry::Registry;
use crate::settings::Settings;

/// Everything a handler may reach: one `Arc`, because axum clones the state for every extractor
/// and middleware layer of every request (a clone of each part was ~1.7 % of a cancel's CPU).
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What [`AppState`] shares.
#[derive(Debug)]
pub struct AppParts {
    pub settings: Arc<Settings>,
    pub registry: Arc<Registry>,
    pub clients: Arc<Clients>,
    pub client_limits: Arc<ClientLimits>,
    /// The ledger and this process's lease-holder id.
    pub driver: Driver,
    /// Set on the shutdown signal: `/readyz` answers 503 (see `conn_limits::Drain`).
    pub draining: Draining,
    /// Set once `/readyz` found every migration applied: they are not read again.
    pub migrated: Arc<std::sync::atomic::AtomicBool>,
    /// The checked `webhooks` section (SPEC §8): the events API matches endpoints with it.
    pub webhooks: Arc<crate::webhooks::Webhooks>,
}
