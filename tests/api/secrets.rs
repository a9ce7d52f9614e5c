//! No configured secret ever appears in an answer (body or header) or a log line, whatever the
//! path, including an upstream that echoes our request (and so our credentials) back.

use std::collections::HashMap;

use serde_json::json;
use wiremock::matchers::any;
use wiremock::{Mock, Request, ResponseTemplate};

use crate::helpers::{DEMO_KEY, read, spawn_app_with};

const SECRETS: [(&str, &str); 4] = [
    ("CANCELGATE__PROVIDERS__CHARGEAPI__ACCOUNTS__DEFAULT__SECRET_KEY", "sk_live_LEAKCHECK_chargeapi_7f3a"),
    ("CANCELGATE__PROVIDERS__FRONTPAYMENT__ACCOUNTS__DEFAULT__TOKEN", "fp_live_LEAKCHECK_token_91bc"),
    ("CANCELGATE__PROVIDERS__ACCOMMODATION__ACCOUNTS__DEFAULT__API_KEY", "acc_live_LEAKCHECK_key_55de"),
    ("CANCELGATE__PROVIDERS__ACCOMMODATION__ACCOUNTS__DEFAULT__CONNECTION_CODE", "LEAKCHECKCODE4242"),
];

/// An upstream that answers with everything it received: headers and body.
fn echo(status: u16) -> impl Fn(&Request) -> ResponseTemplate + Send + Sync {
    move |request: &Request| {
        let headers: HashMap<String, String> =
            request.headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned())).collect();
        ResponseTemplate::new(status).set_body_json(json!({
            "message": format!("echo {:?}", headers),
            "headers": headers,
            "body": String::from_utf8_lossy(&request.body),
        }))
    }
}

#[tokio::test]
async fn no_secret_in_any_answer_or_log() {
    let env = SECRETS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let app = spawn_app_with(env).await;
    let mut seen = String::new();

    for (status, server) in [
        (500, app.upstreams.of("chargeapi")),
        (400, app.upstreams.of("frontpayment")),
        (403, app.upstreams.of("accommodation")),
    ] {
        Mock::given(any()).respond_with(echo(status)).mount(server).await;
    }
    let requests = [
        json!({"provider": "chargeapi", "reference": "res_abc"}),
        json!({"provider": "frontpayment", "reference": "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f00"}),
        json!({"provider": "accommodation", "reference": "BK_EXAMPLE_001"}),
        json!({"provider": "accommodation", "reference": "../etc"}),
        json!({"provider": "chargeapi", "reference": "res_abc", "account": "nope"}),
    ];
    for request in requests {
        let response = app.cancel(request).await;
        seen.push_str(&format!("{:?}", response.headers()));
        let (_, _, body) = read(response).await;
        seen.push_str(&body.to_string());
    }
    let unauthorized =
        app.client.post(app.url("/v1/cancellations")).bearer_auth("wrong").json(&json!({})).send().await.unwrap();
    seen.push_str(&unauthorized.text().await.unwrap());
    for path in ["/healthz", "/readyz", "/errors", "/nope", "/metrics", "/openapi.json", "/docs/"] {
        seen.push_str(&app.client.get(app.url(path)).send().await.unwrap().text().await.unwrap());
    }

    // The upstreams did receive the secrets (the test would prove nothing otherwise)...
    let received = format!("{:?}", app.upstreams.of("chargeapi").received_requests().await.unwrap());
    assert!(received.contains(SECRETS[0].1), "the upstream should have received the key");
    // ...and yet nothing that came back, nor any log line, holds one.
    let logs = app.logs.text();
    assert!(!logs.is_empty(), "logs were captured");
    // The request spans (with their client, provider, account and reference fields) and the
    // upstream attempt events are among the lines checked.
    assert!(
        logs.contains("\"request answered\"") && logs.contains("\"client\":\"demo\""),
        "no request span in the logs"
    );
    assert!(logs.contains("\"upstream attempt\""), "no upstream attempt event in the logs");
    for (_, secret) in SECRETS {
        assert!(!seen.contains(secret), "{secret} leaked in an answer: {seen}");
        assert!(!logs.contains(secret), "{secret} leaked in the logs");
    }
    assert!(!seen.contains(DEMO_KEY), "the client key leaked in an answer");
    let at = logs.find(DEMO_KEY).unwrap_or(0);
    assert!(
        !logs.contains(DEMO_KEY),
        "the client key leaked in the logs: {}",
        &logs[at.saturating_sub(300)..(at + 100).min(logs.len())]
    );
}

