use cancelgate_sandbox::{CallCount, credentials, seeds};
use serde_json::{Value, json};

use crate::helpers::*;

fn message(m: &str) -> Value {
    json!({ "message": m })
}

#[tokio::test]
async fn the_documented_request_cancels_the_documented_booking() {
    let t = spawn().await;
    let a = t.accommodation_cancel(seeds::ACCOMMODATION_CANCELLABLE).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let body = a.json();
    assert_eq!(body["message"], "success");
    assert_eq!(body["data"]["status"], "cancelled");
    assert!(is_rfc3339_ms_z(&body["data"]["cancelledAt"]), "{body}");
    assert_eq!(body.as_object().unwrap().len(), 2);
    assert_eq!(body["data"].as_object().unwrap().len(), 2);

    let state = t.admin_get(Accommodation, "/_sandbox/state/BK_EXAMPLE_001").await.json();
    assert_eq!(state["status"], "cancelled");
    assert_eq!(state["cancelled_at"], body["data"]["cancelledAt"]);
    assert_eq!(state["language"], "EN");
    assert_eq!(
        t.sandbox.calls(Accommodation, seeds::ACCOMMODATION_CANCELLABLE),
        CallCount { received: 1, committed: 1 }
    );

    let again = t.accommodation_cancel(seeds::ACCOMMODATION_CANCELLABLE).await;
    assert_eq!((again.status, again.json()), (400, message("Booking cannot be cancelled. Current status: cancelled")));
    assert_eq!(
        t.sandbox.calls(Accommodation, seeds::ACCOMMODATION_CANCELLABLE),
        CallCount { received: 2, committed: 1 }
    );
}

#[tokio::test]
async fn the_connection_code_may_be_a_string() {
    let t = spawn().await;
    let body = accommodation_body(seeds::ACCOMMODATION_CANCELLABLE, json!("10001"));
    assert_eq!(t.send(t.accommodation_request(&body)).await.status, 200);
}

#[tokio::test]
async fn every_documented_refusal() {
    let t = spawn().await;
    for (reference, status, text) in [
        (seeds::ACCOMMODATION_ALREADY_CANCELLED, 400, "Booking cannot be cancelled. Current status: cancelled"),
        (seeds::ACCOMMODATION_PENDING, 400, "Booking cannot be cancelled. Current status: pending"),
        (seeds::ACCOMMODATION_PAST_CHECK_IN, 400, "This booking can no longer be cancelled after the check-in date"),
        (seeds::ACCOMMODATION_NO_POLICY, 400, "Cancellation policy not found for this booking"),
        (
            seeds::ACCOMMODATION_NON_REFUNDABLE,
            400,
            "This booking is not refundable according to the cancellation policy",
        ),
        (seeds::ACCOMMODATION_OTHER_PARTNER, 403, "This booking does not belong to the current partner"),
        (seeds::ACCOMMODATION_UNKNOWN, 404, "Booking not found with bookingReference: BK_UNKNOWN_001"),
    ] {
        let a = t.accommodation_cancel(reference).await;
        assert_eq!((a.status, a.json()), (status, message(text)), "{reference}");
        assert_eq!(t.sandbox.calls(Accommodation, reference), CallCount { received: 1, committed: 0 });
    }
}

#[tokio::test]
async fn missing_booking_reference_is_400() {
    let t = spawn().await;
    for body in [
        json!({"input": {"reference": {}}, "settings": {"access": {"code": 10001}}}),
        json!({"input": {"reference": {"bookingReference": ""}}, "settings": {"access": {"code": 10001}}}),
        json!({"settings": {"access": {"code": 10001}}}),
        json!({}),
    ] {
        let a = t.send(t.accommodation_request(&body)).await;
        assert_eq!((a.status, a.json()), (400, message("bookingReference is required for cancellation")), "{body}");
    }
}

#[tokio::test]
async fn connection_code_must_be_the_partners() {
    let t = spawn().await;
    for code in [json!(20002), json!("99999"), json!(null), json!(10001.5)] {
        let body = accommodation_body(seeds::ACCOMMODATION_CANCELLABLE, code.clone());
        let a = t.send(t.accommodation_request(&body)).await;
        assert_eq!((a.status, a.json()), (403, message("Invalid connection code.")), "{code}");
    }
    let no_settings = json!({"input": {"reference": {"bookingReference": "BK_EXAMPLE_001"}}});
    assert_eq!(t.send(t.accommodation_request(&no_settings)).await.status, 403);
    // Checked before the booking is looked up.
    let body = accommodation_body(seeds::ACCOMMODATION_UNKNOWN, json!(1));
    assert_eq!(t.send(t.accommodation_request(&body)).await.status, 403);
    assert_eq!(t.status_of(Accommodation, seeds::ACCOMMODATION_CANCELLABLE).await, "success");
}

