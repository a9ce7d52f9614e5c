//! SPEC §4 frontpayment rows: a GET that carries a JSON body, the body's status code wins.

use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{assert_problem, read, spawn_app};

const UUID: &str = "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f00";
const CANCEL_PATH: &str = "/api/v1/connect/reservations/cancel/9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f00";

fn fp_body(status: u16, status_message: &str, message: &str, is_error: bool) -> Value {
    json!({"status_code": status, "status_message": status_message, "message": message, "is_error": is_error, "errors": null})
}

#[tokio::test]
async fn accepted_is_cancelled_and_the_reason_is_the_note() {
    let app = spawn_app().await;
    let ok = json!({"status_code": 202, "status_message": "OK", "message": "cancelledOrderSuccessfully", "is_data": false, "data": null});
    Mock::given(method("GET"))
        .and(path(CANCEL_PATH))
        .and(header("authorization", "Bearer fp_sandbox_token"))
        .and(body_json(json!({"note": "Customer changed plans"})))
        .respond_with(ResponseTemplate::new(202).set_body_json(ok.clone()))
        .expect(1)
        .mount(app.upstreams.of("frontpayment"))
        .await;

    // Upper case in, lower case upstream.
    let request =
        json!({"provider": "frontpayment", "reference": UUID.to_uppercase(), "reason": "Customer changed plans"});
    let (status, _, body) = read(app.cancel(request).await).await;

    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["status"], "cancelled");
    assert_eq!(body["reference"], UUID);
    assert!(body["cancelled_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["upstream"], json!({"status": 202, "body": ok}));
}

#[tokio::test]
async fn without_a_reason_the_accounts_default_note_is_sent() {
    let app = spawn_app().await;
    Mock::given(method("GET"))
        .and(path(CANCEL_PATH))
        .and(body_json(json!({"note": "Cancelled via cancelgate"})))
        .respond_with(ResponseTemplate::new(202).set_body_json(fp_body(202, "OK", "cancelledOrderSuccessfully", false)))
        .expect(1)
        .mount(app.upstreams.of("frontpayment"))
        .await;

    let (status, _, body) = read(app.cancel(json!({"provider": "frontpayment", "reference": UUID})).await).await;

    assert_eq!(status, 200, "{body:#}");
}

async fn check(http_status: u16, upstream: Value, want_status: u16, code: &str, reason: Value) {
    let app = spawn_app().await;
    Mock::given(method("GET"))
        .and(path(CANCEL_PATH))
        .respond_with(ResponseTemplate::new(http_status).set_body_json(upstream.clone()))
        .mount(app.upstreams.of("frontpayment"))
        .await;

    let (status, headers, body) = read(app.cancel(json!({"provider": "frontpayment", "reference": UUID})).await).await;

    assert_problem(status, &headers, &body, want_status, code);
    assert_eq!(body["reason"], reason, "{body:#}");
    assert_eq!(body["upstream"]["status"], http_status);
    assert_eq!(body["upstream"]["body"], upstream);
    assert_eq!(body["upstream"]["code"], upstream["message"]);
}

#[tokio::test]
async fn order_not_found() {
    check(404, fp_body(404, "Not Found", "orderNotFound", false), 404, "not_found", Value::Null).await;
}

#[tokio::test]
async fn payload_validation_errors_are_upstream_rejected() {
    check(417, fp_body(417, "Client Error", "payloadValidationErrors", true), 422, "upstream_rejected", Value::Null)
        .await;
}

#[tokio::test]
async fn already_completed_is_not_cancellable() {
    let body = fp_body(400, "Conflict of Business Logic", "reservationStatusAlreadyCompleted", false);
    check(400, body, 409, "not_cancellable", json!("completed")).await;
}

#[tokio::test]
async fn prerequisite_failed_is_expired() {
    let body = fp_body(400, "Conflict of Business Logic", "prerequisiteFailedToCancelReservation", false);
    check(400, body, 409, "not_cancellable", json!("expired")).await;
}

#[tokio::test]
async fn execution_exception_510_is_retried_then_upstream_error() {
    let app = spawn_app().await;
    let upstream = fp_body(510, "Execution Exception Occurred", "Something Went Wrong", true);
    Mock::given(method("GET"))
        .and(path(CANCEL_PATH))
        .respond_with(ResponseTemplate::new(510).set_body_json(upstream.clone()))
        .expect(3)
        .mount(app.upstreams.of("frontpayment"))
        .await;

    let (status, _, body) = read(app.cancel(json!({"provider": "frontpayment", "reference": UUID})).await).await;

    assert_eq!(status, 202, "{body:#}");
    let done = app.wait_final(body["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["error"]["code"], "upstream_error");
    assert_eq!(done["error"]["upstream"]["status"], 510);
    assert_eq!(done["error"]["upstream"]["body"], upstream);
}

#[tokio::test]
async fn the_bodys_status_code_wins_over_the_http_status() {
    check(200, fp_body(404, "Not Found", "orderNotFound", false), 404, "not_found", Value::Null).await;
}
