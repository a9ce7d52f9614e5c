use std::time::{Duration, Instant};

use cancelgate_sandbox::{CallCount, Fault, FaultRule, SimulatedProvider, seeds};
use serde_json::{Value, json};

use crate::helpers::*;

/// Every simulator's cancellable seed.
fn cancellable(p: SimulatedProvider) -> &'static str {
    match p {
        ChargeApi => seeds::CHARGEAPI_CONFIRMED,
        FrontPayment => seeds::FRONTPAYMENT_RESERVED,
        Accommodation => seeds::ACCOMMODATION_CANCELLABLE,
    }
}

fn success_status(p: SimulatedProvider) -> u16 {
    if p == FrontPayment { 202 } else { 200 }
}

/// The client saw a TCP RST (ECONNRESET), not a timeout nor a clean close.
fn is_connection_reset(err: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionReset) {
            return true;
        }
        source = e.source();
    }
    false
}

async fn inject(t: &TestSandbox, p: SimulatedProvider, rule: Value) -> String {
    let a = t.admin_post(p, "/_sandbox/faults", &rule).await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.json()["id"].as_str().expect("fault id").to_owned()
}

#[tokio::test]
async fn latency_delays_then_behaves_normally() {
    let t = spawn().await;
    for p in SimulatedProvider::ALL {
        inject(&t, p, json!({"reference": cancellable(p), "fault": {"kind": "latency", "ms": 250}})).await;
        let started = Instant::now();
        let a = t.cancel(p, cancellable(p)).await;
        let took = started.elapsed();
        assert_eq!(a.status, success_status(p), "{p}: {}", a.text);
        assert!(took >= Duration::from_millis(250), "{p}: {took:?}");
        assert!(took < Duration::from_millis(1500), "{p}: {took:?}");
        assert_eq!(t.sandbox.calls(p, cancellable(p)), CallCount { received: 1, committed: 1 });
    }
}

#[tokio::test]
async fn status_faults_answer_the_provider_format_with_retry_after() {
    let t = spawn().await;
    inject(
        &t,
        ChargeApi,
        json!({"reference": cancellable(ChargeApi), "times": 1,
        "fault": {"kind": "status", "status": 503, "retry_after": 2}}),
    )
    .await;
    let a = t.chargeapi_cancel(cancellable(ChargeApi)).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.headers.get("retry-after").unwrap(), "2");
    assert_eq!(a.json()["error"]["type"], "api_error");

    inject(
        &t,
        ChargeApi,
        json!({"reference": cancellable(ChargeApi), "times": 1,
        "fault": {"kind": "status", "status": 429, "retry_after": 7}}),
    )
    .await;
    let a = t.chargeapi_cancel(cancellable(ChargeApi)).await;
    assert_eq!((a.status, a.headers.get("retry-after").unwrap().to_str().unwrap()), (429, "7"));
    assert_eq!(a.json()["error"]["type"], "rate_limit_error");

    // State untouched (commit defaults to false): the next cancel succeeds.
    assert_eq!(t.chargeapi_cancel(cancellable(ChargeApi)).await.status, 200);
    assert_eq!(t.sandbox.calls(ChargeApi, cancellable(ChargeApi)), CallCount { received: 3, committed: 1 });

    // Front Payment: 510 is the page's body, others keep the envelope with status_code = HTTP status.
    inject(
        &t,
        FrontPayment,
        json!({"reference": cancellable(FrontPayment), "times": 1, "fault": {"kind": "status", "status": 510}}),
    )
    .await;
    let a = t.frontpayment_cancel(cancellable(FrontPayment)).await;
    assert_eq!(a.status, 510);
    assert!(a.headers.get("retry-after").is_none());
    assert_eq!(
        a.json(),
        json!({"status_code": 510, "status_message": "Execution Exception Occurred", "message": "Something Went Wrong", "is_error": true, "errors": "Array"})
    );
    inject(
        &t,
        FrontPayment,
        json!({"reference": cancellable(FrontPayment), "times": 1, "fault": {"kind": "status", "status": 502}}),
    )
    .await;
    let a = t.frontpayment_cancel(cancellable(FrontPayment)).await;
    assert_eq!((a.status, a.json()["status_code"].clone()), (502, json!(502)));

    inject(
        &t,
        Accommodation,
        json!({"reference": cancellable(Accommodation), "times": 1, "fault": {"kind": "status", "status": 500}}),
    )
    .await;
    let a = t.accommodation_cancel(cancellable(Accommodation)).await;
    assert_eq!((a.status, a.json()), (500, json!({"message": "Internal Server Error"})));
}

