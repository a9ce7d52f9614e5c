//! SPEC §4 chargeapi rows, end to end: the gateway's answer AND what the upstream received.

use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{assert_problem, read, spawn_app};

const REF: &str = "res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq";
const CANCEL_PATH: &str = "/v1/reservations/res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq/cancel";

/// The documented answer (chargeapi-cancel.txt).
fn documented_reservation() -> Value {
    json!({
        "id": REF, "object": "reservation",
        "cancellation_policy": {"free_until_before": 1800, "type": "free_cancellation"},
        "charging_station": "chst_Hyw5CaUqODp6ANbdqjXlzbRXWNScdiIW",
        "confirmed_at": "2026-04-01T01:08:12.480Z", "connector_type": ["CCS"],
        "created": "2026-04-01T00:40:25.838Z", "currency": "eur",
        "driver": "drv_uSECaMA1R5LW7udEdnW6nmQ5rz6eHor6", "earliest_start": null, "failed_reason": null,
        "ideal_end": "2026-04-01T03:10:21.561Z", "ideal_start": "2026-04-01T01:40:23.381Z", "latest_end": null,
        "location": {"latitude": 48.8698, "longitude": 2.3319, "radius": 1500}, "metadata": {},
        "payment_method": "pm_M9ZjflkWuYp82lH7ow4gFwhdxa1eqGxa", "reservation_fee": 1200,
        "reserved_end": "2026-04-01T03:09:54.276Z", "reserved_start": "2026-04-01T01:40:18.627Z",
        "status": "cancelled", "updated": "2026-04-01T01:38:06.924Z",
        "vehicle": "veh_1mQkD2fvFpsQcWjTjh3vCBT9H5jHRfV4"
    })
}

fn cancel_body() -> Value {
    json!({"provider": "chargeapi", "reference": REF, "metadata": {"order_id": "A-1001"}})
}

#[tokio::test]
async fn cancelled_reservation_is_200_with_the_providers_timestamp() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .and(path(CANCEL_PATH))
        .and(header("authorization", "Bearer ch_sk_test_sandbox"))
        .and(body_json(json!({})))
        .respond_with(ResponseTemplate::new(200).set_body_json(documented_reservation()))
        .expect(1)
        .mount(app.upstreams.of("chargeapi"))
        .await;

    let (status, headers, body) = read(app.cancel(cancel_body()).await).await;

    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["object"], "cancellation");
    assert_eq!(body["status"], "cancelled");
    assert_eq!(body["provider"], "chargeapi");
    assert_eq!(body["account"], "default");
    assert_eq!(body["reference"], REF);
    assert_eq!(body["cancelled_at"], "2026-04-01T01:38:06.924Z");
    assert_eq!(body["attempts"], 1);
    assert_eq!(body["replayed"], false);
    assert_eq!(body["error"], Value::Null);
    assert_eq!(body["metadata"], json!({"order_id": "A-1001"}));
    assert_eq!(body["upstream"], json!({"status": 200, "body": documented_reservation()}));
    assert!(body["id"].as_str().unwrap().starts_with("can_"));
    let received = app.upstreams.of("chargeapi").received_requests().await.unwrap();
    assert_eq!(received[0].headers["x-request-id"], headers["x-request-id"].to_str().unwrap());
    assert_eq!(received[0].headers["content-type"], "application/json");
}

#[tokio::test]
async fn unix_second_timestamps_are_normalized() {
    let app = spawn_app().await;
    let mut reservation = documented_reservation();
    reservation["updated"] = json!(1775007486);
    Mock::given(method("POST"))
        .and(path(CANCEL_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(reservation))
        .mount(app.upstreams.of("chargeapi"))
        .await;

    let (status, _, body) = read(app.cancel(cancel_body()).await).await;

    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["cancelled_at"], "2026-04-01T01:38:06.000Z");
}

/// (HTTP status, body) → (gateway status, code, reason).
async fn check_refusal(upstream_status: u16, upstream_body: Value, want_status: u16, code: &str, reason: Value) {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .and(path(CANCEL_PATH))
        .respond_with(ResponseTemplate::new(upstream_status).set_body_json(upstream_body.clone()))
        .mount(app.upstreams.of("chargeapi"))
        .await;

    let (status, headers, body) = read(app.cancel(cancel_body()).await).await;

    assert_problem(status, &headers, &body, want_status, code);
    assert_eq!(body["reason"], reason, "{body:#}");
    assert_eq!(body["provider"], "chargeapi");
    assert_eq!(body["reference"], REF);
    assert!(body["cancellation_id"].as_str().unwrap().starts_with("can_"));
    assert_eq!(body["upstream"]["status"], upstream_status);
    assert_eq!(body["upstream"]["body"], upstream_body);
}

