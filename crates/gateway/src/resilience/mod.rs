//! Protecting providers and the gateway from each other: per-provider rate limit, circuit
//! breaker, bulkhead (concurrency limit) and retry budget; per-client rate limit.
//!
//! Decision is kept apart from mechanism: `breaker.rs` is pure; this module wires the mature
//! pieces (governor for rates, tokio's semaphore for the bulkhead, tower's `TpsBudget` for
//! retries) around it.

mod breaker;
mod quota;
mod rate_limit;
mod shared_quota;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub use breaker::{Admit, Breaker, CircuitState, Health};
pub use quota::{ProviderQuota, QuotaMode, QuotaRefusal};
pub use rate_limit::RateLimit;
pub use shared_quota::{QuotaStore, SharedVerdict, StoreError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::retry::budget::{Budget, TpsBudget};

use crate::settings::ProviderSettings;

/// How long a request waits for room in a full bulkhead before it is turned away (SPEC §5).
pub const BULKHEAD_WAIT: Duration = Duration::from_millis(100);
/// Recent upstream latencies kept per provider for p50/p99.
const LATENCY_SAMPLES: usize = 1024;

/// Why a call may not go upstream now. Nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// The provider's quota (ours, or its own 429's `Retry-After`) is used up.
    RateLimited {
        retry_after: Duration,
    },
    CircuitOpen {
        retry_after: Duration,
    },
    /// `max_in_flight` calls are already out.
    Full,
    /// The provider's quota is shared, its store cannot answer and `on_store_error = "deny"`.
    QuotaStoreUnavailable,
}

impl Shed {
    pub fn retry_after(self) -> Duration {
        match self {
            Self::RateLimited { retry_after } | Self::CircuitOpen { retry_after } => retry_after,
            Self::Full | Self::QuotaStoreUnavailable => Duration::from_secs(1),
        }
    }
}

#[derive(Debug)]
pub struct ProviderGuard {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    breaker: Mutex<Breaker>,
    quota: ProviderQuota,
    bulkhead: Arc<Semaphore>,
    max_in_flight: usize,
    in_flight: AtomicUsize,
    budget: TpsBudget,
    latencies: Mutex<VecDeque<u32>>,
}

/// Leave to make one upstream call. Dropping it unrecorded counts as neutral.
#[derive(Debug)]
pub struct Admission {
    inner: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
    recorded: bool,
}

/// What `/v1/providers` shows of a provider's health.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSnapshot {
    pub circuit: CircuitState,
    pub success_rate: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub in_flight: usize,
    pub max_in_flight: usize,
    pub rate_limit_per_second: u32,
    pub rate_limited_for: Option<Duration>,
}

impl ProviderGuard {
    /// `store` serves a `shared` quota (SPEC §11); without one the quota is this process's own.
    pub fn new(provider: &'static str, settings: &ProviderSettings, store: Option<&Arc<QuotaStore>>) -> Self {
        let inner = Inner {
            breaker: Mutex::new(Breaker::new(&settings.circuit_breaker, Instant::now())),
            quota: ProviderQuota::new(provider, &settings.rate_limit, store),
            bulkhead: Arc::new(Semaphore::new(settings.max_in_flight)),
            max_in_flight: settings.max_in_flight,
            in_flight: AtomicUsize::new(0),
            // Retries may add `budget_ratio` of the calls of the last 10 s, plus one a second so a
            // quiet provider can still be retried at all.
            budget: TpsBudget::new(Duration::from_secs(10), 1, settings.retry.budget_ratio as f32),
            latencies: Mutex::new(VecDeque::with_capacity(LATENCY_SAMPLES)),
        };
        Self { inner: Arc::new(inner) }
    }

