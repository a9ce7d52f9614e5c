//! SPEC §10: trip cancellation. A batch of items, each its own durable Cancellation, through the
//! sandbox over real HTTP; concurrency within the per-provider limits; a kill -9 mid-batch.

use std::time::{Duration, Instant};

use cancelgate_sandbox::{Fault, FaultRule, Sandbox, SandboxConfig, SimulatedProvider, bench_reference, seeds};
use serde_json::{Value, json};

use crate::helpers::{DEMO_KEY, SandboxApp, assert_problem, read, spawn_on_sandbox};
use crate::process::{Gateway, sandbox_env};

fn trip() -> Value {
    json!({"items": [
        {"provider": "chargeapi", "reference": seeds::CHARGEAPI_CONFIRMED},
        {"provider": "frontpayment", "reference": seeds::FRONTPAYMENT_RESERVED, "reason": "Trip cancelled"},
        {"provider": "accommodation", "reference": seeds::ACCOMMODATION_CANCELLABLE, "language": "EN"},
    ], "metadata": {"trip_id": "T-9"}})
}

async fn post_batch(
    client: &reqwest::Client,
    base: &str,
    body: &Value,
    key: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = client.post(format!("{base}/v1/cancellation-batches")).bearer_auth(DEMO_KEY).json(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    read(request.timeout(Duration::from_secs(30)).send().await.unwrap()).await
}

async fn batch(app: &SandboxApp, body: &Value, key: Option<&str>) -> (u16, reqwest::header::HeaderMap, Value) {
    post_batch(&app.client, &app.url(""), body, key).await
}

async fn get_batch(client: &reqwest::Client, base: &str, id: &str) -> Value {
    let response = client.get(format!("{base}/v1/cancellation-batches/{id}")).bearer_auth(DEMO_KEY).send().await;
    let (status, _, body) = read(response.unwrap()).await;
    assert_eq!(status, 200, "{body:#}");
    body
}

/// Polls the batch until no item is processing (at most `within`).
async fn batch_until_settled(client: &reqwest::Client, base: &str, id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let body = get_batch(client, base, id).await;
        if body["status"] != "processing" {
            return body;
        }
        assert!(Instant::now() < deadline, "still processing after {within:?}: {body:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn total_sent(sandbox: &Sandbox) -> u64 {
    SimulatedProvider::ALL.iter().map(|p| sandbox.total_cancel_requests(*p)).sum()
}

fn item(body: &Value, i: usize) -> &Value {
    &body["items"][i]
}

#[tokio::test]
async fn a_trip_at_three_providers_all_cancelled_is_completed() {
    let app = spawn_on_sandbox(&[]).await;
    let (status, headers, body) = batch(&app, &trip(), None).await;
    assert_eq!(status, 200, "{body:#}");
    assert!(!headers.contains_key("location"));
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("cb_") && id.len() == 29, "{id}");
    assert_eq!((body["object"].as_str(), body["status"].as_str()), (Some("cancellation_batch"), Some("completed")));
    assert_eq!((body["metadata"].clone(), body["replayed"].clone()), (json!({"trip_id": "T-9"}), json!(false)));
    for (i, provider) in ["chargeapi", "frontpayment", "accommodation"].into_iter().enumerate() {
        let it = item(&body, i);
        assert_eq!((it["index"].as_u64(), &it["error"]), (Some(i as u64), &Value::Null), "{it:#}");
        let c = &it["cancellation"];
        assert_eq!((c["provider"].as_str(), c["status"].as_str()), (Some(provider), Some("cancelled")), "{c:#}");
        assert_eq!((c["batch_id"].as_str(), c["replayed"].as_bool()), (Some(id), Some(false)));
        // Each item is its own Cancellation, readable on its own.
        let (s, single) = get_cancellation(&app, c["id"].as_str().unwrap()).await;
        assert_eq!((s, single["batch_id"].as_str(), single["status"].as_str()), (200, Some(id), Some("cancelled")));
    }
    assert_eq!(total_sent(&app.sandbox), 3);
    assert_eq!(get_batch(&app.client, &app.url(""), id).await["items"], body["items"], "as stored");
    // A single cancel has `batch_id: null`.
    let (_, _, single) = app.cancel("chargeapi", &bench_reference(SimulatedProvider::ChargeApi, 1)).await;
    assert_eq!(single["batch_id"], Value::Null, "{single:#}");
    assert!(single.as_object().unwrap().contains_key("batch_id"));
}

async fn get_cancellation(app: &SandboxApp, id: &str) -> (u16, Value) {
    let response =
        app.client.get(app.url(&format!("/v1/cancellations/{id}"))).bearer_auth(DEMO_KEY).send().await.unwrap();
    let (status, _, body) = read(response).await;
    (status, body)
}

#[tokio::test]
async fn one_refusal_is_partially_failed_with_that_items_problem() {
    let app = spawn_on_sandbox(&[]).await;
    let body = json!({"items": [
        {"provider": "chargeapi", "reference": seeds::CHARGEAPI_CONFIRMED},
        {"provider": "accommodation", "reference": seeds::ACCOMMODATION_PAST_CHECK_IN},
    ]});
    let (status, _, body) = batch(&app, &body, None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("partially_failed")), "{body:#}");
    assert_eq!(item(&body, 0)["cancellation"]["status"], "cancelled");
    // The refused item is a recorded, failed Cancellation carrying the provider's refusal.
    let refused = &item(&body, 1)["cancellation"];
    assert_eq!(refused["status"], "failed", "{body:#}");
    assert_eq!(
        (refused["error"]["code"].as_str(), refused["error"]["reason"].as_str()),
        (Some("not_cancellable"), Some("past_check_in"))
    );
}

