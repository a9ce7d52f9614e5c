//! Pure policy: what one attempt's result means for the cancellation, given what came before.
//! No I/O here, so every rule of SPEC §4 "Outcomes that are not answers" is unit-tested.

use std::time::Duration;

use cancelgate_core::{Effect, ErrorCode, HttpResponse, Outcome, TransportError};
use time::OffsetDateTime;

use crate::error::{ApiError, UpstreamInfo};

/// The result of one attempt: an answer the adapter classified, or no answer at all.
#[derive(Debug)]
pub enum AttemptResult {
    Answered { outcome: Outcome, response: HttpResponse },
    NoAnswer(TransportError),
}

/// What to do after an attempt.
#[derive(Debug)]
pub enum Verdict {
    Cancelled {
        cancelled_at: Option<OffsetDateTime>,
        upstream: Option<UpstreamInfo>,
    },
    /// A final refusal: the record ends `failed` with this error.
    Refused(ApiError),
    /// Answered at once, never driven in the background (SPEC §4).
    RateLimited {
        retry_after: Option<Duration>,
        upstream: UpstreamInfo,
    },
    NeedsReview {
        detail: String,
        upstream: Option<UpstreamInfo>,
    },
    /// No final answer yet: another attempt may settle it.
    Unsettled(Unsettled),
}

#[derive(Debug, Clone)]
pub struct Unsettled {
    /// The provider may have acted on this attempt (timeout/reset after sending, unreadable success).
    pub ambiguous: bool,
    pub detail: String,
    pub upstream: Option<UpstreamInfo>,
    pub retry_after: Option<Duration>,
}

impl Verdict {
    pub fn of(result: AttemptResult) -> Self {
        match result {
            AttemptResult::NoAnswer(e) => Verdict::Unsettled(Unsettled {
                ambiguous: e.kind.is_ambiguous(),
                detail: e.to_string(),
                upstream: None,
                retry_after: None,
            }),
            AttemptResult::Answered { outcome, response } => match outcome {
                Outcome::Cancelled(c) => Verdict::Cancelled {
                    cancelled_at: c.cancelled_at,
                    upstream: Some(UpstreamInfo::from_response(&response, None, None)),
                },
                Outcome::Refused(r) => {
                    let mut error = ApiError::new(r.code, r.detail);
                    error.reason = r.reason;
                    error.upstream = Some(UpstreamInfo::from_response(&response, r.upstream_code, r.upstream_message));
                    Verdict::Refused(error)
                }
                Outcome::RateLimited { retry_after, upstream_message } => Verdict::RateLimited {
                    retry_after,
                    upstream: UpstreamInfo::from_response(&response, None, upstream_message),
                },
                Outcome::NeedsReview { detail, upstream_code, upstream_message } => Verdict::NeedsReview {
                    detail,
                    upstream: Some(UpstreamInfo::from_response(&response, upstream_code, upstream_message)),
                },
                Outcome::Fault(f) => Verdict::Unsettled(Unsettled {
                    ambiguous: f.effect == Effect::Unknown,
                    retry_after: response.retry_after(),
                    upstream: Some(UpstreamInfo::from_response(&response, f.upstream_code, f.upstream_message)),
                    detail: f.detail,
                }),
            },
        }
    }
}

/// When attempts run out: only transient answers → `upstream_error` (or `upstream_timeout` when
/// the last one timed out and nothing else could be kept going); any ambiguous attempt → review.
pub fn exhausted(last: Unsettled, any_ambiguous: bool) -> Verdict {
    if any_ambiguous {
        return Verdict::NeedsReview {
            detail: format!(
                "The provider may have cancelled, but no attempt got a readable answer ({}). An operator must check.",
                last.detail
            ),
            upstream: last.upstream,
        };
    }
    let mut error =
        ApiError::new(ErrorCode::UpstreamError, format!("The provider did not give a usable answer: {}.", last.detail));
    error.upstream = last.upstream;
    Verdict::Refused(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cancelgate_core::{Refusal, RefusalReason, TransportErrorKind, UpstreamFault};
    use http::StatusCode;

    fn answered(outcome: Outcome, status: u16) -> Verdict {
        let response = HttpResponse::new(StatusCode::from_u16(status).unwrap(), r#"{"x":1}"#);
        Verdict::of(AttemptResult::Answered { outcome, response })
    }

    #[test]
    fn refusal_keeps_the_upstream_answer() {
        let refusal = Refusal::not_cancellable(RefusalReason::PastCheckIn, "past check-in")
            .with_upstream(None, Some("after the check-in date".into()));
        let Verdict::Refused(e) = answered(Outcome::Refused(refusal), 400) else { panic!() };
        assert_eq!(e.code, ErrorCode::NotCancellable);
        assert_eq!(e.reason, Some(RefusalReason::PastCheckIn));
        let up = e.upstream.clone().unwrap();
        assert_eq!((up.status, up.message.as_deref()), (400, Some("after the check-in date")));
        assert_eq!(up.body, serde_json::json!({"x": 1}));
    }

    #[test]
    fn faults_and_silence_are_unsettled_with_the_right_ambiguity() {
        let Verdict::Unsettled(u) = answered(Outcome::Fault(UpstreamFault::transient("503")), 503) else { panic!() };
        assert!(!u.ambiguous);
        let Verdict::Unsettled(u) = answered(Outcome::Fault(UpstreamFault::unknown_effect("bad 200")), 200) else {
            panic!()
        };
        assert!(u.ambiguous);
        for (kind, ambiguous) in [
            (TransportErrorKind::NotSent, false),
            (TransportErrorKind::Timeout, true),
            (TransportErrorKind::Reset, true),
        ] {
            let Verdict::Unsettled(u) = Verdict::of(AttemptResult::NoAnswer(TransportError::new(kind, "x"))) else {
                panic!()
            };
            assert_eq!(u.ambiguous, ambiguous, "{kind:?}");
        }
    }

    #[test]
    fn exhausted_attempts_are_never_a_guess() {
        let last = Unsettled { ambiguous: false, detail: "503".into(), upstream: None, retry_after: None };
        assert!(matches!(exhausted(last.clone(), false), Verdict::Refused(e) if e.code == ErrorCode::UpstreamError));
        assert!(matches!(exhausted(last, true), Verdict::NeedsReview { .. }));
    }
}