#[tokio::test]
async fn settings_debug_and_check_config_output_redact_secrets() {
    let env: HashMap<String, String> = SECRETS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let settings = cancelgate_gateway::Settings::load_with_env(&crate::helpers::config_dir(), Some(env)).unwrap();
    let debug = format!("{settings:?}");
    let printed = cancelgate_gateway::settings::Redacted(&settings).to_string();
    let registry = cancelgate_gateway::registry::Registry::build(&settings).unwrap();
    let registry_debug = format!("{registry:?}");
    for (_, secret) in SECRETS {
        assert!(!debug.contains(secret), "Debug of Settings leaks {secret}");
        assert!(!printed.contains(secret), "check-config output leaks {secret}");
        assert!(!registry_debug.contains(secret), "Debug of Registry leaks {secret}");
    }
    assert!(printed.contains("[REDACTED]"));
}

/// Every endpoint and every error path reachable from outside, with known secrets configured
/// (provider credentials, two client keys): no answer (body or header) and no log line holds one.
#[tokio::test]
async fn no_secret_on_any_endpoint_or_error_path() {
    use wiremock::matchers::{body_partial_json, method, path};

    const LIMITED_KEY: &str = "cg_limited_LEAKCHECK_key_0c4f";
    let mut env: HashMap<String, String> = SECRETS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    env.insert("CANCELGATE__CLIENTS__LIMITED__KEY_SHA256".into(), cancelgate_gateway::clients::sha256_hex(LIMITED_KEY));
    env.insert("CANCELGATE__CLIENTS__LIMITED__PROVIDERS".into(), "frontpayment".into());
    let app = spawn_app_with(env).await;
    let (charge, front, acc) =
        (app.upstreams.of("chargeapi"), app.upstreams.of("frontpayment"), app.upstreams.of("accommodation"));
    let on = |p: &str| Mock::given(method("POST")).and(path(format!("/v1/reservations/{p}/cancel")));
    let sent = |r: &Request| format!("you sent {:?} {}", r.headers, String::from_utf8_lossy(&r.body));
    on("res_ok")
        .respond_with(move |r: &Request| {
            ResponseTemplate::new(200).set_body_json(json!({"id": "res_ok", "object": "reservation",
                "status": "cancelled", "updated": "2026-04-01T01:38:06.924Z", "note": sent(r)}))
        })
        .mount(charge)
        .await;
    on("res_gone")
        .respond_with(move |r: &Request| {
            ResponseTemplate::new(409).set_body_json(json!({"error": {"type": "invalid_request_error",
                "code": "reservation_cancelled", "message": format!("Reservation is already cancelled; {}", sent(r))}}))
        })
        .mount(charge)
        .await;
    on("res_unknown").respond_with(echo(404)).mount(charge).await;
    on("res_badkey").respond_with(echo(401)).mount(charge).await;
    on("res_down").respond_with(echo(503)).mount(charge).await;
    on("res_quota").respond_with(echo(429)).mount(charge).await;
    on("res_slow")
        .respond_with(move |r: &Request| echo(200)(r).set_delay(std::time::Duration::from_secs(2)))
        .mount(charge)
        .await;
    Mock::given(method("GET"))
        .respond_with(move |r: &Request| {
            ResponseTemplate::new(417).set_body_json(json!({"status_code": 417, "status_message": "Expectation Failed",
                "message": "payloadValidationErrors", "is_error": true, "errors": {"note": [sent(r)]}}))
        })
        .mount(front)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"input": {"reference": {"bookingReference": "BK_SLOW"}}})))
        .respond_with(move |r: &Request| echo(500)(r).set_delay(std::time::Duration::from_millis(700)))
        .mount(acc)
        .await;
    Mock::given(method("POST")).respond_with(echo(403)).mount(acc).await;

    let mut seen = String::new();
    let mut record = |status: u16, headers: &reqwest::header::HeaderMap, body: &serde_json::Value| {
        seen.push_str(&format!("{status} {headers:?} {body}\n"));
    };
    let cancel = |key: &'static str, body: serde_json::Value, idem: Option<&'static str>| {
        let mut request = app.client.post(app.url("/v1/cancellations")).bearer_auth(key).json(&body);
        if let Some(k) = idem {
            request = request.header("idempotency-key", k);
        }
        async move { read(request.send().await.unwrap()).await }
    };
    let mut ids = Vec::new();
    let mut codes = std::collections::BTreeSet::new();
    let uuid = "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f00";
    // A request in flight (accommodation answers slowly), to meet 409 request_in_progress beside it.
    let slow = cancel(DEMO_KEY, json!({"provider": "accommodation", "reference": "BK_SLOW"}), None);
    let in_flight = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        cancel(DEMO_KEY, json!({"provider": "accommodation", "reference": "BK_SLOW"}), None).await
    };
    let (first, second) = tokio::join!(slow, in_flight);
    for (status, headers, body) in [first, second] {
        record(status, &headers, &body);
        codes.insert(body["code"].as_str().unwrap_or("-").to_owned());
    }
    let requests: Vec<(&'static str, serde_json::Value, Option<&'static str>)> = vec![
        (DEMO_KEY, json!({"provider": "chargeapi", "reference": "res_ok"}), Some("idem-1")),
        (DEMO_KEY, json!({"provider": "chargeapi", "reference": "res_ok"}), Some("idem-1")),
        (DEMO_KEY, json!({"provider": "chargeapi", "reference": "res_gone"}), Some("idem-1")),
        (DEMO_KEY, json!({"provider": "chargeapi", "reference": "res_gone"}), None),
        (DEMO_KEY, json!({"provider": "chargeapi", "reference": "res_unknown"}), None),
        (DEMO_KEY, json!({"provider": "chargeapi", "reference": "res_badkey"}), None),
        (DEMO_KEY, json!({"provider": "chargeapi", "reference": "res_down"}), None),
        (DEMO_KEY, json!({"provider": "chargeapi", "reference": "res_slow"}), None),
        (DEMO_KEY, json!({"provider": "chargeapi", "reference": "res_quota"}), None),
        (DEMO_KEY, json!({"provider": "frontpayment", "reference": uuid}), None),
        (DEMO_KEY, json!({"provider": "accommodation", "reference": "BK_EXAMPLE_001"}), None),
        (DEMO_KEY, json!({"provider": "chargeapi", "reference": "res_../x"}), None),
        (DEMO_KEY, json!({"provider": "chargeapi", "reference": "res_ok", "account": "nope"}), None),
        (DEMO_KEY, json!({"provider": "chargeapi", "reference": "res_ok", "bogus": 1}), None),
        (LIMITED_KEY, json!({"provider": "chargeapi", "reference": "res_ok"}), None),
        ("sk_live_LEAKCHECK_chargeapi_7f3a", json!({"provider": "chargeapi", "reference": "res_ok"}), None),
    ];
    for (key, body, idem) in requests {
        let (status, headers, body) = cancel(key, body, idem).await;
        if let Some(id) = body["id"].as_str().or(body["cancellation_id"].as_str()) {
            ids.push(id.to_owned());
        }
        codes.insert(body["code"].as_str().unwrap_or(body["status"].as_str().unwrap_or("-")).to_owned());
        record(status, &headers, &body);
    }
    let big = json!({"provider": "chargeapi", "reference": "res_ok", "reason": "x".repeat(70 * 1024)});
    let (status, headers, body) = cancel(DEMO_KEY, big, None).await;
    codes.insert(body["code"].as_str().unwrap_or("-").to_owned());
    record(status, &headers, &body);
    let mut gets: Vec<String> = ids.iter().map(|id| format!("/v1/cancellations/{id}")).collect();
    gets.extend(
        ["/v1/cancellations?limit=100", "/v1/cancellations?limit=0", "/v1/cancellations/can_nope"].map(String::from),
    );
    for key in [DEMO_KEY, LIMITED_KEY] {
        for path in &gets {
            let (status, headers, body) =
                read(app.client.get(app.url(path)).bearer_auth(key).send().await.unwrap()).await;
            codes.insert(body["code"].as_str().unwrap_or("-").to_owned());
            record(status, &headers, &body);
        }
    }
    for path in [
        "/healthz",
        "/readyz",
        "/errors",
        "/errors/provider_misconfigured",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/v1/providers",
        "/nope",
    ] {
        let (status, headers, body) =
            read(app.client.get(app.url(path)).bearer_auth(DEMO_KEY).send().await.unwrap()).await;
        record(status, &headers, &body);
    }
    let (status, headers, body) = read(app.client.put(app.url("/v1/cancellations")).send().await.unwrap()).await;
    codes.insert(body["code"].as_str().unwrap_or("-").to_owned());
    record(status, &headers, &body);
    // Let the background work (the slow chargeapi reference) finish before reading the logs.
    for id in &ids {
        let final_state = app.wait_final(id).await;
        codes.insert(final_state["error"]["code"].as_str().unwrap_or("-").to_owned());
        codes.insert(final_state["status"].as_str().unwrap_or("-").to_owned());
        record(200, &reqwest::header::HeaderMap::new(), &final_state);
    }

    for code in [
        "invalid_request",
        "unauthorized",
        "forbidden",
        "not_found",
        "already_cancelled",
        "request_in_progress",
        "payload_too_large",
        "method_not_allowed",
        "idempotency_key_reused",
        "upstream_rejected",
        "rate_limited",
        "upstream_error",
        "provider_misconfigured",
        "cancelled",
    ] {
        assert!(codes.contains(code), "the test did not reach `{code}`: {codes:?}");
    }
    assert!(codes.contains("processing") || codes.contains("needs_review"), "no timeout path reached: {codes:?}");
    let received = format!("{:?}", app.upstreams.of("accommodation").received_requests().await.unwrap());
    assert!(received.contains(SECRETS[2].1), "the upstream should have received the key");
    let logs = app.logs.text();
    for secret in SECRETS.iter().map(|(_, s)| *s).chain([DEMO_KEY, LIMITED_KEY]) {
        assert!(!seen.contains(secret), "{secret} leaked in an answer: {seen}");
        assert!(!logs.contains(secret), "{secret} leaked in the logs");
    }
}

