//! Operator actions (SPEC §9) over real HTTP, on the sandbox: a cancellation in `needs_review` is
//! listed with its attempts, resolved (once, with who/when/why), retried where the provider's
//! repeated cancel is safe, and re-checked automatically; a client without `operate` changes
//! nothing.

use std::time::{Duration, Instant};

use cancelgate_sandbox::{Fault, FaultRule, SimulatedProvider, bench_reference};
use serde_json::{Value, json};

use crate::helpers::{DEMO_KEY, SandboxApp, assert_problem, in_review, read, spawn_on_sandbox};

/// A client with the default scopes (`cancel`, `read`): no `operate`.
const PLAIN_KEY: &str = "cg_plain_operator_test_key";

async fn spawn(extra: &[(&str, &str)]) -> SandboxApp {
    let hash = cancelgate_gateway::clients::sha256_hex(PLAIN_KEY);
    let mut env =
        vec![("CANCELGATE__CLIENTS__PLAIN__KEY_SHA256", hash.as_str()), ("CANCELGATE__CLIENTS__PLAIN__PROVIDERS", "*")];
    env.extend_from_slice(extra);
    spawn_on_sandbox(&env).await
}

async fn post(app: &SandboxApp, key: &str, path: &str, body: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let request = app.client.post(app.url(path)).bearer_auth(key).header("content-type", "application/json");
    read(request.body(body.to_owned()).send().await.unwrap()).await
}

