//! Authorization per client: every `/v1` route needs a key, a client limited to some providers or
//! accounts gets `403 forbidden` for the others (and sees none of their cancellations), and the
//! operations endpoints need no key and reveal neither secrets nor ledger data.

use std::collections::HashMap;

use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{DEMO_KEY, TestApp, assert_problem, read, spawn_app, spawn_app_with};

/// A second client, configured only through the environment, limited to one chargeapi account
/// (`eu`, which exists only for this test) and to all of frontpayment.
const LIMITED_KEY: &str = "cg_limited_key_for_tests";
const EU_SECRET: &str = "sk_eu_account_secret_9d1e";

async fn spawn_with_limited_client() -> TestApp {
    let env = HashMap::from([
        ("CANCELGATE__CLIENTS__LIMITED__KEY_SHA256".to_owned(), cancelgate_gateway::clients::sha256_hex(LIMITED_KEY)),
        ("CANCELGATE__CLIENTS__LIMITED__PROVIDERS".to_owned(), "chargeapi/eu, frontpayment".to_owned()),
        ("CANCELGATE__PROVIDERS__CHARGEAPI__ACCOUNTS__EU__SECRET_KEY".to_owned(), EU_SECRET.to_owned()),
    ]);
    spawn_app_with(env).await
}

async fn cancel_as(
    app: &TestApp,
    key: &str,
    body: serde_json::Value,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    read(app.client.post(app.url("/v1/cancellations")).bearer_auth(key).json(&body).send().await.unwrap()).await
}

fn cancelled(reference: &str) -> serde_json::Value {
    json!({"id": reference, "object": "reservation", "status": "cancelled", "updated": "2026-04-01T01:38:06.924Z"})
}

