use std::sync::Arc;

use crate::client_limits::ClientLimits;
use crate::clients::Clients;
use crate::conn_limits::Draining;
use crate::driver::Driver;
use crate::registry::Registry;
use crate::settings::Settings;

/// Everything a handler may reach. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
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
