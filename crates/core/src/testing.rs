//! Support for the adapters' classification tests (feature `test-util`, dev-dependencies only).
#![allow(clippy::unwrap_used)] // a bad status in a test is a bug of that test: fail loudly

use std::fmt::Debug;

use http::StatusCode;

use crate::{HttpResponse, Outcome, Refusal, UpstreamFault};

/// An answer with this status and body.
pub fn response(status: u16, body: impl AsRef<[u8]>) -> HttpResponse {
    HttpResponse::new(StatusCode::from_u16(status).unwrap(), body.as_ref().to_vec())
}

/// The outcome with its `detail` blanked: details are our own prose, checked for presence and
/// size, not wording.
pub fn without_detail(outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::Refused(r) => Outcome::Refused(Refusal { detail: String::new(), ..r }),
        Outcome::Fault(f) => Outcome::Fault(UpstreamFault { detail: String::new(), ..f }),
        Outcome::NeedsReview { upstream_code, upstream_message, .. } => {
            Outcome::NeedsReview { detail: String::new(), upstream_code, upstream_message }
        }
        other => other,
    }
}

/// The `detail` of an outcome that has one.
pub fn detail(outcome: &Outcome) -> Option<&str> {
    match outcome {
        Outcome::Refused(r) => Some(&r.detail),
        Outcome::Fault(f) => Some(&f.detail),
        Outcome::NeedsReview { detail, .. } => Some(detail),
        _ => None,
    }
}

/// `actual` is `expected` but for the wording of `detail`, which must be present and short.
#[track_caller]
pub fn assert_classified(actual: Outcome, expected: Outcome, input: &dyn Debug) {
    if let Some(detail) = detail(&actual) {
        assert!(!detail.is_empty() && detail.len() < 200, "detail {detail:?}");
    }
    assert_eq!(without_detail(actual), without_detail(expected), "{input:?}");
}
