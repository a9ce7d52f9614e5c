//! Pure policy: what one attempt's result means for the cancellation, given what came before.
//! No I/O here, so every rule of SPEC §4 "Outcomes that are not answers" is unit-tested.

use std::time::Duration;

use cancelgate_core::{Effect, ErrorCode, HttpResponse, Outcome, TransportError, TransportErrorKind};
use serde_json::Value;
use time::OffsetDateTime;

use crate::failure::{Failure, UpstreamInfo};

/// The result of one attempt: an answer the adapter classified, or no answer at all.
// One per attempt, moved and never stored: boxing the answer would cost the common case an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum AttemptResult {
    /// `body` is what the record keeps of the answer ([`HttpResponse::body_for_record`]), read
    /// once by [`AttemptResult::answered`]: the attempt's row and the verdict's `upstream` share it.
    Answered {
        outcome: Outcome,
        response: HttpResponse,
        body: Value,
    },
    NoAnswer(TransportError),
}

impl AttemptResult {
    pub fn answered(outcome: Outcome, mut response: HttpResponse) -> Self {
        let body = response.body_for_record();
        Self::Answered { outcome, response, body }
    }
}

/// What to do after an attempt.
#[derive(Debug)]
pub enum Verdict {
    Cancelled {
        cancelled_at: Option<OffsetDateTime>,
        upstream: Option<UpstreamInfo>,
    },
    /// A final refusal: the record ends `failed` with this error.
    Refused(Failure),
    /// Answered at once, never driven in the background (SPEC §4).
    RateLimited {
        retry_after: Option<Duration>,
        upstream: UpstreamInfo,
    },
    /// The gateway cannot tell whether the provider cancelled. `error` is the evidence (SPEC §12):
    /// the last attempt's code and detail, and the provider's answer when there was one.
    NeedsReview(Failure),
    /// No final answer yet: another attempt may settle it.
    Unsettled(Unsettled),
}

#[derive(Debug, Clone)]
pub struct Unsettled {
    /// The provider may have acted on this attempt (timeout/reset after sending, unreadable success).
    pub ambiguous: bool,
    /// What the attempt's failure is called, should it be the last: `upstream_timeout` when no
    /// answer came in time, `upstream_error` otherwise.
    pub code: ErrorCode,
    pub detail: String,
    pub upstream: Option<UpstreamInfo>,
    pub retry_after: Option<Duration>,
}

impl Verdict {
    pub fn of(result: AttemptResult) -> Self {
        match result {
            AttemptResult::NoAnswer(e) => Verdict::Unsettled(Unsettled {
                ambiguous: e.kind.is_ambiguous(),
                code: no_answer_code(e.kind),
                detail: e.to_string(),
                upstream: None,
                retry_after: None,
            }),
            AttemptResult::Answered { outcome, response, body } => {
                // Each outcome below takes the answer once: the body moves, it is not copied.
                let status = response.status.as_u16();
                let upstream = |code, message| UpstreamInfo { status, code, message, body };
                match outcome {
                    Outcome::Cancelled(c) => {
                        Verdict::Cancelled { cancelled_at: c.cancelled_at, upstream: Some(upstream(None, None)) }
                    }
                    Outcome::Refused(r) => Verdict::Refused(
                        Failure::new(r.code, r.detail)
                            .with_reason(r.reason)
                            .with_upstream(Some(upstream(r.upstream_code, r.upstream_message))),
                    ),
                    Outcome::RateLimited { retry_after, upstream_message } => {
                        Verdict::RateLimited { retry_after, upstream: upstream(None, upstream_message) }
                    }
                    Outcome::NeedsReview { detail, upstream_code, upstream_message } => {
                        let detail = if detail.is_empty() {
                            "The provider's answer does not tell whether an earlier attempt of ours cancelled the reservation. An operator must check.".to_owned()
                        } else {
                            detail
                        };
                        // The answer is readable but decides nothing: "could not understand" (§3).
                        Verdict::NeedsReview(
                            Failure::new(ErrorCode::UpstreamError, detail)
                                .with_upstream(Some(upstream(upstream_code, upstream_message))),
                        )
                    }
                    Outcome::Fault(f) => Verdict::Unsettled(Unsettled {
                        ambiguous: f.effect == Effect::Unknown,
                        code: ErrorCode::UpstreamError,
                        retry_after: response.retry_after(),
                        upstream: Some(upstream(f.upstream_code, f.upstream_message)),
                        detail: f.detail,
                    }),
                }
            }
        }
    }
}

