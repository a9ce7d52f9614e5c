//! A provider's call quota: this process's own limiter (`scope = "local"`), or the fleet's budget
//! in Redis (`scope = "shared"`) with the chosen behaviour while Redis cannot answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::rate_limit::RateLimit;
use super::shared_quota::{QuotaStore, SharedVerdict, StoreError};
use crate::settings::{OnStoreError, ProviderRateLimit, RateLimitScope};

/// After a store error, calls skip the store (and use `on_store_error`) this long before one
/// of them tries it again: an outage then costs one timeout per second, not one per call.
const STORE_RETRY_EVERY: Duration = Duration::from_secs(1);

/// Why a call may not go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaRefusal {
    /// The budget (or a provider's pause) allows the next call after this long.
    Exhausted(Duration),
    /// The shared store cannot answer and `on_store_error = "deny"`.
    StoreUnavailable,
}

/// Where a provider's quota is decided right now (for `/readyz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaMode {
    Local,
    Shared,
    /// Shared, but the store failed: this process's own limiter decides.
    LocalFallback,
    /// Shared, the store failed, and calls are refused.
    Denying,
}

impl QuotaMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Shared => "shared",
            Self::LocalFallback => "local_fallback",
            Self::Denying => "store_unavailable",
        }
    }
}

#[derive(Debug)]
pub struct ProviderQuota {
    provider: &'static str,
    /// Decides alone with `scope = "local"`, and stands in for the store with `on_store_error = "local"`.
    local: RateLimit,
    shared: Option<Shared>,
}

#[derive(Debug)]
struct Shared {
    store: Arc<QuotaStore>,
    per_second: u32,
    burst: u32,
    on_error: OnStoreError,
    /// Whether the store's last answer was a failure.
    failing: AtomicBool,
    /// When (ms since `epoch`) the store may be tried again after a failure.
    retry_at_ms: AtomicU64,
    epoch: Instant,
}

impl ProviderQuota {
    /// `store` is required for `scope = "shared"` (settings check it); without it the quota is local.
    pub fn new(provider: &'static str, settings: &ProviderRateLimit, store: Option<&Arc<QuotaStore>>) -> Self {
        let local = RateLimit::per_second(settings.per_second, Some(settings.burst_or_default()));
        let shared = match (settings.scope, store) {
            (RateLimitScope::Shared, Some(store)) => Some(Shared {
                store: store.clone(),
                per_second: settings.per_second,
                burst: settings.burst_or_default(),
                on_error: settings.on_store_error,
                failing: AtomicBool::new(false),
                retry_at_ms: AtomicU64::new(0),
                epoch: Instant::now(),
            }),
            _ => None,
        };
        Self { provider, local, shared }
    }

    pub fn per_second(&self) -> u32 {
        self.local.per_second_value()
    }

    /// Take one call, or say why not. One store round trip at most.
    pub async fn check(&self) -> Result<(), QuotaRefusal> {
        let Some(shared) = &self.shared else { return self.local.check().map_err(QuotaRefusal::Exhausted) };
        // A pause this process learnt itself is honoured without asking anyone.
        if let Some(wait) = self.local.blocked_for() {
            return Err(QuotaRefusal::Exhausted(wait));
        }
        if shared.may_try_store() {
            match shared.store.admit(self.provider, shared.per_second, shared.burst).await {
                Ok(verdict) => {
                    shared.succeeded(self.provider);
                    return match verdict {
                        SharedVerdict::Admitted => Ok(()),
                        SharedVerdict::Wait(wait) => Err(QuotaRefusal::Exhausted(wait)),
                    };
                }
                Err(error) => shared.failed(self.provider, &error),
            }
        }
        match shared.on_error {
            OnStoreError::Local => self.local.check().map_err(QuotaRefusal::Exhausted),
            OnStoreError::Deny => Err(QuotaRefusal::StoreUnavailable),
        }
    }

    /// Keep away for `wait` (a provider's `Retry-After`): here at once, and on every replica
    /// through the store when the quota is shared.
    pub fn pause(&self, wait: Duration) {
        self.local.block_for(wait);
        if let Some(shared) = &self.shared {
            let store = shared.store.clone();
            let provider = self.provider;
            let wait = wait.clamp(Duration::from_secs(1), super::rate_limit::MAX_BLOCK);
            // Off the caller's path: the local block already holds this process back.
            tokio::spawn(async move {
                if let Err(error) = store.pause(provider, wait).await {
                    count_store_error(provider, &error);
                }
            });
        }
    }

    pub fn blocked_for(&self) -> Option<Duration> {
        self.local.blocked_for()
    }

    pub fn mode(&self) -> QuotaMode {
        match &self.shared {
            None => QuotaMode::Local,
            Some(shared) if !shared.failing.load(Ordering::Relaxed) => QuotaMode::Shared,
            Some(shared) if shared.on_error == OnStoreError::Local => QuotaMode::LocalFallback,
            Some(_) => QuotaMode::Denying,
        }
    }

    /// Asks the store now (for `/readyz`), so the mode it reports is current even without traffic.
    pub async fn probe(&self) -> QuotaMode {
        if let Some(shared) = &self.shared {
            match shared.store.ping().await {
                Ok(()) => shared.succeeded(self.provider),
                Err(error) => shared.failed(self.provider, &error),
            }
        }
        self.mode()
    }
}

impl Shared {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn may_try_store(&self) -> bool {
        !self.failing.load(Ordering::Relaxed) || self.now_ms() >= self.retry_at_ms.load(Ordering::Relaxed)
    }

    fn succeeded(&self, provider: &str) {
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!(provider, "the shared quota store answers again; the shared limit is back in force");
        }
    }

    fn failed(&self, provider: &'static str, error: &StoreError) {
        self.retry_at_ms.store(self.now_ms() + STORE_RETRY_EVERY.as_millis() as u64, Ordering::Relaxed);
        count_store_error(provider, error);
        if !self.failing.swap(true, Ordering::Relaxed) {
            let fallback = match self.on_error {
                OnStoreError::Local => "this process's own limiter decides until it is back",
                OnStoreError::Deny => "calls are refused until it is back (on_store_error = \"deny\")",
            };
            tracing::warn!(provider, error = %error, "the shared quota store failed; {fallback}");
        }
    }
}

fn count_store_error(provider: &'static str, error: &StoreError) {
    metrics::counter!(crate::telemetry::names::RATE_LIMIT_STORE_ERRORS, "provider" => provider).increment(1);
    tracing::debug!(provider, error = %error, "quota store error");
}
