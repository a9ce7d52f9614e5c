//! The cancelgate gateway: one HTTP API in front of every provider adapter.
//!
//! Flow, one direction: request id → authentication → body parsing into core types →
//! provider registry → executor (the only I/O toward providers) → adapter's pure classifier →
//! verdict → answer. Providers never call back into the gateway.

pub mod api;
pub mod attempt_outcome;
pub mod cancel;
pub mod clients;
pub mod conn_limits;
pub mod console;
pub mod driver;
pub mod error;
pub mod executor;
pub mod extract;
pub mod failure;
pub mod openapi;
pub mod registry;
pub mod request_id;
pub mod resilience;
pub mod retention;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod trace_context;
pub mod verdict;
pub mod webhooks;

pub use settings::Settings;
pub use startup::{Application, StartError};
