//! SPEC §12, the driver under faults, with the real binary: a retry the budget does not allow is
//! deferred (never turned into `needs_review`), and `retry.max_attempts` holds across a restart.

use std::path::Path;
use std::time::Duration;

use cancelgate_sandbox::{Fault, FaultRule, Sandbox, SandboxConfig, SimulatedProvider, bench_reference};
use serde_json::{Value, json};

use crate::helpers::{DEMO_KEY, read};
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
