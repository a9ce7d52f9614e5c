//! The cancelgate gateway: one HTTP API in front of every provider adapter.
//!
//! Flow, one direction: request id → authentication → body parsing into core types →
//! the engine (`cancelgate-engine`: registry, driver, executor, verdict) → answer. The engine
//! never calls back into the gateway, and knows no HTTP server.

pub mod api;
pub mod client_limits;
pub mod clients;
pub mod conn_limits;
pub mod console;
pub mod edge;
pub mod edge_layer;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod request_id;
pub mod retention;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod webhooks;

// The engine (`crates/engine`), under the paths the facade has always used.
pub use cancelgate_engine::{
    attempt_outcome, cancel, context, driver, executor, failure, registry, resilience, verdict,
};

pub use settings::Settings;
pub use startup::{Application, StartError};
