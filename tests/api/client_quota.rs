//! The client's own quota (SPEC §3, §4) is a layer on every `/v1` route: a read beyond it is a
//! `429 rate_limited` problem with `Retry-After`, like a cancel; the operations endpoints and the
//! console stay outside it. (The cancel's own 429, and that it comes before anything is sent, is
//! `resilience::client_and_provider_quotas_answer_429_before_anything_is_sent`.)

use std::collections::HashMap;

use crate::helpers::{DEMO_KEY, TestApp, assert_problem, read, spawn_app_with};

/// The demo client at one request a second (burst one).
async fn spawn_with_one_per_second() -> TestApp {
    spawn_app_with(HashMap::from([("CANCELGATE__CLIENTS__DEMO__RATE_LIMIT__PER_SECOND".to_owned(), "1".to_owned())]))
        .await
}

async fn get(app: &TestApp, path: &str, key: Option<&str>) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let mut request = app.client.get(app.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    read(request.send().await.unwrap()).await
}

#[track_caller]
fn assert_rate_limited(status: u16, headers: &reqwest::header::HeaderMap, body: &serde_json::Value) {
    assert_problem(status, headers, body, 429, "rate_limited");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().expect("Retry-After in seconds");
    assert!(wait >= 1, "Retry-After: {wait}");
    assert_eq!(body["retryable"], true, "{body:#}");
}

#[tokio::test]
async fn a_read_beyond_the_clients_quota_is_429_with_retry_after() {
    let app = spawn_with_one_per_second().await;
    let (status, _, body) = get(&app, "/v1/providers", Some(DEMO_KEY)).await;
    assert_eq!(status, 200, "{body:#}");
    // The quota is spent: every /v1 route answers 429, reads included, before its handler.
    for path in ["/v1/providers", "/v1/cancellations", "/v1/events", "/v1/cancellations/can_01JD000000000000000000000"]
    {
        let (status, headers, body) = get(&app, path, Some(DEMO_KEY)).await;
        assert_rate_limited(status, &headers, &body);
    }
    // A spent quota is no way around authentication: no key is still 401, not 429.
    let (status, headers, body) = get(&app, "/v1/providers", None).await;
    assert_problem(status, &headers, &body, 401, "unauthorized");
}

#[tokio::test]
async fn reads_and_cancels_share_one_quota() {
    let app = spawn_with_one_per_second().await;
    let (status, _, body) = get(&app, "/v1/cancellations", Some(DEMO_KEY)).await;
    assert_eq!(status, 200, "{body:#}");
    let cancel = serde_json::json!({"provider": "chargeapi", "reference": "res_quota_shared_1"});
    let response = app.client.post(app.url("/v1/cancellations")).bearer_auth(DEMO_KEY).json(&cancel).send().await;
    let (status, headers, body) = read(response.unwrap()).await;
    assert_rate_limited(status, &headers, &body);
    assert_eq!(
        app.upstreams.of("chargeapi").received_requests().await.unwrap_or_default().len(),
        0,
        "nothing was sent"
    );
}

#[tokio::test]
async fn operations_endpoints_and_the_console_are_not_limited() {
    let app = spawn_with_one_per_second().await;
    let (status, _, _) = get(&app, "/v1/providers", Some(DEMO_KEY)).await;
    assert_eq!(status, 200);
    // Many times each, at once, well past one a second, with and without the client's key.
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json", "/errors", "/errors/rate_limited", "/console"] {
        for key in [None, Some(DEMO_KEY), None, Some(DEMO_KEY), None] {
            let (status, _, body) = get(&app, path, key).await;
            assert_ne!(status, 429, "{path} is rate limited: {body:#}");
            assert!(status < 400, "{path}: {status} {body:#}");
        }
    }
}
