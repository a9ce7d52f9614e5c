//! Faults × providers against the sandbox, the circuit breaker, the retry budget, rate limits
//! and the bulkhead (SPEC §3, §4, §6).

use std::time::{Duration, Instant};

use cancelgate_sandbox::{Fault, FaultRule, SimulatedProvider, bench_reference};
use serde_json::Value;

use crate::helpers::{DEMO_KEY, SandboxApp, read, spawn_on_sandbox};

const PROVIDERS: [SimulatedProvider; 3] =
    [SimulatedProvider::ChargeApi, SimulatedProvider::FrontPayment, SimulatedProvider::Accommodation];

/// What a case must end as, for one provider.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Expect {
    first_status: u16,
    final_status: &'static str,
    error_code: Option<&'static str>,
    /// Requests the provider received (and acted on or refused).
    upstream_calls: u64,
    committed: u64,
    /// Requests the gateway sent, when some never reached the provider's logic.
    attempts: Option<u64>,
}

const CANCELLED_FIRST_TRY: Expect = Expect {
    first_status: 200,
    final_status: "cancelled",
    error_code: None,
    upstream_calls: 1,
    committed: 1,
    attempts: None,
};
const CANCELLED_ON_RETRY: Expect = Expect {
    first_status: 202,
    final_status: "cancelled",
    error_code: None,
    upstream_calls: 2,
    committed: 1,
    attempts: None,
};

/// Inject `rule(reference)` into every provider, cancel one fresh reference each, check the
/// first answer, the final ledger state and what the provider saw.
async fn check(
    app: &SandboxApp,
    n: u64,
    rule: impl Fn(String) -> FaultRule,
    expect: impl Fn(SimulatedProvider) -> Expect,
) {
    for p in PROVIDERS {
        let reference = bench_reference(p, n);
        app.sandbox.inject(p, rule(reference.clone()));
        let (status, _, body) = app.cancel(p.id(), &reference).await;
        let want = expect(p);
        assert_eq!(status, want.first_status, "{p:?} first answer: {body:#}");
        let done = app.settle(status, &body).await;
        // A delayed request may land after the cancellation settled: let it be counted.
        let deadline = Instant::now() + Duration::from_secs(3);
        while app.sandbox.calls(p, &reference).received < want.upstream_calls && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let calls = app.sandbox.calls(p, &reference);
        let attempts = want.attempts.unwrap_or(calls.received);
        if want.final_status == "failed" && status != 202 {
            assert_eq!(body["code"], want.error_code.unwrap_or_default(), "{p:?}: {body:#}");
            let id = body["cancellation_id"].as_str().unwrap();
            let stored = app.wait_final(id).await;
            assert_eq!(stored["status"], "failed", "{p:?}");
            assert_eq!(stored["attempts"], attempts, "{p:?}: attempts recorded");
        } else {
            assert_eq!(done["status"], want.final_status, "{p:?}: {done:#}");
            assert_eq!(done["attempts"], attempts, "{p:?}: attempts recorded");
            if let Some(code) = want.error_code {
                assert_eq!(done["error"]["code"], code, "{p:?}: {done:#}");
            }
        }
        assert_eq!(calls.received, want.upstream_calls, "{p:?} upstream calls");
        assert_eq!(calls.committed, want.committed, "{p:?}: never two committed cancels");
    }
}

#[tokio::test]
async fn latency_under_the_timeout_is_just_slower() {
    let app = spawn_on_sandbox(&[]).await;
    check(&app, 1, |r| FaultRule::reference(r, Fault::latency(Duration::from_millis(100))), |_| CANCELLED_FIRST_TRY)
        .await;
}

#[tokio::test]
async fn latency_over_the_timeout_is_ambiguous_and_retried() {
    let app = spawn_on_sandbox(&[]).await;
    // The first request times out (the simulator drops it when we hang up, before acting); the
    // retry cancels. Two attempts recorded, one request acted on, one cancel committed.
    let expect = Expect { upstream_calls: 1, attempts: Some(2), ..CANCELLED_ON_RETRY };
    check(&app, 2, |r| FaultRule::reference(r, Fault::latency(Duration::from_millis(800))).times(1), |_| expect).await;
}

#[tokio::test]
async fn server_errors_once_are_retried() {
    let app = spawn_on_sandbox(&[]).await;
    check(&app, 3, |r| FaultRule::reference(r, Fault::status(500)).times(1), |_| CANCELLED_ON_RETRY).await;
    check(&app, 4, |r| FaultRule::reference(r, Fault::html()).times(1), |_| CANCELLED_ON_RETRY).await;
    check(
        &app,
        5,
        |r| FaultRule::reference(r, Fault::status_with_retry_after(503, 1)).times(1),
        |_| CANCELLED_ON_RETRY,
    )
    .await;
}

