use std::sync::Arc;

use crate::clients::Clients;
use crate::driver::Driver;
use crate::registry::Registry;
use crate::resilience::ClientLimits;
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
}
