//! Typed settings, split by job: the types (`types.rs` for the gateway's sections, `provider.rs`
//! for what the engine reads), loading from files and the environment (`load.rs`), the checks
//! serde cannot express (`check.rs`), and the redacted view of `check-config` (`redact.rs`,
//! derived from the types' `Serialize`, secrets written by `secret.rs`).

mod check;
mod error;
mod load;
mod provider;
mod redact;
pub mod secret;
mod types;

pub use error::SettingsError;
pub use load::ENV_PREFIX;
pub use provider::{
    CircuitBreakerSettings, OnStoreError, ProviderRateLimit, ProviderSettings, RateLimitScope, RedisSettings,
    RetrySettings,
};
pub use redact::Redacted;
pub use types::{
    ClientSettings, ConsoleSettings, LedgerSettings, Limits, LogSettings, RateLimitSettings, Settings,
    SqliteSynchronous,
};

#[cfg(test)]
mod tests;