#[tokio::test]
async fn a_510_that_never_ends_fails_after_every_attempt_as_upstream_error() {
    let app = spawn_on_sandbox(&[]).await;
    let failed = Expect {
        first_status: 202,
        final_status: "failed",
        error_code: Some("upstream_error"),
        upstream_calls: 3,
        committed: 0,
        attempts: None,
    };
    check(&app, 6, |r| FaultRule::reference(r, Fault::status(510)), |_| failed).await;
}

#[tokio::test]
async fn a_provider_429_is_answered_at_once_and_not_retried() {
    let app = spawn_on_sandbox(&[]).await;
    let limited = Expect {
        first_status: 429,
        final_status: "failed",
        error_code: Some("rate_limited"),
        upstream_calls: 1,
        committed: 0,
        attempts: None,
    };
    check(&app, 7, |r| FaultRule::reference(r, Fault::status_with_retry_after(429, 3)).times(1), |_| limited).await;
}

#[tokio::test]
async fn a_reset_before_the_provider_acted_is_retried() {
    let app = spawn_on_sandbox(&[]).await;
    check(&app, 8, |r| FaultRule::reference(r, Fault::Reset).times(1), |_| CANCELLED_ON_RETRY).await;
}

#[tokio::test]
async fn a_reset_after_the_provider_committed_is_never_sent_twice_and_never_guessed() {
    let app = spawn_on_sandbox(&[]).await;
    // The retry hears "already cancelled/completed"; after our own ambiguous attempt that is
    // ours for ChargeAPI and the accommodation partner, and undecidable for Front Payment.
    let review = Expect {
        first_status: 202,
        final_status: "needs_review",
        // The evidence (SPEC §12): an answer that decides nothing.
        error_code: Some("upstream_error"),
        upstream_calls: 2,
        committed: 1,
        attempts: None,
    };
    check(
        &app,
        9,
        |r| FaultRule::reference(r, Fault::Reset).times(1).commit_then_fail(),
        |p| if p == SimulatedProvider::FrontPayment { review } else { CANCELLED_ON_RETRY },
    )
    .await;
}

#[tokio::test]
async fn a_cancellation_whose_attempts_all_timed_out_needs_review_with_its_evidence() {
    let app = spawn_on_sandbox(&[("CANCELGATE__PROVIDERS__CHARGEAPI__RETRY__MAX_ATTEMPTS", "2")]).await;
    let p = SimulatedProvider::ChargeApi;
    let reference = bench_reference(p, 12);
    app.sandbox.inject(p, FaultRule::reference(reference.clone(), Fault::Hang { ms: Some(2_000) }));
    let (status, _, body) = app.cancel("chargeapi", &reference).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("processing")), "{body:#}");
    let id = body["id"].as_str().unwrap();
    let record = app.wait_final(id).await;
    assert_eq!((record["status"].as_str(), &record["attempts"]), (Some("needs_review"), &serde_json::json!(2)));
    assert_eq!(record["error"]["code"], "upstream_timeout", "the last attempt's code: {record:#}");
    assert_eq!((&record["error"]["cancellation_id"], &record["error"]["reference"]), (&body["id"], &body["reference"]));
    assert_eq!(record["upstream"], Value::Null, "the provider never answered");
}

#[tokio::test]
async fn unreadable_success_bodies_are_ambiguous_and_retried() {
    let app = spawn_on_sandbox(&[]).await;
    check(&app, 10, |r| FaultRule::reference(r, Fault::malformed_json()).times(1), |_| CANCELLED_ON_RETRY).await;
    check(
        &app,
        11,
        |r| FaultRule::reference(r, Fault::empty()).times(1),
        |p| {
            // Front Payment's 202 is its answer; an empty 200 is not one.
            let _ = p;
            CANCELLED_ON_RETRY
        },
    )
    .await;
}

