//! The gateway's own settings types: the tree `Settings` and the sections only the facade reads.
//! The settings the engine reads (providers, the shared-quota store) are in `provider.rs`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{ProviderSettings, RedisSettings, secret};

#[derive(Debug, Clone, Deserialize, Serialize)]
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

#[derive(Debug, Clone, Deserialize, Serialize)]
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

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerSettings {
    /// `sqlite://data/cancelgate.db` or `postgres://…`. May hold a password: never printed.
    #[serde(default = "defaults::no_secret", serialize_with = "secret::database_url")]
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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    #[default]
    Full,
    Normal,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
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

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `json` or `pretty`; unset: pretty on a terminal, JSON otherwise.
    pub format: Option<String>,
    /// A `tracing` filter (`info`, `cancelgate=debug`); `RUST_LOG` wins when set.
    pub level: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    /// Hex SHA-256 of the client's key; the key itself is never stored.
    #[serde(serialize_with = "secret::hidden")]
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

#[derive(Debug, Clone, Deserialize, Serialize)]
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

/// A list of strings, or one string of comma-separated items (environment variables are strings).
fn list_or_commas<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize, Serialize)]
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
}
