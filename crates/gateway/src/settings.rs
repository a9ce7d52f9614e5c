//! Typed settings: `config/gateway.toml`, then `config/providers/{id}.toml` (as `providers.{id}.*`),
//! then `CANCELGATE__…` environment variables, merged by the `config` crate.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

/// The environment prefix of every override: `CANCELGATE__PROVIDERS__CHARGEAPI__BASE_URL`.
pub const ENV_PREFIX: &str = "CANCELGATE";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub listen: SocketAddr,
    pub ledger: LedgerSettings,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub clients: BTreeMap<String, ClientSettings>,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderSettings>,
    #[serde(default)]
    pub log: LogSettings,
    /// The store of shared quotas (SPEC §11); needed only when a provider's
    /// `rate_limit.scope` is `shared`.
    #[serde(default)]
    pub redis: Option<RedisSettings>,
    /// The operator console at `/console` (SPEC §9).
    #[serde(default)]
    pub console: ConsoleSettings,
    /// Outcome events and signed webhooks (SPEC §8); no endpoint by default.
    #[serde(default)]
    pub webhooks: crate::webhooks::WebhookSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSettings {
    /// How long a console session lasts after sign-in (SPEC §9: 8 hours); the cookie's
    /// `Max-Age` and the server's own expiry both.
    #[serde(default = "defaults::console_session_s")]
    pub session_s: u64,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self { session_s: defaults::console_session_s() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://host:port/db` (or `rediss://`); may hold a password: never printed.
    #[serde(default = "defaults::no_secret")]
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerSettings {
    /// `sqlite://data/cancelgate.db` or `postgres://…`. May hold a password: never printed.
    #[serde(default = "defaults::no_secret")]
    pub url: SecretString,
    /// A file holding the URL (a container secret); read at load, it wins over `url`.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    #[serde(default = "defaults::lease_ms")]
    pub lease_ms: u64,
    /// Apply migrations at start (`serve`); `cancelgate migrate` applies them regardless.
    #[serde(default = "defaults::yes")]
    pub migrate_on_start: bool,
    #[serde(default = "defaults::max_connections")]
    pub max_connections: u32,
    /// SQLite durability: `full` (a commit survives power loss; the default) or `normal` (WAL:
    /// survives a crash of the process, kill -9 included, but not of the OS; much faster).
    #[serde(default)]
    pub sqlite_synchronous: SqliteSynchronous,
    /// Final records older than this many days are purged with their attempts, keys and events
    /// (issue 20); unset (the default): everything is kept. At least 1 (keys live 24 h).
    #[serde(default)]
    pub retain_days: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    #[default]
    Full,
    Normal,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: usize,
    #[serde(default = "defaults::respond_within_ms")]
    pub respond_within_ms: u64,
    /// After SIGTERM/SIGINT, how long the gateway keeps accepting and serving while `/readyz`
    /// answers 503, so a load balancer notices before connections are refused (SPEC §12).
    #[serde(default = "defaults::drain_ms")]
    pub drain_ms: u64,
    /// After the drain, how long requests in flight may finish.
    #[serde(default = "defaults::shutdown_grace_ms")]
    pub shutdown_grace_ms: u64,
    /// The request line and headers must arrive within this time (see `conn_limits`).
    #[serde(default = "defaults::header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// The whole request body must arrive within this time of the request head.
    #[serde(default = "defaults::body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// Bytes of request line and headers together; over it, `431`.
    #[serde(default = "defaults::max_header_bytes")]
    pub max_header_bytes: usize,
    /// Header fields per request; over it, `431`.
    #[serde(default = "defaults::max_headers")]
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: defaults::max_body_bytes(),
            respond_within_ms: defaults::respond_within_ms(),
            drain_ms: defaults::drain_ms(),
            shutdown_grace_ms: defaults::shutdown_grace_ms(),
            header_read_timeout_ms: defaults::header_read_timeout_ms(),
            body_read_timeout_ms: defaults::body_read_timeout_ms(),
            max_header_bytes: defaults::max_header_bytes(),
            max_headers: defaults::max_headers(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `json` or `pretty`; unset: pretty on a terminal, JSON otherwise.
    pub format: Option<String>,
    /// A `tracing` filter (`info`, `cancelgate=debug`); `RUST_LOG` wins when set.
    pub level: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    /// Hex SHA-256 of the client's key; the key itself is never stored.
    pub key_sha256: String,
    /// `["*"]` for everything, or provider ids, or `provider/account` pairs. From the
    /// environment (`CANCELGATE__CLIENTS__{NAME}__PROVIDERS`), a comma-separated list.
    #[serde(default, deserialize_with = "list_or_commas")]
    pub providers: Vec<String>,
    /// What the client may do (SPEC §7): `cancel`, `read`, `operate`; `["cancel", "read"]`
    /// when absent. From the environment, a comma-separated list.
    #[serde(default, deserialize_with = "optional_list_or_commas")]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub rate_limit: RateLimitSettings,
}

impl ClientSettings {
    /// The client's scopes: the named ones, or the default set when the key is absent.
    pub fn scopes(&self) -> Result<crate::clients::Scopes, crate::clients::UnknownScope> {
        self.scopes.as_deref().map_or(Ok(crate::clients::Scopes::DEFAULT), crate::clients::Scopes::from_names)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    #[serde(default = "defaults::client_per_second")]
    pub per_second: u32,
    /// Requests allowed at once above the steady rate; defaults to one second's worth.
    pub burst: Option<u32>,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self { per_second: defaults::client_per_second(), burst: None }
    }
}

#[derive(Debug, Clone, Deserialize)]
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
    #[serde(default)]
    pub accounts: BTreeMap<String, HashMap<String, SecretString>>,
}

/// A list of seconds: a TOML array, or (from the environment, which has no arrays) the text
/// `"60,600,3600"`, `""` being the empty list.
fn seconds_list<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<u64>, D::Error> {
    #[derive(Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
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
    pub fn console_session_s() -> u64 {
        8 * 3600
    }
    pub fn no_secret() -> secrecy::SecretString {
        secrecy::SecretString::from(String::new())
    }
    pub fn yes() -> bool {
        true
    }
    pub fn lease_ms() -> u64 {
        15_000
    }
    pub fn max_connections() -> u32 {
        16
    }
    pub fn max_body_bytes() -> usize {
        64 * 1024
    }
    pub fn respond_within_ms() -> u64 {
        10_000
    }
    pub fn drain_ms() -> u64 {
        5_000
    }
    pub fn shutdown_grace_ms() -> u64 {
        10_000
    }
    pub fn header_read_timeout_ms() -> u64 {
        10_000
    }
    pub fn body_read_timeout_ms() -> u64 {
        10_000
    }
    pub fn max_header_bytes() -> usize {
        16 * 1024
    }
    pub fn max_headers() -> usize {
        64
    }
    pub fn client_per_second() -> u32 {
        100
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

/// A list of strings, or one string of comma-separated items (environment variables are strings).
fn list_or_commas<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrCommas {
        List(Vec<String>),
        Commas(String),
    }
    Ok(match ListOrCommas::deserialize(deserializer)? {
        ListOrCommas::List(items) => items,
        ListOrCommas::Commas(s) => s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect(),
    })
}

fn optional_list_or_commas<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<String>>, D::Error> {
    list_or_commas(deserializer).map(Some)
}

/// Configuration could not be loaded; the message names the file and key.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("config directory {0}: not found (use --config-dir or CANCELGATE_CONFIG_DIR)")]
    MissingDir(PathBuf),
    /// A file or override does not fit; `file` is where the key lives (or its env override).
    #[error("{file}: {message}")]
    Config { file: String, message: String },
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

impl SettingsError {
    /// Name the file a key comes from: `providers.{id}.*` from `providers/{id}.toml`, the rest
    /// from `gateway.toml` (either possibly overridden by a `CANCELGATE__…` variable).
    fn config(error: config::ConfigError, dir: &Path) -> Self {
        let message = error.to_string();
        let key = message.split("for key `").nth(1).and_then(|rest| rest.split('`').next()).unwrap_or("");
        let file = match key.strip_prefix("providers.").map(|rest| rest.split('.').next().unwrap_or("")) {
            Some(id) if !id.is_empty() => dir.join("providers").join(format!("{id}.toml")),
            _ => dir.join("gateway.toml"),
        };
        let file = format!("{} (or its CANCELGATE__ override)", file.display());
        Self::Config { file, message }
    }
}

impl SettingsError {
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid { key: key.into(), message: message.into() }
    }
}

impl Settings {
    /// Load from `dir` (holding `gateway.toml` and `providers/*.toml`) and the process environment.
    pub fn load(dir: &Path) -> Result<Self, SettingsError> {
        Self::load_with_env(dir, None)
    }

    /// As [`Settings::load`], with the environment given as a map (tests) instead of the process's.
    pub fn load_with_env(dir: &Path, env: Option<HashMap<String, String>>) -> Result<Self, SettingsError> {
        if !dir.is_dir() {
            return Err(SettingsError::MissingDir(dir.to_path_buf()));
        }
        let gateway = dir.join("gateway.toml");
        let mut builder = config::Config::builder()
            .add_source(config::File::from(gateway.as_path()).format(config::FileFormat::Toml).required(true));
        for (id, path) in provider_files(&dir.join("providers"))? {
            builder = builder.add_source(ProviderFile { id, path });
        }
        let environment = config::Environment::with_prefix(ENV_PREFIX).separator("__").source(env);
        let mut settings: Settings = builder
            .add_source(environment)
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| SettingsError::config(e, dir))?;
        if let Some(path) = &settings.ledger.url_file {
            let url = std::fs::read_to_string(path).map_err(|e| {
                SettingsError::invalid("ledger.url_file", format!("cannot read {}: {e}", path.display()))
            })?;
            settings.ledger.url = SecretString::from(url.trim().to_owned());
        }
        if secrecy::ExposeSecret::expose_secret(&settings.ledger.url).is_empty() {
            return Err(SettingsError::invalid("ledger.url", "missing: set `ledger.url` or `ledger.url_file`"));
        }
        if let Some(redis) = &mut settings.redis
            && let Some(path) = &redis.url_file
        {
            let url = std::fs::read_to_string(path).map_err(|e| {
                SettingsError::invalid("redis.url_file", format!("cannot read {}: {e}", path.display()))
            })?;
            redis.url = SecretString::from(url.trim().to_owned());
        }
        crate::webhooks::config::load_secret_files(&mut settings.webhooks)?;
        settings.check()?;
        Ok(settings)
    }

    /// Checks serde cannot express; each failure names the key.
    fn check(&self) -> Result<(), SettingsError> {
        if self.limits.max_body_bytes == 0 {
            return Err(SettingsError::invalid("limits.max_body_bytes", "must be at least 1"));
        }
        // Keys are kept at least 24 hours (SPEC §2), and a purge takes a record's key with it.
        if self.ledger.retain_days == Some(0) {
            return Err(SettingsError::invalid("ledger.retain_days", "must be at least 1 (or unset: keep everything)"));
        }
        // At most the contract's 8 hours: a longer session would outlive what operators are told.
        if !(1..=8 * 3600).contains(&self.console.session_s) {
            return Err(SettingsError::invalid("console.session_s", "must be from 1 to 28800 (8 hours)"));
        }
        for (key, value) in [
            ("limits.header_read_timeout_ms", self.limits.header_read_timeout_ms),
            ("limits.body_read_timeout_ms", self.limits.body_read_timeout_ms),
        ] {
            if value == 0 {
                return Err(SettingsError::invalid(key, "must be at least 1 ms"));
            }
        }
        // hyper needs room for at least a request line and a few headers.
        if self.limits.max_header_bytes < 1024 {
            return Err(SettingsError::invalid("limits.max_header_bytes", "must be at least 1024"));
        }
        if self.limits.max_headers == 0 {
            return Err(SettingsError::invalid("limits.max_headers", "must be at least 1"));
        }
        for (name, client) in &self.clients {
            let hash = &client.key_sha256;
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(SettingsError::invalid(
                    format!("clients.{name}.key_sha256"),
                    "must be 64 hex digits (the SHA-256 of the client key)",
                ));
            }
            if let Err(e) = client.scopes() {
                return Err(SettingsError::invalid(format!("clients.{name}.scopes"), e.to_string()));
            }
            if client.rate_limit.per_second == 0 {
                return Err(SettingsError::invalid(
                    format!("clients.{name}.rate_limit.per_second"),
                    "must be at least 1",
                ));
            }
        }
        for (id, provider) in &self.providers {
            let key = |k: &str| format!("providers.{id}.{k}");
            if !matches!(provider.base_url.scheme(), "http" | "https") {
                return Err(SettingsError::invalid(key("base_url"), "must be an http:// or https:// URL"));
            }
            if provider.timeout_ms == 0 || provider.connect_timeout_ms == 0 {
                return Err(SettingsError::invalid(key("timeout_ms"), "timeouts must be at least 1 ms"));
            }
            if provider.retry.max_attempts == 0 {
                return Err(SettingsError::invalid(key("retry.max_attempts"), "must be at least 1"));
            }
            if provider.max_in_flight == 0 {
                return Err(SettingsError::invalid(key("max_in_flight"), "must be at least 1"));
            }
            if provider.rate_limit.per_second == 0 {
                return Err(SettingsError::invalid(key("rate_limit.per_second"), "must be at least 1"));
            }
            if provider.rate_limit.burst == Some(0) {
                return Err(SettingsError::invalid(key("rate_limit.burst"), "must be at least 1"));
            }
            if provider.rate_limit.scope == RateLimitScope::Shared && self.redis.is_none() {
                return Err(SettingsError::invalid(
                    key("rate_limit.scope"),
                    "`shared` needs a Redis: set `redis.url` (or `redis.url_file`)",
                ));
            }
            let cb = &provider.circuit_breaker;
            if !(cb.failure_rate > 0.0 && cb.failure_rate <= 1.0) {
                return Err(SettingsError::invalid(key("circuit_breaker.failure_rate"), "must be in (0, 1]"));
            }
            if !(0.0..=1.0).contains(&provider.retry.budget_ratio) {
                return Err(SettingsError::invalid(key("retry.budget_ratio"), "must be in [0, 1]"));
            }
            // The lease is renewed between attempts: it must outlast one attempt and the pause
            // before the next, or another replica could take the record over mid-attempt and send
            // a second cancel at the same time.
            let needed = provider.connect_timeout_ms + provider.timeout_ms + provider.retry.backoff_max_ms;
            if self.ledger.lease_ms <= needed {
                return Err(SettingsError::invalid(
                    "ledger.lease_ms",
                    format!(
                        "must be longer than providers.{id}'s connect_timeout_ms + timeout_ms + retry.backoff_max_ms ({needed} ms)"
                    ),
                ));
            }
        }
        if let Some(redis) = &self.redis {
            check_redis(redis)?;
        }
        crate::webhooks::Webhooks::from_settings(&self.webhooks)?;
        Ok(())
    }
}

