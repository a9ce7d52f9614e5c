//! Support for the adapters' classification tests (feature `test-util`, dev-dependencies only).
#![allow(clippy::unwrap_used)] // a bad status in a test is a bug of that test: fail loudly

use std::fmt::Debug;

use http::StatusCode;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Value;

use crate::{AttemptContext, CancelProvider, HttpResponse, Outcome, Refusal, UPSTREAM_TEXT_LIMIT, UpstreamFault};

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

/// Bodies a provider might answer, for the classifiers' property tests: arbitrary bytes, or JSON
/// built from the provider's own `keys` whose leaves are of any type, the `strings` and `numbers`
/// its classifier looks for among them (each slice non-empty).
pub fn answer_body(
    keys: &'static [&'static str],
    strings: &'static [&'static str],
    numbers: &'static [i64],
) -> impl Strategy<Value = Vec<u8>> {
    let key = select(keys).prop_map(str::to_owned);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop_oneof![select(numbers), any::<i64>()].prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![select(strings).prop_map(str::to_owned), any::<String>()].prop_map(Value::from),
    ];
    let json = leaf.prop_recursive(3, 16, 4, move |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::from),
            btree_map(key.clone(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![vec(any::<u8>(), 0..2048), json.prop_map(|v| v.to_string().into_bytes())]
}

/// Classifies whatever answer and checks what holds for every provider: no panic, and the
/// upstream's own text kept in a refusal is bounded.
pub fn classify_anything(
    provider: &dyn CancelProvider,
    status: u16,
    body: Vec<u8>,
    truncated: bool,
    after_ambiguous: bool,
) -> Result<Outcome, TestCaseError> {
    let mut answer = response(status, body);
    answer.truncated = truncated;
    let outcome = provider.classify_cancel(&answer, AttemptContext { after_ambiguous });
    if let Outcome::Refused(r) = &outcome {
        for text in [&r.upstream_code, &r.upstream_message].into_iter().flatten() {
            prop_assert!(text.len() <= UPSTREAM_TEXT_LIMIT, "{} bytes of upstream text", text.len());
        }
    }
    Ok(outcome)
}
