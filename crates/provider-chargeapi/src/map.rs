//! What a ChargeAPI answer to `POST /v1/reservations/{id}/cancel` means.

use cancelgate_core::classify::{self, UpstreamText};
use cancelgate_core::{AttemptContext, ErrorCode, HttpResponse, Outcome, RefusalReason, parse_timestamp};
use serde_json::Value;

use crate::wire;

pub(crate) fn classify(response: &HttpResponse, context: AttemptContext) -> Outcome {
    let status = response.status.as_u16();
    if response.status.is_success() {
        return success(status, response);
    }
    let upstream = error_text(response);
    if let Some(outcome) = classify::by_status(status, response, &upstream) {
        return outcome;
    }
    match status {
        404 => upstream.refused(ErrorCode::NotFound, "ChargeAPI has no such reservation."),
        401 | 403 => classify::misconfigured(status, &upstream),
        400 | 409 => by_state(status, &upstream, context),
        _ => classify::unexpected_client_error(status, &upstream),
    }
}

/// A success answers with the updated Reservation object; only its `status` says what happened.
fn success(status: u16, response: &HttpResponse) -> Outcome {
    let Some(wire::Reservation { status: Some(state), updated }) = classify::json_object(response) else {
        return classify::unreadable_success(status, &error_text(response));
    };
    // The status list spells it `cancelled`; the prose says "canceled". Either is a cancellation.
    if classify::is_cancelled_word(&state) {
        return Outcome::cancelled_at(updated.as_ref().and_then(parse_timestamp));
    }
    UpstreamText::default().refused(
        ErrorCode::UpstreamError,
        format!(
            "ChargeAPI answered the cancel with a reservation in status {}, not cancelled.",
            classify::quoted(&state)
        ),
    )
}

/// The provider's code and message, from whichever error shape it used, or its plain text.
fn error_text(response: &HttpResponse) -> UpstreamText {
    let Some(body) = classify::json_object::<wire::ErrorBody>(response) else {
        return UpstreamText::new(None, classify::text_message(response));
    };
    let (inner_code, inner_message) = match body.error {
        Some(Value::String(message)) => (None, Some(message)),
        Some(object) => match classify::from_object::<wire::ErrorObject>(object) {
            Some(inner) => (inner.code, inner.message),
            None => (None, None),
        },
        None => (None, None),
    };
    UpstreamText::new(inner_code.or(body.code), inner_message.or(body.message))
}

/// A reservation state named in an error code or message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Named {
    Completed,
    Expired,
    Failed,
    Cancelled,
    /// The text is about the reservation's state (`pending`, `status`, "cannot be cancelled")
    /// without naming a final one.
    SomeState,
}

impl Named {
    /// A final state the reservation is in, as opposed to talk about states in general.
    fn is_specific(self) -> bool {
        self != Self::SomeState
    }

    /// When one text names several: a cancel verb misread as the state would turn a refusal into
    /// a success after an ambiguous attempt, so the other final states outrank `cancelled`.
    fn rank(self) -> u8 {
        match self {
            Self::Completed | Self::Expired | Self::Failed => 2,
            Self::Cancelled => 1,
            Self::SomeState => 0,
        }
    }
}

/// The state a text names, read word by word (codes like `reservation_already_cancelled` and
/// sentences alike). A state word does not count when it is what the reservation would become
/// ("cannot be cancelled", "is not completed"): that is only talk about states.
fn named_state(text: &str) -> Option<Named> {
    let lower = text.to_ascii_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let mut found: Option<Named> = None;
    for (i, word) in words.iter().enumerate() {
        let state = match *word {
            "completed" => Named::Completed,
            "expired" => Named::Expired,
            "failed" => Named::Failed,
            "cancelled" | "canceled" => Named::Cancelled,
            "pending" | "confirmed" | "status" | "state" | "cancellable" | "cancelable" => Named::SomeState,
            _ => continue,
        };
        // "failed to cancel" is about the request, not the reservation.
        if words.get(i + 1) == Some(&"to") {
            continue;
        }
        let before = |n: usize| i.checked_sub(n).and_then(|j| words.get(j)).copied();
        let negated = [before(1), before(2)].iter().any(|w| matches!(w, Some("not" | "cannot" | "never")));
        let hypothetical = matches!(before(1), Some("be" | "to"));
        let state = if state.is_specific() && (negated || hypothetical) { Named::SomeState } else { state };
        if found.is_none_or(|f| state.rank() > f.rank()) {
            found = Some(state);
        }
    }
    found
}

