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

    for (status, server) in
        [(500, &app.upstreams.chargeapi), (400, &app.upstreams.frontpayment), (403, &app.upstreams.accommodation)]
    {
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
    let received = format!("{:?}", app.upstreams.chargeapi.received_requests().await.unwrap());
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
