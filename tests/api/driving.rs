//! SPEC §12, the driver under faults, with the real binary: a retry the budget does not allow is
//! deferred (never turned into `needs_review`), `retry.max_attempts` holds across a restart, and
//! a `202` comes within `limits.respond_within_ms` of the request even when the ledger dies.

use std::path::Path;
use std::time::{Duration, Instant};

use cancelgate_sandbox::{Fault, FaultRule, Sandbox, SandboxConfig, SimulatedProvider, bench_reference};
use serde_json::{Value, json};

use crate::helpers::{DEMO_KEY, read};
use crate::own_postgres::OwnPostgres;
use crate::process::{Gateway, WAIT, sandbox_env, until};

fn env_with(sandbox: &Sandbox, ledger_url: String, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = sandbox_env(sandbox);
    env.push(("CANCELGATE__LEDGER__URL".to_owned(), ledger_url));
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    env
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}/ledger.db", dir.display())
}

/// The probe's reproduction, scaled down in time: 30 cancels at 10/s whose first attempt the
/// provider commits and never answers (the gateway times out after 300 ms), so each needs one
/// retry, and the retry budget (20 % of 30 calls plus its floor of 10 per 10 s) covers only 16
/// of them at once. The others wait for the budget, `processing`; every one ends cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_the_budget_refuses_are_deferred_and_every_committed_cancel_ends_cancelled() {
    let p = SimulatedProvider::ChargeApi;
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = env_with(
        &sandbox,
        sqlite_url(dir.path()),
        &[
            ("CANCELGATE__PROVIDERS__CHARGEAPI__TIMEOUT_MS", "300"),
            // Timeouts come back while requests still arrive (in the probe they came after 5 s):
            // the breaker is kept out of the way, the budget is what is under test.
            ("CANCELGATE__PROVIDERS__CHARGEAPI__CIRCUIT_BREAKER__MIN_CALLS", "100000"),
            ("CANCELGATE__PROVIDERS__CHARGEAPI__RETRY__BACKOFF_BASE_MS", "5"),
            ("CANCELGATE__PROVIDERS__CHARGEAPI__RETRY__BACKOFF_MAX_MS", "50"),
        ],
    );
    let gateway = Gateway::start(dir.path(), &env).await;
    let references: Vec<String> = (0..30).map(|n| bench_reference(p, 700 + n)).collect();
    for reference in &references {
        let hang = Fault::Hang { ms: Some(2_000) };
        sandbox.inject(p, FaultRule::reference(reference.clone(), hang).times(1).commit_then_fail());
    }

    let mut requests = Vec::new();
    for (n, reference) in references.iter().enumerate() {
        let request = gateway
            .client
            .post(gateway.url("/v1/cancellations"))
            .bearer_auth(DEMO_KEY)
            .header("idempotency-key", format!("budget-{n}"))
            .json(&json!({"provider": "chargeapi", "reference": reference}))
            .timeout(WAIT)
            .send();
        requests.push(tokio::spawn(request));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut ids = Vec::new();
    for request in requests {
        let (status, _, body) = read(request.await.unwrap().expect("the gateway answers")).await;
        assert_eq!(status, 202, "the first attempt timed out: {body:#}");
        assert_ne!(body["status"], "needs_review", "one ambiguous attempt is not a verdict: {body:#}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }

    for (id, reference) in ids.iter().zip(&references) {
        let record = gateway.wait_final(id, Duration::from_secs(40)).await;
        assert_eq!(record["status"], "cancelled", "{reference}: {record:#}");
        assert_eq!(record["attempts"], 2, "{reference}: {record:#}");
        assert_eq!(record["error"], Value::Null, "{record:#}");
        assert_eq!(sandbox.calls(p, reference).committed, 1, "{reference}: cancelled once");
    }
    assert_eq!(sandbox.total_cancel_requests(p), 60, "one retry each, never more");
}

/// Attempts 1 and 2 are reset, attempt 3 hangs; the gateway is stopped (SIGTERM) while it is in
/// flight. `retry.max_attempts` is 3 and all three were sent: the restarted gateway settles the
/// record from what the ledger holds, without a fourth request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_attempts_counts_the_attempts_of_the_process_before_a_restart() {
    let (p, reference) = (SimulatedProvider::ChargeApi, bench_reference(SimulatedProvider::ChargeApi, 800));
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = env_with(
        &sandbox,
        sqlite_url(dir.path()),
        &[
            ("CANCELGATE__LEDGER__LEASE_MS", "60000"),
            ("CANCELGATE__PROVIDERS__CHARGEAPI__TIMEOUT_MS", "20000"),
            ("CANCELGATE__PROVIDERS__CHARGEAPI__RETRY__MAX_ATTEMPTS", "3"),
            ("CANCELGATE__PROVIDERS__CHARGEAPI__RETRY__BACKOFF_BASE_MS", "10"),
            ("CANCELGATE__PROVIDERS__CHARGEAPI__RETRY__BACKOFF_MAX_MS", "50"),
        ],
    );
    sandbox.inject(p, FaultRule::reference(reference.clone(), Fault::Reset).times(2));
    sandbox.inject(p, FaultRule::reference(reference.clone(), Fault::Hang { ms: Some(30_000) }).times(1));

    let gateway = Gateway::start(dir.path(), &env).await;
    let (status, _, body) = gateway.cancel(&json!({"provider": "chargeapi", "reference": reference}), None).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("processing")), "{body:#}");
    let id = body["id"].as_str().unwrap().to_owned();
    until("the third attempt is in flight", || sandbox.total_cancel_requests(p) == 3).await;
    gateway.terminate().await;

    let gateway = Gateway::start(dir.path(), &env).await;
    let record = gateway.wait_final(&id, Duration::from_secs(10)).await;
    assert_eq!(record["status"], "needs_review", "the third attempt may have cancelled: {record:#}");
    assert_eq!(record["attempts"], 3, "{record:#}");
    assert_eq!(record["error"]["code"], "upstream_timeout", "the evidence: no answer to the last attempt: {record:#}");
    assert_eq!(record["error"]["cancellation_id"], id.as_str());
    assert_eq!(record["upstream"], Value::Null, "the provider never answered: {record:#}");
    // Given time to send a fourth, it did not.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sandbox.total_cancel_requests(p), 3, "retry.max_attempts is 3, across restarts too");
}