    /// For a caller waiting on the answer: fail fast (rate limit, open circuit, and at most
    /// [`BULKHEAD_WAIT`] for room).
    pub async fn admit_now(&self) -> Result<Admission, Shed> {
        self.inner.quota.check().await.map_err(shed_of)?;
        let permit = tokio::time::timeout(BULKHEAD_WAIT, self.inner.bulkhead.clone().acquire_owned())
            .await
            .map_err(|_| Shed::Full)?
            .map_err(|_| Shed::Full)?;
        self.admit_breaker(permit)
    }

    /// For the background driver: wait until the provider may be called. Sleeping is bounded
    /// by each wait's `Retry-After`; the driver renews its lease between calls.
    pub async fn admit_patiently(&self) -> Admission {
        loop {
            if let Err(refusal) = self.inner.quota.check().await {
                tokio::time::sleep(shed_of(refusal).retry_after()).await;
                continue;
            }
            let Ok(permit) = self.inner.bulkhead.clone().acquire_owned().await else {
                // The semaphore is never closed; should it be, do not spin.
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            };
            match self.admit_breaker(permit) {
                Ok(admission) => return admission,
                Err(shed) => tokio::time::sleep(shed.retry_after()).await,
            }
        }
    }

    fn admit_breaker(&self, permit: OwnedSemaphorePermit) -> Result<Admission, Shed> {
        let admit = lock(&self.inner.breaker).admit(Instant::now());
        match admit {
            Admit::Yes => {
                self.inner.in_flight.fetch_add(1, Ordering::Relaxed);
                Ok(Admission { inner: self.inner.clone(), _permit: permit, recorded: false })
            }
            Admit::No { retry_after } => Err(Shed::CircuitOpen { retry_after }),
        }
    }

    /// A new cancellation (not a retry) earns retry budget.
    pub fn deposit(&self) {
        self.inner.budget.deposit();
    }

    /// May this unsettled cancellation be tried again? Spends budget when yes.
    pub fn withdraw_retry(&self) -> bool {
        self.inner.budget.withdraw()
    }

    /// Where this provider's quota is decided now, from the last store answer.
    pub fn quota_mode(&self) -> QuotaMode {
        self.inner.quota.mode()
    }

    /// As [`Self::quota_mode`], asking the store first (one round trip when the quota is shared).
    pub async fn probe_quota(&self) -> QuotaMode {
        self.inner.quota.probe().await
    }

    pub fn snapshot(&self) -> HealthSnapshot {
        let now = Instant::now();
        let (circuit, success_rate) = {
            let mut breaker = lock(&self.inner.breaker);
            (breaker.state(now), breaker.success_rate(now))
        };
        let mut samples: Vec<u32> = lock(&self.inner.latencies).iter().copied().collect();
        samples.sort_unstable();
        let pct = |p: f64| -> Option<f64> {
            let last = samples.len().checked_sub(1)?;
            let i = ((last as f64) * p).round() as usize;
            samples.get(i).map(|us| f64::from(*us) / 1000.0)
        };
        HealthSnapshot {
            circuit,
            success_rate,
            latency_p50_ms: pct(0.50),
            latency_p99_ms: pct(0.99),
            in_flight: self.inner.in_flight.load(Ordering::Relaxed),
            max_in_flight: self.inner.max_in_flight,
            rate_limit_per_second: self.inner.quota.per_second(),
            rate_limited_for: self.inner.quota.blocked_for(),
        }
    }
}

