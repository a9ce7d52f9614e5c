//! The settings the engine reads: one provider's tunables and accounts, and the store of shared
//! quotas. Every type is `Serialize` with its secrets written as `"[REDACTED]"`
//! (`secret.rs`), which is what `check-config` prints.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::secret;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://host:port/db` (or `rediss://`); may hold a password: never printed.
    #[serde(default = "defaults::no_secret", serialize_with = "secret::secret")]
    pub url: SecretString,
    /// A file holding the URL (a container secret); read at load, it wins over `url`.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// Prefix of every key the gateway writes, so that several fleets (or test runs) can share
    /// one Redis without sharing quotas.
    #[serde(default = "defaults::redis_key_prefix")]
    pub key_prefix: String,
    /// One round trip to Redis may take this long before the provider's `on_store_error`
    /// applies: the limiter is on the hot path, a slow store must not become a slow gateway.
    #[serde(default = "defaults::redis_timeout_ms")]
    pub timeout_ms: u64,
}

/// The most `providers.<id>.max_connections` may be (a semaphore's permits, and far more
/// descriptors than a process gets).
pub const MAX_CONNECTIONS: usize = 1_000_000;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    pub base_url: url::Url,
    #[serde(default = "defaults::yes")]
    pub enabled: bool,
    #[serde(default = "defaults::timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "defaults::connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "defaults::max_in_flight")]
    pub max_in_flight: usize,
    /// Upstream requests on the wire at once (HTTP/1.1: connections); the rest of the calls
    /// `max_in_flight` admitted wait their turn for one, queued, never refused.
    #[serde(default = "defaults::provider_max_connections")]
    pub max_connections: usize,
    /// Upstream body read limit; longer answers are cut and treated as unreadable.
    #[serde(default = "defaults::max_response_bytes")]
    pub max_response_bytes: usize,
    #[serde(default)]
    pub retry: RetrySettings,
    #[serde(default)]
    pub rate_limit: ProviderRateLimit,
    #[serde(default)]
    pub circuit_breaker: CircuitBreakerSettings,
    /// Delays (seconds) before each automatic re-check of a `needs_review` record whose attempts
    /// ran out after an ambiguous one, where a repeated cancel is safe (SPEC §9); empty: none.
    #[serde(default = "defaults::review_recheck_s", deserialize_with = "seconds_list")]
    pub review_recheck_s: Vec<u64>,
    /// Raw account tables: their keys are the provider's credential fields (and `*_file`).
    #[serde(default, serialize_with = "secret::accounts")]
    pub accounts: BTreeMap<String, HashMap<String, SecretString>>,
}

/// A list of seconds: a TOML array, or (from the environment, which has no arrays) the text
/// `"60,600,3600"`, `""` being the empty list.
fn seconds_list<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<u64>, D::Error> {
    #[derive(Deserialize, Serialize)]
    #[serde(untagged)]
    enum Seconds {
        List(Vec<u64>),
        Text(String),
    }
    match Seconds::deserialize(deserializer)? {
        Seconds::List(list) => Ok(list),
        Seconds::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u64>().map_err(|_| serde::de::Error::custom("a list of whole seconds, e.g. [60, 600]")))
            .collect(),
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySettings {
    #[serde(default = "defaults::max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "defaults::backoff_base_ms")]
    pub backoff_base_ms: u64,
    #[serde(default = "defaults::backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Retries allowed as a share of calls (a budget, in the manner of tower's retry budget).
    #[serde(default = "defaults::retry_budget_ratio")]
    pub budget_ratio: f64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: defaults::max_attempts(),
            backoff_base_ms: defaults::backoff_base_ms(),
            backoff_max_ms: defaults::backoff_max_ms(),
            budget_ratio: defaults::retry_budget_ratio(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderRateLimit {
    #[serde(default = "defaults::provider_per_second")]
    pub per_second: u32,
    /// Calls allowed at once above the steady rate; defaults to one second's worth.
    #[serde(default)]
    pub burst: Option<u32>,
    /// `local` (per process) or `shared` (across every replica on the same `redis.url`).
    #[serde(default)]
    pub scope: RateLimitScope,
    /// What a `shared` limit does while Redis cannot answer.
    #[serde(default)]
    pub on_store_error: OnStoreError,
}

impl Default for ProviderRateLimit {
    fn default() -> Self {
        Self {
            per_second: defaults::provider_per_second(),
            burst: None,
            scope: RateLimitScope::default(),
            on_store_error: OnStoreError::default(),
        }
    }
}

impl ProviderRateLimit {
    /// The burst in force: as configured, else one second's worth (SPEC §11).
    pub fn burst_or_default(&self) -> u32 {
        self.burst.unwrap_or(self.per_second)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitScope {
    #[default]
    Local,
    Shared,
}

impl RateLimitScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Shared => "shared",
        }
    }
}

/// A shared limit whose store fails: fall back to this process's own limiter (the fleet may then
/// send up to one quota per replica), or refuse calls (`503 provider_unavailable`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnStoreError {
    #[default]
    Local,
    Deny,
}

impl OnStoreError {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Deny => "deny",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreakerSettings {
    #[serde(default = "defaults::failure_rate")]
    pub failure_rate: f64,
    #[serde(default = "defaults::min_calls")]
    pub min_calls: u32,
    #[serde(default = "defaults::window_s")]
    pub window_s: u64,
    #[serde(default = "defaults::open_s")]
    pub open_s: u64,
}

impl Default for CircuitBreakerSettings {
    fn default() -> Self {
        Self {
            failure_rate: defaults::failure_rate(),
            min_calls: defaults::min_calls(),
            window_s: defaults::window_s(),
            open_s: defaults::open_s(),
        }
    }
}

mod defaults {
    pub fn no_secret() -> secrecy::SecretString {
        secrecy::SecretString::from(String::new())
    }
    pub fn yes() -> bool {
        true
    }
    pub fn timeout_ms() -> u64 {
        5_000
    }
    pub fn connect_timeout_ms() -> u64 {
        2_000
    }
    pub fn max_in_flight() -> usize {
        256
    }
    pub fn provider_max_connections() -> usize {
        256
    }
    pub fn max_response_bytes() -> usize {
        256 * 1024
    }
    pub fn max_attempts() -> u32 {
        3
    }
    pub fn review_recheck_s() -> Vec<u64> {
        vec![60, 600, 3600]
    }
    pub fn backoff_base_ms() -> u64 {
        100
    }
    pub fn backoff_max_ms() -> u64 {
        5_000
    }
    pub fn retry_budget_ratio() -> f64 {
        0.2
    }
    pub fn provider_per_second() -> u32 {
        100
    }
    pub fn redis_key_prefix() -> String {
        "cancelgate".to_owned()
    }
    pub fn redis_timeout_ms() -> u64 {
        200
    }
    pub fn failure_rate() -> f64 {
        0.5
    }
    pub fn min_calls() -> u32 {
        20
    }
    pub fn window_s() -> u64 {
        30
    }
    pub fn open_s() -> u64 {
        15
    }
}
