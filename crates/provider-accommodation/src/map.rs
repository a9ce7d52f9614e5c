//! What the accommodation partner's answer to `POST /api/cancel` means.

use cancelgate_core::classify::{self, UpstreamText};
use cancelgate_core::{AttemptContext, ErrorCode, HttpResponse, Outcome, RefusalReason, parse_timestamp};

use crate::wire;

pub(crate) fn classify(response: &HttpResponse, context: AttemptContext) -> Outcome {
    let status = response.status.as_u16();
    let answer = classify::json_object::<wire::Answer>(response);
    let message = match &answer {
        Some(answer) => answer.message.clone(),
        None => classify::text_message(response),
    };
    // The partner has no error codes: its message is all it says (SPEC §3 shows `code: null`).
    let upstream = UpstreamText::new(None, message);
    if response.status.is_success() {
        return success(status, answer, &upstream);
    }
    if let Some(outcome) = classify::by_status(status, response, &upstream) {
        return outcome;
    }
    let lower = upstream.message.as_deref().unwrap_or_default().to_lowercase();
    match status {
        404 => upstream.refused(ErrorCode::NotFound, "The accommodation partner has no booking with this reference."),
        401 => classify::misconfigured(status, &upstream),
        403 if lower.contains("does not belong") => forbidden(&upstream),
        // "Invalid connection code." and any other 403 are about our own credentials.
        403 => classify::misconfigured(status, &upstream),
        400 | 409 => by_message(&lower, &upstream, context),
        _ => classify::unexpected_client_error(status, &upstream),
    }
}

fn success(status: u16, answer: Option<wire::Answer>, upstream: &UpstreamText) -> Outcome {
    let data = answer.and_then(|a| a.data).and_then(classify::from_object::<wire::Data>);
    let Some(wire::Data { status: Some(state), cancelled_at }) = data else {
        return classify::unreadable_success(status, upstream);
    };
    if classify::is_cancelled_word(&state) {
        return Outcome::cancelled_at(cancelled_at.as_ref().and_then(parse_timestamp));
    }
    upstream.refused(
        ErrorCode::UpstreamError,
        format!(
            "The accommodation partner answered the cancel with booking status {}, not cancelled.",
            classify::quoted(&state)
        ),
    )
}

fn forbidden(upstream: &UpstreamText) -> Outcome {
    upstream.refused(ErrorCode::Forbidden, "The accommodation partner says this booking belongs to another partner.")
}