#[tokio::test]
async fn every_item_refused_is_failed() {
    let app = spawn_on_sandbox(&[]).await;
    let body = json!({"items": [
        {"provider": "chargeapi", "reference": seeds::CHARGEAPI_COMPLETED},
        {"provider": "accommodation", "reference": seeds::ACCOMMODATION_NON_REFUNDABLE},
    ]});
    let (status, _, body) = batch(&app, &body, None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("failed")), "{body:#}");
    for i in 0..2 {
        assert_eq!(item(&body, i)["cancellation"]["status"], "failed", "{body:#}");
        assert_eq!(item(&body, i)["cancellation"]["error"]["code"], "not_cancellable");
    }
}

#[tokio::test]
async fn an_item_hung_past_respond_within_ms_is_a_202_and_settles_later() {
    let app = spawn_on_sandbox(&[
        ("CANCELGATE__LIMITS__RESPOND_WITHIN_MS", "400"),
        ("CANCELGATE__PROVIDERS__ACCOMMODATION__TIMEOUT_MS", "5000"),
    ])
    .await;
    let slow = seeds::ACCOMMODATION_CANCELLABLE;
    app.sandbox.inject(
        SimulatedProvider::Accommodation,
        FaultRule::reference(slow, Fault::latency(Duration::from_millis(1500))).times(1),
    );
    let started = Instant::now();
    let (status, headers, body) = batch(&app, &trip(), None).await;
    let took = started.elapsed();
    assert_eq!((status, body["status"].as_str()), (202, Some("processing")), "{body:#}");
    assert!(took < Duration::from_millis(1000), "answered at the deadline, not with the slow item: {took:?}");
    let id = body["id"].as_str().unwrap();
    assert_eq!(headers["location"], format!("/v1/cancellation-batches/{id}"));
    assert_eq!(item(&body, 0)["cancellation"]["status"], "cancelled");
    assert_eq!(item(&body, 2)["cancellation"]["status"], "processing");
    let settled = batch_until_settled(&app.client, &app.url(""), id, Duration::from_secs(10)).await;
    assert_eq!(settled["status"], "completed", "{settled:#}");
    assert_eq!(item(&settled, 2)["cancellation"]["status"], "cancelled");
    assert_eq!(total_sent(&app.sandbox), 3);
}