impl Admission {
    /// What the call said about the provider. A provider 429 also blocks its limiter until its
    /// `Retry-After` (or a second), so the gateway stops knocking.
    pub fn record(mut self, health: Health, latency: Option<Duration>, provider_429: Option<Duration>) {
        self.recorded = true;
        lock(&self.inner.breaker).record(health, Instant::now());
        if let Some(latency) = latency {
            let micros = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
            let mut samples = lock(&self.inner.latencies);
            if samples.len() == LATENCY_SAMPLES {
                samples.pop_front();
            }
            samples.push_back(micros);
        }
        if let Some(wait) = provider_429 {
            self.inner.quota.pause(wait);
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.inner.in_flight.fetch_sub(1, Ordering::Relaxed);
        if !self.recorded {
            lock(&self.inner.breaker).record(Health::Neutral, Instant::now());
        }
    }
}

fn shed_of(refusal: QuotaRefusal) -> Shed {
    match refusal {
        QuotaRefusal::Exhausted(retry_after) => Shed::RateLimited { retry_after },
        QuotaRefusal::StoreUnavailable => Shed::QuotaStoreUnavailable,
    }
}

/// A poisoned lock only means another thread panicked mid-update of plain counters: go on.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max_in_flight: usize, per_second: u32) -> ProviderSettings {
        let toml = format!(
            "base_url = \"http://127.0.0.1:1\"\nmax_in_flight = {max_in_flight}\n[rate_limit]\nper_second = {per_second}\n[circuit_breaker]\nmin_calls = 2\nopen_s = 30\n"
        );
        config::Config::builder()
            .add_source(config::File::from_str(&toml, config::FileFormat::Toml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap()
    }

    #[tokio::test]
    async fn a_full_bulkhead_turns_callers_away_after_a_short_wait() {
        let guard = ProviderGuard::new("chargeapi", &settings(2, 1000), None);
        let a = guard.admit_now().await.unwrap();
        let _b = guard.admit_now().await.unwrap();
        let started = Instant::now();
        assert_eq!(guard.admit_now().await.unwrap_err(), Shed::Full);
        assert!(started.elapsed() >= BULKHEAD_WAIT);
        assert_eq!(guard.snapshot().in_flight, 2);
        drop(a);
        assert!(guard.admit_now().await.is_ok(), "room again once a call ends");
    }

    #[tokio::test]
    async fn the_circuit_opens_on_failures_and_sheds_at_once() {
        let guard = ProviderGuard::new("chargeapi", &settings(10, 1000), None);
        for _ in 0..2 {
            guard.admit_now().await.unwrap().record(Health::Failure, Some(Duration::from_millis(5)), None);
        }
        let Err(Shed::CircuitOpen { retry_after }) = guard.admit_now().await else { panic!("circuit should be open") };
        assert!(retry_after > Duration::from_secs(25));
        assert_eq!(guard.snapshot().circuit, CircuitState::Open);
    }

    #[tokio::test]
    async fn a_provider_429_blocks_its_limiter() {
        let guard = ProviderGuard::new("chargeapi", &settings(10, 1000), None);
        guard.admit_now().await.unwrap().record(Health::Neutral, None, Some(Duration::from_secs(7)));
        let Err(Shed::RateLimited { retry_after }) = guard.admit_now().await else { panic!("should be rate limited") };
        assert!(retry_after > Duration::from_secs(5) && retry_after <= Duration::from_secs(7));
    }

    #[tokio::test]
    async fn the_retry_budget_caps_retries() {
        let mut s = settings(10, 1000);
        s.retry.budget_ratio = 0.2;
        let guard = ProviderGuard::new("chargeapi", &s, None);
        for _ in 0..100 {
            guard.deposit();
        }
        let granted = (0..1000).filter(|_| guard.withdraw_retry()).count();
        // 20 % of 100 calls, plus the floor of one a second over the 10 s window.
        assert!((15..=35).contains(&granted), "{granted} retries granted");
    }

    #[test]
    fn percentiles_come_from_recent_latencies() {
        let guard = ProviderGuard::new("chargeapi", &settings(200, 1000), None);
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        for ms in 1..=100u64 {
            let admission = rt.block_on(guard.admit_now()).unwrap();
            admission.record(Health::Success, Some(Duration::from_millis(ms)), None);
        }
        let snap = guard.snapshot();
        assert_eq!(snap.latency_p50_ms, Some(51.0));
        assert_eq!(snap.latency_p99_ms, Some(99.0));
        assert_eq!(snap.success_rate, Some(1.0));
    }
}
