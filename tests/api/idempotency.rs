//! SPEC §2 Idempotency and the read side (GET one, the audit listing), end to end: what the
//! caller gets AND how many cancels reached the upstream.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, Request, ResponseTemplate};

use crate::helpers::{DEMO_KEY, TestApp, assert_problem, config_dir, copy_dir, read, spawn_app, spawn_app_in};

const REF: &str = "res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq";
const CANCEL_PATH: &str = "/v1/reservations/res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq/cancel";
const ANY_CANCEL_PATH: &str = r"^/v1/reservations/res_[A-Za-z0-9]+/cancel$";

/// A second client, configured next to the demo one.
const OTHER_KEY: &str = "cg_other_client_key";
/// `printf %s cg_other_client_key | sha256sum`
const OTHER_KEY_SHA256: &str = "90ce97964b46b1d25e0255f3d3ece2dded5166088fe391ee661635b161e558ce";

/// ChargeAPI's answer to a cancel of whichever reservation the path names.
fn cancelled_reservation(request: &Request) -> ResponseTemplate {
    let reference = request.url.path().split('/').nth(3).unwrap_or_default().to_owned();
    ResponseTemplate::new(200).set_body_json(json!({
        "id": reference, "object": "reservation", "status": "cancelled", "updated": "2026-04-01T01:38:06.924Z"
    }))
}

async fn mount_cancelled(app: &TestApp, delay: Duration) {
    Mock::given(method("POST"))
        .and(path_regex(ANY_CANCEL_PATH))
        .respond_with(move |request: &Request| cancelled_reservation(request).set_delay(delay))
        .mount(app.upstreams.of("chargeapi"))
        .await;
}

async fn chargeapi_calls(app: &TestApp) -> usize {
    app.upstreams.of("chargeapi").received_requests().await.unwrap().len()
}

/// `POST /v1/cancellations` with a raw body, a client key and an optional idempotency key.
async fn post(app: &TestApp, bearer: &str, key: Option<&str>, body: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = app
        .client
        .post(app.url("/v1/cancellations"))
        .bearer_auth(bearer)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    read(request.send().await.unwrap()).await
}

async fn list(app: &TestApp, query: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let response =
        app.client.get(app.url(&format!("/v1/cancellations{query}"))).bearer_auth(DEMO_KEY).send().await.unwrap();
    read(response).await
}

/// `body` with `replayed` set to `value`.
fn with_replayed(body: &Value, value: bool) -> Value {
    let mut body = body.clone();
    body["replayed"] = json!(value);
    body
}

/// A gateway whose upstream calls may take a while (the default test timeout is 500 ms).
async fn spawn_patient_app() -> TestApp {
    let env = HashMap::from([("CANCELGATE__PROVIDERS__CHARGEAPI__TIMEOUT_MS".to_owned(), "5000".to_owned())]);
    crate::helpers::spawn_app_with(env).await
}

#[tokio::test]
async fn same_key_and_same_json_value_replays_without_calling_upstream() {
    let app = spawn_app().await;
    mount_cancelled(&app, Duration::ZERO).await;
    let first =
        r#"{"provider":"chargeapi","reference":"res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq","metadata":{"a":"1","b":"2"}}"#;
    // The same JSON value: keys in another order at every level, other spacing.
    let again = "{ \"metadata\" : { \"b\":\"2\", \"a\":\"1\" },\n  \"reference\":\"res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq\", \"provider\":\"chargeapi\" }";

    let (status, _, original) = post(&app, DEMO_KEY, Some("key-1"), first).await;
    assert_eq!(status, 200, "{original:#}");
    assert_eq!(original["replayed"], false);
    for body in [first, again] {
        let (status, headers, replay) = post(&app, DEMO_KEY, Some("key-1"), body).await;
        assert_eq!(status, 200, "{replay:#}");
        assert_eq!(replay, with_replayed(&original, true), "the stored answer, marked replayed");
        assert_eq!(headers["content-type"], "application/json");
    }

    assert_eq!(chargeapi_calls(&app).await, 1, "a replay never calls upstream");
    let (_, stored) = app.get_cancellation(original["id"].as_str().unwrap()).await;
    assert_eq!(stored["attempts"], 1);
}