#[tokio::test]
async fn status_faults_with_custom_bodies() {
    let t = spawn().await;
    let r = cancellable(ChargeApi);
    inject(
        &t,
        ChargeApi,
        json!({"reference": r, "times": 1, "fault": {"kind": "status", "status": 502, "body": "bad gateway"}}),
    )
    .await;
    inject(
        &t,
        ChargeApi,
        json!({"reference": r, "times": 1, "fault": {"kind": "status", "status": 500, "body": {"message": "boom"}}}),
    )
    .await;
    let a = t.chargeapi_cancel(r).await;
    assert_eq!((a.status, a.text.as_str()), (502, "bad gateway"));
    assert!(a.content_type().starts_with("text/plain"));
    let a = t.chargeapi_cancel(r).await;
    assert_eq!((a.status, a.json()), (500, json!({"message": "boom"})));
}

#[tokio::test]
async fn commit_then_fail_changes_the_state_behind_the_fault() {
    let t = spawn().await;
    for p in SimulatedProvider::ALL {
        inject(
            &t,
            p,
            json!({"reference": cancellable(p), "times": 1, "commit": true,
            "fault": {"kind": "status", "status": 503}}),
        )
        .await;
        assert_eq!(t.cancel(p, cancellable(p)).await.status, 503);
        assert_eq!(t.sandbox.calls(p, cancellable(p)), CallCount { received: 1, committed: 1 }, "{p}");
        // The retry now meets the provider's "already" refusal.
        assert_eq!(t.cancel(p, cancellable(p)).await.status, 400, "{p}");
    }
}

#[tokio::test]
async fn reset_drops_the_connection_and_commit_true_still_cancels() {
    let t = spawn().await;
    for p in SimulatedProvider::ALL {
        let r = cancellable(p);
        inject(&t, p, json!({"reference": r, "times": 1, "commit": true, "fault": {"kind": "reset"}})).await;
        let started = Instant::now();
        let err = match p {
            ChargeApi => t.chargeapi_request(r).json(&json!({})).send().await,
            FrontPayment => t.frontpayment_request(r).json(&json!({"note": "x"})).send().await,
            Accommodation => t.accommodation_request(&accommodation_body(r, json!(10001))).send().await,
        }
        .expect_err("no answer");
        assert!(is_connection_reset(&err), "{p}: {err:?}");
        assert!(started.elapsed() < Duration::from_secs(1), "{p}: reset must be immediate");
        assert_eq!(t.sandbox.calls(p, r), CallCount { received: 1, committed: 1 }, "{p}");
        assert_eq!(t.status_of(p, r).await, "cancelled", "{p}");
        // The simulator keeps serving.
        assert_eq!(t.cancel(p, r).await.status, 400, "{p}");
    }
}

#[tokio::test]
async fn reset_without_commit_leaves_the_state() {
    let t = spawn().await;
    let r = seeds::CHARGEAPI_PENDING;
    t.sandbox.inject(ChargeApi, FaultRule::reference(r, Fault::Reset).times(1));
    let err = t.chargeapi_request(r).json(&json!({})).send().await.expect_err("reset");
    assert!(is_connection_reset(&err), "{err:?}");
    assert_eq!(t.sandbox.calls(ChargeApi, r), CallCount { received: 1, committed: 0 });
    assert_eq!(t.status_of(ChargeApi, r).await, "pending");
    assert_eq!(t.chargeapi_cancel(r).await.status, 200);
}

