//! The cancelgate gateway: one HTTP API in front of every provider adapter.
//!
//! Flow, one direction: request id → authentication → body parsing into core types →
//! the engine (`cancelgate-engine`: registry, driver, executor, verdict) → answer. The engine
//! never calls back into the gateway, and knows no HTTP server.

pub mod api;
pub mod clients;
pub mod conn_limits;
pub mod console;
pub mod edge;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod request_id;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod webhooks;

// The engine (`crates/engine`), under the paths the facade has always used.
pub use cancelgate_engine::{attempt_outcome, cancel, context, driver, executor, failure, registry, verdict};

/// The engine's resilience, and the facade's per-client limiter beside it.
pub mod resilience {
    pub use crate::client_limits_interim::ClientLimits;
    pub use cancelgate_engine::resilience::*;
}
mod client_limits_interim;

pub use settings::Settings;
pub use startup::{Application, StartError};