#[tokio::test]
async fn same_key_with_another_body_is_422_idempotency_key_reused() {
    let app = spawn_app().await;
    mount_cancelled(&app, Duration::ZERO).await;
    let body = json!({"provider": "chargeapi", "reference": REF}).to_string();
    let (status, _, _) = post(&app, DEMO_KEY, Some("key-2"), &body).await;
    assert_eq!(status, 200);

    for other in [
        json!({"provider": "chargeapi", "reference": "res_another01"}),
        json!({"provider": "chargeapi", "reference": REF, "reason": "Customer changed plans"}),
        json!({"provider": "chargeapi", "reference": REF, "metadata": {"order_id": "A-1"}}),
    ] {
        let (status, headers, problem) = post(&app, DEMO_KEY, Some("key-2"), &other.to_string()).await;
        assert_problem(status, &headers, &problem, 422, "idempotency_key_reused");
        assert_eq!(problem["param"], "Idempotency-Key", "{problem:#}");
    }
    assert_eq!(chargeapi_calls(&app).await, 1);
}

#[tokio::test]
async fn same_key_while_in_flight_is_409_and_is_not_stored_under_the_key() {
    let app = spawn_patient_app().await;
    mount_cancelled(&app, Duration::from_millis(800)).await;
    let body = json!({"provider": "chargeapi", "reference": REF}).to_string();

    let first = post(&app, DEMO_KEY, Some("key-3"), &body);
    let second = async {
        // Once the first request holds the key (its upstream call is in flight).
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while chargeapi_calls(&app).await == 0 {
            assert!(std::time::Instant::now() < deadline, "the first request never reached upstream");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        post(&app, DEMO_KEY, Some("key-3"), &body).await
    };
    let ((status, _, original), (busy_status, busy_headers, busy)) = tokio::join!(first, second);

    assert_eq!(status, 200, "{original:#}");
    assert_problem(busy_status, &busy_headers, &busy, 409, "request_in_progress");
    assert_eq!(busy_headers["retry-after"], "1");
    // The 409 was not stored: the retry replays the first request's final answer.
    let (status, _, replay) = post(&app, DEMO_KEY, Some("key-3"), &body).await;
    assert_eq!(status, 200, "{replay:#}");
    assert_eq!(replay, with_replayed(&original, true));
    assert_eq!(chargeapi_calls(&app).await, 1);
}

#[tokio::test]
async fn keys_are_per_client() {
    let config = tempfile::tempdir().unwrap();
    copy_dir(&config_dir(), config.path());
    let gateway_toml = config.path().join("gateway.toml");
    let mut text = std::fs::read_to_string(&gateway_toml).unwrap();
    text.push_str(&format!("\n[clients.other]\nkey_sha256 = \"{OTHER_KEY_SHA256}\"\nproviders = [\"chargeapi\"]\n"));
    std::fs::write(&gateway_toml, text).unwrap();
    let app = spawn_app_in(config.path(), HashMap::new()).await;
    mount_cancelled(&app, Duration::ZERO).await;

    let demo_body = json!({"provider": "chargeapi", "reference": "res_demo01"}).to_string();
    let other_body = json!({"provider": "chargeapi", "reference": "res_other01"}).to_string();
    let (status, _, demo) = post(&app, DEMO_KEY, Some("shared-key"), &demo_body).await;
    assert_eq!((status, &demo["replayed"]), (200, &json!(false)), "{demo:#}");
    // Another client, the same key, another body: not a reuse, a request of its own.
    let (status, _, other) = post(&app, OTHER_KEY, Some("shared-key"), &other_body).await;
    assert_eq!((status, &other["replayed"]), (200, &json!(false)), "{other:#}");
    assert_ne!(other["id"], demo["id"]);
    assert_eq!(other["reference"], "res_other01");
    // Each client's key replays its own request.
    let (_, _, demo_again) = post(&app, DEMO_KEY, Some("shared-key"), &demo_body).await;
    assert_eq!(demo_again, with_replayed(&demo, true));
    let (_, _, other_again) = post(&app, OTHER_KEY, Some("shared-key"), &other_body).await;
    assert_eq!(other_again, with_replayed(&other, true));
    // And each client's key is still checked against its own body.
    let (status, headers, problem) = post(&app, OTHER_KEY, Some("shared-key"), &demo_body).await;
    assert_problem(status, &headers, &problem, 422, "idempotency_key_reused");
    assert_eq!(chargeapi_calls(&app).await, 2);
}

#[tokio::test]
async fn a_replayed_failure_is_the_stored_problem_marked_replayed() {
    let app = spawn_app().await;
    let upstream_body = json!({"error": {"type": "invalid_request_error", "code": "resource_missing"}});
    Mock::given(method("POST"))
        .and(path(CANCEL_PATH))
        .respond_with(ResponseTemplate::new(404).set_body_json(upstream_body.clone()))
        .mount(app.upstreams.of("chargeapi"))
        .await;
    let body = json!({"provider": "chargeapi", "reference": REF}).to_string();

    let (status, headers, problem) = post(&app, DEMO_KEY, Some("key-4"), &body).await;
    assert_problem(status, &headers, &problem, 404, "not_found");
    assert_eq!(problem.get("replayed"), None, "{problem:#}");
    assert_eq!(problem["upstream"]["body"], upstream_body);

    let (status, headers, replay) = post(&app, DEMO_KEY, Some("key-4"), &body).await;
    assert_eq!(status, 404);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(replay, with_replayed(&problem, true), "the stored problem (its request id included) + replayed");
    assert_eq!(chargeapi_calls(&app).await, 1);
}

#[tokio::test]
async fn a_reference_cancelled_through_the_gateway_answers_the_original_cancellation() {
    let app = spawn_app().await;
    mount_cancelled(&app, Duration::ZERO).await;
    let (status, _, original) =
        post(&app, DEMO_KEY, None, &json!({"provider": "chargeapi", "reference": REF}).to_string()).await;
    assert_eq!(status, 200, "{original:#}");

    // Without a key, with another key, with other metadata: the reference decides.
    let other_request = json!({"provider": "chargeapi", "reference": REF, "metadata": {"order_id": "B-2"}}).to_string();
    for key in [None, Some("key-5")] {
        let (status, _, again) = post(&app, DEMO_KEY, key, &other_request).await;
        assert_eq!(status, 200, "{again:#}");
        assert_eq!(again, with_replayed(&original, true), "the ORIGINAL cancellation, same id");
    }
    assert_eq!(chargeapi_calls(&app).await, 1);
    let (_, _, page) = list(&app, "").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "no record for the replays: {page:#}");
}

