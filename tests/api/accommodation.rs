//! SPEC §4 accommodation rows: `api-key` header, connection code in the body, refusals told
//! apart by message text only.

use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{assert_problem, read, spawn_app};

#[tokio::test]
async fn cancelled_booking_is_200_with_cancelled_at() {
    let app = spawn_app().await;
    let ok = json!({"data": {"status": "cancelled", "cancelledAt": "2026-02-11T18:46:12.201Z"}, "message": "success"});
    Mock::given(method("POST"))
        .and(path("/api/cancel"))
        .and(header("api-key", "acc_sandbox_key"))
        .and(body_json(json!({
            "input": {"reference": {"bookingReference": "BK_EXAMPLE_001"}, "language": "EN"},
            "settings": {"access": {"code": 10001}}
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok.clone()))
        .expect(1)
        .mount(app.upstreams.of("accommodation"))
        .await;

    let request = json!({"provider": "accommodation", "reference": "BK_EXAMPLE_001", "language": "EN"});
    let (status, _, body) = read(app.cancel(request).await).await;

    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["status"], "cancelled");
    assert_eq!(body["cancelled_at"], "2026-02-11T18:46:12.201Z");
    assert_eq!(body["upstream"], json!({"status": 200, "body": ok}));
}

async fn check(http_status: u16, message: &str, want_status: u16, code: &str, reason: Value) {
    let app = spawn_app().await;
    let upstream = json!({"message": message});
    Mock::given(method("POST"))
        .and(path("/api/cancel"))
        .respond_with(ResponseTemplate::new(http_status).set_body_json(upstream.clone()))
        .mount(app.upstreams.of("accommodation"))
        .await;

    let (status, headers, body) =
        read(app.cancel(json!({"provider": "accommodation", "reference": "BK_EXAMPLE_001"})).await).await;

    assert_problem(status, &headers, &body, want_status, code);
    assert_eq!(body["reason"], reason, "{body:#}");
    assert_eq!(body["upstream"]["status"], http_status);
    assert_eq!(body["upstream"]["message"], message);
    assert_eq!(body["upstream"]["body"], upstream);
}

#[tokio::test]
async fn booking_not_found() {
    check(404, "Booking not found with bookingReference: BK_EXAMPLE_001", 404, "not_found", Value::Null).await;
}

#[tokio::test]
async fn invalid_connection_code_is_provider_misconfigured() {
    check(403, "Invalid connection code.", 502, "provider_misconfigured", Value::Null).await;
}

#[tokio::test]
async fn another_partners_booking_is_forbidden() {
    check(403, "This booking does not belong to the current partner", 403, "forbidden", Value::Null).await;
}

#[tokio::test]
async fn current_status_cancelled_is_already_cancelled() {
    check(400, "Booking cannot be cancelled. Current status: cancelled", 409, "already_cancelled", Value::Null).await;
}

#[tokio::test]
async fn other_current_status_is_invalid_state() {
    check(400, "Booking cannot be cancelled. Current status: pending", 409, "not_cancellable", json!("invalid_state"))
        .await;
}

#[tokio::test]
async fn past_check_in() {
    let message = "This booking can no longer be cancelled after the check-in date";
    check(400, message, 409, "not_cancellable", json!("past_check_in")).await;
}

#[tokio::test]
async fn non_refundable() {
    let message = "This booking is not refundable according to the cancellation policy";
    check(400, message, 409, "not_cancellable", json!("non_refundable")).await;
}

#[tokio::test]
async fn no_cancellation_policy() {
    let message = "Cancellation policy not found for this booking";
    check(400, message, 409, "not_cancellable", json!("no_cancellation_policy")).await;
}

#[tokio::test]
async fn booking_reference_required_is_upstream_rejected() {
    check(400, "bookingReference is required for cancellation", 422, "upstream_rejected", Value::Null).await;
}