/// 400 and 409: the reservation's state decides, as named in the code first, then the message.
fn by_state(status: u16, upstream: &UpstreamText, context: AttemptContext) -> Outcome {
    let in_code = upstream.code.as_deref().and_then(named_state);
    let in_message = upstream.message.as_deref().and_then(named_state);
    let named = match (in_code, in_message) {
        (Some(code), _) if code.is_specific() => Some(code),
        (_, Some(message)) if message.is_specific() => Some(message),
        (code, message) => code.or(message),
    };
    match named {
        Some(Named::Completed) => upstream
            .not_cancellable(RefusalReason::Completed, "The reservation is completed; ChargeAPI cannot cancel it."),
        Some(Named::Expired) => {
            upstream.not_cancellable(RefusalReason::Expired, "The reservation has expired; ChargeAPI cannot cancel it.")
        }
        Some(Named::Failed) => upstream
            .not_cancellable(RefusalReason::InvalidState, "The reservation failed; ChargeAPI has nothing to cancel."),
        // Our earlier attempt may have reached ChargeAPI: then this cancellation is our own.
        Some(Named::Cancelled) if context.after_ambiguous => Outcome::cancelled_at(None),
        Some(Named::Cancelled) => {
            upstream.refused(ErrorCode::AlreadyCancelled, "ChargeAPI says the reservation is already cancelled.")
        }
        Some(Named::SomeState) => upstream.not_cancellable(
            RefusalReason::InvalidState,
            "ChargeAPI cancels only pending or confirmed reservations, and this one is neither.",
        ),
        None if status == 409 => upstream.not_cancellable(
            RefusalReason::InvalidState,
            "ChargeAPI refused the cancel as conflicting with the reservation's state.",
        ),
        None => upstream.refused(ErrorCode::UpstreamRejected, "ChargeAPI rejected the cancel request as invalid."),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cancelgate_core::testing::{assert_classified, detail, response};
    use cancelgate_core::{Refusal, UPSTREAM_TEXT_LIMIT, UpstreamFault};
    use http::HeaderValue;
    use time::macros::datetime;

    use super::*;

    const FIRST: AttemptContext = AttemptContext { after_ambiguous: false };
    const AFTER_AMBIGUOUS: AttemptContext = AttemptContext { after_ambiguous: true };

    #[track_caller]
    fn check_response(response: &HttpResponse, context: AttemptContext, expected: Outcome) {
        assert_classified(classify(response, context), expected, &(response, context));
    }

    #[track_caller]
    fn check(status: u16, body: impl AsRef<[u8]>, context: AttemptContext, expected: Outcome) {
        check_response(&response(status, body), context, expected);
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    fn refused(code: ErrorCode, upstream_code: Option<String>, upstream_message: Option<String>) -> Outcome {
        Outcome::Refused(Refusal::new(code, "").with_upstream(upstream_code, upstream_message))
    }

    fn not_cancellable(
        reason: RefusalReason,
        upstream_code: Option<String>,
        upstream_message: Option<String>,
    ) -> Outcome {
        Outcome::Refused(Refusal::not_cancellable(reason, "").with_upstream(upstream_code, upstream_message))
    }

    fn unknown_effect() -> Outcome {
        Outcome::Fault(UpstreamFault::unknown_effect(""))
    }

    fn transient(upstream_code: Option<String>, upstream_message: Option<String>) -> Outcome {
        Outcome::Fault(UpstreamFault::transient("").with_upstream(upstream_code, upstream_message))
    }

    // --- chargeapi-cancel.txt and chargeapi-confirm.txt ---

    #[test]
    fn doc_cancel_example_is_cancelled_at_updated() {
        let body = include_str!("../tests/fixtures/chargeapi-cancel__200-cancelled.json");
        let expected = Outcome::cancelled_at(Some(datetime!(2026-04-01 01:38:06.924 UTC)));
        check(200, body, FIRST, expected.clone());
        check(200, body, AFTER_AMBIGUOUS, expected);
    }

    #[test]
    fn doc_object_with_unix_seconds_updated() {
        // The confirm page gives timestamps as UNIX seconds: the cancel page's object in that form.
        let body = include_str!("../tests/fixtures/derived__chargeapi-cancel__200-cancelled-unix-updated.json");
        check(200, body, FIRST, Outcome::cancelled_at(Some(datetime!(2026-04-01 01:38:06 UTC))));
    }

    #[test]
    fn doc_confirm_example_status_pending_is_not_a_cancellation() {
        let body = include_str!("../tests/fixtures/chargeapi-confirm__200-pending.json");
        check(200, body, FIRST, refused(ErrorCode::UpstreamError, None, None));
        let outcome = classify(&response(200, body), FIRST);
        assert!(detail(&outcome).unwrap().contains("`pending`"), "{outcome:?}");
    }

    #[test]
    fn success_status_variants() {
        let ts = Some(datetime!(2026-04-01 01:38:06.924 UTC));
        check(200, r#"{"status":"cancelled"}"#, FIRST, Outcome::cancelled_at(None));
        check(200, r#"{"status":"canceled","updated":"2026-04-01T01:38:06.924Z"}"#, FIRST, Outcome::cancelled_at(ts));
        check(
            200,
            r#"{"status":"CANCELLED","updated":"2026-04-01T03:38:06.924+02:00"}"#,
            FIRST,
            Outcome::cancelled_at(ts),
        );
        check(201, r#"{"status":"cancelled","updated":1775007486.924}"#, FIRST, Outcome::cancelled_at(ts));
        check(200, r#"{"status":"cancelled","updated":"yesterday"}"#, FIRST, Outcome::cancelled_at(None));
        check(200, r#"{"status":"cancelled","updated":null}"#, FIRST, Outcome::cancelled_at(None));
        check(200, r#"{"status":"cancelled","updated":{"at":1}}"#, FIRST, Outcome::cancelled_at(None));
        check(200, r#"{"status":"cancelled","updated":1e300}"#, FIRST, Outcome::cancelled_at(None));
        for other in ["pending", "confirmed", "completed", "failed", "expired", "", "weird"] {
            check(200, format!(r#"{{"status":"{other}"}}"#), FIRST, refused(ErrorCode::UpstreamError, None, None));
        }
    }

    #[test]
    fn hostile_status_string_is_not_echoed_in_the_detail() {
        let body = format!(r#"{{"status":"{}"}}"#, "x".repeat(10_000));
        let outcome = classify(&response(200, body), FIRST);
        assert!(detail(&outcome).unwrap().len() < 200, "{outcome:?}");
        let outcome = classify(&response(200, r#"{"status":"a\nb"}"#), FIRST);
        assert!(!detail(&outcome).unwrap().contains('\n'));
    }

    #[test]
    fn unreadable_success_may_have_cancelled() {
        let doc = include_str!("../tests/fixtures/chargeapi-cancel__200-cancelled.json");
        for body in [
            "",
            "<html><body>Cancelled</body></html>",
            "{",
            &doc[..doc.len() / 2],
            "null",
            "[]",
            r#"["cancelled", "2026-04-01T01:38:06.924Z"]"#,
            "{}",
            r#"{"status":null}"#,
            r#"{"status":5}"#,
            r#"{"status":["cancelled"]}"#,
        ] {
            check(200, body, FIRST, unknown_effect());
            check(200, body, AFTER_AMBIGUOUS, unknown_effect());
        }
        // What the provider said is kept, whatever the shape.
        let said = Outcome::Fault(UpstreamFault::unknown_effect("").with_upstream(s("weird"), s("nope")));
        check(200, r#"{"error":{"code":"weird","message":"nope"}}"#, FIRST, said);
        let said = Outcome::Fault(UpstreamFault::unknown_effect("").with_upstream(None, s("OK")));
        check(200, "OK", FIRST, said);
        let said = Outcome::Fault(UpstreamFault::unknown_effect("").with_upstream(None, s("cancelled")));
        check(200, r#""cancelled""#, AFTER_AMBIGUOUS, said);
        check(204, "", FIRST, unknown_effect());
        check(200, &[0xff, 0xfe, 0x7b, 0x00][..], FIRST, unknown_effect());
    }

    #[test]
    fn truncated_success_is_unreadable_even_if_it_parses() {
        let mut res = response(200, include_str!("../tests/fixtures/chargeapi-cancel__200-cancelled.json"));
        res.truncated = true;
        check_response(&res, FIRST, unknown_effect());
    }

    #[test]
    fn one_mebibyte_bodies() {
        check(200, vec![b'a'; 1 << 20], FIRST, unknown_effect());
        let padded = format!(r#"{{"status":"cancelled","metadata":{{"pad":"{}"}}}}"#, "p".repeat(1 << 20));
        check(200, padded, FIRST, Outcome::cancelled_at(None));
        // A message that big is kept, but bounded.
        let huge = format!(r#"{{"error":{{"code":"reservation_completed","message":"{}"}}}}"#, "m".repeat(1 << 20));
        let Outcome::Refused(refusal) = classify(&response(400, huge), FIRST) else { panic!() };
        assert_eq!(refusal.reason, Some(RefusalReason::Completed));
        assert_eq!(refusal.upstream_message.map(|m| m.len()), Some(UPSTREAM_TEXT_LIMIT));
        check(409, vec![b'<'; 1 << 20], FIRST, not_cancellable(RefusalReason::InvalidState, None, None));
    }

    // --- the sandbox's answers (not documented by ChargeAPI) ---

    #[test]
    fn sandbox_completed() {
        let body = include_str!("../tests/fixtures/sandbox__400-reservation-completed.json");
        let message = s("Reservation res_x cannot be cancelled because its status is completed.");
        let expected = not_cancellable(RefusalReason::Completed, s("reservation_completed"), message);
        check(400, body, FIRST, expected.clone());
        check(400, body, AFTER_AMBIGUOUS, expected);
    }

    #[test]
    fn sandbox_already_cancelled() {
        let body = include_str!("../tests/fixtures/sandbox__400-reservation-already-cancelled.json");
        let message = s("Reservation res_x cannot be cancelled because its status is cancelled.");
        check(400, body, FIRST, refused(ErrorCode::AlreadyCancelled, s("reservation_already_cancelled"), message));
        check(400, body, AFTER_AMBIGUOUS, Outcome::cancelled_at(None));
    }

    #[test]
    fn sandbox_not_found_and_bad_key() {
        let body = include_str!("../tests/fixtures/sandbox__404-resource-missing.json");
        check(404, body, FIRST, refused(ErrorCode::NotFound, s("resource_missing"), s("No such reservation: 'res_x'")));
        check(
            404,
            body,
            AFTER_AMBIGUOUS,
            refused(ErrorCode::NotFound, s("resource_missing"), s("No such reservation: 'res_x'")),
        );
        let body = include_str!("../tests/fixtures/sandbox__401-authentication-error.json");
        check(401, body, FIRST, refused(ErrorCode::ProviderMisconfigured, None, s("Invalid API Key provided")));
    }

    // --- error shapes ChargeAPI might use, and the states they name ---

    #[test]
    fn every_documented_error_shape_is_read() {
        let cancelled = |c: Option<&str>, m: Option<&str>| {
            refused(ErrorCode::AlreadyCancelled, c.map(str::to_owned), m.map(str::to_owned))
        };
        check(
            409,
            r#"{"message":"Reservation is already cancelled"}"#,
            FIRST,
            cancelled(None, Some("Reservation is already cancelled")),
        );
        check(
            409,
            r#"{"code":"reservation_already_cancelled"}"#,
            FIRST,
            cancelled(Some("reservation_already_cancelled"), None),
        );
        check(
            409,
            "Reservation is already cancelled",
            FIRST,
            cancelled(None, Some("Reservation is already cancelled")),
        );
        check(
            409,
            r#"{"error":"reservation_already_cancelled"}"#,
            FIRST,
            cancelled(None, Some("reservation_already_cancelled")),
        );
        check(
            400,
            r#"{"error":{"type":"invalid_request_error","code":"reservation_already_cancelled","message":"x","param":null}}"#,
            FIRST,
            cancelled(Some("reservation_already_cancelled"), Some("x")),
        );
        // Envelope fields win over top-level ones, each falling back on its own.
        check(
            400,
            r#"{"error":{"message":"status is cancelled"},"code":"top_code","message":"top message"}"#,
            FIRST,
            cancelled(Some("top_code"), Some("status is cancelled")),
        );
    }

    #[test]
    fn state_decides_400_and_409() {
        use RefusalReason::*;
        let nc = |reason, m: &str| not_cancellable(reason, None, s(m));
        let cases: &[(u16, &str, Outcome)] = &[
            (
                400,
                "Reservation res_x cannot be cancelled because its status is completed",
                nc(Completed, "Reservation res_x cannot be cancelled because its status is completed"),
            ),
            (409, "Reservation has expired", nc(Expired, "Reservation has expired")),
            (409, "status: EXPIRED", nc(Expired, "status: EXPIRED")),
            (
                400,
                "Reservation failed: no_available_connectors",
                nc(InvalidState, "Reservation failed: no_available_connectors"),
            ),
            // The doc's own sentence names no final state.
            (
                400,
                "Only reservations in pending or confirmed status can be canceled.",
                nc(InvalidState, "Only reservations in pending or confirmed status can be canceled."),
            ),
            (
                409,
                "Only reservations in pending or confirmed status can be canceled.",
                nc(InvalidState, "Only reservations in pending or confirmed status can be canceled."),
            ),
            (400, "Reservation cannot be cancelled", nc(InvalidState, "Reservation cannot be cancelled")),
            (
                400,
                "Reservation is not cancelled yet; status is pending",
                nc(InvalidState, "Reservation is not cancelled yet; status is pending"),
            ),
            (400, "Reservation has not been completed", nc(InvalidState, "Reservation has not been completed")),
            (
                409,
                "Reservation has been canceled",
                refused(ErrorCode::AlreadyCancelled, None, s("Reservation has been canceled")),
            ),
            (400, "status is cancelled", refused(ErrorCode::AlreadyCancelled, None, s("status is cancelled"))),
            // Two final states: the one that is not `cancelled` wins.
            (
                409,
                "Reservation was cancelled after it expired",
                nc(Expired, "Reservation was cancelled after it expired"),
            ),
            (
                400,
                "Failed to cancel reservation",
                refused(ErrorCode::UpstreamRejected, None, s("Failed to cancel reservation")),
            ),
            (
                400,
                "Received unknown parameter: foo",
                refused(ErrorCode::UpstreamRejected, None, s("Received unknown parameter: foo")),
            ),
            (409, "Conflict", nc(InvalidState, "Conflict")),
        ];
        for (status, message, expected) in cases {
            check(*status, *message, FIRST, expected.clone());
            check(*status, format!(r#"{{"message":{message:?}}}"#), FIRST, expected.clone());
        }
    }

    #[test]
    fn code_is_read_before_message() {
        let body = r#"{"error":{"code":"reservation_expired","message":"Reservation is already cancelled"}}"#;
        let expected =
            not_cancellable(RefusalReason::Expired, s("reservation_expired"), s("Reservation is already cancelled"));
        check(409, body, AFTER_AMBIGUOUS, expected);
        // A code about states in general yields to a message that names one.
        let body = r#"{"error":{"code":"invalid_status","message":"The reservation status is completed."}}"#;
        let expected =
            not_cancellable(RefusalReason::Completed, s("invalid_status"), s("The reservation status is completed."));
        check(400, body, FIRST, expected);
        let body = r#"{"code":"reservation_failed","message":"Reservation is already cancelled"}"#;
        let expected = not_cancellable(
            RefusalReason::InvalidState,
            s("reservation_failed"),
            s("Reservation is already cancelled"),
        );
        check(409, body, AFTER_AMBIGUOUS, expected);
    }

    #[test]
    fn already_cancelled_after_our_ambiguous_attempt_is_ours() {
        for (status, body) in [
            (409, r#"{"message":"Reservation is already cancelled"}"#),
            (400, r#"{"code":"reservation_already_cancelled"}"#),
            (409, "status is canceled"),
        ] {
            check(status, body, AFTER_AMBIGUOUS, Outcome::cancelled_at(None));
        }
        // Unreadable, so it proves nothing: the refusal stands.
        let mut res = response(409, r#"{"message":"Reservation is already cancelled"}"#);
        res.truncated = true;
        check_response(&res, AFTER_AMBIGUOUS, not_cancellable(RefusalReason::InvalidState, None, None));
    }

    #[test]
    fn no_state_at_all() {
        for body in [
            "",
            "{}",
            "[]",
            "null",
            "<html><h1>Bad Request</h1></html>",
            r#"{"error":5}"#,
            r#"{"error":{"code":5,"message":["cancelled"]}}"#,
        ] {
            check(400, body, FIRST, refused(ErrorCode::UpstreamRejected, None, None));
            check(409, body, FIRST, not_cancellable(RefusalReason::InvalidState, None, None));
        }
        check(400, &[0xc3, 0x28, b'c'][..], FIRST, refused(ErrorCode::UpstreamRejected, None, None));
    }

    #[test]
    fn credentials_and_missing_reservations() {
        for status in [401, 403] {
            check(status, "", FIRST, refused(ErrorCode::ProviderMisconfigured, None, None));
            check(
                status,
                "<html>Forbidden</html>",
                AFTER_AMBIGUOUS,
                refused(ErrorCode::ProviderMisconfigured, None, None),
            );
        }
        check(404, "", FIRST, refused(ErrorCode::NotFound, None, None));
        check(404, "<html>Not Found</html>", FIRST, refused(ErrorCode::NotFound, None, None));
    }

    #[test]
    fn rate_limits() {
        let mut res = response(429, r#"{"error":{"type":"rate_limit_error","message":"Too many requests"}}"#);
        res.headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("30"));
        check_response(
            &res,
            FIRST,
            Outcome::RateLimited {
                retry_after: Some(Duration::from_secs(30)),
                upstream_message: s("Too many requests"),
            },
        );
        check(429, "", AFTER_AMBIGUOUS, Outcome::RateLimited { retry_after: None, upstream_message: None });
    }

    #[test]
    fn server_errors_are_transient() {
        check(500, "", FIRST, transient(None, None));
        check(502, "<html><body>502 Bad Gateway</body></html>", FIRST, transient(None, None));
        check(503, "Service Unavailable", FIRST, transient(None, s("Service Unavailable")));
        check(
            510,
            r#"{"error":{"type":"api_error","code":"internal","message":"boom"}}"#,
            FIRST,
            transient(s("internal"), s("boom")),
        );
        // Even a 5xx naming `cancelled` is a failure, not a cancellation.
        check(500, r#"{"message":"already cancelled"}"#, AFTER_AMBIGUOUS, transient(None, s("already cancelled")));
    }

    #[test]
    fn statuses_nobody_documented() {
        check(302, "", FIRST, unknown_effect());
        check(100, "", FIRST, unknown_effect());
        check(422, r#"{"message":"bad"}"#, FIRST, refused(ErrorCode::UpstreamRejected, None, s("bad")));
        check(410, "", FIRST, refused(ErrorCode::UpstreamError, None, None));
        check(418, "I'm a teapot", FIRST, refused(ErrorCode::UpstreamError, None, s("I'm a teapot")));
        // State words count only on 400/409.
        check(
            422,
            r#"{"code":"reservation_already_cancelled"}"#,
            AFTER_AMBIGUOUS,
            refused(ErrorCode::UpstreamRejected, s("reservation_already_cancelled"), None),
        );
    }

    #[test]
    fn named_state_table() {
        use Named::*;
        let cases: &[(&str, Option<Named>)] = &[
            ("reservation_completed", Some(Completed)),
            ("reservation_already_cancelled", Some(Cancelled)),
            ("RESERVATION_CANCELED", Some(Cancelled)),
            ("reservation_expired", Some(Expired)),
            ("reservation_failed", Some(Failed)),
            ("reservation_cannot_be_cancelled", Some(SomeState)),
            ("reservation_not_cancellable", Some(SomeState)),
            ("Cannot be cancelled because its status is completed.", Some(Completed)),
            ("can't be canceled", Some(SomeState)),
            ("failed to cancel", None),
            ("must be completed first", Some(SomeState)),
            ("resource_missing", None),
            ("", None),
            ("cancelledx completedness", None),
        ];
        for (text, expected) in cases {
            assert_eq!(named_state(text), *expected, "{text:?}");
        }
    }
}