#[tokio::test]
async fn an_invalid_item_or_a_duplicate_is_a_400_and_nothing_is_sent_or_recorded() {
    let app = spawn_on_sandbox(&[]).await;
    let ok = |r: &str| json!({"provider": "chargeapi", "reference": r});
    let cases = [
        (
            json!({"items": [ok("res_a1"), ok("res_a2"), {"provider": "chargeapi", "reference": "not-a-res"}]}),
            "items[2].reference",
        ),
        (
            json!({"items": [ok("res_a1"), {"provider": "chargeapi", "reference": "res_a2", "refrence": "x"}]}),
            "items[1].refrence",
        ),
        (json!({"items": [ok("res_a1"), {"provider": "acme", "reference": "res_a2"}]}), "items[1].provider"),
        (json!({"items": [ok("res_a1"), 5]}), "items[1]"),
        (json!({"items": []}), "items"),
        (json!({"items": [ok("res_a1")], "extra": 1}), "extra"),
        (json!({"items": [ok("res_a1"), ok("res_a1")]}), "items[1]"),
        // `account` defaults to `default`: the same reservation.
        (
            json!({"items": [ok("res_a1"), {"provider": "chargeapi", "reference": "res_a1", "account": "default"}]}),
            "items[1]",
        ),
        (json!({"items": (0..51).map(|i| ok(&format!("res_n{i}"))).collect::<Vec<_>>()}), "items"),
    ];
    for (body, param) in cases {
        let (status, headers, answer) = batch(&app, &body, None).await;
        assert_problem(status, &headers, &answer, 400, "invalid_request");
        assert_eq!(answer["param"], param, "{body}: {answer:#}");
    }
    // A repeated member inside an item, in the raw bytes.
    let raw = r#"{"items":[{"provider":"chargeapi","reference":"res_a1","reference":"res_a2"}]}"#;
    let response = app
        .client
        .post(app.url("/v1/cancellation-batches"))
        .bearer_auth(DEMO_KEY)
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    let (status, _, answer) = read(response).await;
    assert_eq!((status, answer["param"].as_str()), (400, Some("items[0].reference")), "{answer:#}");
    assert_eq!(total_sent(&app.sandbox), 0, "nothing sent");
    let response = app.client.get(app.url("/v1/cancellations")).bearer_auth(DEMO_KEY).send().await.unwrap();
    let (_, _, list) = read(response).await;
    assert_eq!(list["data"], json!([]), "nothing recorded");
}

#[tokio::test]
async fn a_replay_with_the_same_key_sends_nothing() {
    let app = spawn_on_sandbox(&[]).await;
    let (status, _, first) = batch(&app, &trip(), Some("trip-T-9")).await;
    assert_eq!((status, first["status"].as_str()), (200, Some("completed")), "{first:#}");
    // The same JSON value, members in another order.
    let mut reordered = trip();
    reordered.as_object_mut().unwrap().remove("items");
    reordered["items"] = trip()["items"].clone();
    let (status, _, again) = batch(&app, &reordered, Some("trip-T-9")).await;
    assert_eq!((status, again["id"].as_str(), again["replayed"].as_bool()), (200, first["id"].as_str(), Some(true)));
    assert_eq!(again["items"], first["items"]);
    assert_eq!(total_sent(&app.sandbox), 3, "the replay sent nothing");
    // Another body under the key.
    let mut other = trip();
    other["metadata"] = json!({"trip_id": "T-10"});
    let (status, headers, reused) = batch(&app, &other, Some("trip-T-9")).await;
    assert_problem(status, &headers, &reused, 422, "idempotency_key_reused");
    assert_eq!(total_sent(&app.sandbox), 3);
}

#[tokio::test]
async fn an_item_already_cancelled_through_the_gateway_is_answered_from_the_ledger() {
    let app = spawn_on_sandbox(&[]).await;
    let (status, _, earlier) = app.cancel("chargeapi", seeds::CHARGEAPI_CONFIRMED).await;
    assert_eq!(status, 200, "{earlier:#}");
    let (status, _, body) = batch(&app, &trip(), None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("completed")), "{body:#}");
    let c = &item(&body, 0)["cancellation"];
    assert_eq!((c["id"].as_str(), c["replayed"].as_bool()), (earlier["id"].as_str(), Some(true)), "{c:#}");
    assert_eq!(c["batch_id"], Value::Null, "the original cancellation, as it was");
    assert_eq!(app.sandbox.total_cancel_requests(SimulatedProvider::ChargeApi), 1, "not sent again");
    // And the batch keeps saying so.
    let stored = get_batch(&app.client, &app.url(""), body["id"].as_str().unwrap()).await;
    assert_eq!(stored["items"][0]["cancellation"]["id"], earlier["id"]);
}

