use cancelgate_sandbox::{CallCount, credentials, seeds};
use serde_json::{Value, json};

use crate::helpers::*;

fn cancelled() -> Value {
    json!({"status_code": 202, "status_message": "OK", "message": "cancelledOrderSuccessfully", "is_data": false, "data": null})
}

fn already_completed() -> Value {
    json!({"status_code": 400, "status_message": "Conflict of Business Logic",
           "message": "reservationStatusAlreadyCompleted", "is_error": false, "errors": null})
}

fn invalid_payload() -> Value {
    json!({"status_code": 417, "status_message": "Client Error", "message": "payloadValidationErrors",
           "is_error": true, "errors": "Array"})
}

#[tokio::test]
async fn a_get_with_a_json_body_cancels_a_reserved_reservation() {
    let t = spawn().await;
    let a = t.frontpayment_cancel(seeds::FRONTPAYMENT_RESERVED).await;
    assert_eq!(a.status, 202, "{}", a.text);
    assert_eq!(a.json(), cancelled());
    let state = t.admin_get(FrontPayment, &format!("/_sandbox/state/{}", seeds::FRONTPAYMENT_RESERVED)).await.json();
    assert_eq!(state["status"], "cancelled");
    assert_eq!(state["cancel_note"], "Customer changed plans");
    assert!(is_rfc3339_ms_z(&state["cancelled_at"]));
    assert_eq!(t.sandbox.calls(FrontPayment, seeds::FRONTPAYMENT_RESERVED), CallCount { received: 1, committed: 1 });
}

#[tokio::test]
async fn second_cancel_is_already_completed() {
    let t = spawn().await;
    assert_eq!(t.frontpayment_cancel(seeds::FRONTPAYMENT_RESERVED).await.status, 202);
    let a = t.frontpayment_cancel(seeds::FRONTPAYMENT_RESERVED).await;
    assert_eq!((a.status, a.json()), (400, already_completed()));
    assert_eq!(t.sandbox.calls(FrontPayment, seeds::FRONTPAYMENT_RESERVED), CallCount { received: 2, committed: 1 });
}

#[tokio::test]
async fn refusals_by_state_match_the_page() {
    let t = spawn().await;
    for uuid in [seeds::FRONTPAYMENT_COMPLETED, seeds::FRONTPAYMENT_CANCELLED] {
        let a = t.frontpayment_cancel(uuid).await;
        assert_eq!((a.status, a.json()), (400, already_completed()), "{uuid}");
    }
    let a = t.frontpayment_cancel(seeds::FRONTPAYMENT_EXPIRED).await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.json(),
        json!({"status_code": 400, "status_message": "Conflict of Business Logic",
               "message": "prerequisiteFailedToCancelReservation", "is_error": false, "errors": null})
    );
    assert_eq!(t.status_of(FrontPayment, seeds::FRONTPAYMENT_COMPLETED).await, "completed");
    assert_eq!(t.status_of(FrontPayment, seeds::FRONTPAYMENT_EXPIRED).await, "expired");
}

#[tokio::test]
async fn unknown_uuid_is_order_not_found() {
    let t = spawn().await;
    let a = t.frontpayment_cancel(seeds::FRONTPAYMENT_UNKNOWN).await;
    assert_eq!(a.status, 404);
    assert_eq!(
        a.json(),
        json!({"status_code": 404, "status_message": "Not Found", "message": "orderNotFound", "is_error": false, "errors": null})
    );
    let a = t.frontpayment_cancel("not-a-uuid").await;
    assert_eq!((a.status, a.json()["message"].clone()), (404, json!("orderNotFound")));
}

#[tokio::test]
async fn invalid_payloads_are_417() {
    let t = spawn().await;
    let request = || t.frontpayment_request(seeds::FRONTPAYMENT_RESERVED);
    for (what, builder) in [
        ("no body", request()),
        ("not JSON", request().body("note=hello")),
        ("no note", request().json(&json!({"reason": "x"}))),
        ("empty note", request().json(&json!({"note": ""}))),
        ("blank note", request().json(&json!({"note": "   "}))),
        ("number note", request().json(&json!({"note": 42}))),
        ("null note", request().json(&json!({"note": null}))),
        ("array body", request().json(&json!(["note"]))),
    ] {
        let a = t.send(builder).await;
        assert_eq!((a.status, a.json()), (417, invalid_payload()), "{what}");
    }
    assert_eq!(t.status_of(FrontPayment, seeds::FRONTPAYMENT_RESERVED).await, "reserved");
}