#[tokio::test]
async fn hang_makes_the_client_time_out() {
    let t = spawn().await;
    let client = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    let r = cancellable(FrontPayment);
    inject(&t, FrontPayment, json!({"reference": r, "times": 1, "fault": {"kind": "hang"}})).await;
    let started = Instant::now();
    let err = client
        .get(t.url(FrontPayment, &format!("/api/v1/connect/reservations/cancel/{r}")))
        .bearer_auth(cancelgate_sandbox::credentials::FRONTPAYMENT_TOKEN)
        .json(&json!({"note": "x"}))
        .send()
        .await
        .expect_err("hang");
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(t.sandbox.calls(FrontPayment, r), CallCount { received: 1, committed: 0 });
    assert_eq!(t.frontpayment_cancel(r).await.status, 202);
    // Shutting down with a hung request in flight does not wait for it.
    let started = Instant::now();
    t.sandbox.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn hang_with_commit_cancels_and_is_reset_after_ms() {
    let t = spawn().await;
    let r = cancellable(ChargeApi);
    inject(&t, ChargeApi, json!({"reference": r, "commit": true, "times": 1, "fault": {"kind": "hang", "ms": 200}}))
        .await;
    let err = t.chargeapi_request(r).json(&json!({})).send().await.expect_err("no answer");
    // The 2 s client gives up later than the 200 ms hold: the connection is reset, no timeout.
    assert!(is_connection_reset(&err), "{err:?}");
    assert_eq!(t.sandbox.calls(ChargeApi, r), CallCount { received: 1, committed: 1 });
}

#[tokio::test]
async fn malformed_html_empty_and_text_bodies() {
    let t = spawn().await;
    let r = cancellable(ChargeApi);
    inject(&t, ChargeApi, json!({"reference": r, "times": 1, "fault": {"kind": "malformed_json", "status": 200}}))
        .await;
    inject(&t, ChargeApi, json!({"reference": r, "times": 1, "fault": {"kind": "html", "status": 502}})).await;
    inject(&t, ChargeApi, json!({"reference": r, "times": 1, "fault": {"kind": "empty", "status": 200}})).await;
    inject(
        &t,
        ChargeApi,
        json!({"reference": r, "times": 1, "fault": {"kind": "text", "status": 503, "body": "upstream down"}}),
    )
    .await;

    let a = t.chargeapi_cancel(r).await;
    assert_eq!(a.status, 200);
    assert!(a.content_type().starts_with("application/json"));
    assert!(a.text.starts_with("{\"id\":"), "{}", a.text);
    assert!(serde_json::from_str::<Value>(&a.text).is_err());

    let a = t.chargeapi_cancel(r).await;
    assert_eq!(a.status, 502);
    assert!(a.content_type().starts_with("text/html"));
    assert!(a.text.contains("<html>") && a.text.contains("502 Bad Gateway"), "{}", a.text);

    let a = t.chargeapi_cancel(r).await;
    assert_eq!((a.status, a.text.as_str()), (200, ""));
    assert_eq!(a.headers.get("content-length").unwrap(), "0");

    let a = t.chargeapi_cancel(r).await;
    assert_eq!((a.status, a.text.as_str()), (503, "upstream down"));
    assert!(a.content_type().starts_with("text/plain"));

    // None committed.
    assert_eq!(t.sandbox.calls(ChargeApi, r), CallCount { received: 4, committed: 0 });
    assert_eq!(t.status_of(ChargeApi, r).await, "confirmed");
}

#[tokio::test]
async fn malformed_json_with_commit_truncates_the_real_answer() {
    let t = spawn().await;
    let r = cancellable(Accommodation);
    inject(&t, Accommodation, json!({"reference": r, "times": 1, "commit": true, "fault": {"kind": "malformed_json"}}))
        .await;
    let a = t.accommodation_cancel(r).await;
    assert_eq!(a.status, 200);
    assert!(a.text.starts_with("{\"data\":{"), "{}", a.text);
    assert!(serde_json::from_str::<Value>(&a.text).is_err());
    assert_eq!(t.status_of(Accommodation, r).await, "cancelled");
}

#[tokio::test]
async fn share_one_hits_every_request_and_share_zero_none() {
    let t = spawn().await;
    for p in SimulatedProvider::ALL {
        inject(&t, p, json!({"share": 0.0, "fault": {"kind": "status", "status": 500}})).await;
    }
    for p in SimulatedProvider::ALL {
        assert_eq!(t.cancel(p, cancellable(p)).await.status, success_status(p));
    }
    let ids: Vec<_> = SimulatedProvider::ALL
        .into_iter()
        .map(|p| t.sandbox.inject(p, FaultRule::share(1.0, Fault::status(503))))
        .collect();
    for p in SimulatedProvider::ALL {
        for reference in [cancellable(p), "anything-at-all", seeds::CHARGEAPI_UNKNOWN] {
            assert_eq!(t.cancel(p, reference).await.status, 503, "{p} {reference}");
        }
        // Admin endpoints are never faulted.
        assert_eq!(t.admin_get(p, "/_sandbox/calls").await.status, 200);
    }
    for (p, id) in SimulatedProvider::ALL.into_iter().zip(ids) {
        assert!(t.sandbox.remove_fault(p, id));
    }
    assert_eq!(t.cancel(ChargeApi, seeds::CHARGEAPI_PENDING).await.status, 200);
}

#[tokio::test]
async fn a_share_applies_to_roughly_that_share() {
    let t = spawn().await;
    t.sandbox.inject(ChargeApi, FaultRule::share(0.5, Fault::status(500)));
    let mut faulted = 0;
    for _ in 0..200 {
        if t.chargeapi_cancel(seeds::CHARGEAPI_UNKNOWN).await.status == 500 {
            faulted += 1;
        }
    }
    assert!((50..=150).contains(&faulted), "{faulted} of 200");
}

#[tokio::test]
async fn times_one_applies_once() {
    let t = spawn().await;
    let r = seeds::CHARGEAPI_PENDING;
    let id =
        inject(&t, ChargeApi, json!({"reference": r, "times": 1, "fault": {"kind": "status", "status": 500}})).await;
    assert_eq!(t.chargeapi_cancel(r).await.status, 500);
    assert_eq!(t.chargeapi_cancel(r).await.status, 200);
    let listed = t.admin_get(ChargeApi, "/_sandbox/faults").await.json();
    let rule = &listed["faults"][0];
    assert_eq!(
        (rule["id"].as_str(), rule["applied"].clone(), rule["remaining"].clone()),
        (Some(id.as_str()), json!(1), json!(0))
    );
}

#[tokio::test]
async fn accommodation_faults_target_the_booking_reference_in_the_body() {
    let t = spawn().await;
    inject(
        &t,
        Accommodation,
        json!({"reference": seeds::ACCOMMODATION_NO_POLICY, "fault": {"kind": "status", "status": 502}}),
    )
    .await;
    assert_eq!(t.accommodation_cancel(seeds::ACCOMMODATION_NO_POLICY).await.status, 502);
    assert_eq!(t.accommodation_cancel(seeds::ACCOMMODATION_CANCELLABLE).await.status, 200);
}

#[tokio::test]
async fn frontpayment_fault_references_match_in_either_case() {
    let t = spawn().await;
    let upper = seeds::FRONTPAYMENT_RESERVED.to_ascii_uppercase();
    inject(&t, FrontPayment, json!({"reference": upper, "times": 1, "fault": {"kind": "status", "status": 503}})).await;
    assert_eq!(t.frontpayment_cancel(seeds::FRONTPAYMENT_RESERVED).await.status, 503);
}

#[tokio::test]
async fn fault_admin_api_lists_deletes_and_validates() {
    let t = spawn().await;
    let a = t
        .admin_post(
            ChargeApi,
            "/_sandbox/faults",
            &json!({"reference": "res_x", "times": 2, "commit": true,
        "fault": {"kind": "status", "status": 429, "retry_after": 1}}),
        )
        .await;
    assert_eq!(a.status, 201);
    let created = a.json();
    assert!(created["id"].as_str().unwrap().starts_with("flt_"));
    assert_eq!(created["reference"], "res_x");
    assert_eq!(created["fault"], json!({"kind": "status", "status": 429, "retry_after": 1}));
    let second = inject(&t, ChargeApi, json!({"share": 0.1, "fault": {"kind": "reset"}})).await;

    let listed = t.admin_get(ChargeApi, "/_sandbox/faults").await.json();
    assert_eq!(listed["faults"].as_array().unwrap().len(), 2);
    assert_eq!(listed["faults"][0]["remaining"], 2);
    assert_eq!(listed["faults"][1]["remaining"], Value::Null);

    assert_eq!(t.admin_delete(ChargeApi, &format!("/_sandbox/faults/{second}")).await.status, 200);
    assert_eq!(t.admin_delete(ChargeApi, &format!("/_sandbox/faults/{second}")).await.status, 404);
    assert_eq!(t.admin_delete(ChargeApi, "/_sandbox/faults/garbage").await.status, 404);
    assert_eq!(t.admin_delete(ChargeApi, "/_sandbox/faults").await.json(), json!({"cleared": 1}));
    assert_eq!(t.admin_get(ChargeApi, "/_sandbox/faults").await.json(), json!({"faults": []}));

    for bad in [
        json!({"fault": {"kind": "reset"}}),
        json!({"reference": "a", "share": 0.5, "fault": {"kind": "reset"}}),
        json!({"share": 2, "fault": {"kind": "reset"}}),
        json!({"reference": "a", "fault": {"kind": "teleport"}}),
        json!({"reference": "a", "fault": {"kind": "status", "status": 42}}),
        json!({"reference": "a"}),
    ] {
        let a = t.admin_post(ChargeApi, "/_sandbox/faults", &bad).await;
        assert_eq!(a.status, 400, "{bad}");
        assert!(a.json()["error"].is_string());
    }
    let a = t.send(t.client.post(t.url(ChargeApi, "/_sandbox/faults")).body("not json")).await;
    assert_eq!(a.status, 400);
}

#[tokio::test]
async fn clear_faults_clears_every_simulator() {
    let t = spawn().await;
    for p in SimulatedProvider::ALL {
        t.sandbox.inject(p, FaultRule::share(1.0, Fault::status(500)));
    }
    t.sandbox.clear_faults();
    for p in SimulatedProvider::ALL {
        assert_eq!(t.cancel(p, cancellable(p)).await.status, success_status(p));
    }
}
