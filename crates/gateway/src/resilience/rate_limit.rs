//! A rate limit with governor: a provider's quota (which the provider's own 429 can tighten
//! further) and, through `crate::client_limits`, each client's.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// The longest a provider's `Retry-After` keeps the gateway away.
pub const MAX_BLOCK: Duration = Duration::from_secs(300);

/// A steady rate with a burst of one second's worth (or as configured), plus an optional block
/// until a provider's `Retry-After`.
#[derive(Debug)]
pub struct RateLimit {
    limiter: DefaultDirectRateLimiter,
    per_second: u32,
    blocked_until: Mutex<Option<Instant>>,
}

impl RateLimit {
    pub fn per_second(per_second: u32, burst: Option<u32>) -> Self {
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst = burst.and_then(NonZeroU32::new).unwrap_or(rate);
        Self {
            limiter: RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
            per_second: rate.get(),
            blocked_until: Mutex::new(None),
        }
    }

    pub fn per_second_value(&self) -> u32 {
        self.per_second
    }

    /// Take one unit now, or say how long to wait.
    pub fn check(&self) -> Result<(), Duration> {
        if let Some(wait) = self.blocked_for() {
            return Err(wait);
        }
        self.limiter.check().map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Keep away for `wait` (a provider's `Retry-After`), between 1 s and [`MAX_BLOCK`]: a
    /// provider's header must never be able to shut it off for good (or overflow the clock).
    pub fn block_for(&self, wait: Duration) {
        let until = Instant::now() + wait.clamp(Duration::from_secs(1), MAX_BLOCK);
        let mut blocked = self.blocked_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if blocked.is_none_or(|current| current < until) {
            *blocked = Some(until);
        }
    }

    pub fn blocked_for(&self) -> Option<Duration> {
        let blocked = *self.blocked_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        blocked.and_then(|until| until.checked_duration_since(Instant::now())).filter(|d| !d.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_burst_then_says_how_long_to_wait() {
        let limit = RateLimit::per_second(5, None);
        for _ in 0..5 {
            assert!(limit.check().is_ok());
        }
        let wait = limit.check().unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(200), "{wait:?}");
    }

    #[test]
    fn a_block_wins_over_the_quota() {
        let limit = RateLimit::per_second(1000, None);
        limit.block_for(Duration::from_secs(3));
        let wait = limit.check().unwrap_err();
        assert!(wait > Duration::from_secs(2));
        limit.block_for(Duration::from_secs(1));
        assert!(limit.blocked_for().unwrap() > Duration::from_secs(2), "a shorter block never shortens a longer one");
        limit.block_for(Duration::from_secs(u64::MAX));
        assert!(limit.blocked_for().unwrap() <= MAX_BLOCK, "an absurd Retry-After is capped, never an overflow");
    }
}