fn check_redis(redis: &RedisSettings) -> Result<(), SettingsError> {
    use secrecy::ExposeSecret;
    let url = redis.url.expose_secret();
    if url.is_empty() {
        return Err(SettingsError::invalid("redis.url", "missing: set `redis.url` or `redis.url_file`"));
    }
    // The URL's own text is never quoted back: it may hold a password.
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "redis" | "rediss") && u.host_str().is_some_and(|h| !h.is_empty()) => {}
        _ => return Err(SettingsError::invalid("redis.url", "must be a redis://host:port URL")),
    }
    if redis.timeout_ms == 0 {
        return Err(SettingsError::invalid("redis.timeout_ms", "must be at least 1 ms"));
    }
    let prefix_ok = !redis.key_prefix.is_empty()
        && redis.key_prefix.len() <= 64
        && redis.key_prefix.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':' | b'.'));
    if !prefix_ok {
        return Err(SettingsError::invalid("redis.key_prefix", "1-64 of A-Z a-z 0-9 _ - : ."));
    }
    Ok(())
}

/// `providers/{id}.toml` files, sorted by id.
fn provider_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, SettingsError> {
    let io = |e: std::io::Error| SettingsError::Io { path: dir.to_path_buf(), message: e.to_string() };
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        if let Some(id) = path.file_stem().and_then(|s| s.to_str()) {
            files.push((id.to_owned(), path));
        }
    }
    files.sort();
    Ok(files)
}

