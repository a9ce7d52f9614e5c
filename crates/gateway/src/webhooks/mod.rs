//! Outcome events and signed webhooks (SPEC §8), the gateway's side: the `webhooks.*` settings
//! (`config.rs`), the rule that turns a state change into an event (`rule.rs`, asked by the
//! ledger inside the transaction that makes the change), Standard Webhooks signing (`sign.rs`),
//! the pure delivery policy (`policy.rs`), the dispatcher that sends (`dispatcher.rs`, the only
//! I/O here) and the metrics (`metrics.rs`). The outbox itself is the ledger's (`events.rs`).

pub mod config;
pub mod dispatcher;
pub mod metrics;
pub mod policy;
pub mod rule;
pub mod sign;

pub use config::{Endpoint, WebhookSettings, Webhooks};
