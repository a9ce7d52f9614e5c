use cancelgate_sandbox::{CallCount, seeds};
use serde_json::{Value, json};

use crate::helpers::*;

/// The documented example's fields that a cancel does not change (providers/chargeapi-cancel.txt,
/// the answer without its `status` and `updated`).
fn documented_fixed_fields() -> Value {
    let mut doc: Value = serde_json::from_str(include_str!("../fixtures/chargeapi-cancelled-example.json")).unwrap();
    let fields = doc.as_object_mut().unwrap();
    fields.remove("status");
    fields.remove("updated");
    doc
}

#[tokio::test]
async fn cancels_the_documented_example_with_every_documented_field() {
    let t = spawn().await;
    let before = t.admin_get(ChargeApi, &format!("/_sandbox/state/{}", seeds::CHARGEAPI_CONFIRMED)).await.json();
    assert_eq!(before["status"], "confirmed");

    let a = t.chargeapi_cancel(seeds::CHARGEAPI_CONFIRMED).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.content_type().starts_with("application/json"));
    let body = a.json();
    let Value::Object(mut fields) = body.clone() else { panic!("not an object: {body}") };
    assert_eq!(fields.remove("status"), Some(json!("cancelled")));
    let updated = fields.remove("updated").expect("updated");
    assert!(is_rfc3339_ms_z(&updated), "{updated}");
    assert_ne!(updated, before["updated"]);
    assert_eq!(Value::Object(fields), documented_fixed_fields());

    assert_eq!(t.status_of(ChargeApi, seeds::CHARGEAPI_CONFIRMED).await, "cancelled");
    assert_eq!(t.sandbox.calls(ChargeApi, seeds::CHARGEAPI_CONFIRMED), CallCount { received: 1, committed: 1 });
}

#[tokio::test]
async fn second_cancel_is_refused_as_already_cancelled() {
    let t = spawn().await;
    assert_eq!(t.chargeapi_cancel(seeds::CHARGEAPI_CONFIRMED).await.status, 200);
    let a = t.chargeapi_cancel(seeds::CHARGEAPI_CONFIRMED).await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.json(),
        json!({"error": {"type": "invalid_request_error", "code": "reservation_already_cancelled",
                         "message": "Reservation res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq is already cancelled."}})
    );
    assert_eq!(t.sandbox.calls(ChargeApi, seeds::CHARGEAPI_CONFIRMED), CallCount { received: 2, committed: 1 });
}

