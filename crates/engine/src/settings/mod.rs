//! The settings the engine reads, as typed values: one provider's tunables and accounts
//! (`provider.rs`), the shared-quota store, and how their secrets serialize (`secret.rs`). The
//! facade owns the whole tree (`gateway/src/settings/`) and hands the engine its part as
//! [`EngineSettings`].

mod error;
mod provider;
pub mod secret;

use std::collections::BTreeMap;

pub use error::SettingsError;
pub use provider::{
    CircuitBreakerSettings, MAX_CONNECTIONS, OnStoreError, ProviderRateLimit, ProviderSettings, RateLimitScope,
    RedisSettings, RetrySettings,
};

/// The sections of the settings the engine is built from.
#[derive(Debug, Clone, Copy)]
pub struct EngineSettings<'a> {
    /// `providers.{id}`, by id.
    pub providers: &'a BTreeMap<String, ProviderSettings>,
    /// `redis`, for shared quotas.
    pub redis: Option<&'a RedisSettings>,
}