/// A provider file read as the table `providers.{id}`.
#[derive(Debug, Clone)]
struct ProviderFile {
    id: String,
    path: PathBuf,
}

impl config::Source for ProviderFile {
    fn clone_into_box(&self) -> Box<dyn config::Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<config::Map<String, config::Value>, config::ConfigError> {
        let file = config::File::from(self.path.as_path()).format(config::FileFormat::Toml).required(true);
        let table = file.collect()?;
        let origin = self.path.display().to_string();
        let mut by_id = config::Map::new();
        by_id.insert(self.id.clone(), config::Value::new(Some(&origin), config::ValueKind::Table(table)));
        let mut root = config::Map::new();
        root.insert("providers".to_owned(), config::Value::new(Some(&origin), config::ValueKind::Table(by_id)));
        Ok(root)
    }
}

/// Prints the merged configuration with every secret replaced (used by `check-config`).
#[derive(Debug)]
pub struct Redacted<'a>(pub &'a Settings);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        writeln!(f, "listen = {:?}", s.listen.to_string())?;
        writeln!(f, "ledger.url = \"[REDACTED]\"  # backend: {}", ledger_scheme(&s.ledger.url))?;
        writeln!(f, "ledger.lease_ms = {}", s.ledger.lease_ms)?;
        writeln!(f, "ledger.migrate_on_start = {}", s.ledger.migrate_on_start)?;
        writeln!(f, "ledger.max_connections = {}", s.ledger.max_connections)?;
        writeln!(f, "ledger.sqlite_synchronous = {:?}", s.ledger.sqlite_synchronous)?;
        writeln!(f, "ledger.retain_days = {:?}", s.ledger.retain_days)?;
        writeln!(f, "limits.max_body_bytes = {}", s.limits.max_body_bytes)?;
        writeln!(f, "limits.respond_within_ms = {}", s.limits.respond_within_ms)?;
        writeln!(f, "limits.drain_ms = {}", s.limits.drain_ms)?;
        writeln!(f, "limits.shutdown_grace_ms = {}", s.limits.shutdown_grace_ms)?;
        writeln!(f, "limits.header_read_timeout_ms = {}", s.limits.header_read_timeout_ms)?;
        writeln!(f, "limits.body_read_timeout_ms = {}", s.limits.body_read_timeout_ms)?;
        writeln!(f, "limits.max_header_bytes = {}", s.limits.max_header_bytes)?;
        writeln!(f, "limits.max_headers = {}", s.limits.max_headers)?;
        if let Some(redis) = &s.redis {
            writeln!(f, "redis.url = \"[REDACTED]\"")?;
            writeln!(f, "redis.key_prefix = {:?}", redis.key_prefix)?;
            writeln!(f, "redis.timeout_ms = {}", redis.timeout_ms)?;
        }
        writeln!(f, "console.session_s = {}", s.console.session_s)?;
        for (name, c) in &s.clients {
            writeln!(f, "clients.{name}.key_sha256 = \"[REDACTED]\"")?;
            writeln!(f, "clients.{name}.providers = {:?}", c.providers)?;
            if let Ok(scopes) = c.scopes() {
                writeln!(f, "clients.{name}.scopes = {scopes:?}")?;
            }
            writeln!(f, "clients.{name}.rate_limit.per_second = {}", c.rate_limit.per_second)?;
            writeln!(f, "clients.{name}.rate_limit.burst = {:?}", c.rate_limit.burst)?;
        }
        for (id, p) in &s.providers {
            writeln!(f, "providers.{id}.base_url = {:?}", p.base_url.as_str())?;
            writeln!(f, "providers.{id}.enabled = {}", p.enabled)?;
            writeln!(f, "providers.{id}.timeout_ms = {}", p.timeout_ms)?;
            writeln!(f, "providers.{id}.connect_timeout_ms = {}", p.connect_timeout_ms)?;
            writeln!(f, "providers.{id}.max_in_flight = {}", p.max_in_flight)?;
            writeln!(f, "providers.{id}.max_response_bytes = {}", p.max_response_bytes)?;
            writeln!(f, "providers.{id}.retry.max_attempts = {}", p.retry.max_attempts)?;
            writeln!(f, "providers.{id}.retry.backoff_base_ms = {}", p.retry.backoff_base_ms)?;
            writeln!(f, "providers.{id}.retry.backoff_max_ms = {}", p.retry.backoff_max_ms)?;
            writeln!(f, "providers.{id}.retry.budget_ratio = {}", p.retry.budget_ratio)?;
            let breaker = &p.circuit_breaker;
            writeln!(f, "providers.{id}.circuit_breaker.failure_rate = {}", breaker.failure_rate)?;
            writeln!(f, "providers.{id}.circuit_breaker.min_calls = {}", breaker.min_calls)?;
            writeln!(f, "providers.{id}.circuit_breaker.window_s = {}", breaker.window_s)?;
            writeln!(f, "providers.{id}.circuit_breaker.open_s = {}", breaker.open_s)?;
            writeln!(f, "providers.{id}.review_recheck_s = {:?}", p.review_recheck_s)?;
            writeln!(f, "providers.{id}.rate_limit.per_second = {}", p.rate_limit.per_second)?;
            writeln!(f, "providers.{id}.rate_limit.burst = {}", p.rate_limit.burst_or_default())?;
            writeln!(f, "providers.{id}.rate_limit.scope = {:?}", p.rate_limit.scope.as_str())?;
            writeln!(f, "providers.{id}.rate_limit.on_store_error = {:?}", p.rate_limit.on_store_error.as_str())?;
            for (account, fields) in &p.accounts {
                let mut keys: Vec<_> = fields.keys().collect();
                keys.sort();
                for key in keys {
                    writeln!(f, "providers.{id}.accounts.{account}.{key} = \"[REDACTED]\"")?;
                }
            }
        }
        writeln!(f, "log.format = {:?}", s.log.format)?;
        writeln!(f, "log.level = {:?}", s.log.level)?;
        crate::webhooks::config::redacted(f, &s.webhooks)?;
        Ok(())
    }
}