#[tokio::test]
async fn a_failed_reference_may_be_cancelled_again_as_a_new_record() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .and(path(CANCEL_PATH))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "No such reservation"})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(app.upstreams.of("chargeapi"))
        .await;
    mount_cancelled(&app, Duration::ZERO).await;
    let body = json!({"provider": "chargeapi", "reference": REF}).to_string();

    let (status, headers, failed) = post(&app, DEMO_KEY, None, &body).await;
    assert_problem(status, &headers, &failed, 404, "not_found");
    let (status, _, cancelled) = post(&app, DEMO_KEY, None, &body).await;
    assert_eq!(status, 200, "{cancelled:#}");
    assert_eq!(cancelled["replayed"], false);
    assert_ne!(cancelled["id"], failed["cancellation_id"], "a new record");

    let (_, failed_record) = app.get_cancellation(failed["cancellation_id"].as_str().unwrap()).await;
    assert_eq!(failed_record["status"], "failed");
    assert_eq!(failed_record["error"]["code"], "not_found");
    assert_eq!(chargeapi_calls(&app).await, 2);
}

#[tokio::test]
async fn get_returns_the_stored_cancellation_and_404_for_unknown_ids() {
    let app = spawn_app().await;
    mount_cancelled(&app, Duration::ZERO).await;
    let (_, _, created) = post(
        &app,
        DEMO_KEY,
        None,
        &json!({"provider": "chargeapi", "reference": REF, "metadata": {"order_id": "A-1001"}}).to_string(),
    )
    .await;
    let (status, stored) = app.get_cancellation(created["id"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(stored, created);

    for unknown in ["can_01JD000000000000000000000", "nope", &"x".repeat(300)] {
        let response = app
            .client
            .get(app.url(&format!("/v1/cancellations/{unknown}")))
            .bearer_auth(DEMO_KEY)
            .send()
            .await
            .unwrap();
        let (status, headers, problem) = read(response).await;
        assert_problem(status, &headers, &problem, 404, "not_found");
    }
    let response = app.client.get(app.url("/v1/cancellations/nope")).send().await.unwrap();
    let (status, headers, problem) = read(response).await;
    assert_problem(status, &headers, &problem, 401, "unauthorized");
}

#[tokio::test]
async fn the_listing_is_newest_first_paginated_and_filtered() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .and(path("/v1/reservations/res_list3/cancel"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "No such reservation"})))
        .with_priority(1)
        .mount(app.upstreams.of("chargeapi"))
        .await;
    mount_cancelled(&app, Duration::ZERO).await;
    let mut created = Vec::new();
    for n in 0..5 {
        let body = json!({"provider": "chargeapi", "reference": format!("res_list{n}")}).to_string();
        let (_, _, answer) = post(&app, DEMO_KEY, None, &body).await;
        let id = answer["id"].as_str().or(answer["cancellation_id"].as_str()).unwrap().to_owned();
        created.push(app.get_cancellation(&id).await.1);
    }
    let newest_first: Vec<Value> = created.iter().rev().cloned().collect();
    let ids = |data: &Value| -> Vec<String> {
        data["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
    };
    let ids_of =
        |records: &[Value]| -> Vec<String> { records.iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect() };

    // Everything, newest first, each item the stored Cancellation.
    let (status, _, page) = list(&app, "").await;
    assert_eq!(status, 200, "{page:#}");
    assert_eq!(page["object"], "list");
    assert_eq!(page["has_more"], false);
    assert_eq!(page["data"], json!(newest_first));

    // Pages of two, following the cursor.
    let mut seen = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let (status, _, page) = list(&app, &query).await;
        assert_eq!(status, 200, "{page:#}");
        let page_ids = ids(&page);
        assert!(page_ids.len() <= 2);
        seen.extend(page_ids.clone());
        if page["has_more"] == false {
            break;
        }
        query = format!("?limit=2&starting_after={}", page_ids.last().unwrap());
    }
    assert_eq!(seen, ids_of(&newest_first));

    // Filters.
    let (_, _, page) = list(&app, "?status=failed").await;
    assert_eq!(ids(&page), vec![created[3]["id"].as_str().unwrap().to_owned()]);
    let (_, _, page) = list(&app, "?status=cancelled&limit=100").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 4);
    let (_, _, page) = list(&app, "?reference=res_list1").await;
    assert_eq!(ids(&page), vec![created[1]["id"].as_str().unwrap().to_owned()]);
    let (_, _, page) = list(&app, "?provider=chargeapi&account=default").await;
    assert_eq!(ids(&page), ids_of(&newest_first));
    for empty in ["?provider=frontpayment", "?account=other", "?reference=res_none", "?status=processing"] {
        let (status, _, page) = list(&app, empty).await;
        assert_eq!((status, page["data"].clone(), page["has_more"].clone()), (200, json!([]), json!(false)), "{empty}");
    }
    // Time bounds. The API shows milliseconds and stores microseconds; at millisecond bounds
    // "shown < bound" is exactly "stored < bound", so the expectation is computed from what is shown.
    let bound = created[2]["created_at"].as_str().unwrap().to_owned();
    let before: Vec<Value> =
        newest_first.iter().filter(|c| c["created_at"].as_str().unwrap() < bound.as_str()).cloned().collect();
    let from: Vec<Value> =
        newest_first.iter().filter(|c| c["created_at"].as_str().unwrap() >= bound.as_str()).cloned().collect();
    assert!(from.iter().any(|c| c["id"] == created[2]["id"]));
    let (_, _, page) = list(&app, &format!("?created_lt={bound}")).await;
    assert_eq!(ids(&page), ids_of(&before));
    let (_, _, page) = list(&app, &format!("?created_gte={bound}")).await;
    assert_eq!(ids(&page), ids_of(&from));
    let (_, _, page) = list(&app, &format!("?created_gte={bound}&created_lt={bound}")).await;
    assert_eq!(page["data"], json!([]));

    // Refusals name the parameter.
    for (query, param) in [
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=ten", "limit"),
        ("?limit=-1", "limit"),
        ("?starting_after=can_unknown", "starting_after"),
        ("?created_gte=yesterday", "created_gte"),
        ("?created_lt=2026-13-01T00:00:00Z", "created_lt"),
        ("?status=done", "status"),
    ] {
        let (status, headers, problem) = list(&app, query).await;
        assert_problem(status, &headers, &problem, 400, "invalid_request");
        assert_eq!(problem["param"], param, "{query}: {problem:#}");
    }
    let (status, _, page) = list(&app, "?limit=1").await;
    assert_eq!(
        (status, ids(&page), page["has_more"].clone()),
        (200, vec![ids_of(&newest_first)[0].clone()], json!(true))
    );
    let (status, _, page) = list(&app, "?limit=100").await;
    assert_eq!((status, page["data"].as_array().unwrap().len()), (200, 5));
}

