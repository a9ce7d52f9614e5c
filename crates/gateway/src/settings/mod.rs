//! Typed settings, split by job: the types (`types.rs` for the gateway's sections, `provider.rs`
//! for what the engine reads, in `cancelgate_engine::settings`), loading from files and the environment (`load.rs`), the checks
//! serde cannot express (`check.rs`), and the redacted view of `check-config` (`redact.rs`,
//! derived from the types' `Serialize`, secrets written by `secret.rs`).

mod check;
mod load;
mod redact;
mod types;

pub use cancelgate_engine::settings::{
    CircuitBreakerSettings, OnStoreError, ProviderRateLimit, ProviderSettings, RateLimitScope, RedisSettings,
    RetrySettings,
};
pub use cancelgate_engine::settings::{EngineSettings, SettingsError, secret};
pub use load::ENV_PREFIX;
pub use redact::Redacted;
pub use types::{
    ClientSettings, ConsoleSettings, LedgerSettings, Limits, LogSettings, RateLimitSettings, Settings,
    SqliteSynchronous,
};

#[cfg(test)]
mod tests;
