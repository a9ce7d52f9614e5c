//! Failed sign-ins: at most 10 a minute per client address (SPEC §9), then `429` for every
//! sign-in from that address (a right key too) until the quota has room again. Only failures
//! use the quota; while an address is shut out its keys are not even checked, so a guess there
//! learns nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Failed sign-ins allowed per address and minute.
pub const PER_MINUTE: u32 = 10;

/// Addresses remembered at most before the forgotten ones are dropped (bounded memory under a
/// spray of addresses).
const MAX_ADDRESSES: usize = 10_000;

#[derive(Debug)]
pub struct SignInLimit {
    failures: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses whose quota ran out, and until when (governor has no "peek": this is it).
    shut_out: Mutex<HashMap<IpAddr, Instant>>,
}

impl Default for SignInLimit {
    fn default() -> Self {
        let per_minute = NonZeroU32::new(PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        Self { failures: RateLimiter::keyed(Quota::per_minute(per_minute)), shut_out: Mutex::default() }
    }
}

impl SignInLimit {
    /// How long `address` must wait before any sign-in is looked at, if it must.
    pub fn shut_out_for(&self, address: IpAddr, now: Instant) -> Option<Duration> {
        let mut shut_out = self.shut_out.lock().unwrap_or_else(PoisonError::into_inner);
        match shut_out.get(&address) {
            Some(until) if *until > now => Some(*until - now),
            Some(_) => {
                shut_out.remove(&address);
                None
            }
            None => None,
        }
    }

    /// A sign-in from `address` failed. `Err(wait)` when that was one too many: the address is
    /// shut out for `wait`.
    pub fn failed(&self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.failures.len() > MAX_ADDRESSES {
            self.failures.retain_recent();
        }
        match self.failures.check_key(&address) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now()).max(Duration::from_secs(1));
                let mut shut_out = self.shut_out.lock().unwrap_or_else(PoisonError::into_inner);
                if shut_out.len() > MAX_ADDRESSES {
                    shut_out.retain(|_, until| *until > now);
                }
                shut_out.insert(address, now + wait);
                Err(wait)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eleventh_failure_in_a_minute_shuts_the_address_out() {
        let limit = SignInLimit::default();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let now = Instant::now();
        for n in 1..=PER_MINUTE {
            assert!(limit.shut_out_for(a, now).is_none(), "failure {n}");
            assert_eq!(limit.failed(a, now), Ok(()), "failure {n}");
        }
        let wait = limit.failed(a, now).unwrap_err();
        assert!(wait >= Duration::from_secs(1) && wait <= Duration::from_secs(6), "{wait:?}");
        assert!(limit.shut_out_for(a, now).is_some());
        assert!(limit.shut_out_for(b, now).is_none(), "another address is not held back");
        assert!(limit.shut_out_for(a, now + wait).is_none(), "then it may try again");
    }
}
