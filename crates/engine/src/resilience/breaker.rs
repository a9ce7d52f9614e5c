//! A circuit breaker per provider: pure state, time passed in, so every transition is tested
//! without sleeping.
//!
//! Written here rather than taken from a crate: tower has none, and the maintained crates
//! (e.g. `failsafe`) count every error as a failure, while SPEC §4 counts only upstream faults
//! (timeouts, resets, 5xx/510) and never a provider's business refusal.

use std::time::{Duration, Instant};

use crate::settings::CircuitBreakerSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// What one call says about the provider's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// An answer, refusals included: the provider works.
    Success,
    /// Timeout, reset, connection failure, 5xx/510.
    Failure,
    /// Says nothing about health (a 429 is the provider protecting itself).
    Neutral,
}

/// Calls counted per one-second bucket over the window: bounded memory, however busy.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    second: u64,
    successes: u32,
    failures: u32,
}

#[derive(Debug)]
pub struct Breaker {
    failure_rate: f64,
    min_calls: u32,
    window_s: u64,
    open_for: Duration,
    epoch: Instant,
    buckets: Vec<Bucket>,
    state: State,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed,
    Open {
        until: Instant,
    },
    /// One probe at a time is let through; its result closes or reopens the circuit.
    HalfOpen {
        probe_in_flight: bool,
    },
}

/// Whether a call may go upstream now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// The circuit is open (or half-open with its probe out): answer 503 with this `Retry-After`.
    No {
        retry_after: Duration,
    },
}

impl Breaker {
    pub fn new(settings: &CircuitBreakerSettings, now: Instant) -> Self {
        let window_s = settings.window_s.max(1);
        Self {
            failure_rate: settings.failure_rate,
            min_calls: settings.min_calls.max(1),
            window_s,
            open_for: Duration::from_secs(settings.open_s.max(1)),
            epoch: now,
            buckets: vec![Bucket::default(); window_s as usize],
            state: State::Closed,
        }
    }