fn ledger_scheme(url: &SecretString) -> &'static str {
    use secrecy::ExposeSecret;
    let url = url.expose_secret();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        "postgres"
    } else if url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "unknown"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use secrecy::ExposeSecret;

    const GATEWAY: &str = "listen = \"127.0.0.1:0\"\n[ledger]\nurl = \"sqlite://x.db\"\n";
    const CHARGEAPI: &str = "base_url = \"http://127.0.0.1:1\"\n[accounts.default]\nsecret_key = \"sk_file_value\"\n";

    fn dir_with(gateway: &str, chargeapi: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("providers")).unwrap();
        std::fs::write(dir.path().join("gateway.toml"), gateway).unwrap();
        std::fs::write(dir.path().join("providers/chargeapi.toml"), chargeapi).unwrap();
        dir
    }

    fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
        Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn files_merge_and_env_overrides_win() {
        let dir = dir_with(GATEWAY, CHARGEAPI);
        let s = Settings::load_with_env(
            dir.path(),
            env(&[
                ("CANCELGATE__PROVIDERS__CHARGEAPI__TIMEOUT_MS", "1234"),
                ("CANCELGATE__LEDGER__URL", "postgres://u:pw@db/x"),
                ("CANCELGATE__LISTEN", "127.0.0.1:9"),
            ]),
        )
        .unwrap();
        let chargeapi = &s.providers["chargeapi"];
        assert_eq!(chargeapi.timeout_ms, 1234);
        assert_eq!(chargeapi.circuit_breaker.min_calls, 20, "defaults of SPEC §5");
        assert_eq!(chargeapi.max_in_flight, 256);
        assert_eq!(s.ledger.lease_ms, 15_000);
        assert_eq!(s.limits.max_body_bytes, 64 * 1024);
        assert_eq!(s.ledger.url.expose_secret(), "postgres://u:pw@db/x");
        assert_eq!(s.listen.port(), 9);
        assert!(!format!("{s:?}").contains("pw@"), "the ledger URL may hold a password");
    }

    #[test]
    fn a_bad_value_names_the_file_and_key() {
        let dir = dir_with(GATEWAY, &format!("timeout_ms = \"soon\"\n{CHARGEAPI}"));
        let e = Settings::load_with_env(dir.path(), env(&[])).unwrap_err().to_string();
        assert!(e.contains("providers/chargeapi.toml") && e.contains("providers.chargeapi.timeout_ms"), "{e}");
        let dir = dir_with(&format!("{GATEWAY}typo = 1\n"), CHARGEAPI);
        let e = Settings::load_with_env(dir.path(), env(&[])).unwrap_err().to_string();
        assert!(e.contains("gateway.toml") && e.contains("typo"), "{e}");
    }

    #[test]
    fn secrets_come_from_files_and_unknown_or_missing_keys_fail() {
        let secret_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(secret_file.path(), "sk_from_file\n").unwrap();
        let chargeapi = format!(
            "base_url = \"http://127.0.0.1:1\"\n[accounts.default]\nsecret_key_file = \"{}\"\n",
            secret_file.path().display()
        );
        let dir = dir_with(GATEWAY, &chargeapi);
        let s = Settings::load_with_env(dir.path(), env(&[])).unwrap();
        let registry = Registry::build(&s).unwrap();
        assert_eq!(registry.secret_values(), vec!["sk_from_file".to_owned()]);

        let dir = dir_with(GATEWAY, "base_url = \"http://127.0.0.1:1\"\n[accounts.default]\nsecret_kee = \"x\"\n");
        let s = Settings::load_with_env(dir.path(), env(&[])).unwrap();
        let e = Registry::build(&s).unwrap_err().to_string();
        assert!(e.contains("providers.chargeapi.accounts.default.secret_kee"), "{e}");

        let dir = dir_with(GATEWAY, "base_url = \"http://127.0.0.1:1\"\n[accounts.default]\n");
        let s = Settings::load_with_env(dir.path(), env(&[])).unwrap();
        let e = Registry::build(&s).unwrap_err().to_string();
        assert!(e.contains("providers.chargeapi.accounts.default.secret_key: missing"), "{e}");
    }

    #[test]
    fn client_grants_come_from_a_list_or_a_comma_separated_env_value() {
        let hash = "0".repeat(64);
        let dir = dir_with(
            &format!("{GATEWAY}[clients.a]\nkey_sha256 = \"{hash}\"\nproviders = [\"chargeapi\"]\n"),
            CHARGEAPI,
        );
        let s = Settings::load_with_env(
            dir.path(),
            env(&[
                ("CANCELGATE__CLIENTS__B__KEY_SHA256", &hash),
                ("CANCELGATE__CLIENTS__B__PROVIDERS", "chargeapi/eu, frontpayment"),
            ]),
        )
        .unwrap();
        assert_eq!(s.clients["a"].providers, ["chargeapi"]);
        assert_eq!(s.clients["b"].providers, ["chargeapi/eu", "frontpayment"]);
    }

    #[test]
    fn client_scopes_default_come_from_a_list_or_env_and_unknown_ones_name_the_key() {
        use crate::clients::{Scope, Scopes};
        let hash = "0".repeat(64);
        let dir = dir_with(
            &format!(
                "{GATEWAY}[clients.a]\nkey_sha256 = \"{hash}\"\n[clients.r]\nkey_sha256 = \"{hash}\"\nscopes = [\"read\"]\n"
            ),
            CHARGEAPI,
        );
        let s = Settings::load_with_env(
            dir.path(),
            env(&[
                ("CANCELGATE__CLIENTS__B__KEY_SHA256", &hash),
                ("CANCELGATE__CLIENTS__B__SCOPES", "cancel, operate"),
            ]),
        )
        .unwrap();
        assert_eq!(s.clients["a"].scopes().unwrap(), Scopes::DEFAULT, "absent: cancel and read");
        assert_eq!(s.clients["r"].scopes().unwrap(), Scopes::from_names(&["read"]).unwrap());
        let b = s.clients["b"].scopes().unwrap();
        assert!(b.contains(Scope::Cancel) && b.contains(Scope::Operate) && !b.contains(Scope::Read));
        assert!(Redacted(&s).to_string().contains("clients.r.scopes = [\"read\"]"));

        let e = Settings::load_with_env(dir.path(), env(&[("CANCELGATE__CLIENTS__R__SCOPES", "read,admin")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("clients.r.scopes") && e.contains("admin"), "{e}");
    }

    #[test]
    fn the_shipped_demo_client_has_every_scope() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
        let s = Settings::load_with_env(&dir, env(&[])).unwrap();
        let demo = s.clients["demo"].scopes().unwrap();
        assert!(crate::clients::Scope::ALL.into_iter().all(|scope| demo.contains(scope)), "{demo:?}");
    }

    /// Every section and every tunable of the shipped configuration is shown; no secret is.
    #[test]
    fn the_redacted_view_shows_every_section_and_no_secret() {
        let redis = "[redis]\nurl = \"redis://:redis_pw_value@127.0.0.1:6379\"\n";
        let dir = dir_with(&format!("{GATEWAY}{redis}"), CHARGEAPI);
        let s = Settings::load_with_env(dir.path(), env(&[])).unwrap();
        let shown = Redacted(&s).to_string();
        println!("{shown}");
        for key in [
            "listen",
            "ledger.url",
            "ledger.lease_ms",
            "ledger.migrate_on_start",
            "ledger.max_connections",
            "ledger.sqlite_synchronous",
            "ledger.retain_days",
            "limits.max_body_bytes",
            "limits.shutdown_grace_ms",
            "redis.url",
            "redis.key_prefix",
            "redis.timeout_ms",
            "providers.chargeapi.max_response_bytes",
            "providers.chargeapi.retry.max_attempts",
            "providers.chargeapi.retry.backoff_base_ms",
            "providers.chargeapi.retry.backoff_max_ms",
            "providers.chargeapi.retry.budget_ratio",
            "providers.chargeapi.rate_limit.burst",
            "providers.chargeapi.circuit_breaker.failure_rate",
            "providers.chargeapi.circuit_breaker.min_calls",
            "providers.chargeapi.circuit_breaker.window_s",
            "providers.chargeapi.circuit_breaker.open_s",
            "providers.chargeapi.accounts.default.secret_key",
            "log.format",
            "log.level",
        ] {
            assert!(shown.lines().any(|l| l.starts_with(&format!("{key} = "))), "{key} missing:\n{shown}");
        }
        for secret in ["sk_file_value", "redis_pw_value", "x.db"] {
            assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
        }
    }

    #[test]
    fn connection_limits_have_defaults_and_are_checked() {
        let dir = dir_with(GATEWAY, CHARGEAPI);
        let s = Settings::load_with_env(dir.path(), env(&[])).unwrap();
        assert_eq!((s.limits.header_read_timeout_ms, s.limits.body_read_timeout_ms), (10_000, 10_000));
        assert_eq!((s.limits.max_header_bytes, s.limits.max_headers), (16 * 1024, 64));
        assert_eq!(s.limits.drain_ms, 5_000, "SPEC §12");
        let shown = Redacted(&s).to_string();
        assert!(
            shown.contains("limits.drain_ms = 5000") && shown.contains("limits.shutdown_grace_ms = 10000"),
            "{shown}"
        );
        let e = Settings::load_with_env(dir.path(), env(&[("CANCELGATE__LIMITS__BODY_READ_TIMEOUT_MS", "0")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("limits.body_read_timeout_ms"), "{e}");
    }

    #[test]
    fn retention_keeps_everything_unless_set_and_at_least_a_day() {
        let dir = dir_with(GATEWAY, CHARGEAPI);
        assert_eq!(Settings::load_with_env(dir.path(), env(&[])).unwrap().ledger.retain_days, None);
        let dir = dir_with(&format!("{GATEWAY}retain_days = 30\n"), CHARGEAPI);
        assert_eq!(Settings::load_with_env(dir.path(), env(&[])).unwrap().ledger.retain_days, Some(30));
        let dir = dir_with(&format!("{GATEWAY}retain_days = 0\n"), CHARGEAPI);
        let e = Settings::load_with_env(dir.path(), env(&[])).unwrap_err().to_string();
        assert!(e.contains("ledger.retain_days"), "{e}");
    }

    #[test]
    fn a_lease_shorter_than_an_attempt_is_refused() {
        let dir = dir_with(&format!("{GATEWAY}lease_ms = 3000\n"), CHARGEAPI);
        let e = Settings::load_with_env(dir.path(), env(&[])).unwrap_err().to_string();
        assert!(e.contains("ledger.lease_ms") && e.contains("providers.chargeapi"), "{e}");
    }

    #[test]
    fn a_shared_quota_needs_a_usable_redis_and_its_url_is_never_printed() {
        let shared = format!("{CHARGEAPI}[rate_limit]\nper_second = 5\nscope = \"shared\"\n");
        let dir = dir_with(GATEWAY, &shared);
        let e = Settings::load_with_env(dir.path(), env(&[])).unwrap_err().to_string();
        assert!(e.contains("providers.chargeapi.rate_limit.scope") && e.contains("redis.url"), "{e}");
        let with_redis = |url: &str| {
            Settings::load_with_env(
                dir.path(),
                env(&[("CANCELGATE__REDIS__URL", url), ("CANCELGATE__REDIS__KEY_PREFIX", "fleet-a")]),
            )
        };
        for bad in ["http://127.0.0.1:6379", "redis://", "not a url :pw@x"] {
            let e = with_redis(bad).unwrap_err().to_string();
            assert!(e.contains("redis.url") && !e.contains(":pw@"), "{bad}: {e}");
        }
        let s = with_redis("redis://:s3cret@127.0.0.1:6379/0").unwrap();
        let limit = &s.providers["chargeapi"].rate_limit;
        assert_eq!(
            (limit.scope, limit.on_store_error, limit.burst_or_default()),
            (RateLimitScope::Shared, OnStoreError::Local, 5)
        );
        let shown = format!("{}{s:?}", Redacted(&s));
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("providers.chargeapi.rate_limit.scope = \"shared\"") && shown.contains("redis.key_prefix"),
            "{shown}"
        );
        let e = Settings::load_with_env(
            dir.path(),
            env(&[
                ("CANCELGATE__REDIS__URL", "redis://x"),
                ("CANCELGATE__PROVIDERS__CHARGEAPI__RATE_LIMIT__ON_STORE_ERROR", "maybe"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("on_store_error"), "{e}");
    }

    #[test]
    fn review_rechecks_default_and_come_from_a_file_or_the_environment() {
        let dir = dir_with(GATEWAY, CHARGEAPI);
        let s = Settings::load_with_env(dir.path(), env(&[])).unwrap();
        assert_eq!(s.providers["chargeapi"].review_recheck_s, [60, 600, 3600]);
        assert!(Redacted(&s).to_string().contains("providers.chargeapi.review_recheck_s = [60, 600, 3600]"));
        let dir = dir_with(GATEWAY, &format!("review_recheck_s = []\n{CHARGEAPI}"));
        assert!(
            Settings::load_with_env(dir.path(), env(&[])).unwrap().providers["chargeapi"].review_recheck_s.is_empty()
        );
        let key = "CANCELGATE__PROVIDERS__CHARGEAPI__REVIEW_RECHECK_S";
        let s = Settings::load_with_env(dir.path(), env(&[(key, "1, 30")])).unwrap();
        assert_eq!(s.providers["chargeapi"].review_recheck_s, [1, 30]);
        assert!(
            Settings::load_with_env(dir.path(), env(&[(key, "")])).unwrap().providers["chargeapi"]
                .review_recheck_s
                .is_empty()
        );
        let e = Settings::load_with_env(dir.path(), env(&[(key, "soon")])).unwrap_err().to_string();
        assert!(e.contains("review_recheck_s"), "{e}");
    }

    #[test]
    fn invalid_values_are_refused_with_their_key() {
        let dir = dir_with(GATEWAY, &format!("{CHARGEAPI}[retry]\nmax_attempts = 0\n"));
        let e = Settings::load_with_env(dir.path(), env(&[])).unwrap_err().to_string();
        assert!(e.contains("providers.chargeapi.retry.max_attempts"), "{e}");
        let dir = dir_with(&format!("{GATEWAY}[clients.c]\nkey_sha256 = \"abc\"\n"), CHARGEAPI);
        let e = Settings::load_with_env(dir.path(), env(&[])).unwrap_err().to_string();
        assert!(e.contains("clients.c.key_sha256"), "{e}");
    }
}