#[tokio::test]
async fn three_items_of_300_ms_each_take_about_one_not_three() {
    let app = spawn_on_sandbox(&[
        ("CANCELGATE__PROVIDERS__CHARGEAPI__TIMEOUT_MS", "2000"),
        ("CANCELGATE__PROVIDERS__FRONTPAYMENT__TIMEOUT_MS", "2000"),
        ("CANCELGATE__PROVIDERS__ACCOMMODATION__TIMEOUT_MS", "2000"),
    ])
    .await;
    // Warm up (connections to each provider, the ledger's first writes): the figure is the batch's.
    let warm_up: Vec<_> = SimulatedProvider::ALL
        .iter()
        .map(|p| json!({"provider": p.id(), "reference": bench_reference(*p, 9)}))
        .collect();
    assert_eq!(batch(&app, &json!({"items": warm_up}), None).await.0, 200);
    for p in SimulatedProvider::ALL {
        app.sandbox.inject(p, FaultRule::share(1.0, Fault::latency(Duration::from_millis(300))));
    }
    let started = Instant::now();
    let (status, _, body) = batch(&app, &trip(), None).await;
    let took = started.elapsed();
    assert_eq!((status, body["status"].as_str()), (200, Some("completed")), "{body:#}");
    eprintln!("batch of three 300 ms items: {took:?}");
    // Whatever the machine's load: every item was in flight at once (each began before any ended).
    let times = |member: &str| -> Vec<String> {
        (0..3).map(|i| item(&body, i)["cancellation"][member].as_str().unwrap().to_owned()).collect()
    };
    let (began, ended) = (times("created_at"), times("updated_at"));
    assert!(began.iter().max() < ended.iter().min(), "items ran one after another: {began:?} {ended:?}");
    assert!(took < Duration::from_millis(800), "items run concurrently: {took:?}");
}

#[tokio::test]
async fn fifty_items_to_one_provider_respect_its_bulkhead() {
    let app = spawn_on_sandbox(&[
        ("CANCELGATE__PROVIDERS__CHARGEAPI__MAX_IN_FLIGHT", "4"),
        ("CANCELGATE__PROVIDERS__CHARGEAPI__TIMEOUT_MS", "3000"),
    ])
    .await;
    let p = SimulatedProvider::ChargeApi;
    app.sandbox.inject(p, FaultRule::share(1.0, Fault::latency(Duration::from_millis(400))));
    let items: Vec<_> = (0..50).map(|n| json!({"provider": "chargeapi", "reference": bench_reference(p, n)})).collect();
    let (status, _, body) = batch(&app, &json!({"items": items}), None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("partially_failed")), "{body:#}");
    let items = body["items"].as_array().unwrap();
    let cancelled = items.iter().filter(|i| i["cancellation"]["status"] == "cancelled").count();
    let shed: Vec<_> = items.iter().filter(|i| i["cancellation"].is_null()).collect();
    // At most 4 at a time, each 400 ms, while a shed item waits ~100 ms at most for room.
    assert!((1..=4).contains(&cancelled), "{cancelled} cancelled");
    assert_eq!(cancelled + shed.len(), 50, "every other item was shed, none recorded");
    for s in shed {
        assert_eq!(
            (s["error"]["code"].as_str(), s["error"]["status"].as_u64()),
            (Some("provider_unavailable"), Some(503)),
            "{s:#}"
        );
        assert_eq!(s["error"]["cancellation_id"], Value::Null, "no record");
    }
    assert_eq!(app.sandbox.total_cancel_requests(p), cancelled as u64, "nothing sent for a shed item");
}