#[tokio::test]
async fn not_found() {
    let body = json!({"error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such reservation"}});
    check_refusal(404, body, 404, "not_found", Value::Null).await;
}

#[tokio::test]
async fn already_cancelled() {
    let body =
        json!({"error": {"code": "reservation_already_cancelled", "message": "Reservation is already cancelled."}});
    check_refusal(409, body, 409, "already_cancelled", Value::Null).await;
}

#[tokio::test]
async fn completed_is_not_cancellable() {
    let body = json!({"message": "Reservation cannot be cancelled because its status is completed."});
    check_refusal(400, body, 409, "not_cancellable", json!("completed")).await;
}

#[tokio::test]
async fn expired_is_not_cancellable() {
    check_refusal(409, json!({"code": "reservation_expired"}), 409, "not_cancellable", json!("expired")).await;
}

#[tokio::test]
async fn rejected_credentials_are_provider_misconfigured() {
    let body = json!({"error": {"type": "authentication_error", "message": "Invalid API Key provided"}});
    check_refusal(401, body, 502, "provider_misconfigured", Value::Null).await;
}

#[tokio::test]
async fn other_status_in_a_200_is_upstream_error() {
    let mut reservation = documented_reservation();
    reservation["status"] = json!("confirmed");
    check_refusal(200, reservation, 502, "upstream_error", Value::Null).await;
}

#[tokio::test]
async fn provider_429_is_answered_at_once_with_its_retry_after() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .and(path(CANCEL_PATH))
        .respond_with(
            ResponseTemplate::new(429).insert_header("retry-after", "7").set_body_json(json!({"message": "slow down"})),
        )
        .expect(1)
        .mount(app.upstreams.of("chargeapi"))
        .await;

    let (status, headers, body) = read(app.cancel(cancel_body()).await).await;

    assert_problem(status, &headers, &body, 429, "rate_limited");
    assert_eq!(headers["retry-after"], "7");
}

#[tokio::test]
async fn server_errors_answer_202_then_end_failed_after_every_attempt() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .and(path(CANCEL_PATH))
        .respond_with(ResponseTemplate::new(503).set_body_string("<html>busy</html>"))
        .expect(3)
        .mount(app.upstreams.of("chargeapi"))
        .await;

    let (status, headers, body) = read(app.cancel(cancel_body()).await).await;

    // A transient answer with attempts left: accepted, driven in the background.
    assert_eq!(status, 202, "{body:#}");
    assert_eq!(body["status"], "processing");
    let id = body["id"].as_str().unwrap();
    assert_eq!(headers["location"], format!("/v1/cancellations/{id}"));
    let done = app.wait_final(id).await;
    assert_eq!(done["status"], "failed", "{done:#}");
    assert_eq!(done["attempts"], 3);
    assert_eq!(done["error"]["code"], "upstream_error");
    assert_eq!(done["error"]["cancellation_id"], id);
    assert_eq!(done["error"]["upstream"]["status"], 503);
    assert_eq!(done["error"]["upstream"]["body"], "<html>busy</html>");
}

#[tokio::test]
async fn a_transient_error_then_success_is_cancelled_after_two_attempts() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .and(path(CANCEL_PATH))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(app.upstreams.of("chargeapi"))
        .await;
    Mock::given(method("POST"))
        .and(path(CANCEL_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(documented_reservation()))
        .mount(app.upstreams.of("chargeapi"))
        .await;

    let (status, _, body) = read(app.cancel(cancel_body()).await).await;

    assert_eq!(status, 202, "{body:#}");
    let done = app.wait_final(body["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "cancelled", "{done:#}");
    assert_eq!(done["attempts"], 2);
    assert_eq!(done["cancelled_at"], "2026-04-01T01:38:06.924Z");
}

#[tokio::test]
async fn a_timeout_then_already_cancelled_is_cancelled_not_refused() {
    let app = spawn_app().await;
    // First attempt: the provider cancels but answers after our 500 ms timeout.
    Mock::given(method("POST"))
        .and(path(CANCEL_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(documented_reservation())
                .set_delay(std::time::Duration::from_secs(2)),
        )
        .up_to_n_times(1)
        .mount(app.upstreams.of("chargeapi"))
        .await;
    Mock::given(method("POST"))
        .and(path(CANCEL_PATH))
        .respond_with(
            ResponseTemplate::new(409).set_body_json(json!({"error": {"code": "reservation_already_cancelled"}})),
        )
        .mount(app.upstreams.of("chargeapi"))
        .await;

    let (status, _, body) = read(app.cancel(cancel_body()).await).await;

    assert_eq!(status, 202, "{body:#}");
    let done = app.wait_final(body["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "cancelled", "our own earlier attempt explains it: {done:#}");
    assert_eq!(done["attempts"], 2);
}
