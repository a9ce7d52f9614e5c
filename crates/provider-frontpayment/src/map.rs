//! What a Front Payment answer to `GET /api/v1/connect/reservations/cancel/{uuid}` means.

use cancelgate_core::classify::{self, UpstreamText};
use cancelgate_core::{AttemptContext, ErrorCode, HttpResponse, Outcome, RefusalReason, UpstreamFault};

use crate::wire;

const ALREADY_COMPLETED: &str = "reservationStatusAlreadyCompleted";
const PREREQUISITE_FAILED: &str = "prerequisiteFailedToCancelReservation";

pub(crate) fn classify(response: &HttpResponse, context: AttemptContext) -> Outcome {
    let http_status = response.status.as_u16();
    // Readable means the envelope says something: `{}` or `[]` on a 200 tells nothing.
    let answer =
        classify::json_object::<wire::Answer>(response).filter(|a| a.status_code.is_some() || a.message.is_some());
    let upstream = match &answer {
        Some(a) => UpstreamText::new(a.message.clone(), a.message.clone().or_else(|| a.status_message.clone())),
        None => UpstreamText::default(),
    };
    let status = answer.as_ref().and_then(|a| a.status_code).filter(|s| (100..=599).contains(s)).unwrap_or(http_status);

    // The body wins, but a success on the HTTP line means the provider may have got far enough to
    // cancel: repeating as if nothing happened could turn our own cancel into "already completed".
    if response.status.is_success() && status >= 500 {
        return upstream.fault(UpstreamFault::unknown_effect(format!(
            "Front Payment answered HTTP {http_status} with a body saying {status}; it may have cancelled."
        )));
    }
    if let Some(outcome) = classify::by_status(status, response, &upstream) {
        return outcome;
    }
    match status {
        // Unreadable, a 202 still says it: the documented success is exactly that status.
        200 | 202 | 204 if answer.is_some() || http_status == 202 => Outcome::cancelled_at(None),
        200..=299 if answer.is_none() => classify::unreadable_success(status, &upstream),
        200..=299 => upstream.fault(UpstreamFault::unknown_effect(format!(
            "Front Payment answered the cancel with status {status}, which it does not document; it may have cancelled."
        ))),
        404 => upstream.refused(ErrorCode::NotFound, "Front Payment has no reservation with this UUID."),
        417 => upstream.refused(ErrorCode::UpstreamRejected, "Front Payment rejected the cancel request as invalid."),
        400 => business_refusal(&upstream, context),
        401 | 403 => classify::misconfigured(status, &upstream),
        _ => classify::unexpected_client_error(status, &upstream),
    }
}