#[tokio::test]
async fn a_restricted_client_lists_only_what_it_may_use_in_full_pages() {
    // The second client may use only chargeapi's `default` account; lists come from the
    // environment as comma-separated values.
    let env = HashMap::from([
        ("CANCELGATE__CLIENTS__OTHER__KEY_SHA256".to_owned(), OTHER_KEY_SHA256.to_owned()),
        ("CANCELGATE__CLIENTS__OTHER__PROVIDERS".to_owned(), "chargeapi/default".to_owned()),
    ]);
    let app = crate::helpers::spawn_app_with(env).await;
    mount_cancelled(&app, Duration::ZERO).await;
    Mock::given(method("POST"))
        .and(path("/api/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"status": "cancelled"}})))
        .mount(app.upstreams.of("accommodation"))
        .await;
    // Interleaved: chargeapi, accommodation, chargeapi, accommodation, ...
    for n in 0..4 {
        for body in [
            json!({"provider": "chargeapi", "reference": format!("res_list{n}")}),
            json!({"provider": "accommodation", "reference": format!("BK_LIST_{n}")}),
        ] {
            let (status, _, answer) = post(&app, DEMO_KEY, None, &body.to_string()).await;
            assert_eq!(status, 200, "{answer:#}");
        }
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let response = app
            .client
            .get(app.url(&format!("/v1/cancellations?limit=2{cursor}")))
            .bearer_auth(OTHER_KEY)
            .send()
            .await
            .unwrap();
        let (status, _, page) = read(response).await;
        assert_eq!(status, 200, "{page:#}");
        let data = page["data"].as_array().unwrap();
        assert!(data.iter().all(|c| c["provider"] == "chargeapi"), "{page:#}");
        seen.extend(data.iter().map(|c| c["reference"].as_str().unwrap().to_owned()));
        if page["has_more"] != true {
            break;
        }
        assert_eq!(data.len(), 2, "a page is full while more follow: {page:#}");
        cursor = format!("&starting_after={}", data[1]["id"].as_str().unwrap());
    }
    assert_eq!(seen, ["res_list3", "res_list2", "res_list1", "res_list0"]);
}

/// The IETF draft sends the key as a structured-field string: `"abc"` is the key `abc`, so a
/// retry in either form replays; a malformed quoted key, or two keys, are refused before anything.
#[tokio::test]
async fn a_quoted_idempotency_key_is_the_same_key_and_two_keys_are_refused() {
    let app = spawn_app().await;
    mount_cancelled(&app, Duration::ZERO).await;
    let body = json!({"provider": "chargeapi", "reference": REF}).to_string();
    let (status, _, original) = post(&app, DEMO_KEY, Some("order-77/cancel"), &body).await;
    assert_eq!(status, 200, "{original:#}");
    for same in [r#""order-77/cancel""#, "order-77/cancel"] {
        let (status, _, replay) = post(&app, DEMO_KEY, Some(same), &body).await;
        assert_eq!((status, &replay["id"], &replay["replayed"]), (200, &original["id"], &json!(true)), "{same}");
    }
    // Escapes are decoded: `"a\"b"` is the key `a"b`, which another body then cannot reuse.
    let (status, _, first) = post(
        &app,
        DEMO_KEY,
        Some(r#""a\"b""#),
        &json!({"provider": "chargeapi", "reference": "res_quoted01"}).to_string(),
    )
    .await;
    assert_eq!((status, &first["replayed"]), (200, &json!(false)), "{first:#}");
    let (status, h, problem) = post(&app, DEMO_KEY, Some(r#"a"b"#), &body).await;
    assert_problem(status, &h, &problem, 422, "idempotency_key_reused");

    for bad in [r#""abc"#, r#""a"b""#, r#""a\b""#, r#""""#] {
        let (status, h, problem) = post(&app, DEMO_KEY, Some(bad), &body).await;
        assert_problem(status, &h, &problem, 400, "invalid_request");
        assert_eq!(problem["param"], "Idempotency-Key", "{bad}: {problem:#}");
    }
    let request = app
        .client
        .post(app.url("/v1/cancellations"))
        .bearer_auth(DEMO_KEY)
        .header("content-type", "application/json")
        .header("idempotency-key", "first")
        .header("idempotency-key", "second")
        .body(json!({"provider": "chargeapi", "reference": "res_twokeys01"}).to_string());
    let (status, h, problem) = read(request.send().await.unwrap()).await;
    assert_problem(status, &h, &problem, 400, "invalid_request");
    assert_eq!(problem["param"], "Idempotency-Key", "{problem:#}");
    assert_eq!(chargeapi_calls(&app).await, 2, "the first cancel and the quoted one: nothing else was sent");
}

/// A replay answers the new request: its `X-Request-Id` header is this request's id, while the
/// replayed body is the stored one, `request_id` included (the id of the request that made it).
#[tokio::test]
async fn a_replay_has_the_new_request_id_in_its_header_and_the_original_in_its_body() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .and(path(CANCEL_PATH))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": {"code": "resource_missing"}})))
        .mount(app.upstreams.of("chargeapi"))
        .await;
    let body = json!({"provider": "chargeapi", "reference": REF}).to_string();
    let send = |request_id: &'static str| {
        app.client
            .post(app.url("/v1/cancellations"))
            .bearer_auth(DEMO_KEY)
            .header("content-type", "application/json")
            .header("idempotency-key", "key-request-id")
            .header("x-request-id", request_id)
            .body(body.clone())
            .send()
    };
    let (status, h, original) = read(send("req-original-1").await.unwrap()).await;
    assert_problem(status, &h, &original, 404, "not_found");
    assert_eq!(original["request_id"], "req-original-1");

    let (status, h, replay) = read(send("req-retry-2").await.unwrap()).await;
    assert_eq!((status, &replay["replayed"]), (404, &json!(true)), "{replay:#}");
    assert_eq!(h["x-request-id"], "req-retry-2", "the header identifies this request");
    assert_eq!(replay["request_id"], "req-original-1", "the body is the stored answer");
    assert_eq!(chargeapi_calls(&app).await, 1);
}