#[tokio::test]
async fn the_circuit_opens_fails_fast_half_opens_and_closes() {
    let app = spawn_on_sandbox(&[
        ("CANCELGATE__PROVIDERS__CHARGEAPI__RETRY__MAX_ATTEMPTS", "1"),
        ("CANCELGATE__PROVIDERS__CHARGEAPI__CIRCUIT_BREAKER__MIN_CALLS", "4"),
        ("CANCELGATE__PROVIDERS__CHARGEAPI__CIRCUIT_BREAKER__OPEN_S", "1"),
    ])
    .await;
    let p = SimulatedProvider::ChargeApi;
    app.sandbox.inject(p, FaultRule::share(1.0, Fault::status(503)));
    for n in 0..4 {
        let (status, _, body) = app.cancel("chargeapi", &bench_reference(p, n)).await;
        assert_eq!((status, body["code"].as_str()), (502, Some("upstream_error")), "{body:#}");
    }
    let started = Instant::now();
    let (status, headers, body) = app.cancel("chargeapi", &bench_reference(p, 10)).await;
    assert_eq!((status, body["code"].as_str()), (503, Some("provider_unavailable")), "{body:#}");
    assert!(headers.contains_key("retry-after"));
    assert!(started.elapsed() < Duration::from_millis(200), "open circuit answers fast");
    assert_eq!(app.sandbox.total_cancel_requests(p), 4, "nothing sent while open");
    assert_eq!(provider_health(&app, "chargeapi").await["circuit"], "open");
    // Another provider is not affected.
    let (status, _, _) = app.cancel("accommodation", "BK_EXAMPLE_001").await;
    assert_eq!(status, 200);

    app.sandbox.clear_faults();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(provider_health(&app, "chargeapi").await["circuit"], "half_open");
    let (status, _, body) = app.cancel("chargeapi", &bench_reference(p, 11)).await;
    assert_eq!(status, 200, "the probe goes through: {body:#}");
    assert_eq!(provider_health(&app, "chargeapi").await["circuit"], "closed");
}

async fn provider_health(app: &SandboxApp, id: &str) -> Value {
    let response = app.client.get(app.url("/v1/providers")).bearer_auth(DEMO_KEY).send().await.unwrap();
    let (status, _, body) = read(response).await;
    assert_eq!(status, 200);
    body["data"].as_array().unwrap().iter().find(|p| p["id"] == id).unwrap()["health"].clone()
}