#[tokio::test]
async fn unix_timestamp_reservation_answers_integers() {
    let t = spawn().await;
    let a = t.chargeapi_cancel(seeds::CHARGEAPI_CONFIRMED_UNIX).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let body = a.json();
    assert_eq!(body["status"], "cancelled");
    for field in ["created", "updated", "confirmed_at", "ideal_start", "ideal_end", "reserved_start", "reserved_end"] {
        assert!(body[field].is_i64(), "{field}: {}", body[field]);
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((body["updated"].as_i64().unwrap() - now).abs() <= 5, "updated is now: {body}");
    assert!(body["earliest_start"].is_null() && body["latest_end"].is_null());
}

#[tokio::test]
async fn pending_cancels_with_an_empty_body() {
    let t = spawn().await;
    let a = t.send(t.chargeapi_request(seeds::CHARGEAPI_PENDING)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let body = a.json();
    assert_eq!(body["status"], "cancelled");
    assert_eq!(body["id"], seeds::CHARGEAPI_PENDING);
    assert!(body["charging_station"].is_null() && body["confirmed_at"].is_null());
}

#[tokio::test]
async fn states_that_cannot_be_cancelled_are_refused_with_their_code() {
    let t = spawn().await;
    for (id, code, message) in [
        (
            seeds::CHARGEAPI_ALREADY_CANCELLED,
            "reservation_already_cancelled",
            "Reservation res_alreadyCancelled01 is already cancelled.",
        ),
        (
            seeds::CHARGEAPI_COMPLETED,
            "reservation_completed",
            "Reservation res_completed01 cannot be cancelled because its status is completed.",
        ),
        (
            seeds::CHARGEAPI_EXPIRED,
            "reservation_expired",
            "Reservation res_expired01 cannot be cancelled because its status is expired.",
        ),
        (
            seeds::CHARGEAPI_FAILED,
            "reservation_failed",
            "Reservation res_failed01 cannot be cancelled because its status is failed.",
        ),
    ] {
        let a = t.chargeapi_cancel(id).await;
        assert_eq!(a.status, 400, "{id}");
        assert_eq!(a.json(), json!({"error": {"type": "invalid_request_error", "code": code, "message": message}}));
        assert_eq!(t.sandbox.calls(ChargeApi, id), CallCount { received: 1, committed: 0 });
    }
    assert_eq!(t.status_of(ChargeApi, seeds::CHARGEAPI_FAILED).await, "failed");
}

#[tokio::test]
async fn unknown_reservation_is_resource_missing() {
    let t = spawn().await;
    let a = t.chargeapi_cancel(seeds::CHARGEAPI_UNKNOWN).await;
    assert_eq!(a.status, 404);
    assert_eq!(
        a.json(),
        json!({"error": {"type": "invalid_request_error", "code": "resource_missing",
                         "message": "No such reservation: 'res_doesNotExist01'", "param": "reservation"}})
    );
    assert_eq!(t.sandbox.calls(ChargeApi, seeds::CHARGEAPI_UNKNOWN).received, 1);
}

#[tokio::test]
async fn bad_or_missing_key_is_an_authentication_error_and_changes_nothing() {
    let t = spawn().await;
    let url = t.url(ChargeApi, &format!("/v1/reservations/{}/cancel", seeds::CHARGEAPI_CONFIRMED));
    let expected = json!({"error": {"type": "authentication_error", "message": "Invalid API Key provided"}});
    for request in [
        t.client.post(&url).json(&json!({})),
        t.client.post(&url).bearer_auth("ch_sk_test_wrong").json(&json!({})),
        t.client.post(&url).header("authorization", "Basic Y2hfc2tfdGVzdF9zYW5kYm94Og==").json(&json!({})),
    ] {
        let a = t.send(request).await;
        assert_eq!(a.status, 401);
        assert_eq!(a.json(), expected);
    }
    assert_eq!(t.status_of(ChargeApi, seeds::CHARGEAPI_CONFIRMED).await, "confirmed");
    assert_eq!(t.sandbox.calls(ChargeApi, seeds::CHARGEAPI_CONFIRMED), CallCount { received: 3, committed: 0 });
}

#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_rejected() {
    let t = spawn().await;
    let a = t.send(t.chargeapi_request(seeds::CHARGEAPI_CONFIRMED).body("reason=x")).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["error"]["type"], "invalid_request_error");
    assert_eq!(t.status_of(ChargeApi, seeds::CHARGEAPI_CONFIRMED).await, "confirmed");
}

#[tokio::test]
async fn admin_created_reservations_cancel_in_both_timestamp_forms() {
    let t = spawn().await;
    let created =
        t.admin_post(ChargeApi, "/_sandbox/reservations", &json!({"id": "res_adminIso1", "status": "confirmed"})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json()["id"], "res_adminIso1");
    assert!(is_rfc3339_ms_z(&created.json()["created"]));
    let a = t.chargeapi_cancel("res_adminIso1").await;
    assert_eq!((a.status, a.json()["status"].clone()), (200, json!("cancelled")));
    assert!(is_rfc3339_ms_z(&a.json()["updated"]));

    let created =
        t.admin_post(ChargeApi, "/_sandbox/reservations", &json!({"status": "pending", "timestamps": "unix"})).await;
    assert_eq!(created.status, 201);
    let id = created.json()["id"].as_str().expect("generated id").to_owned();
    assert!(id.starts_with("res_") && id.len() == 36, "{id}");
    assert!(created.json()["created"].is_i64());
    let a = t.chargeapi_cancel(&id).await;
    assert_eq!(a.status, 200);
    assert!(a.json()["updated"].is_i64());

    let created = t.admin_post(ChargeApi, "/_sandbox/reservations", &json!({"status": "completed"})).await;
    let id = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(t.chargeapi_cancel(&id).await.json()["error"]["code"], "reservation_completed");

    let dup = t.admin_post(ChargeApi, "/_sandbox/reservations", &json!({"id": "res_adminIso1"})).await;
    assert_eq!(dup.status, 409);
    let bad = t.admin_post(ChargeApi, "/_sandbox/reservations", &json!({"status": "bogus"})).await;
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].is_string());
    let bad = t.admin_post(ChargeApi, "/_sandbox/reservations", &json!({"timestamps": "rfc"})).await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn unknown_routes_answer_in_the_provider_format() {
    let t = spawn().await;
    let a = t.send(t.client.post(t.url(ChargeApi, "/v1/nothing"))).await;
    assert_eq!(a.status, 404);
    assert_eq!(a.json()["error"]["type"], "invalid_request_error");
}
