//! SPEC §2: at most one upstream cancel per reference in flight, whatever the callers do at
//! once: 50 identical requests (one idempotency key) and 50 with their own keys, against a slow
//! provider; first in one gateway, then spread over two gateway processes sharing PostgreSQL.

use std::collections::HashMap;
use std::time::Duration;

use cancelgate_sandbox::{Fault, FaultRule, Sandbox, SandboxConfig, SimulatedProvider, seeds};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::helpers::{DEMO_KEY, read, spawn_app_with};
use crate::postgres::with_schema;
use crate::process::{Gateway, WAIT, sandbox_env};

const SAME_KEY: usize = 50;
const OWN_KEYS: usize = 50;
/// Long enough that every request arrives while the first one's upstream call is in flight.
const UPSTREAM_LATENCY: Duration = Duration::from_millis(1500);

/// A sandbox whose ChargeAPI answers cancels of `reference` late.
async fn slow_sandbox(reference: &str) -> Sandbox {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    sandbox.inject(SimulatedProvider::ChargeApi, FaultRule::reference(reference, Fault::latency(UPSTREAM_LATENCY)));
    sandbox
}

/// Fires every request at once, spread round-robin over `gateways` (base URLs); returns
/// (status, body) of each, the same-key ones first.
async fn storm(gateways: &[String], reference: &str) -> Vec<(u16, Value)> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let body = json!({"provider": "chargeapi", "reference": reference});
    let mut tasks = JoinSet::new();
    for n in 0..SAME_KEY + OWN_KEYS {
        let key = if n < SAME_KEY { "storm-same-key".to_owned() } else { format!("storm-own-key-{n}") };
        let request = client
            .post(format!("{}/v1/cancellations", gateways[n % gateways.len()]))
            .bearer_auth(DEMO_KEY)
            .header("idempotency-key", key)
            .json(&body)
            .timeout(WAIT);
        tasks.spawn(async move {
            let (status, _, body) = read(request.send().await.expect("the gateway answers")).await;
            (n, status, body)
        });
    }
    let mut answers = tasks.join_all().await;
    answers.sort_by_key(|(n, _, _)| *n);
    answers.into_iter().map(|(_, status, body)| (status, body)).collect()
}

/// Exactly one request created (and answered) the cancellation; every other one was told it is
/// in progress or got that same cancellation replayed. Returns its id.
fn exactly_one_cancellation(answers: &[(u16, Value)]) -> String {
    let originals: Vec<&Value> =
        answers.iter().filter(|(s, b)| *s == 200 && b["replayed"] == false).map(|(_, b)| b).collect();
    assert_eq!(originals.len(), 1, "one original answer: {originals:#?}");
    let id = originals[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(originals[0]["status"], "cancelled");
    assert_eq!(originals[0]["attempts"], 1);
    for (n, (status, body)) in answers.iter().enumerate() {
        match status {
            200 => assert_eq!(body["id"], id.as_str(), "request {n}: {body:#}"),
            409 => {
                assert_eq!(body["code"], "request_in_progress", "request {n}: {body:#}");
                // Told by the reference (own keys): it names the cancellation in flight.
                if n >= SAME_KEY {
                    assert_eq!(body["cancellation_id"], id.as_str(), "request {n}: {body:#}");
                }
            }
            _ => panic!("request {n}: unexpected {status}: {body:#}"),
        }
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_on_one_gateway_sends_one_cancel() {
    let reference = seeds::CHARGEAPI_CONFIRMED;
    let sandbox = slow_sandbox(reference).await;
    let mut env: HashMap<String, String> = sandbox_env(&sandbox).into_iter().collect();
    env.insert("CANCELGATE__PROVIDERS__CHARGEAPI__TIMEOUT_MS".to_owned(), "5000".to_owned());
    let app = spawn_app_with(env).await;

    let answers = storm(&[format!("http://{}", app.addr)], reference).await;

    let id = exactly_one_cancellation(&answers);
    let calls = sandbox.calls(SimulatedProvider::ChargeApi, reference);
    assert_eq!((calls.received, calls.committed), (1, 1), "exactly one upstream cancel");
    // Once it ended, the key replays it.
    let (status, body) = {
        let response = app
            .client
            .post(app.url("/v1/cancellations"))
            .bearer_auth(DEMO_KEY)
            .header("idempotency-key", "storm-same-key")
            .json(&json!({"provider": "chargeapi", "reference": reference}))
            .send()
            .await
            .unwrap();
        let (status, _, body) = read(response).await;
        (status, body)
    };
    assert_eq!((status, body["id"].as_str(), &body["replayed"]), (200, Some(id.as_str()), &json!(true)));
    assert_eq!(sandbox.calls(SimulatedProvider::ChargeApi, reference).received, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_on_two_gateway_processes_sharing_postgres_sends_one_cancel() {
    with_schema("a_storm_on_two_gateway_processes_sharing_postgres_sends_one_cancel", |ledger_url| async move {
        let reference = seeds::CHARGEAPI_CONFIRMED;
        let sandbox = slow_sandbox(reference).await;
        let workdir = tempfile::tempdir().unwrap();
        let mut env = sandbox_env(&sandbox);
        env.push(("CANCELGATE__LEDGER__URL".to_owned(), ledger_url));
        let (a, b) = tokio::join!(Gateway::start(workdir.path(), &env), Gateway::start(workdir.path(), &env));

        let answers = storm(&[a.url(""), b.url("")], reference).await;

        let id = exactly_one_cancellation(&answers);
        let calls = sandbox.calls(SimulatedProvider::ChargeApi, reference);
        assert_eq!((calls.received, calls.committed), (1, 1), "exactly one upstream cancel across both processes");
        // Both processes read the one record.
        for gateway in [&a, &b] {
            let record = gateway.get(&id).await;
            assert_eq!((record["status"].as_str(), &record["attempts"]), (Some("cancelled"), &json!(1)));
            let (status, _, body) =
                gateway.cancel(&json!({"provider": "chargeapi", "reference": reference}), None).await;
            assert_eq!((status, body["id"].as_str(), &body["replayed"]), (200, Some(id.as_str()), &json!(true)));
        }
        assert_eq!(sandbox.calls(SimulatedProvider::ChargeApi, reference).received, 1);
    })
    .await;
}