/// A 400 (or 409) is told apart only by its message, matched on the documented phrases.
fn by_message(lower: &str, upstream: &UpstreamText, context: AttemptContext) -> Outcome {
    // These two are documented as 403, but they mean the same whatever the status.
    if lower.contains("invalid connection code") {
        return upstream.refused(
            ErrorCode::ProviderMisconfigured,
            "The accommodation partner refused the account's connection code.",
        );
    }
    if lower.contains("does not belong") {
        return forbidden(upstream);
    }
    if let Some((_, rest)) = lower.split_once("current status:") {
        let state = rest.trim_start().split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-')).next();
        if state.is_some_and(classify::is_cancelled_word) {
            // Our earlier attempt may have reached the partner: then this cancellation is our own.
            if context.after_ambiguous {
                return Outcome::cancelled_at(None);
            }
            return upstream.refused(
                ErrorCode::AlreadyCancelled,
                "The accommodation partner says the booking is already cancelled.",
            );
        }
        return upstream.not_cancellable(
            RefusalReason::InvalidState,
            "The accommodation partner cancels only confirmed bookings, and this one is not.",
        );
    }
    if ["check-in", "check in", "checkin"].iter().any(|p| lower.contains(p)) {
        return upstream.not_cancellable(
            RefusalReason::PastCheckIn,
            "The accommodation partner refuses cancellation on or after the check-in date.",
        );
    }
    if lower.contains("policy not found") {
        return upstream.not_cancellable(
            RefusalReason::NoCancellationPolicy,
            "The accommodation partner has no cancellation policy for this booking.",
        );
    }
    if ["not refundable", "non-refundable", "non refundable", "nonrefundable"].iter().any(|p| lower.contains(p)) {
        return upstream.not_cancellable(
            RefusalReason::NonRefundable,
            "The booking is not refundable under its cancellation policy.",
        );
    }
    if lower.contains("is required") {
        return upstream.refused(
            ErrorCode::UpstreamRejected,
            "The accommodation partner rejected the cancel request as incomplete.",
        );
    }
    upstream.refused(
        ErrorCode::UpstreamError,
        "The accommodation partner refused the cancel for a reason it does not document.",
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cancelgate_core::testing::{assert_classified, response};
    use cancelgate_core::{Refusal, UPSTREAM_TEXT_LIMIT, UpstreamFault};
    use http::HeaderValue;
    use time::macros::datetime;

    use super::*;

    const FIRST: AttemptContext = AttemptContext { after_ambiguous: false };
    const AFTER_AMBIGUOUS: AttemptContext = AttemptContext { after_ambiguous: true };

    const DOC_200: &str = include_str!("../tests/fixtures/accommodation-cancel__200-success.json");

    #[track_caller]
    fn check_response(response: &HttpResponse, context: AttemptContext, expected: Outcome) {
        assert_classified(classify(response, context), expected, &(response, context));
    }

    #[track_caller]
    fn check(status: u16, body: impl AsRef<[u8]>, context: AttemptContext, expected: Outcome) {
        check_response(&response(status, body), context, expected);
    }

    fn refused(code: ErrorCode, message: Option<&str>) -> Outcome {
        Outcome::Refused(Refusal::new(code, "").with_upstream(None, message.map(str::to_owned)))
    }

    fn not_cancellable(reason: RefusalReason, message: Option<&str>) -> Outcome {
        Outcome::Refused(Refusal::not_cancellable(reason, "").with_upstream(None, message.map(str::to_owned)))
    }

    fn fault(fault: UpstreamFault, message: Option<&str>) -> Outcome {
        Outcome::Fault(fault.with_upstream(None, message.map(str::to_owned)))
    }

    fn message_body(message: &str) -> String {
        serde_json::json!({ "message": message }).to_string()
    }

    // --- accommodation-cancel.txt ---

    #[test]
    fn doc_success_is_cancelled_at_cancelled_at() {
        let expected = Outcome::cancelled_at(Some(datetime!(2026-02-11 18:46:12.201 UTC)));
        check(200, DOC_200, FIRST, expected.clone());
        check(200, DOC_200, AFTER_AMBIGUOUS, expected);
    }

    #[test]
    fn doc_common_errors() {
        use RefusalReason::*;
        let cases: &[(u16, &str, Outcome)] = &[
            (
                400,
                include_str!("../tests/fixtures/accommodation-cancel__400-bookingReference-required.json"),
                refused(ErrorCode::UpstreamRejected, Some("bookingReference is required for cancellation")),
            ),
            (
                400,
                include_str!("../tests/fixtures/accommodation-cancel__400-current-status.json"),
                not_cancellable(InvalidState, Some("Booking cannot be cancelled. Current status: ...")),
            ),
            (
                400,
                include_str!("../tests/fixtures/accommodation-cancel__400-after-check-in.json"),
                not_cancellable(PastCheckIn, Some("This booking can no longer be cancelled after the check-in date")),
            ),
            (
                400,
                include_str!("../tests/fixtures/accommodation-cancel__400-policy-not-found.json"),
                not_cancellable(NoCancellationPolicy, Some("Cancellation policy not found for this booking")),
            ),
            (
                400,
                include_str!("../tests/fixtures/accommodation-cancel__400-not-refundable.json"),
                not_cancellable(
                    NonRefundable,
                    Some("This booking is not refundable according to the cancellation policy"),
                ),
            ),
            (
                403,
                include_str!("../tests/fixtures/accommodation-cancel__403-invalid-connection-code.json"),
                refused(ErrorCode::ProviderMisconfigured, Some("Invalid connection code.")),
            ),
            (
                403,
                include_str!("../tests/fixtures/accommodation-cancel__403-does-not-belong.json"),
                refused(ErrorCode::Forbidden, Some("This booking does not belong to the current partner")),
            ),
            (
                404,
                include_str!("../tests/fixtures/accommodation-cancel__404-booking-not-found.json"),
                refused(ErrorCode::NotFound, Some("Booking not found with bookingReference: ...")),
            ),
        ];
        for (status, body, expected) in cases {
            check(*status, body, FIRST, expected.clone());
            // None of them is explained by an earlier attempt of ours.
            check(*status, body, AFTER_AMBIGUOUS, expected.clone());
        }
    }

    #[test]
    fn current_status_cancelled_is_already_cancelled() {
        for message in [
            "Booking cannot be cancelled. Current status: cancelled",
            "Booking cannot be cancelled. Current status: cancelled.",
            "Booking cannot be cancelled. Current status: CANCELLED",
            "Booking cannot be cancelled. current status:canceled",
        ] {
            check(400, message_body(message), FIRST, refused(ErrorCode::AlreadyCancelled, Some(message)));
            check(400, message_body(message), AFTER_AMBIGUOUS, Outcome::cancelled_at(None));
            check(409, message, AFTER_AMBIGUOUS, Outcome::cancelled_at(None));
        }
    }

    #[test]
    fn current_status_other_is_invalid_state() {
        for message in [
            "Booking cannot be cancelled. Current status: pending",
            "Booking cannot be cancelled. Current status: failed",
            "Booking cannot be cancelled. Current status: cancellation_pending",
            "Booking cannot be cancelled. Current status: not-cancelled",
            "Booking cannot be cancelled. Current status:",
            "Booking cannot be cancelled. Current status: ",
        ] {
            check(
                400,
                message_body(message),
                AFTER_AMBIGUOUS,
                not_cancellable(RefusalReason::InvalidState, Some(message)),
            );
        }
    }

    #[test]
    fn message_variants() {
        use RefusalReason::*;
        let cases: &[(u16, &str, Outcome)] = &[
            (
                400,
                "Cannot cancel on the CHECK-IN day",
                not_cancellable(PastCheckIn, Some("Cannot cancel on the CHECK-IN day")),
            ),
            (400, "Booking is non-refundable", not_cancellable(NonRefundable, Some("Booking is non-refundable"))),
            (
                400,
                "settings.access.code is required",
                refused(ErrorCode::UpstreamRejected, Some("settings.access.code is required")),
            ),
            (
                400,
                "Invalid connection code.",
                refused(ErrorCode::ProviderMisconfigured, Some("Invalid connection code.")),
            ),
            (
                400,
                "This booking does not belong to the current partner",
                refused(ErrorCode::Forbidden, Some("This booking does not belong to the current partner")),
            ),
            (400, "Something else", refused(ErrorCode::UpstreamError, Some("Something else"))),
            (409, "Something else", refused(ErrorCode::UpstreamError, Some("Something else"))),
            (403, "Forbidden", refused(ErrorCode::ProviderMisconfigured, Some("Forbidden"))),
            (
                403,
                "INVALID CONNECTION CODE",
                refused(ErrorCode::ProviderMisconfigured, Some("INVALID CONNECTION CODE")),
            ),
            (401, "Invalid api-key", refused(ErrorCode::ProviderMisconfigured, Some("Invalid api-key"))),
            // Only 400/409 are read for the booking's state.
            (
                403,
                "Booking cannot be cancelled. Current status: cancelled",
                refused(
                    ErrorCode::ProviderMisconfigured,
                    Some("Booking cannot be cancelled. Current status: cancelled"),
                ),
            ),
            (
                422,
                "bookingReference is required",
                refused(ErrorCode::UpstreamRejected, Some("bookingReference is required")),
            ),
        ];
        for (status, message, expected) in cases {
            check(*status, message_body(message), FIRST, expected.clone());
            // The same as plain text.
            check(*status, *message, FIRST, expected.clone());
        }
    }

    #[test]
    fn success_variants() {
        let ts = Some(datetime!(2026-02-11 18:46:12.201 UTC));
        check(200, r#"{"data":{"status":"cancelled"}}"#, FIRST, Outcome::cancelled_at(None));
        check(
            200,
            r#"{"data":{"status":"CANCELLED","cancelledAt":"2026-02-11T19:46:12.201+01:00"}}"#,
            FIRST,
            Outcome::cancelled_at(ts),
        );
        let unix = Some(datetime!(2026-02-11 18:46:12 UTC));
        check(201, r#"{"data":{"status":"canceled","cancelledAt":1770835572}}"#, FIRST, Outcome::cancelled_at(unix));
        check(200, r#"{"data":{"status":"cancelled","cancelledAt":"soon"}}"#, FIRST, Outcome::cancelled_at(None));
        check(200, r#"{"data":{"status":"cancelled","cancelledAt":[1]}}"#, FIRST, Outcome::cancelled_at(None));
        check(
            200,
            r#"{"data":{"status":"cancelled","cancelledAt":"2026-02-11T18:46:12.201Z","cancelLocator":"CL1","reference":{},"bookPrice":{},"cancelPrice":{}},"message":"success"}"#,
            FIRST,
            Outcome::cancelled_at(ts),
        );
        check(
            200,
            r#"{"data":{"status":"success"},"message":"success"}"#,
            FIRST,
            refused(ErrorCode::UpstreamError, Some("success")),
        );
        check(200, r#"{"data":{"status":""}}"#, FIRST, refused(ErrorCode::UpstreamError, None));
    }

    #[test]
    fn unreadable_success_may_have_cancelled() {
        let unknown = || fault(UpstreamFault::unknown_effect(""), None);
        for body in [
            "",
            "{",
            &DOC_200[..DOC_200.len() - 10],
            "[]",
            "null",
            "{}",
            r#"{"data":null}"#,
            r#"{"data":[]}"#,
            r#"{"data":["cancelled"]}"#,
            r#"{"data":"cancelled"}"#,
            r#"{"data":{"status":7}}"#,
            r#"{"status":"cancelled"}"#,
            "<html>OK</html>",
        ] {
            check(200, body, FIRST, unknown());
        }
        check(200, "cancelled", AFTER_AMBIGUOUS, fault(UpstreamFault::unknown_effect(""), Some("cancelled")));
        check(200, r#"{"message":"success"}"#, FIRST, fault(UpstreamFault::unknown_effect(""), Some("success")));
        check(204, "", FIRST, unknown());
        check(200, &[0xff, 0xfe, 0xfd][..], FIRST, unknown());
        check(200, vec![b' '; 1 << 20], FIRST, unknown());
        let mut cut = response(200, DOC_200);
        cut.truncated = true;
        check_response(&cut, FIRST, unknown());
    }

    #[test]
    fn one_mebibyte_bodies() {
        let padded = format!(
            r#"{{"data":{{"status":"cancelled","cancelledAt":"2026-02-11T18:46:12.201Z","pad":"{}"}}}}"#,
            "p".repeat(1 << 20)
        );
        check(200, padded, FIRST, Outcome::cancelled_at(Some(datetime!(2026-02-11 18:46:12.201 UTC))));
        let huge = message_body(&format!("This booking is not refundable {}", "x".repeat(1 << 20)));
        let Outcome::Refused(r) = classify(&response(400, huge), FIRST) else { panic!() };
        assert_eq!(r.reason, Some(RefusalReason::NonRefundable));
        assert_eq!(r.upstream_message.map(|m| m.len()), Some(UPSTREAM_TEXT_LIMIT));
        check(400, vec![b'x'; 1 << 20], FIRST, refused(ErrorCode::UpstreamError, None));
    }

    #[test]
    fn unreadable_errors() {
        check(400, "", FIRST, refused(ErrorCode::UpstreamError, None));
        check(400, "<html><body>Bad Request</body></html>", FIRST, refused(ErrorCode::UpstreamError, None));
        check(400, r#"{"message":["not refundable"]}"#, FIRST, refused(ErrorCode::UpstreamError, None));
        check(400, &[0xc3, 0x28][..], FIRST, refused(ErrorCode::UpstreamError, None));
        check(404, "<html>Not Found</html>", FIRST, refused(ErrorCode::NotFound, None));
        check(403, "", FIRST, refused(ErrorCode::ProviderMisconfigured, None));
        let mut cut = response(400, message_body("Booking cannot be cancelled. Current status: cancelled"));
        cut.truncated = true;
        check_response(&cut, AFTER_AMBIGUOUS, refused(ErrorCode::UpstreamError, None));
    }

    #[test]
    fn rate_limits_and_server_errors() {
        let mut res = response(429, message_body("Too many requests"));
        res.headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("5"));
        check_response(
            &res,
            FIRST,
            Outcome::RateLimited {
                retry_after: Some(Duration::from_secs(5)),
                upstream_message: Some("Too many requests".into()),
            },
        );
        check(429, "", FIRST, Outcome::RateLimited { retry_after: None, upstream_message: None });
        check(
            500,
            message_body("Internal server error"),
            FIRST,
            fault(UpstreamFault::transient(""), Some("Internal server error")),
        );
        for status in [502, 503, 504, 510] {
            check(status, "<html>down</html>", AFTER_AMBIGUOUS, fault(UpstreamFault::transient(""), None));
        }
        check(307, "", FIRST, fault(UpstreamFault::unknown_effect(""), None));
        check(418, "", FIRST, refused(ErrorCode::UpstreamError, None));
    }
}