#[tokio::test]
async fn unknown_api_key_is_401_before_anything_else() {
    let t = spawn().await;
    let url = t.url(Accommodation, "/api/cancel");
    for request in [
        t.client.post(&url).json(&accommodation_body(seeds::ACCOMMODATION_CANCELLABLE, json!(10001))),
        t.client.post(&url).header("api-key", "acc_wrong").json(&accommodation_body("BK_EXAMPLE_001", json!(10001))),
        t.client.post(&url).header("api-key", "acc_wrong").json(&json!({})),
    ] {
        let a = t.send(request).await;
        assert_eq!((a.status, a.json()), (401, message("Invalid api key")));
    }
    assert_eq!(t.status_of(Accommodation, seeds::ACCOMMODATION_CANCELLABLE).await, "success");
    assert_eq!(t.sandbox.calls(Accommodation, seeds::ACCOMMODATION_CANCELLABLE).received, 2);
}

#[tokio::test]
async fn the_other_partner_cancels_its_own_booking() {
    let t = spawn().await;
    let request = |reference: &str| {
        t.client
            .post(t.url(Accommodation, "/api/cancel"))
            .header("api-key", credentials::ACCOMMODATION_OTHER_API_KEY)
            .json(&accommodation_body(reference, json!(credentials::ACCOMMODATION_OTHER_CONNECTION_CODE)))
    };
    let a = t.send(request(seeds::ACCOMMODATION_CANCELLABLE)).await;
    assert_eq!((a.status, a.json()), (403, message("This booking does not belong to the current partner")));
    assert_eq!(t.send(request(seeds::ACCOMMODATION_OTHER_PARTNER)).await.status, 200);
}

#[tokio::test]
async fn admin_created_bookings_follow_the_rules() {
    let t = spawn().await;
    let created = t
        .admin_post(
            Accommodation,
            "/_sandbox/bookings",
            &json!({"reference": "BK_NEW_1", "status": "success",
            "check_in": "2099-01-01", "refundable": true, "has_policy": true, "partner": "partner_demo"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json()["check_in"], "2099-01-01");
    assert_eq!(t.accommodation_cancel("BK_NEW_1").await.status, 200);

    // Check-in today: refused (today >= check-in).
    let today = time_today();
    let created = t.admin_post(Accommodation, "/_sandbox/bookings", &json!({"check_in": today})).await;
    assert_eq!(created.status, 201);
    let reference = created.json()["reference"].as_str().unwrap().to_owned();
    assert!(reference.starts_with("BK_"), "{reference}");
    let a = t.accommodation_cancel(&reference).await;
    assert_eq!(a.json(), message("This booking can no longer be cancelled after the check-in date"));

    let created = t.admin_post(Accommodation, "/_sandbox/bookings", &json!({"status": "failed"})).await;
    let reference = created.json()["reference"].as_str().unwrap().to_owned();
    assert_eq!(
        t.accommodation_cancel(&reference).await.json(),
        message("Booking cannot be cancelled. Current status: failed")
    );

    let created = t.admin_post(Accommodation, "/_sandbox/bookings", &json!({"partner": "partner_other"})).await;
    let reference = created.json()["reference"].as_str().unwrap().to_owned();
    assert_eq!(t.accommodation_cancel(&reference).await.status, 403);

    assert_eq!(t.admin_post(Accommodation, "/_sandbox/bookings", &json!({"reference": "BK_NEW_1"})).await.status, 409);
    assert_eq!(t.admin_post(Accommodation, "/_sandbox/bookings", &json!({"check_in": "01/02/2030"})).await.status, 400);
    assert_eq!(t.admin_post(Accommodation, "/_sandbox/bookings", &json!({"partner": "nobody"})).await.status, 400);
    assert_eq!(t.admin_post(Accommodation, "/_sandbox/bookings", &json!({"reference": "a b"})).await.status, 400);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_400() {
    let t = spawn().await;
    let request = t
        .client
        .post(t.url(Accommodation, "/api/cancel"))
        .header("api-key", credentials::ACCOMMODATION_API_KEY)
        .body("{\"input\":");
    let a = t.send(request).await;
    assert_eq!(a.status, 400);
    assert!(a.json()["message"].is_string());
}

/// Today's date in UTC, `YYYY-MM-DD`, computed independently of the crate.
fn time_today() -> String {
    let days = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 86_400;
    // Civil-from-days (Howard Hinnant).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
