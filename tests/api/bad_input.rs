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

/// The probe of issue 14, through the real binary in front of the sandbox: a member named twice
/// (`provider`, or an entry of `metadata`) is a 400 naming it, and no cancel reaches any provider
/// (last-one-wins had cancelled the Front Payment reservation). Nothing is recorded either.
#[tokio::test]
async fn a_repeated_member_reaches_no_provider_through_the_real_binary() {
    use cancelgate_sandbox::{Sandbox, SandboxConfig, SimulatedProvider, seeds};

    use crate::process::{Gateway, sandbox_env};

    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut env = sandbox_env(&sandbox);
    env.push(("CANCELGATE__LEDGER__URL".to_owned(), format!("sqlite://{}/ledger.db", dir.path().display())));
    let gateway = Gateway::start(dir.path(), &env).await;
    let uuid = seeds::FRONTPAYMENT_RESERVED;
    let before = sandbox.state(SimulatedProvider::FrontPayment, uuid);
    let total = || SimulatedProvider::ALL.into_iter().map(|p| sandbox.total_cancel_requests(p)).sum::<u64>();

    for (body, param) in [
        (format!(r#"{{"provider":"chargeapi","provider":"frontpayment","reference":"{uuid}"}}"#), "provider"),
        (format!(r#"{{"provider":"frontpayment","reference":"{uuid}","reference":"{uuid}"}}"#), "reference"),
        (
            format!(
                r#"{{"provider":"frontpayment","reference":"{uuid}","metadata":{{"order_id":"A-1","order_id":"A-2"}}}}"#
            ),
            "metadata.order_id",
        ),
    ] {
        let response = gateway
            .client
            .post(gateway.url("/v1/cancellations"))
            .bearer_auth(DEMO_KEY)
            .header("content-type", "application/json")
            .header("idempotency-key", format!("dup-{param}"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let (status, h, problem) = read(response).await;
        assert_problem(status, &h, &problem, 400, "invalid_request");
        assert_eq!(problem["param"], param, "{body}: {problem:#}");
        assert!(problem.get("cancellation_id").is_none_or(Value::is_null), "nothing recorded: {problem:#}");
    }
    assert_eq!(total(), 0, "a body with a repeated member reaches no provider");
    assert_eq!(sandbox.state(SimulatedProvider::FrontPayment, uuid), before, "the reservation is untouched");
    let list = gateway.client.get(gateway.url("/v1/cancellations")).bearer_auth(DEMO_KEY).send().await.unwrap();
    let (status, _, list) = read(list).await;
    assert_eq!((status, &list["data"]), (200, &json!([])), "nothing recorded");

    // The same request without the repetition is sent: the zero above is not for want of a path.
    let (status, _, body) = gateway
        .cancel(&json!({"provider": "frontpayment", "reference": uuid, "metadata": {"order_id": "A-1"}}), None)
        .await;
    assert_eq!((status, &body["status"]), (200, &json!("cancelled")), "{body:#}");
    assert_eq!(total(), 1);
}

/// RFC 9110: a 401 says which scheme would be accepted; the scheme's name is case-insensitive.
#[tokio::test]
async fn a_401_names_the_bearer_scheme_which_matches_in_any_case() {
    let app = spawn_app().await;
    for auth in [None, Some("Bearer nope"), Some("Basic Y2c6eA=="), Some("Bearer")] {
        let mut request = app.client.get(app.url("/v1/cancellations"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let (status, h, problem) = read(request.send().await.unwrap()).await;
        assert_problem(status, &h, &problem, 401, "unauthorized");
        assert_eq!(h["www-authenticate"], r#"Bearer realm="cancelgate""#, "{auth:?}");
    }
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let request =
            app.client.get(app.url("/v1/cancellations")).header("authorization", format!("{scheme} {DEMO_KEY}"));
        let (status, h, body) = read(request.send().await.unwrap()).await;
        assert_eq!(status, 200, "{scheme}: {body:#}");
        assert!(h.get("www-authenticate").is_none());
    }
}

/// Every query parameter of the listing is checked: a value that can match nothing, an unknown
/// parameter or a repeated one is a 400 naming it, in the gateway's own words.
#[tokio::test]
async fn every_query_parameter_is_validated_in_our_own_words() {
    let app = spawn_app().await;
    for (query, param) in [
        ("provider=acme", "provider"),
        ("provider=", "provider"),
        ("account=", "account"),
        (&*format!("account={}", "a".repeat(65)), "account"),
        ("reference=res_a%2F..", "reference"),
        ("reference=", "reference"),
        ("status=bogus", "status"),
        ("status=", "status"),
        ("limit=", "limit"),
        ("created_lt=2026-13-01T00:00:00Z", "created_lt"),
        ("provider=chargeapi&provider=frontpayment", "provider"),
        ("status=failed&status=failed", "status"),
        ("limit=5&debug=1", "debug"),
        ("li%6Dit=1&limit=2", "limit"),
        ("%FF=1", "\u{fffd}"),
    ] {
        let request = app.client.get(app.url(&format!("/v1/cancellations?{query}"))).bearer_auth(DEMO_KEY);
        let (status, h, problem) = read(request.send().await.unwrap()).await;
        assert_problem(status, &h, &problem, 400, "invalid_request");
        assert_eq!(problem["param"], param, "{query}: {problem:#}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(!detail.contains("deserialize") && !detail.contains("query string"), "{query}: {detail}");
    }
    for query in [
        "",
        "provider=chargeapi&account=default&reference=res_abc&status=needs_review&limit=100",
        "provider=accommodation&created_gte=2026-01-01T00:00:00Z&created_lt=2026-12-01T00:00:00%2B02:00",
    ] {
        let request = app.client.get(app.url(&format!("/v1/cancellations?{query}"))).bearer_auth(DEMO_KEY);
        let (status, _, body) = read(request.send().await.unwrap()).await;
        assert_eq!((status, &body["data"]), (200, &json!([])), "{query}: {body:#}");
    }
}