    pub fn state(&mut self, now: Instant) -> CircuitState {
        self.tick(now);
        match self.state {
            State::Closed => CircuitState::Closed,
            State::Open { .. } => CircuitState::Open,
            State::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    pub fn admit(&mut self, now: Instant) -> Admit {
        self.tick(now);
        match &mut self.state {
            State::Closed => Admit::Yes,
            State::Open { until } => {
                Admit::No { retry_after: until.saturating_duration_since(now).max(Duration::from_secs(1)) }
            }
            State::HalfOpen { probe_in_flight } if !*probe_in_flight => {
                *probe_in_flight = true;
                Admit::Yes
            }
            State::HalfOpen { .. } => Admit::No { retry_after: Duration::from_secs(1) },
        }
    }

    pub fn record(&mut self, health: Health, now: Instant) {
        self.tick(now);
        match (self.state, health) {
            (_, Health::Neutral) => {
                if let State::HalfOpen { .. } = self.state {
                    // The probe told nothing: let another one through.
                    self.state = State::HalfOpen { probe_in_flight: false };
                }
            }
            (State::HalfOpen { .. }, Health::Success) => {
                self.buckets.fill(Bucket::default());
                self.state = State::Closed;
            }
            (State::HalfOpen { .. }, Health::Failure) => self.trip(now),
            (State::Open { .. }, _) => {} // a call admitted before the trip: already accounted for
            (State::Closed, health) => {
                let bucket = self.bucket(now);
                match health {
                    Health::Success => bucket.successes += 1,
                    _ => bucket.failures += 1,
                }
                let (successes, failures) = self.totals(now);
                let calls = successes + failures;
                if calls >= self.min_calls && f64::from(failures) / f64::from(calls) >= self.failure_rate {
                    self.trip(now);
                }
            }
        }
    }

    /// Share of successful calls in the window (`None` before any call).
    pub fn success_rate(&mut self, now: Instant) -> Option<f64> {
        let (s, f) = self.totals(now);
        (s + f > 0).then(|| f64::from(s) / f64::from(s + f))
    }

    fn trip(&mut self, now: Instant) {
        self.state = State::Open { until: now + self.open_for };
    }

    fn tick(&mut self, now: Instant) {
        if let State::Open { until } = self.state
            && now >= until
        {
            self.state = State::HalfOpen { probe_in_flight: false };
        }
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs()
    }

    fn bucket(&mut self, now: Instant) -> &mut Bucket {
        let second = self.second(now);
        let slot = &mut self.buckets[(second % self.window_s) as usize];
        if slot.second != second {
            *slot = Bucket { second, ..Bucket::default() };
        }
        slot
    }

    fn totals(&self, now: Instant) -> (u32, u32) {
        let current = self.second(now);
        self.buckets
            .iter()
            .filter(|b| (b.successes + b.failures > 0) && current.saturating_sub(b.second) < self.window_s)
            .fold((0, 0), |(s, f), b| (s + b.successes, f + b.failures))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(now: Instant) -> Breaker {
        let settings = CircuitBreakerSettings { failure_rate: 0.5, min_calls: 4, window_s: 10, open_s: 5 };
        Breaker::new(&settings, now)
    }

    #[test]
    fn opens_on_sustained_failure_only_after_min_calls() {
        let t0 = Instant::now();
        let mut b = breaker(t0);
        for _ in 0..3 {
            b.record(Health::Failure, t0);
        }
        assert_eq!(b.state(t0), CircuitState::Closed, "3 calls < min_calls");
        b.record(Health::Failure, t0);
        assert_eq!(b.state(t0), CircuitState::Open);
        assert_eq!(b.admit(t0), Admit::No { retry_after: Duration::from_secs(5) });
    }

    #[test]
    fn refusals_and_429s_never_open_it() {
        let t0 = Instant::now();
        let mut b = breaker(t0);
        for _ in 0..100 {
            b.record(Health::Success, t0);
            b.record(Health::Neutral, t0);
        }
        for _ in 0..50 {
            b.record(Health::Failure, t0);
        }
        assert_eq!(b.state(t0), CircuitState::Closed, "50 failures of 150 calls is under 0.5");
        assert_eq!(b.success_rate(t0), Some(100.0 / 150.0));
    }

    #[test]
    fn half_opens_after_open_s_lets_one_probe_and_closes_on_success() {
        let t0 = Instant::now();
        let mut b = breaker(t0);
        for _ in 0..4 {
            b.record(Health::Failure, t0);
        }
        let later = t0 + Duration::from_secs(5);
        assert_eq!(b.state(later), CircuitState::HalfOpen);
        assert_eq!(b.admit(later), Admit::Yes, "the probe");
        assert!(matches!(b.admit(later), Admit::No { .. }), "only one probe at a time");
        b.record(Health::Success, later);
        assert_eq!(b.state(later), CircuitState::Closed);
        assert_eq!(b.admit(later), Admit::Yes);
    }

    #[test]
    fn a_failed_probe_reopens() {
        let t0 = Instant::now();
        let mut b = breaker(t0);
        for _ in 0..4 {
            b.record(Health::Failure, t0);
        }
        let later = t0 + Duration::from_secs(6);
        assert_eq!(b.admit(later), Admit::Yes);
        b.record(Health::Failure, later);
        assert_eq!(b.state(later), CircuitState::Open);
        assert_eq!(b.state(later + Duration::from_secs(5)), CircuitState::HalfOpen);
    }

    #[test]
    fn old_failures_leave_the_window() {
        let t0 = Instant::now();
        let mut b = breaker(t0);
        for _ in 0..3 {
            b.record(Health::Failure, t0);
        }
        let later = t0 + Duration::from_secs(11);
        b.record(Health::Failure, later);
        assert_eq!(b.state(later), CircuitState::Closed, "the first three are out of the 10 s window");
        assert_eq!(b.success_rate(later), Some(0.0));
    }
}