#[tokio::test]
async fn bad_token_is_unauthenticated() {
    let t = spawn().await;
    let url = t.url(FrontPayment, &format!("/api/v1/connect/reservations/cancel/{}", seeds::FRONTPAYMENT_RESERVED));
    let expected = json!({"status_code": 401, "status_message": "Unauthorized", "message": "unauthenticated", "is_error": true, "errors": null});
    for request in [
        t.client.get(&url).json(&json!({"note": "x"})),
        t.client.get(&url).bearer_auth("fp_wrong").json(&json!({"note": "x"})),
        t.client.get(&url).header("authorization", credentials::FRONTPAYMENT_TOKEN).json(&json!({"note": "x"})),
    ] {
        let a = t.send(request).await;
        assert_eq!((a.status, a.json()), (401, expected.clone()));
    }
    assert_eq!(t.status_of(FrontPayment, seeds::FRONTPAYMENT_RESERVED).await, "reserved");
}

#[tokio::test]
async fn body_status_code_equals_the_http_status() {
    let t = spawn().await;
    for uuid in [
        seeds::FRONTPAYMENT_RESERVED,
        seeds::FRONTPAYMENT_RESERVED,
        seeds::FRONTPAYMENT_EXPIRED,
        seeds::FRONTPAYMENT_UNKNOWN,
    ] {
        let a = t.frontpayment_cancel(uuid).await;
        assert_eq!(a.json()["status_code"], a.status);
    }
}

#[tokio::test]
async fn uuids_match_in_either_case() {
    let t = spawn().await;
    let upper = seeds::FRONTPAYMENT_RESERVED.to_ascii_uppercase();
    assert_eq!(t.frontpayment_cancel(&upper).await.status, 202);
    assert_eq!(t.status_of(FrontPayment, seeds::FRONTPAYMENT_RESERVED).await, "cancelled");
    assert_eq!(t.sandbox.calls(FrontPayment, seeds::FRONTPAYMENT_RESERVED), CallCount { received: 1, committed: 1 });
    assert_eq!(t.sandbox.calls(FrontPayment, &upper), CallCount { received: 1, committed: 1 });
    assert_eq!(t.frontpayment_cancel(seeds::FRONTPAYMENT_RESERVED).await.status, 400);
}

#[tokio::test]
async fn admin_created_reservations_cancel() {
    let t = spawn().await;
    let uuid = "ABCDEF01-2345-4678-9ABC-DEF012345678";
    let created =
        t.admin_post(FrontPayment, "/_sandbox/reservations", &json!({"uuid": uuid, "status": "reserved"})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json()["uuid"], uuid.to_ascii_lowercase());
    assert_eq!(t.frontpayment_cancel(uuid).await.status, 202);

    let created = t.admin_post(FrontPayment, "/_sandbox/reservations", &json!({"status": "expired"})).await;
    assert_eq!(created.status, 201);
    let generated = created.json()["uuid"].as_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36);
    assert_eq!(t.frontpayment_cancel(&generated).await.json()["message"], "prerequisiteFailedToCancelReservation");

    let generated = t.admin_post(FrontPayment, "/_sandbox/reservations", &json!({})).await.json()["uuid"].clone();
    assert_eq!(t.frontpayment_cancel(generated.as_str().unwrap()).await.status, 202);

    assert_eq!(t.admin_post(FrontPayment, "/_sandbox/reservations", &json!({"uuid": uuid})).await.status, 409);
    assert_eq!(t.admin_post(FrontPayment, "/_sandbox/reservations", &json!({"uuid": "nope"})).await.status, 400);
    assert_eq!(t.admin_post(FrontPayment, "/_sandbox/reservations", &json!({"status": "paid"})).await.status, 400);
}