async fn get(app: &SandboxApp, path: &str) -> Value {
    let (status, _, body) = read(app.client.get(app.url(path)).bearer_auth(DEMO_KEY).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body:#}");
    body
}

/// ChargeAPI never answers in time: its attempts run out after ambiguous ones.
async fn chargeapi_in_review(app: &SandboxApp, n: u64) -> (Value, String) {
    let p = SimulatedProvider::ChargeApi;
    let reference = bench_reference(p, n);
    app.sandbox.inject(p, FaultRule::reference(reference.clone(), Fault::Hang { ms: Some(1_000) }));
    let (status, _, body) = app.cancel(p.id(), &reference).await;
    let record = app.settle(status, &body).await;
    assert_eq!((record["status"].as_str(), &record["attempts"]), (Some("needs_review"), &json!(2)), "{record:#}");
    (record, reference)
}

#[tokio::test]
async fn a_review_is_listed_with_its_attempts_and_resolved_once() {
    let app = spawn(&[]).await;
    let review = in_review(&app, 31).await;
    let id = review["id"].as_str().unwrap();
    assert_eq!(review["resolution"], Value::Null);
    let sent = app.sandbox.total_cancel_requests(SimulatedProvider::FrontPayment);

    let attempts = get(&app, &format!("/v1/cancellations/{id}/attempts")).await;
    assert_eq!(attempts["object"], "list");
    let data = attempts["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{attempts:#}");
    assert_eq!(data.iter().map(|a| a["n"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2], "oldest first");
    assert_eq!((data[0]["outcome"].as_str(), &data[0]["http_status"]), (Some("ambiguous"), &Value::Null));
    assert!(data[0]["error"].is_string() && data[0]["latency_ms"].is_u64(), "{attempts:#}");
    assert!(data[1]["http_status"].is_u64() && !data[1]["body"].is_null(), "the provider's answer: {attempts:#}");
    assert!(data.iter().all(|a| a["started_at"].is_string() && a["finished_at"].is_string()));

    // Without `operate`: 403, and nothing changed.
    let path = format!("/v1/cancellations/{id}/resolve");
    let good = r#"{"status": "cancelled", "note": "Front Payment support confirmed the cancellation."}"#;
    let (status, h, problem) = post(&app, PLAIN_KEY, &path, good).await;
    assert_problem(status, &h, &problem, 403, "forbidden");
    let (status, h, problem) = post(&app, PLAIN_KEY, &format!("/v1/cancellations/{id}/retry"), "").await;
    assert_problem(status, &h, &problem, 403, "forbidden");
    let unchanged = get(&app, &format!("/v1/cancellations/{id}")).await;
    assert_eq!((unchanged["status"].as_str(), &unchanged["resolution"]), (Some("needs_review"), &Value::Null));
    assert_eq!(unchanged["updated_at"], review["updated_at"]);

    // A strict body: unknown and repeated members, a missing or empty note.
    for (body, param) in [
        (r#"{"status": "cancelled", "note": "x", "by": "me"}"#, "by"),
        (r#"{"status": "cancelled", "note": "x", "note": "y"}"#, "note"),
        (r#"{"status": "cancelled"}"#, "note"),
        (r#"{"status": "cancelled", "note": ""}"#, "note"),
        (r#"{"status": "processing", "note": "x"}"#, "status"),
    ] {
        let (status, h, problem) = post(&app, DEMO_KEY, &path, body).await;
        assert_problem(status, &h, &problem, 400, "invalid_request");
        assert_eq!(problem["param"], param, "{body}: {problem:#}");
    }

    // Front Payment's repeated cancel is not safe: no retry.
    let (status, h, problem) = post(&app, DEMO_KEY, &format!("/v1/cancellations/{id}/retry"), "{}").await;
    assert_problem(status, &h, &problem, 409, "not_resolvable");
    assert_eq!(problem["cancellation_id"], id);

    let before = Instant::now();
    let (status, _, resolved) = post(&app, DEMO_KEY, &path, good).await;
    assert_eq!(status, 200, "{resolved:#}");
    assert_eq!((resolved["status"].as_str(), resolved["replayed"].as_bool()), (Some("cancelled"), Some(false)));
    assert_eq!(resolved["attempts"], review["attempts"], "a resolution sends nothing");
    assert!(resolved["cancelled_at"].is_string() && resolved["error"].is_null(), "{resolved:#}");
    let resolution = &resolved["resolution"];
    assert_eq!(resolution["by"], "demo");
    assert_eq!(resolution["note"], "Front Payment support confirmed the cancellation.");
    assert_eq!((resolution["status"].as_str(), &resolution["at"]), (Some("cancelled"), &resolved["cancelled_at"]));
    assert!(before.elapsed() < Duration::from_secs(5));
    assert_eq!(get(&app, &format!("/v1/cancellations/{id}")).await["resolution"], *resolution);

    // The same body again: the record, replayed. Anything else: 409, unchanged.
    let (status, _, again) = post(&app, DEMO_KEY, &path, good).await;
    assert_eq!((status, again["replayed"].as_bool(), &again["resolution"]), (200, Some(true), resolution));
    for other in [
        r#"{"status": "failed", "note": "Front Payment support confirmed the cancellation."}"#,
        r#"{"status": "cancelled", "note": "another note"}"#,
    ] {
        let (status, h, problem) = post(&app, DEMO_KEY, &path, other).await;
        assert_problem(status, &h, &problem, 409, "not_resolvable");
        assert!(problem["detail"].as_str().unwrap().contains("not awaiting review"), "{problem:#}");
    }
    assert_eq!(get(&app, &format!("/v1/cancellations/{id}")).await["resolution"], *resolution);
    assert_eq!(app.sandbox.total_cancel_requests(SimulatedProvider::FrontPayment), sent, "nothing was sent");

    // A record that never needed review is not resolvable; an unknown id is not found.
    let (status, _, done) = app.cancel("accommodation", "BK_EXAMPLE_001").await;
    assert_eq!(status, 200, "{done:#}");
    let done_path = format!("/v1/cancellations/{}/resolve", done["id"].as_str().unwrap());
    let (status, h, problem) = post(&app, DEMO_KEY, &done_path, good).await;
    assert_problem(status, &h, &problem, 409, "not_resolvable");
    let (status, h, problem) = post(&app, DEMO_KEY, "/v1/cancellations/can_unknown/resolve", good).await;
    assert_problem(status, &h, &problem, 404, "not_found");
    let (status, _, _) = read(
        app.client.get(app.url("/v1/cancellations/can_unknown/attempts")).bearer_auth(DEMO_KEY).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_reference_resolved_failed_can_be_cancelled_again() {
    let app = spawn(&[]).await;
    let review = in_review(&app, 32).await;
    let id = review["id"].as_str().unwrap();
    let body = r#"{"status": "failed", "note": "The traveller kept the booking (phone call)."}"#;
    let (status, _, failed) = post(&app, DEMO_KEY, &format!("/v1/cancellations/{id}/resolve"), body).await;
    assert_eq!(status, 200, "{failed:#}");
    assert_eq!((failed["status"].as_str(), &failed["cancelled_at"]), (Some("failed"), &Value::Null));
    let error = &failed["error"];
    assert_eq!(
        (error["code"].as_str(), error["reason"].as_str()),
        (Some("not_cancellable"), Some("resolved_by_operator"))
    );
    assert_eq!(error["detail"], "The traveller kept the booking (phone call).");
    assert_eq!((error["cancellation_id"].as_str(), error["status"].as_u64()), (Some(id), Some(409)));
    assert_eq!(failed["resolution"]["status"], "failed");

    // As for any failed reference, a new cancellation (a new record) may be made.
    let (_, _, again) = app.cancel("frontpayment", review["reference"].as_str().unwrap()).await;
    let new_id = again.get("id").or_else(|| again.get("cancellation_id")).and_then(Value::as_str).unwrap();
    assert_ne!(new_id, id, "{again:#}");
    assert_eq!(get(&app, &format!("/v1/cancellations/{id}")).await["status"], "failed", "the resolved one stays");
}

#[tokio::test]
async fn a_retry_drives_a_repeat_safe_review_to_its_end() {
    let app = spawn(&[
        ("CANCELGATE__PROVIDERS__CHARGEAPI__RETRY__MAX_ATTEMPTS", "2"),
        ("CANCELGATE__PROVIDERS__CHARGEAPI__REVIEW_RECHECK_S", ""),
    ])
    .await;
    let (review, _) = chargeapi_in_review(&app, 33).await;
    let id = review["id"].as_str().unwrap();
    assert_eq!(review["error"]["code"], "upstream_timeout", "{review:#}");
    // The provider is back.
    app.sandbox.clear_faults();
    let retry = format!("/v1/cancellations/{id}/retry");
    let (status, headers, processing) = post(&app, DEMO_KEY, &retry, "").await;
    assert_eq!((status, processing["status"].as_str()), (202, Some("processing")), "{processing:#}");
    assert_eq!(headers["location"], format!("/v1/cancellations/{id}"));
    assert_eq!(processing["error"], Value::Null);
    let done = app.wait_final(id).await;
    assert_eq!((done["status"].as_str(), &done["attempts"]), (Some("cancelled"), &json!(3)), "{done:#}");
    assert_eq!(done["resolution"], Value::Null, "settled by the provider, not an operator");
    let attempts = get(&app, &format!("/v1/cancellations/{id}/attempts")).await;
    let outcomes: Vec<_> = attempts["data"].as_array().unwrap().iter().map(|a| a["outcome"].clone()).collect();
    assert_eq!(outcomes, [json!("ambiguous"), json!("ambiguous"), json!("cancelled")]);
    // Once settled, neither a retry nor a resolution applies.
    let (status, h, problem) = post(&app, DEMO_KEY, &retry, "").await;
    assert_problem(status, &h, &problem, 409, "not_resolvable");
    let (status, h, problem) = post(&app, DEMO_KEY, &retry, r#"{"force": true}"#).await;
    assert_problem(status, &h, &problem, 400, "invalid_request");
}

#[tokio::test]
async fn a_repeat_safe_review_is_rechecked_until_the_provider_tells() {
    let app = spawn(&[
        ("CANCELGATE__PROVIDERS__CHARGEAPI__RETRY__MAX_ATTEMPTS", "2"),
        ("CANCELGATE__PROVIDERS__CHARGEAPI__REVIEW_RECHECK_S", "1,1"),
    ])
    .await;
    let (review, _) = chargeapi_in_review(&app, 34).await;
    let id = review["id"].as_str().unwrap();
    // The first re-check still hears nothing: back in review, nothing guessed.
    let deadline = Instant::now() + Duration::from_secs(15);
    let rechecked = loop {
        let record = get(&app, &format!("/v1/cancellations/{id}")).await;
        if record["status"] == "needs_review" && record["attempts"] == 4 {
            break record;
        }
        assert!(record["status"] == "needs_review" || record["status"] == "processing", "{record:#}");
        assert!(Instant::now() < deadline, "not re-checked: {record:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(rechecked["error"]["code"], "upstream_timeout", "its evidence: {rechecked:#}");
    // The provider is back: the next re-check settles it.
    app.sandbox.clear_faults();
    let deadline = Instant::now() + Duration::from_secs(15);
    let done = loop {
        let record = get(&app, &format!("/v1/cancellations/{id}")).await;
        if record["status"] == "cancelled" {
            break record;
        }
        assert!(Instant::now() < deadline, "not settled by the re-check: {record:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((done["attempts"].as_u64(), &done["resolution"]), (Some(5), &Value::Null), "{done:#}");
}

#[tokio::test]
async fn without_a_schedule_a_review_stays_in_review() {
    let app = spawn(&[
        ("CANCELGATE__PROVIDERS__CHARGEAPI__RETRY__MAX_ATTEMPTS", "2"),
        ("CANCELGATE__PROVIDERS__CHARGEAPI__REVIEW_RECHECK_S", ""),
    ])
    .await;
    let (review, _) = chargeapi_in_review(&app, 35).await;
    app.sandbox.clear_faults();
    // Two background polls (1 s each) later, nothing has touched it.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let record = get(&app, &format!("/v1/cancellations/{}", review["id"].as_str().unwrap())).await;
    assert_eq!((record["status"].as_str(), &record["attempts"]), (Some("needs_review"), &json!(2)), "{record:#}");
}