/// 400 "Conflict of Business Logic": the error code in `message` says which rule refused.
fn business_refusal(upstream: &UpstreamText, context: AttemptContext) -> Outcome {
    let code = upstream.code.as_deref().map(str::trim).unwrap_or_default();
    if code.eq_ignore_ascii_case(ALREADY_COMPLETED) {
        // The same code covers COMPLETED and CANCELLED, so after an attempt of ours that may have
        // gone through, nobody can tell from here which one it is.
        if context.after_ambiguous {
            return upstream.needs_review(
                "Front Payment says completed or cancelled, after an attempt of ours that may have cancelled it.",
            );
        }
        return upstream.not_cancellable(
            RefusalReason::Completed,
            "Front Payment says the reservation is already completed (or cancelled).",
        );
    }
    if code.eq_ignore_ascii_case(PREREQUISITE_FAILED) {
        return upstream.not_cancellable(
            RefusalReason::Expired,
            "Front Payment says the reservation has expired or is no longer in a cancellable status.",
        );
    }
    upstream.refused(ErrorCode::UpstreamError, "Front Payment refused the cancel for a reason it does not document.")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cancelgate_core::testing::{assert_classified, response};
    use cancelgate_core::{Refusal, UPSTREAM_TEXT_LIMIT};
    use http::HeaderValue;

    use super::*;

    const FIRST: AttemptContext = AttemptContext { after_ambiguous: false };
    const AFTER_AMBIGUOUS: AttemptContext = AttemptContext { after_ambiguous: true };

    const DOC_202: &str = include_str!("../tests/fixtures/frontpayment-cancel__202-cancelledOrderSuccessfully.json");
    const DOC_404: &str = include_str!("../tests/fixtures/frontpayment-cancel__404-orderNotFound.json");
    const DOC_417: &str = include_str!("../tests/fixtures/frontpayment-cancel__417-payloadValidationErrors.json");
    const DOC_400_COMPLETED: &str =
        include_str!("../tests/fixtures/frontpayment-cancel__400-reservationStatusAlreadyCompleted.json");
    const DOC_400_PREREQUISITE: &str =
        include_str!("../tests/fixtures/frontpayment-cancel__400-prerequisiteFailedToCancelReservation.json");
    const DOC_510: &str = include_str!("../tests/fixtures/frontpayment-cancel__510-something-went-wrong.json");

    #[track_caller]
    fn check_response(response: &HttpResponse, context: AttemptContext, expected: Outcome) {
        assert_classified(classify(response, context), expected, &(response, context));
    }

    #[track_caller]
    fn check(status: u16, body: impl AsRef<[u8]>, context: AttemptContext, expected: Outcome) {
        check_response(&response(status, body), context, expected);
    }

    /// Front Payment's `message` is its error code: it is both our upstream code and message.
    fn said(code: &str) -> (Option<String>, Option<String>) {
        (Some(code.to_owned()), Some(code.to_owned()))
    }

    fn refused(code: ErrorCode, (upstream_code, upstream_message): (Option<String>, Option<String>)) -> Outcome {
        Outcome::Refused(Refusal::new(code, "").with_upstream(upstream_code, upstream_message))
    }

    fn not_cancellable(reason: RefusalReason, (code, message): (Option<String>, Option<String>)) -> Outcome {
        Outcome::Refused(Refusal::not_cancellable(reason, "").with_upstream(code, message))
    }

    fn fault(fault: UpstreamFault, (code, message): (Option<String>, Option<String>)) -> Outcome {
        Outcome::Fault(fault.with_upstream(code, message))
    }

    fn needs_review((upstream_code, upstream_message): (Option<String>, Option<String>)) -> Outcome {
        Outcome::NeedsReview { detail: String::new(), upstream_code, upstream_message }
    }

    const NOTHING: (Option<String>, Option<String>) = (None, None);

    // --- every example of frontpayment-cancel.md, with its own HTTP status ---

    #[test]
    fn doc_202_cancelled_without_a_time() {
        check(202, DOC_202, FIRST, Outcome::cancelled_at(None));
        check(202, DOC_202, AFTER_AMBIGUOUS, Outcome::cancelled_at(None));
    }

    #[test]
    fn doc_404_order_not_found() {
        check(404, DOC_404, FIRST, refused(ErrorCode::NotFound, said("orderNotFound")));
        check(404, DOC_404, AFTER_AMBIGUOUS, refused(ErrorCode::NotFound, said("orderNotFound")));
    }

    #[test]
    fn doc_417_payload_validation() {
        check(417, DOC_417, FIRST, refused(ErrorCode::UpstreamRejected, said("payloadValidationErrors")));
    }

    #[test]
    fn doc_400_already_completed() {
        let expected = not_cancellable(RefusalReason::Completed, said("reservationStatusAlreadyCompleted"));
        check(400, DOC_400_COMPLETED, FIRST, expected);
        // It also means "cancelled", which after our ambiguous attempt may be our own doing.
        check(400, DOC_400_COMPLETED, AFTER_AMBIGUOUS, needs_review(said("reservationStatusAlreadyCompleted")));
    }

    #[test]
    fn doc_400_prerequisite_failed_is_expired() {
        let expected = not_cancellable(RefusalReason::Expired, said("prerequisiteFailedToCancelReservation"));
        check(400, DOC_400_PREREQUISITE, FIRST, expected.clone());
        check(400, DOC_400_PREREQUISITE, AFTER_AMBIGUOUS, expected);
    }

    #[test]
    fn doc_510_is_transient() {
        let expected = fault(UpstreamFault::transient(""), said("Something Went Wrong"));
        check(510, DOC_510, FIRST, expected.clone());
        check(510, DOC_510, AFTER_AMBIGUOUS, expected);
    }

    // --- the body's status_code against the HTTP line ---

    #[test]
    fn body_status_wins_over_http_status() {
        check(200, DOC_404, FIRST, refused(ErrorCode::NotFound, said("orderNotFound")));
        check(500, DOC_202, FIRST, Outcome::cancelled_at(None));
        check(200, DOC_202, FIRST, Outcome::cancelled_at(None));
        check(502, DOC_400_COMPLETED, AFTER_AMBIGUOUS, needs_review(said("reservationStatusAlreadyCompleted")));
        check(404, DOC_417, FIRST, refused(ErrorCode::UpstreamRejected, said("payloadValidationErrors")));
        check(400, DOC_510, FIRST, fault(UpstreamFault::transient(""), said("Something Went Wrong")));
        check(
            503,
            r#"{"status_code":429,"message":"tooManyRequests"}"#,
            FIRST,
            Outcome::RateLimited { retry_after: None, upstream_message: Some("tooManyRequests".into()) },
        );
        check(
            200,
            r#"{"status_code":401,"message":"unauthenticated"}"#,
            FIRST,
            refused(ErrorCode::ProviderMisconfigured, said("unauthenticated")),
        );
    }

    #[test]
    fn success_line_with_a_failing_body_may_have_cancelled() {
        check(200, DOC_510, FIRST, fault(UpstreamFault::unknown_effect(""), said("Something Went Wrong")));
        check(202, r#"{"status_code":500}"#, FIRST, fault(UpstreamFault::unknown_effect(""), NOTHING));
    }

    #[test]
    fn body_status_codes_that_are_not_statuses_are_ignored() {
        for code in ["0", "99", "600", "70000", "-202", "202.5", r#""404""#, "null", "[202]"] {
            let body = format!(r#"{{"status_code":{code},"message":"orderNotFound"}}"#);
            check(404, &body, FIRST, refused(ErrorCode::NotFound, said("orderNotFound")));
            // The HTTP line then decides, with the message still readable.
            check(202, &body, FIRST, Outcome::cancelled_at(None));
        }
    }

    #[test]
    fn the_documented_success_forms() {
        for status in [200, 202, 204] {
            check(status, format!(r#"{{"status_code":{status}}}"#), FIRST, Outcome::cancelled_at(None));
        }
        check(200, r#"{"message":"cancelledOrderSuccessfully"}"#, FIRST, Outcome::cancelled_at(None));
        // Only the message, status from the HTTP line.
        check(
            202,
            r#"{"message":"cancelledOrderSuccessfully","status_code":"202"}"#,
            FIRST,
            Outcome::cancelled_at(None),
        );
    }

    #[test]
    fn unreadable_202_is_still_cancelled() {
        for body in ["", "OK", "<html>Accepted</html>", "{", "[]", "{}", "null", r#"{"status_message":"OK"}"#] {
            check(202, body, FIRST, Outcome::cancelled_at(None));
        }
        check(202, &[0xff, 0x00, 0xfe][..], FIRST, Outcome::cancelled_at(None));
        let mut cut = response(202, &DOC_202[..20]);
        cut.truncated = true;
        check_response(&cut, FIRST, Outcome::cancelled_at(None));
    }

    #[test]
    fn unreadable_other_success_may_have_cancelled() {
        for status in [200, 201, 204, 299] {
            for body in ["", "OK", "<html>OK</html>", "{", "[]", "{}", r#"{"status_code":"202"}"#] {
                check(status, body, FIRST, fault(UpstreamFault::unknown_effect(""), NOTHING));
            }
        }
        // Truncated: even a complete-looking 202 envelope is not trusted to say 202.
        let mut cut = response(200, DOC_202);
        cut.truncated = true;
        check_response(&cut, AFTER_AMBIGUOUS, fault(UpstreamFault::unknown_effect(""), NOTHING));
        check(200, vec![0x80; 1 << 20], FIRST, fault(UpstreamFault::unknown_effect(""), NOTHING));
    }

    #[test]
    fn undocumented_success_status_in_the_body() {
        let body = r#"{"status_code":201,"message":"created"}"#;
        check(200, body, FIRST, fault(UpstreamFault::unknown_effect(""), said("created")));
    }

    #[test]
    fn other_business_refusals_keep_the_message() {
        let body = r#"{"status_code":400,"status_message":"Conflict of Business Logic","message":"reservationLocked"}"#;
        check(400, body, AFTER_AMBIGUOUS, refused(ErrorCode::UpstreamError, said("reservationLocked")));
        check(400, r#"{"status_code":400}"#, FIRST, refused(ErrorCode::UpstreamError, NOTHING));
        check(400, "", FIRST, refused(ErrorCode::UpstreamError, NOTHING));
        check(400, "<html>Bad Request</html>", FIRST, refused(ErrorCode::UpstreamError, NOTHING));
        // Case aside, the documented codes are recognised.
        let body = r#"{"status_code":400,"message":"ReservationStatusAlreadyCompleted"}"#;
        check(400, body, FIRST, not_cancellable(RefusalReason::Completed, said("ReservationStatusAlreadyCompleted")));
    }

    #[test]
    fn status_message_is_only_a_fallback_message() {
        let body = r#"{"status_code":400,"status_message":"Conflict of Business Logic"}"#;
        check(400, body, FIRST, refused(ErrorCode::UpstreamError, (None, Some("Conflict of Business Logic".into()))));
        let body = r#"{"status_code":404,"status_message":"Not Found","message":5}"#;
        check(200, body, FIRST, refused(ErrorCode::NotFound, (None, Some("Not Found".into()))));
    }

    #[test]
    fn credentials_refused() {
        for status in [401, 403] {
            check(status, "", FIRST, refused(ErrorCode::ProviderMisconfigured, NOTHING));
            let body = format!(r#"{{"status_code":{status},"message":"unauthenticated"}}"#);
            check(status, body, FIRST, refused(ErrorCode::ProviderMisconfigured, said("unauthenticated")));
        }
    }

    #[test]
    fn rate_limited_with_retry_after() {
        let mut res = response(429, r#"{"status_code":429,"message":"tooManyAttempts"}"#);
        res.headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("12"));
        check_response(
            &res,
            AFTER_AMBIGUOUS,
            Outcome::RateLimited {
                retry_after: Some(Duration::from_secs(12)),
                upstream_message: Some("tooManyAttempts".into()),
            },
        );
        check(429, "Too Many Attempts.", FIRST, Outcome::RateLimited { retry_after: None, upstream_message: None });
    }

    #[test]
    fn server_errors_and_odd_statuses() {
        for status in [500, 502, 503, 504, 510] {
            check(status, "<html>oops</html>", FIRST, fault(UpstreamFault::transient(""), NOTHING));
        }
        check(301, "", FIRST, fault(UpstreamFault::unknown_effect(""), NOTHING));
        check(422, "", FIRST, refused(ErrorCode::UpstreamRejected, NOTHING));
        check(
            405,
            r#"{"status_code":405,"message":"methodNotAllowed"}"#,
            FIRST,
            refused(ErrorCode::UpstreamError, said("methodNotAllowed")),
        );
    }

    #[test]
    fn hostile_bodies() {
        let huge = format!(r#"{{"status_code":400,"message":"{}"}}"#, "m".repeat(1 << 20));
        let Outcome::Refused(r) = classify(&response(400, huge), FIRST) else { panic!() };
        assert_eq!((r.code, r.upstream_code.map(|c| c.len())), (ErrorCode::UpstreamError, Some(UPSTREAM_TEXT_LIMIT)));
        check(404, vec![b'{'; 1 << 20], FIRST, refused(ErrorCode::NotFound, NOTHING));
        check(400, &[0xc3, 0x28][..], FIRST, refused(ErrorCode::UpstreamError, NOTHING));
        check(
            400,
            r#"{"status_code":{"a":1},"message":["reservationStatusAlreadyCompleted"]}"#,
            FIRST,
            refused(ErrorCode::UpstreamError, NOTHING),
        );
        check(400, r#"[{"status_code":202}]"#, FIRST, refused(ErrorCode::UpstreamError, NOTHING));
    }
}
