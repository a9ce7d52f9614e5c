//! What an attempt's answer means for its delivery (SPEC §8), pure: `2xx` delivers, `410`
//! disables the endpoint, `429`/`503` wait at least their `Retry-After`, everything else (any
//! other status, a timeout, a reset, a connect or DNS error) retries on the schedule, and once
//! the schedule is used up the delivery is failed.

use std::time::Duration;

use cancelgate_ledger::DeliveryOutcome;
use time::OffsetDateTime;

/// The longest `Retry-After` honoured: a receiver cannot park a delivery for longer than the
/// schedule's own longest step would.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// What the receiver did with one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// No full answer within the endpoint's `timeout_ms`.
    TimedOut,
    /// Connection refused or reset, DNS, TLS…: the text says which.
    Transport(String),
}

impl Answer {
    /// The attempt's error text as recorded; `None` for a delivery.
    pub fn error(&self) -> Option<String> {
        match self {
            Answer::Status { status, .. } if (200..300).contains(status) => None,
            Answer::Status { status, .. } => Some(format!("HTTP {status}")),
            Answer::TimedOut => Some("timed out".to_owned()),
            Answer::Transport(text) => Some(text.clone()),
        }
    }

    pub fn http_status(&self) -> Option<u16> {
        match self {
            Answer::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The outcome of an attempt made after `attempts_before` earlier ones, at `now`.
pub fn decide(answer: &Answer, attempts_before: u32, schedule: &[Duration], now: OffsetDateTime) -> DeliveryOutcome {
    let retry_after = match answer {
        Answer::Status { status, .. } if (200..300).contains(status) => return DeliveryOutcome::Delivered,
        Answer::Status { status: 410, .. } => return DeliveryOutcome::EndpointGone,
        Answer::Status { status: 429 | 503, retry_after } => *retry_after,
        _ => None,
    };
    // The schedule lists the delays before each retry: after `schedule.len()` retries, give up.
    let Some(delay) = schedule.get(attempts_before as usize) else { return DeliveryOutcome::Failed };
    let wait = retry_after.map_or(*delay, |r| r.min(MAX_RETRY_AFTER).max(*delay));
    match time::Duration::try_from(wait).ok().and_then(|w| now.checked_add(w)) {
        Some(at) => DeliveryOutcome::RetryAt(at),
        None => DeliveryOutcome::Failed,
    }
}

/// A receiver's `Retry-After` (seconds or an HTTP-date, core's one parser); anything else is
/// ignored (the schedule applies).
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    cancelgate_core::parse_retry_after(value?, std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-12-01 10:00:00 UTC);

    fn schedule() -> Vec<Duration> {
        vec![Duration::from_secs(5), Duration::from_secs(300)]
    }

    fn status(status: u16) -> Answer {
        Answer::Status { status, retry_after: None }
    }

    #[test]
    fn two_xx_delivers_and_410_disables() {
        for s in [200, 201, 204, 299] {
            assert_eq!(decide(&status(s), 0, &schedule(), NOW), DeliveryOutcome::Delivered);
        }
        assert_eq!(decide(&status(410), 0, &schedule(), NOW), DeliveryOutcome::EndpointGone);
        assert_eq!(status(204).error(), None);
    }

    #[test]
    fn everything_else_retries_on_the_schedule_then_fails() {
        let others = [
            status(500),
            status(404),
            status(301),
            status(429),
            Answer::TimedOut,
            Answer::Transport("connection refused".to_owned()),
        ];
        for answer in &others {
            assert_eq!(decide(answer, 0, &schedule(), NOW), DeliveryOutcome::RetryAt(NOW + time::Duration::seconds(5)));
            assert_eq!(
                decide(answer, 1, &schedule(), NOW),
                DeliveryOutcome::RetryAt(NOW + time::Duration::seconds(300))
            );
            assert_eq!(decide(answer, 2, &schedule(), NOW), DeliveryOutcome::Failed, "{answer:?}");
            assert!(answer.error().is_some());
        }
    }

    #[test]
    fn retry_after_of_429_and_503_is_waited_at_least() {
        for s in [429, 503] {
            let long = Answer::Status { status: s, retry_after: Some(Duration::from_secs(60)) };
            assert_eq!(decide(&long, 0, &schedule(), NOW), DeliveryOutcome::RetryAt(NOW + time::Duration::seconds(60)));
            // Never sooner than the schedule says.
            let short = Answer::Status { status: s, retry_after: Some(Duration::from_secs(1)) };
            assert_eq!(decide(&short, 0, &schedule(), NOW), DeliveryOutcome::RetryAt(NOW + time::Duration::seconds(5)));
            // Bounded.
            let huge = Answer::Status { status: s, retry_after: Some(Duration::from_secs(u64::MAX / 4)) };
            assert_eq!(decide(&huge, 0, &schedule(), NOW), DeliveryOutcome::RetryAt(NOW + time::Duration::days(1)));
        }
        // Another status's Retry-After means nothing.
        let other = Answer::Status { status: 500, retry_after: Some(Duration::from_secs(60)) };
        assert_eq!(decide(&other, 0, &schedule(), NOW), DeliveryOutcome::RetryAt(NOW + time::Duration::seconds(5)));
    }

    #[test]
    fn retry_after_is_read_in_seconds_or_as_an_http_date() {
        assert_eq!(parse_retry_after(Some(" 120 ")), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), Some(Duration::ZERO), "past: no wait");
        let in_a_minute = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(61));
        let wait = parse_retry_after(Some(&in_a_minute)).unwrap();
        assert!(wait > Duration::from_secs(55) && wait <= Duration::from_secs(61), "{wait:?}");
        assert_eq!(parse_retry_after(Some("soon")), None);
        assert_eq!(parse_retry_after(Some("-1")), None);
        assert_eq!(parse_retry_after(None), None);
    }
}
