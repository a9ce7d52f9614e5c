//! Every malformed request gets its documented 4xx, and nothing reaches any upstream.

use serde_json::{Value, json};

use crate::helpers::{DEMO_KEY, TestApp, assert_problem, read, spawn_app};

async fn post_raw(
    app: &TestApp,
    body: impl Into<reqwest::Body>,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = app.client.post(app.url("/v1/cancellations")).header("content-type", "application/json");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    read(request.body(body).send().await.unwrap()).await
}

#[tokio::test]
async fn missing_or_wrong_client_key_is_401() {
    let app = spawn_app().await;
    let body = json!({"provider": "chargeapi", "reference": "res_abc"}).to_string();
    for auth in [None, Some("Bearer nope"), Some("Basic Y2c6eA=="), Some("Bearer "), Some(DEMO_KEY)] {
        let headers: Vec<(&str, &str)> = auth.map(|a| vec![("authorization", a)]).unwrap_or_default();
        let (status, h, problem) = post_raw(&app, body.clone(), &headers).await;
        assert_problem(status, &h, &problem, 401, "unauthorized");
    }
    assert_eq!(app.upstreams.received_count().await, 0);
}

#[tokio::test]
async fn malformed_bodies_are_400_naming_the_field() {
    let app = spawn_app().await;
    let auth = format!("Bearer {DEMO_KEY}");
    let long_reason = "r".repeat(501);
    let many_metadata: serde_json::Map<String, Value> = (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases: Vec<(String, &str)> = vec![
        ("{".into(), "body"),
        ("[]".into(), "body"),
        ("".into(), "body"),
        (json!({"reference": "res_abc"}).to_string(), "provider"),
        (json!({"provider": "chargeapi"}).to_string(), "reference"),
        (json!({"provider": "chargeapi", "reference": "res_abc", "refrence": "x"}).to_string(), "refrence"),
        (json!({"provider": "nope", "reference": "res_abc"}).to_string(), "provider"),
        (json!({"provider": "chargeapi", "reference": "res_abc", "account": "nope"}).to_string(), "account"),
        (json!({"provider": "chargeapi", "reference": "res_abc", "reason": long_reason}).to_string(), "reason"),
        (json!({"provider": "chargeapi", "reference": "res_abc", "metadata": many_metadata}).to_string(), "metadata"),
        (json!({"provider": "chargeapi", "reference": "res_abc", "metadata": {"n": 1}}).to_string(), "metadata.n"),
        (json!({"provider": "chargeapi", "reference": "res_abc", "language": "EN\r\nX"}).to_string(), "language"),
    ];
    for (body, param) in cases {
        let (status, h, problem) = post_raw(&app, body.clone(), &[("authorization", &auth)]).await;
        assert_problem(status, &h, &problem, 400, "invalid_request");
        assert_eq!(problem["param"], param, "{body}: {problem:#}");
    }
    assert_eq!(app.upstreams.received_count().await, 0);
}

#[tokio::test]
async fn references_that_could_touch_the_url_are_refused_before_any_upstream_call() {
    let app = spawn_app().await;
    let hostile = [
        "res_abc/../../admin",
        "res_abc/x",
        "..",
        "res_abc%2F..",
        "res_abc?x=1",
        "res_abc#frag",
        "res_abc def",
        "res_abc\tx",
        "res_abc\nx",
        "res_abc\u{0}",
        "res_é",
        "",
    ];
    let long_ref = format!("res_{}", "a".repeat(65));
    let long_bk = "B".repeat(65);
    for provider in ["chargeapi", "frontpayment", "accommodation"] {
        for reference in hostile.iter().copied().chain([long_ref.as_str(), long_bk.as_str()]) {
            let (status, h, problem) =
                read(app.cancel(json!({"provider": provider, "reference": reference})).await).await;
            assert_problem(status, &h, &problem, 400, "invalid_request");
            assert_eq!(problem["param"], "reference", "{provider} {reference:?}");
        }
    }
    for (provider, reference) in [
        ("chargeapi", "abc"),
        ("chargeapi", "res_"),
        ("chargeapi", "res_a_b"),
        ("frontpayment", "not-a-uuid"),
        ("frontpayment", "{9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f00}"),
    ] {
        let (status, h, problem) = read(app.cancel(json!({"provider": provider, "reference": reference})).await).await;
        assert_problem(status, &h, &problem, 400, "invalid_request");
    }
    assert_eq!(app.upstreams.received_count().await, 0);
}

#[tokio::test]
async fn oversized_body_is_413() {
    let app = spawn_app().await;
    let auth = format!("Bearer {DEMO_KEY}");
    let body = json!({"provider": "chargeapi", "reference": "res_abc", "reason": "x".repeat(70 * 1024)}).to_string();
    let (status, h, problem) = post_raw(&app, body, &[("authorization", &auth)]).await;
    assert_problem(status, &h, &problem, 413, "payload_too_large");
    assert_eq!(app.upstreams.received_count().await, 0);
}

#[tokio::test]
async fn bad_headers_are_400() {
    let app = spawn_app().await;
    let auth = format!("Bearer {DEMO_KEY}");
    let body = json!({"provider": "chargeapi", "reference": "res_abc"}).to_string();
    let long_key = "k".repeat(256);
    for (name, value, param) in
        [("idempotency-key", long_key.as_str(), "Idempotency-Key"), ("content-type", "text/plain", "Content-Type")]
    {
        let mut request = app.client.post(app.url("/v1/cancellations")).header("authorization", &auth);
        request = request.header(name, value);
        if name != "content-type" {
            request = request.header("content-type", "application/json");
        }
        let (status, h, problem) = read(request.body(body.clone()).send().await.unwrap()).await;
        assert_problem(status, &h, &problem, 400, "invalid_request");
        assert_eq!(problem["param"], param);
    }
    assert_eq!(app.upstreams.received_count().await, 0);
}

#[tokio::test]
async fn unknown_routes_and_methods_have_the_problem_shape() {
    let app = spawn_app().await;
    let (status, h, problem) = read(app.client.get(app.url("/v2/nothing")).send().await.unwrap()).await;
    assert_problem(status, &h, &problem, 404, "not_found");
    let (status, h, problem) = read(app.client.put(app.url("/v1/cancellations")).send().await.unwrap()).await;
    assert_problem(status, &h, &problem, 405, "method_not_allowed");
    assert!(h["allow"].to_str().unwrap().contains("POST"), "{h:?}");
}