#[tokio::test]
async fn the_retry_budget_caps_retries_under_a_total_outage() {
    let app = spawn_on_sandbox(&[
        ("CANCELGATE__PROVIDERS__CHARGEAPI__RETRY__MAX_ATTEMPTS", "5"),
        ("CANCELGATE__PROVIDERS__CHARGEAPI__RETRY__BUDGET_RATIO", "0.1"),
        ("CANCELGATE__PROVIDERS__CHARGEAPI__CIRCUIT_BREAKER__MIN_CALLS", "100000"),
    ])
    .await;
    let p = SimulatedProvider::ChargeApi;
    app.sandbox.inject(p, FaultRule::share(1.0, Fault::status(503)));
    let requests = 40u64;
    let mut ids = Vec::new();
    let started = Instant::now();
    for n in 0..requests {
        let (status, _, body) = app.cancel("chargeapi", &bench_reference(p, 100 + n)).await;
        // One 503 is no verdict: the cancellation goes on in the background.
        assert_eq!((status, body["status"].as_str()), (202, Some("processing")), "{body:#}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    // The retries the budget allows run at once (backoff 5–50 ms); the others wait for it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls = app.sandbox.total_cancel_requests(p);
    // Without a budget: 5 × 40 = 200 calls. With it: 40 first calls, 10 % of them as retries,
    // plus the floor of one retry a second (10 at once, as the budget's 10 s window allows, then
    // one more for each second the test took: a loaded machine sends the 40 slowly).
    let floor = 10 + started.elapsed().as_secs();
    assert!(calls <= requests + 4 + floor + 2, "{calls} upstream calls for {requests} cancellations");
    // Deferred, not dropped (SPEC §12): a cancellation ends when its attempts run out, never
    // because the budget did; the others stay processing until the budget lets them retry.
    let mut deferred = 0;
    for id in &ids {
        let response = app.client.get(app.url(&format!("/v1/cancellations/{id}"))).bearer_auth(DEMO_KEY).send().await;
        let (status, _, record) = read(response.unwrap()).await;
        assert_eq!(status, 200, "{record:#}");
        match record["status"].as_str() {
            Some("processing") => deferred += 1,
            Some("failed") => {
                assert_eq!(record["attempts"], 5, "failed only once its attempts ran out: {record:#}");
                assert_eq!(record["error"]["code"], "upstream_error", "{record:#}");
            }
            _ => panic!("neither deferred nor exhausted: {record:#}"),
        }
    }
    // The retries granted (4 per exhausted cancellation) cannot have served them all.
    assert!(deferred > 0, "no cancellation waits for the budget");
}

#[tokio::test]
async fn client_and_provider_quotas_answer_429_before_anything_is_sent() {
    let app = spawn_on_sandbox(&[
        ("CANCELGATE__CLIENTS__DEMO__RATE_LIMIT__PER_SECOND", "2"),
        ("CANCELGATE__PROVIDERS__ACCOMMODATION__RATE_LIMIT__PER_SECOND", "1"),
    ])
    .await;
    let (s1, _, _) = app.cancel("accommodation", "BK_EXAMPLE_001").await;
    let (s2, h2, b2) = app.cancel("accommodation", &bench_reference(SimulatedProvider::Accommodation, 1)).await;
    assert_eq!(s1, 200);
    assert_eq!((s2, b2["code"].as_str()), (429, Some("rate_limited")), "provider quota: {b2:#}");
    assert!(h2.contains_key("retry-after"));
    let (s3, h3, b3) = app.cancel("chargeapi", &bench_reference(SimulatedProvider::ChargeApi, 1)).await;
    assert_eq!((s3, b3["code"].as_str()), (429, Some("rate_limited")), "client quota: {b3:#}");
    assert!(h3.contains_key("retry-after"));
    assert_eq!(app.sandbox.total_cancel_requests(SimulatedProvider::Accommodation), 1);
    assert_eq!(app.sandbox.total_cancel_requests(SimulatedProvider::ChargeApi), 0);
}

#[tokio::test]
async fn a_full_bulkhead_answers_503_fast() {
    let app = spawn_on_sandbox(&[("CANCELGATE__PROVIDERS__CHARGEAPI__MAX_IN_FLIGHT", "1")]).await;
    let p = SimulatedProvider::ChargeApi;
    let slow = bench_reference(p, 1);
    app.sandbox.inject(p, FaultRule::reference(slow.clone(), Fault::latency(Duration::from_millis(250))));
    let first = app.cancel("chargeapi", &slow);
    let second = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let answer = app.cancel("chargeapi", &bench_reference(p, 2)).await;
        (answer, started.elapsed())
    };
    let ((s1, _, _), ((s2, h2, b2), took)) = tokio::join!(first, second);
    assert_eq!(s1, 200);
    assert_eq!((s2, b2["code"].as_str()), (503, Some("provider_unavailable")), "{b2:#}");
    assert_eq!(h2["retry-after"], "1");
    assert!(took < Duration::from_millis(200), "waited at most ~100 ms for room: {took:?}");
}

#[tokio::test]
async fn a_hung_provider_does_not_slow_the_others() {
    let app = spawn_on_sandbox(&[("CANCELGATE__PROVIDERS__ACCOMMODATION__TIMEOUT_MS", "2000")]).await;
    app.sandbox.inject(SimulatedProvider::Accommodation, FaultRule::share(1.0, Fault::hang()));
    let hung: Vec<_> = (0..40)
        .map(|n| {
            let client = app.client.clone();
            let url = app.url("/v1/cancellations");
            let reference = bench_reference(SimulatedProvider::Accommodation, n);
            tokio::spawn(async move {
                let body = serde_json::json!({"provider": "accommodation", "reference": reference});
                client.post(url).bearer_auth(DEMO_KEY).json(&body).send().await.map(|r| r.status().as_u16())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut latencies = Vec::new();
    for n in 0..40 {
        let started = Instant::now();
        let (status, _, body) = app.cancel("chargeapi", &bench_reference(SimulatedProvider::ChargeApi, n)).await;
        latencies.push(started.elapsed());
        assert_eq!(status, 200, "{body:#}");
    }
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100 - 1];
    assert!(p99 < Duration::from_millis(500), "chargeapi p99 {p99:?} while accommodation hangs");
    for task in hung {
        let status = task.await.unwrap().unwrap();
        assert!(status == 202 || status == 503, "hung provider answered {status}");
    }
}

#[tokio::test]
async fn providers_listing_shows_health_and_no_secrets() {
    let app = spawn_on_sandbox(&[]).await;
    let (status, _, _) = app.cancel("chargeapi", "res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq").await;
    assert_eq!(status, 200);
    let unauthenticated = app.client.get(app.url("/v1/providers")).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let response = app.client.get(app.url("/v1/providers")).bearer_auth(DEMO_KEY).send().await.unwrap();
    let (status, _, body) = read(response).await;
    assert_eq!(status, 200);
    assert_eq!(body["object"], "list");
    let ids: Vec<_> = body["data"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["accommodation", "chargeapi", "frontpayment"]);
    let chargeapi = body["data"].as_array().unwrap().iter().find(|p| p["id"] == "chargeapi").unwrap();
    assert_eq!(chargeapi["enabled"], true);
    assert_eq!(chargeapi["accounts"], serde_json::json!(["default"]));
    assert_eq!(chargeapi["health"]["circuit"], "closed");
    assert_eq!(chargeapi["health"]["success_rate"], 1.0);
    assert!(chargeapi["health"]["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
    assert_eq!(chargeapi["health"]["in_flight"], 0);
    let text = body.to_string();
    for secret in ["ch_sk_test_sandbox", "fp_sandbox_token", "acc_sandbox_key", "10001"] {
        assert!(!text.contains(secret), "{secret} in /v1/providers");
    }
}