/// The code of an attempt that got no answer: a timeout is `upstream_timeout`; a reset, or a
/// request that never left, `upstream_error`.
pub fn no_answer_code(kind: TransportErrorKind) -> ErrorCode {
    match kind {
        TransportErrorKind::Timeout => ErrorCode::UpstreamTimeout,
        TransportErrorKind::Reset | TransportErrorKind::NotSent => ErrorCode::UpstreamError,
    }
}

/// When attempts run out (and only then: a retry the budget refuses waits, it is not a reason):
/// only transient answers → `upstream_error`; any ambiguous attempt → review, with the last
/// attempt's code and answer as its evidence.
pub fn exhausted(last: Unsettled, any_ambiguous: bool) -> Verdict {
    if any_ambiguous {
        let detail = format!(
            "The provider may have cancelled, but no attempt got a readable answer (last: {}). An operator must check.",
            last.detail
        );
        return Verdict::NeedsReview(Failure::new(last.code, detail).with_upstream(last.upstream));
    }
    let detail = format!("The provider did not give a usable answer: {}.", last.detail);
    Verdict::Refused(Failure::new(ErrorCode::UpstreamError, detail).with_upstream(last.upstream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cancelgate_core::{Refusal, RefusalReason, UpstreamFault};
    use http::StatusCode;

    fn answered(outcome: Outcome, status: u16) -> Verdict {
        let response = HttpResponse::new(StatusCode::from_u16(status).unwrap(), r#"{"x":1}"#);
        Verdict::of(AttemptResult::answered(outcome, response))
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
        let last = Unsettled {
            ambiguous: false,
            code: ErrorCode::UpstreamError,
            detail: "503".into(),
            upstream: None,
            retry_after: None,
        };
        assert!(matches!(exhausted(last.clone(), false), Verdict::Refused(e) if e.code == ErrorCode::UpstreamError));
        assert!(matches!(exhausted(last, true), Verdict::NeedsReview(_)));
    }

    #[test]
    fn a_review_carries_the_last_attempts_code_and_answer() {
        let timeout = TransportError::new(TransportErrorKind::Timeout, "no answer in 300 ms");
        let Verdict::Unsettled(last) = Verdict::of(AttemptResult::NoAnswer(timeout)) else { panic!() };
        let Verdict::NeedsReview(e) = exhausted(last, true) else { panic!() };
        assert_eq!((e.code, e.upstream.is_none()), (ErrorCode::UpstreamTimeout, true));
        assert!(e.detail.contains("no answer in 300 ms"), "{}", e.detail);

        let Verdict::Unsettled(last) = answered(Outcome::Fault(UpstreamFault::unknown_effect("bad 200")), 200) else {
            panic!()
        };
        let Verdict::NeedsReview(e) = exhausted(last, true) else { panic!() };
        assert_eq!((e.code, e.upstream.as_ref().map(|u| u.status)), (ErrorCode::UpstreamError, Some(200)));

        let outcome = Outcome::NeedsReview {
            detail: String::new(),
            upstream_code: Some("reservationStatusAlreadyCompleted".into()),
            upstream_message: None,
        };
        let Verdict::NeedsReview(e) = answered(outcome, 400) else { panic!() };
        assert_eq!(e.code, ErrorCode::UpstreamError);
        assert!(!e.detail.is_empty());
        let up = e.upstream.clone().unwrap();
        assert_eq!((up.status, up.code.as_deref()), (400, Some("reservationStatusAlreadyCompleted")));
    }
}