#[tokio::test]
async fn fifty_items_to_one_provider_respect_its_rate_limit() {
    let app = spawn_on_sandbox(&[("CANCELGATE__PROVIDERS__CHARGEAPI__RATE_LIMIT__PER_SECOND", "5")]).await;
    let p = SimulatedProvider::ChargeApi;
    let items: Vec<_> = (0..50).map(|n| json!({"provider": "chargeapi", "reference": bench_reference(p, n)})).collect();
    let (status, _, body) = batch(&app, &json!({"items": items}), None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("partially_failed")), "{body:#}");
    let items = body["items"].as_array().unwrap();
    let cancelled = items.iter().filter(|i| i["cancellation"]["status"] == "cancelled").count();
    let limited = items.iter().filter(|i| i["error"]["code"] == "rate_limited").count();
    // The burst (one second's worth) and what refills while the batch runs.
    assert!((5..=7).contains(&cancelled), "{cancelled} cancelled");
    assert_eq!(cancelled + limited, 50, "{body:#}");
    assert_eq!(app.sandbox.total_cancel_requests(p), cancelled as u64);
}

#[tokio::test]
async fn get_of_an_unknown_batch_is_404() {
    let app = spawn_on_sandbox(&[]).await;
    let response =
        app.client.get(app.url("/v1/cancellation-batches/cb_nope")).bearer_auth(DEMO_KEY).send().await.unwrap();
    let (status, headers, body) = read(response).await;
    assert_problem(status, &headers, &body, 404, "not_found");
}

/// kill -9 while two of three items are held by their providers: after a restart every item
/// reaches a final state, none is cancelled twice, and the batch reports them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_batch_every_item_ends_once_after_restart() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut env = sandbox_env(&sandbox);
    env.extend(
        [
            ("CANCELGATE__LEDGER__URL", format!("sqlite://{}/ledger.db", dir.path().display())),
            ("CANCELGATE__LEDGER__LEASE_MS", "60000".to_owned()),
            ("CANCELGATE__LIMITS__RESPOND_WITHIN_MS", "300".to_owned()),
            ("CANCELGATE__PROVIDERS__CHARGEAPI__TIMEOUT_MS", "20000".to_owned()),
            ("CANCELGATE__PROVIDERS__ACCOMMODATION__TIMEOUT_MS", "20000".to_owned()),
            ("CANCELGATE__PROVIDERS__CHARGEAPI__RETRY__BACKOFF_BASE_MS", "10".to_owned()),
            ("CANCELGATE__PROVIDERS__ACCOMMODATION__RETRY__BACKOFF_BASE_MS", "10".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    // chargeapi: held without cancelling; accommodation: cancels and never answers.
    sandbox.inject(SimulatedProvider::ChargeApi, FaultRule::reference(seeds::CHARGEAPI_CONFIRMED, Fault::hang()));
    sandbox.inject(
        SimulatedProvider::Accommodation,
        FaultRule::reference(seeds::ACCOMMODATION_CANCELLABLE, Fault::hang()).times(1).commit_then_fail(),
    );
    let gateway = Gateway::start(dir.path(), &env).await;
    let (status, _, body) = post_batch(&gateway.client, &gateway.url(""), &trip(), Some("crash-trip")).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("processing")), "{body:#}");
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(item(&body, 1)["cancellation"]["status"], "cancelled", "front payment answered");
    gateway.kill();
    sandbox.clear_faults();

    let gateway = Gateway::start(dir.path(), &env).await;
    let settled = batch_until_settled(&gateway.client, &gateway.url(""), &id, Duration::from_secs(15)).await;
    assert_eq!(settled["status"], "completed", "{settled:#}");
    for i in 0..3 {
        assert_eq!(item(&settled, i)["cancellation"]["status"], "cancelled", "{settled:#}");
        assert_eq!(item(&settled, i)["cancellation"]["id"], item(&body, i)["cancellation"]["id"]);
    }
    for (p, reference) in [
        (SimulatedProvider::ChargeApi, seeds::CHARGEAPI_CONFIRMED),
        (SimulatedProvider::FrontPayment, seeds::FRONTPAYMENT_RESERVED),
        (SimulatedProvider::Accommodation, seeds::ACCOMMODATION_CANCELLABLE),
    ] {
        assert_eq!(sandbox.calls(p, reference).committed, 1, "{p:?} cancelled exactly once");
    }
    // The key still replays the batch, settled.
    let (status, _, again) = post_batch(&gateway.client, &gateway.url(""), &trip(), Some("crash-trip")).await;
    assert_eq!((status, again["id"].as_str(), again["status"].as_str()), (200, Some(id.as_str()), Some("completed")));
}