/// `GET /v1/cancellations/{id}/attempts` shows each upstream body as recorded: an upstream that
/// echoes our credentials back shows them scrubbed, never the secret.
#[tokio::test]
async fn attempt_bodies_never_show_a_secret() {
    let env = SECRETS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let app = spawn_app_with(env).await;
    for (status, server) in [(500, app.upstreams.of("chargeapi")), (400, app.upstreams.of("frontpayment"))] {
        Mock::given(any()).respond_with(echo(status)).mount(server).await;
    }
    for request in [
        json!({"provider": "chargeapi", "reference": "res_attempts"}),
        json!({"provider": "frontpayment", "reference": "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f01"}),
    ] {
        let (_, _, body) = read(app.cancel(request).await).await;
        let id = body["cancellation_id"].as_str().or(body["id"].as_str()).unwrap().to_owned();
        let done = app.wait_final(&id).await;
        assert_ne!(done["status"], "processing");
        let response =
            app.client.get(app.url(&format!("/v1/cancellations/{id}/attempts"))).bearer_auth(DEMO_KEY).send().await;
        let (status, _, attempts) = read(response.unwrap()).await;
        assert_eq!(status, 200, "{attempts:#}");
        let data = attempts["data"].as_array().unwrap();
        assert!(
            !data.is_empty() && data.iter().all(|a| a["body"]["headers"].is_object()),
            "the echo is shown: {attempts:#}"
        );
        let text = attempts.to_string();
        assert!(text.contains("[REDACTED]"), "the echoed credential is shown scrubbed: {text}");
        for (_, secret) in SECRETS {
            assert!(!text.contains(secret), "secret {secret} in the attempts: {text}");
        }
    }
}