#[tokio::test]
async fn every_v1_route_requires_a_client_key() {
    let app = spawn_app().await;
    // Every `/v1` route (`V1_SCOPES` is held to the router's routes), and one with a query.
    let mut routes: Vec<(reqwest::Method, String)> = cancelgate_gateway::routes::V1_SCOPES
        .iter()
        .map(|(method, path, _)| {
            (
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                path.replace("{id}", "can_01JD000000000000000000000"),
            )
        })
        .collect();
    routes.push((reqwest::Method::GET, "/v1/cancellations?limit=1".to_owned()));
    routes.push((reqwest::Method::HEAD, "/v1/providers".to_owned()));
    let bad_auth =
        [None, Some("Bearer nope"), Some("Basic Y2c6eA=="), Some("Bearer"), Some(DEMO_KEY), Some("bearer  ")];
    for (method, route) in &routes {
        for auth in bad_auth {
            let mut request = app.client.request(method.clone(), app.url(route));
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            if method == reqwest::Method::POST {
                request = request.json(&json!({"provider": "chargeapi", "reference": "res_abc"}));
            }
            let response = request.send().await.unwrap();
            if method == reqwest::Method::HEAD {
                // No body to read: the status says it.
                assert_eq!(response.status(), 401, "HEAD {route} with {auth:?}");
                continue;
            }
            let (status, h, problem) = read(response).await;
            assert_problem(status, &h, &problem, 401, "unauthorized");
        }
    }
    // Authentication comes before anything else a caller controls: a bad body, key or query
    // from an unknown caller is still a 401, and says nothing about what was wrong with it.
    let (status, h, problem) = read(
        app.client
            .post(app.url("/v1/cancellations"))
            .header("idempotency-key", "k".repeat(300))
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_problem(status, &h, &problem, 401, "unauthorized");
    let (status, h, problem) =
        read(app.client.get(app.url("/v1/cancellations?limit=0&nope=1")).send().await.unwrap()).await;
    assert_problem(status, &h, &problem, 401, "unauthorized");
    assert_eq!(app.upstreams.received_count().await, 0);
}

#[tokio::test]
async fn a_limited_client_gets_403_for_providers_and_accounts_it_may_not_use() {
    let app = spawn_with_limited_client().await;
    Mock::given(method("POST"))
        .and(path("/v1/reservations/res_eu1/cancel"))
        .and(header("authorization", format!("Bearer {EU_SECRET}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(cancelled("res_eu1")))
        .expect(1)
        .mount(app.upstreams.of("chargeapi"))
        .await;
    let uuid = "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f00";
    Mock::given(method("GET"))
        .and(path(format!("/api/v1/connect/reservations/cancel/{uuid}")))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({
            "status_code": 202, "status_message": "OK", "message": "cancelledOrderSuccessfully", "is_error": false,
            "errors": null
        })))
        .expect(1)
        .mount(app.upstreams.of("frontpayment"))
        .await;

    for body in [
        json!({"provider": "chargeapi", "reference": "res_default1"}),
        json!({"provider": "chargeapi", "reference": "res_default1", "account": "default"}),
        json!({"provider": "accommodation", "reference": "BK_EXAMPLE_001"}),
    ] {
        let (status, h, problem) = cancel_as(&app, LIMITED_KEY, body.clone()).await;
        assert_problem(status, &h, &problem, 403, "forbidden");
        assert!(problem.get("cancellation_id").is_none_or(serde_json::Value::is_null), "{problem:#}");
    }
    assert_eq!(app.upstreams.received_count().await, 0, "a forbidden request reaches no upstream");

    let (status, _, body) =
        cancel_as(&app, LIMITED_KEY, json!({"provider": "chargeapi", "reference": "res_eu1", "account": "eu"})).await;
    assert_eq!((status, &body["status"], &body["account"]), (200, &json!("cancelled"), &json!("eu")), "{body:#}");
    let eu_id = body["id"].as_str().unwrap().to_owned();
    let (status, _, body) = cancel_as(&app, LIMITED_KEY, json!({"provider": "frontpayment", "reference": uuid})).await;
    assert_eq!(status, 200, "{body:#}");

    // The demo client (everything) may use the default account; the limited client cannot see that record.
    Mock::given(method("POST"))
        .and(path("/v1/reservations/res_default2/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(cancelled("res_default2")))
        .mount(app.upstreams.of("chargeapi"))
        .await;
    let (status, _, body) =
        cancel_as(&app, DEMO_KEY, json!({"provider": "chargeapi", "reference": "res_default2"})).await;
    assert_eq!(status, 200, "{body:#}");
    let demo_id = body["id"].as_str().unwrap().to_owned();

    let get = |key: &'static str, path: String| {
        let request = app.client.get(app.url(&path)).bearer_auth(key);
        async move { read(request.send().await.unwrap()).await }
    };
    let (status, h, problem) = get(LIMITED_KEY, format!("/v1/cancellations/{demo_id}")).await;
    assert_problem(status, &h, &problem, 404, "not_found");
    let (status, _, body) = get(LIMITED_KEY, format!("/v1/cancellations/{eu_id}")).await;
    assert_eq!((status, &body["id"]), (200, &json!(eu_id)));
    let (status, _, body) = get(DEMO_KEY, format!("/v1/cancellations/{eu_id}")).await;
    assert_eq!(status, 200, "the demo client may use every account: {body:#}");

    let (status, _, list) = get(LIMITED_KEY, "/v1/cancellations?limit=100".to_owned()).await;
    assert_eq!(status, 200);
    let ids: Vec<_> = list["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect();
    assert!(ids.contains(&eu_id) && !ids.contains(&demo_id), "{ids:?}");
    assert!(list["data"].as_array().unwrap().iter().all(|c| c["provider"] == "frontpayment" || c["account"] == "eu"));
    let (_, _, list) = get(LIMITED_KEY, "/v1/cancellations?provider=chargeapi&account=default".to_owned()).await;
    assert_eq!(list["data"], json!([]), "a filter cannot reveal what the grants hide");
    let (_, _, list) = get(DEMO_KEY, "/v1/cancellations".to_owned()).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn operations_endpoints_need_no_key_and_reveal_no_secret_or_ledger_data() {
    let app = spawn_with_limited_client().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(cancelled("res_opsleak1")))
        .mount(app.upstreams.of("chargeapi"))
        .await;
    let marker = "ORDER-MARKER-7b1c";
    let (status, _, body) = cancel_as(
        &app,
        DEMO_KEY,
        json!({"provider": "chargeapi", "reference": "res_opsleak1", "metadata": {"order_id": marker}}),
    )
    .await;
    assert_eq!(status, 200, "{body:#}");
    let id = body["id"].as_str().unwrap().to_owned();

    let forbidden = [
        id.as_str(),
        "res_opsleak1",
        marker,
        EU_SECRET,
        "ch_sk_test_sandbox",
        DEMO_KEY,
        LIMITED_KEY,
        &cancelgate_gateway::clients::sha256_hex(DEMO_KEY),
        &cancelgate_gateway::clients::sha256_hex(LIMITED_KEY),
    ];
    for path in
        ["/healthz", "/readyz", "/errors", "/errors/forbidden", "/metrics", "/openapi.json", "/docs", "/v1/providers"]
    {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        let headers = format!("{:?}", response.headers());
        let text = response.text().await.unwrap();
        if !path.starts_with("/v1/") {
            assert_ne!(status, 401, "{path} is an operations endpoint: no key needed");
        }
        for secret in forbidden {
            assert!(!text.contains(secret) && !headers.contains(secret), "{path} reveals {secret}: {text}");
        }
    }
}

/// Clients configured through the environment with other scopes than the demo client's (SPEC §7):
/// `reader` may only read, `canceller` may only cancel, `plain` names no scopes (the default).
const READER_KEY: &str = "cg_reader_key_for_tests";
const CANCELLER_KEY: &str = "cg_canceller_key_for_tests";
const PLAIN_KEY: &str = "cg_plain_key_for_tests";

async fn spawn_with_scoped_clients() -> TestApp {
    let mut env = HashMap::new();
    for (name, key, scopes) in
        [("READER", READER_KEY, Some("read")), ("CANCELLER", CANCELLER_KEY, Some("cancel")), ("PLAIN", PLAIN_KEY, None)]
    {
        env.insert(format!("CANCELGATE__CLIENTS__{name}__KEY_SHA256"), cancelgate_gateway::clients::sha256_hex(key));
        env.insert(format!("CANCELGATE__CLIENTS__{name}__PROVIDERS"), "*".to_owned());
        if let Some(scopes) = scopes {
            env.insert(format!("CANCELGATE__CLIENTS__{name}__SCOPES"), scopes.to_owned());
        }
    }
    spawn_app_with(env).await
}

#[tokio::test]
async fn a_request_outside_the_clients_scopes_is_403_and_nothing_is_recorded_or_sent() {
    let app = spawn_with_scoped_clients().await;
    Mock::given(method("POST"))
        .respond_with(|r: &wiremock::Request| {
            ResponseTemplate::new(200).set_body_json(cancelled(r.url.path().split('/').nth(3).unwrap_or_default()))
        })
        .mount(app.upstreams.of("chargeapi"))
        .await;
    let get = |key: &'static str, path: String| {
        let request = app.client.get(app.url(&path)).bearer_auth(key);
        async move { read(request.send().await.unwrap()).await }
    };

    // A read-only client cannot cancel: 403 before anything is recorded or sent.
    let (status, h, problem) =
        cancel_as(&app, READER_KEY, json!({"provider": "chargeapi", "reference": "res_scope1"})).await;
    assert_problem(status, &h, &problem, 403, "forbidden");
    assert!(problem["detail"].as_str().unwrap().contains("`cancel`"), "{problem:#}");
    assert!(problem.get("cancellation_id").is_none_or(serde_json::Value::is_null), "{problem:#}");
    let request = app
        .client
        .post(app.url("/v1/cancellations"))
        .bearer_auth(READER_KEY)
        .header("idempotency-key", "scope-key")
        .json(&json!({"provider": "chargeapi", "reference": "res_scope1"}));
    assert_eq!(read(request.send().await.unwrap()).await.0, 403);
    assert_eq!(app.upstreams.received_count().await, 0, "a request outside the scopes reaches no upstream");
    let (_, _, list) = get(DEMO_KEY, "/v1/cancellations".to_owned()).await;
    assert_eq!(list["data"], json!([]), "and is not recorded");

    // A cancel-only client cancels, and reads nothing, not even what it cancelled.
    let (status, _, body) =
        cancel_as(&app, CANCELLER_KEY, json!({"provider": "chargeapi", "reference": "res_scope2"})).await;
    assert_eq!(status, 200, "{body:#}");
    let id = body["id"].as_str().unwrap().to_owned();
    for path in [format!("/v1/cancellations/{id}"), "/v1/cancellations".to_owned(), "/v1/providers".to_owned()] {
        let (status, h, problem) = get(CANCELLER_KEY, path.clone()).await;
        assert_problem(status, &h, &problem, 403, "forbidden");
        assert!(problem["detail"].as_str().unwrap().contains("`read`"), "{path}: {problem:#}");
    }
    // Authentication still comes first: a wrong key is a 401, not a 403.
    let (status, h, problem) = get("cg_wrong_key", "/v1/providers".to_owned()).await;
    assert_problem(status, &h, &problem, 401, "unauthorized");

    // The reader reads what the canceller cancelled.
    let (status, _, body) = get(READER_KEY, format!("/v1/cancellations/{id}")).await;
    assert_eq!((status, &body["id"]), (200, &json!(id)));
    let (status, _, _) = get(READER_KEY, "/v1/providers".to_owned()).await;
    assert_eq!(status, 200);

    // No `scopes` key: cancel and read.
    let (status, _, body) =
        cancel_as(&app, PLAIN_KEY, json!({"provider": "chargeapi", "reference": "res_scope3"})).await;
    assert_eq!(status, 200, "{body:#}");
    let (status, _, list) = get(PLAIN_KEY, "/v1/cancellations".to_owned()).await;
    assert_eq!((status, list["data"].as_array().map(Vec::len)), (200, Some(2)));
    assert_eq!(app.upstreams.received_count().await, 2);
}

/// Each `/v1` route refuses a client without the scope it declares, and admits one with only that
/// scope: the declaration in `routes::V1_SCOPES` is what the server enforces, route by route.
#[tokio::test]
async fn every_v1_route_enforces_its_declared_scope() {
    use cancelgate_gateway::clients::Scope;
    let app = spawn_with_scoped_clients().await;
    for (method, path, scope) in cancelgate_gateway::routes::V1_SCOPES {
        let path = path.replace("{id}", "can_01JD000000000000000000000");
        let (with, without) = match scope {
            Scope::Read => (READER_KEY, CANCELLER_KEY),
            Scope::Cancel => (CANCELLER_KEY, READER_KEY),
            Scope::Operate => (DEMO_KEY, PLAIN_KEY),
        };
        let send = |key: &str| {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            // A body no route accepts: a client with the scope gets past the check to a 4xx of the route.
            app.client
                .request(method, app.url(&path))
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body("{")
        };
        let (status, h, problem) = read(send(without).send().await.unwrap()).await;
        assert_problem(status, &h, &problem, 403, "forbidden");
        let (status, _, body) = read(send(with).send().await.unwrap()).await;
        assert!(
            status != 403 && status != 401 && status < 500,
            "{method} {path} as a holder of {scope:?}: {status} {body:#}"
        );
    }
    assert_eq!(app.upstreams.received_count().await, 0);
}