/// The probe's reproduction, scaled down: the provider takes 1.2 s, the caller is to be answered
/// within 2 s, and the ledger's PostgreSQL crashes (`pg_ctl -m immediate stop`: every backend at
/// once; a kill -9 of the postmaster alone leaves its backends serving for a moment, which makes
/// the outcome a race) 0.8 s after the request. The record was stored before the attempt was
/// sent, so the caller gets its `202`, in time; once the database is back, the cancellation is
/// resumed (after its lease) and finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_202_comes_within_respond_within_ms_when_the_ledger_crashes_mid_request() {
    let test = "driving::a_202_comes_within_respond_within_ms_when_the_ledger_crashes_mid_request";
    ledger_fails_mid_request(test, OwnPostgres::stop_immediate, OwnPostgres::start_again).await;
}

/// As above, with a database that stops answering (every server process SIGSTOPped) instead:
/// whatever the ledger does, the caller is answered in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_202_comes_within_respond_within_ms_when_the_ledger_hangs_mid_request() {
    let test = "driving::a_202_comes_within_respond_within_ms_when_the_ledger_hangs_mid_request";
    ledger_fails_mid_request(test, OwnPostgres::freeze, OwnPostgres::thaw).await;
}

async fn ledger_fails_mid_request(test: &str, fail: fn(&OwnPostgres), revive: fn(&OwnPostgres)) {
    let Some(pg) = OwnPostgres::start(test) else { return };
    let (p, reference) = (SimulatedProvider::ChargeApi, bench_reference(SimulatedProvider::ChargeApi, 900));
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = env_with(
        &sandbox,
        pg.url(),
        &[
            ("CANCELGATE__LIMITS__RESPOND_WITHIN_MS", "2000"),
            ("CANCELGATE__LEDGER__LEASE_MS", "13000"),
            ("CANCELGATE__PROVIDERS__CHARGEAPI__TIMEOUT_MS", "3000"),
            ("CANCELGATE__PROVIDERS__CHARGEAPI__RETRY__BACKOFF_MAX_MS", "50"),
        ],
    );
    sandbox.inject(p, FaultRule::reference(reference.clone(), Fault::latency(Duration::from_millis(1_200))).times(1));
    let gateway = Gateway::start(dir.path(), &env).await;

    let sent = Instant::now();
    let request = gateway
        .client
        .post(gateway.url("/v1/cancellations"))
        .bearer_auth(DEMO_KEY)
        .json(&json!({"provider": "chargeapi", "reference": reference}))
        .timeout(WAIT)
        .send();
    let request = tokio::spawn(request);
    tokio::time::sleep(Duration::from_millis(800)).await;
    fail(&pg);
    let (status, headers, body) = read(request.await.unwrap().expect("the gateway answers")).await;
    let took = sent.elapsed();

    assert!(took < Duration::from_millis(2_300), "answered {took:?} after the request (respond_within_ms 2000)");
    assert_eq!((status, body["status"].as_str()), (202, Some("processing")), "{body:#}");
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(headers["location"], format!("/v1/cancellations/{id}"));
    assert_eq!(body["attempts"], 1, "{body:#}");

    // Nothing accepted is lost: once the database is back, the record is driven to its end.
    revive(&pg);
    let record = gateway.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(record["status"], "cancelled", "{record:#}");
    assert_eq!(sandbox.calls(p, &reference).committed, 1);
}

