//! A provider's quota shared by every replica (SPEC §11): GCRA in Redis, on the Redis server's
//! clock, one round trip per call.
//!
//! Why GCRA in a script and not a counter per second: a fixed window lets a fleet send twice the
//! quota across a window's edge, and `INCR` + `EXPIRE` from each replica needs two round trips
//! and the replicas' clocks. The script below keeps one number per provider (the theoretical
//! arrival time of the next call, TAT) and decides with `TIME` from the one server, so replicas
//! with skewed clocks still share one budget. The same script first reads the provider's pause
//! (a provider `429`'s `Retry-After`, set by whichever replica saw it), so pausing costs nothing
//! extra on the hot path.
//!
//! The connection is redis-rs's `ConnectionManager` (multiplexed, reconnects by itself), made on
//! first use so a gateway starts while Redis is down. Every call is bounded by `redis.timeout_ms`.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

use crate::settings::RedisSettings;

/// Decides one call: `{1, 0}` admitted, `{0, wait_us}` refused for `wait_us` microseconds.
///
/// KEYS[1]: the provider's TAT (µs on the server's clock); KEYS[2]: its pause.
/// ARGV[1]: emission interval (µs per call); ARGV[2]: burst (calls allowed at once).
const ADMIT: &str = r"
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then return {0, paused * 1000} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * (tonumber(ARGV[2]) - 1)
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local wait = tat - now - tolerance
if wait > 0 then return {0, math.ceil(wait)} end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1000)
return {1, 0}
";

/// Pauses a provider for ARGV[1] ms, never shortening a longer pause already set.
const PAUSE: &str = r"
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
return 1
";

/// Redis could not answer in time (down, unreachable, slow, or it refused the command).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the quota store did not answer within {0:?}")]
    Timeout(Duration),
    /// The redis-rs error's text names the cause (connection refused, …); it never holds the
    /// URL's password, which is only in the connection info.
    #[error("the quota store failed: {0}")]
    Redis(#[from] redis::RedisError),
}

/// What the shared budget says about one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedVerdict {
    Admitted,
    /// Refused: the budget (or a provider's pause) allows the next call after this long.
    Wait(Duration),
}

/// The one Redis connection of a process, shared by every provider with a shared quota.
pub struct QuotaStore {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    prefix: String,
    timeout: Duration,
    admit: redis::Script,
    pause: redis::Script,
}

impl std::fmt::Debug for QuotaStore {
    // The client holds the URL (and its password): never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuotaStore").field("prefix", &self.prefix).field("timeout", &self.timeout).finish()
    }
}

impl QuotaStore {
    /// Checks the URL; connects on first use.
    pub fn new(settings: &RedisSettings) -> Result<Arc<Self>, redis::RedisError> {
        let client = redis::Client::open(settings.url.expose_secret())?;
        Ok(Arc::new(Self {
            client,
            connection: OnceCell::new(),
            prefix: settings.key_prefix.clone(),
            timeout: Duration::from_millis(settings.timeout_ms),
            admit: redis::Script::new(ADMIT),
            pause: redis::Script::new(PAUSE),
        }))
    }

    async fn connection(&self) -> Result<ConnectionManager, redis::RedisError> {
        let manager = self
            .connection
            .get_or_try_init(|| async {
                // One quick try per call: while Redis is down the caller falls back at once
                // instead of waiting through reconnect back-offs; the next call tries again.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(0);
                ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            })
            .await?;
        Ok(manager.clone())
    }

    fn keys(&self, provider: &str) -> (String, String) {
        // One hash tag per provider: both keys land on one slot should Redis be a cluster.
        (format!("{}:{{quota:{provider}}}:tat", self.prefix), format!("{}:{{quota:{provider}}}:pause", self.prefix))
    }

    /// Take one call of `provider`'s budget of `per_second` (burst `burst`), or say how long to wait.
    pub async fn admit(&self, provider: &str, per_second: u32, burst: u32) -> Result<SharedVerdict, StoreError> {
        let (tat, pause) = self.keys(provider);
        let interval_us = 1_000_000 / u64::from(per_second.max(1));
        let call = async {
            let mut connection = self.connection().await?;
            let mut invocation = self.admit.key(tat);
            invocation.key(pause).arg(interval_us.max(1)).arg(burst.max(1));
            let (admitted, wait_us): (i64, i64) = invocation.invoke_async(&mut connection).await?;
            Ok::<_, StoreError>(if admitted == 1 {
                SharedVerdict::Admitted
            } else {
                SharedVerdict::Wait(Duration::from_micros(u64::try_from(wait_us).unwrap_or(0).max(1)))
            })
        };
        tokio::time::timeout(self.timeout, call).await.map_err(|_| StoreError::Timeout(self.timeout))?
    }

    /// Pause `provider` on every replica for `wait` (a provider `429`'s `Retry-After`).
    pub async fn pause(&self, provider: &str, wait: Duration) -> Result<(), StoreError> {
        let (_, pause) = self.keys(provider);
        let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
        let call = async {
            let mut connection = self.connection().await?;
            let _: i64 = self.pause.key(pause).arg(ms).invoke_async(&mut connection).await?;
            Ok::<_, StoreError>(())
        };
        tokio::time::timeout(self.timeout, call).await.map_err(|_| StoreError::Timeout(self.timeout))?
    }

    /// A round trip, for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let call = async {
            let mut connection = self.connection().await?;
            let _: String = redis::cmd("PING").query_async(&mut connection).await?;
            Ok::<_, StoreError>(())
        };
        tokio::time::timeout(self.timeout, call).await.map_err(|_| StoreError::Timeout(self.timeout))?
    }
}
