//! Every documented outcome of every provider, end to end through the gateway against the
//! project's own simulators (the README's table of seeded references).

use serde_json::Value;

use crate::helpers::spawn_on_sandbox;

/// (provider, reference, HTTP status, code or status, reason)
pub(crate) const TABLE: &[(&str, &str, u16, &str, Option<&str>)] = &[
    ("chargeapi", "res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq", 200, "cancelled", None),
    ("chargeapi", "res_unixTimestamps01", 200, "cancelled", None),
    ("chargeapi", "res_pending01", 200, "cancelled", None),
    ("chargeapi", "res_alreadyCancelled01", 409, "already_cancelled", None),
    ("chargeapi", "res_completed01", 409, "not_cancellable", Some("completed")),
    ("chargeapi", "res_expired01", 409, "not_cancellable", Some("expired")),
    ("chargeapi", "res_failed01", 409, "not_cancellable", Some("invalid_state")),
    ("chargeapi", "res_doesNotExist01", 404, "not_found", None),
    ("frontpayment", "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f00", 200, "cancelled", None),
    ("frontpayment", "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f01", 409, "not_cancellable", Some("completed")),
    ("frontpayment", "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f02", 409, "not_cancellable", Some("completed")),
    ("frontpayment", "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f03", 409, "not_cancellable", Some("expired")),
    ("frontpayment", "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1fff", 404, "not_found", None),
    ("accommodation", "BK_EXAMPLE_001", 200, "cancelled", None),
    ("accommodation", "BK_CANCELLED_001", 409, "already_cancelled", None),
    ("accommodation", "BK_PENDING_001", 409, "not_cancellable", Some("invalid_state")),
    ("accommodation", "BK_PAST_CHECKIN_001", 409, "not_cancellable", Some("past_check_in")),
    ("accommodation", "BK_NON_REFUNDABLE_001", 409, "not_cancellable", Some("non_refundable")),
    ("accommodation", "BK_NO_POLICY_001", 409, "not_cancellable", Some("no_cancellation_policy")),
    ("accommodation", "BK_OTHER_PARTNER_001", 403, "forbidden", None),
    ("accommodation", "BK_UNKNOWN_001", 404, "not_found", None),
];

#[tokio::test]
async fn every_seeded_reference_gives_its_documented_answer() {
    let app = spawn_on_sandbox(&[]).await;
    for &(provider, reference, want_status, want, reason) in TABLE {
        let (status, _, body) = app.cancel(provider, reference).await;
        assert_eq!(status, want_status, "{provider} {reference}: {body:#}");
        if status == 200 {
            assert_eq!(body["status"], want, "{provider} {reference}");
            assert!(body["cancelled_at"].as_str().is_some_and(|t| t.ends_with('Z')));
            assert_eq!(body["upstream"]["status"].as_u64().map(|s| s / 100), Some(2));
        } else {
            assert_eq!(body["code"], want, "{provider} {reference}: {body:#}");
            assert_eq!(body["reason"], reason.map_or(Value::Null, Value::from), "{provider} {reference}");
            assert!(body["upstream"]["status"].is_u64(), "the provider's answer is kept: {body:#}");
        }
    }
}

#[tokio::test]
async fn a_second_cancel_is_answered_from_the_ledger_without_an_upstream_call() {
    let app = spawn_on_sandbox(&[]).await;
    for (provider, reference) in [
        ("chargeapi", "res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq"),
        ("frontpayment", "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f00"),
        ("accommodation", "BK_EXAMPLE_001"),
    ] {
        let (first, _, original) = app.cancel(provider, reference).await;
        assert_eq!(first, 200);
        let (again, _, replay) = app.cancel(provider, reference).await;
        assert_eq!(again, 200, "{replay:#}");
        assert_eq!(replay["id"], original["id"], "the ORIGINAL cancellation");
        assert_eq!(replay["replayed"], true);
        let p = provider.parse::<cancelgate_sandbox::SimulatedProvider>().unwrap();
        assert_eq!(app.sandbox.calls(p, reference).received, 1, "no second upstream call");
    }
}