/// The ledger stops answering before the request is recorded: no `202` can be promised, so the
/// caller hears `503 ledger_unavailable` by the deadline, and nothing is sent. The write may
/// still commit once the database answers again; then the record is driven like any other, and a
/// retry with the same key answers with it: one cancel, whatever the caller does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_ledger_cannot_record_in_time_is_answered_503_ledger_unavailable_by_the_deadline() {
    let test = "driving::a_request_the_ledger_cannot_record_in_time_is_answered_503_ledger_unavailable_by_the_deadline";
    let Some(pg) = OwnPostgres::start(test) else { return };
    let (p, reference) = (SimulatedProvider::ChargeApi, bench_reference(SimulatedProvider::ChargeApi, 901));
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = env_with(&sandbox, pg.url(), &[("CANCELGATE__LIMITS__RESPOND_WITHIN_MS", "1500")]);
    let gateway = Gateway::start(dir.path(), &env).await;
    let body = json!({"provider": "chargeapi", "reference": reference});
    let post = || {
        gateway
            .client
            .post(gateway.url("/v1/cancellations"))
            .bearer_auth(DEMO_KEY)
            .header("idempotency-key", "ledger-hangs-1")
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
    };

    pg.freeze();
    let sent = Instant::now();
    let (status, headers, problem) = read(post().await.expect("answered while the ledger hangs")).await;
    let took = sent.elapsed();
    assert!(took < Duration::from_millis(1_800), "answered {took:?} after the request (respond_within_ms 1500)");
    assert_eq!((status, problem["code"].as_str()), (503, Some("ledger_unavailable")), "{problem:#}");
    assert_eq!(problem["retryable"], true);
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    assert_eq!(sandbox.total_cancel_requests(p), 0, "nothing was sent");

    pg.thaw();
    let deadline = Instant::now() + WAIT;
    let record = loop {
        let (status, _, answer) = read(post().await.expect("the gateway answers")).await;
        match status {
            200 => break answer,
            // Not recorded yet, or recorded and still in flight.
            202 | 409 | 503 => assert!(Instant::now() < deadline, "never settled: {answer:#}"),
            _ => panic!("{status}: {answer:#}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(record["status"], "cancelled", "{record:#}");
    assert_eq!((sandbox.total_cancel_requests(p), sandbox.calls(p, &reference).committed), (1, 1), "one cancel");
}
