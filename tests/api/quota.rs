//! Shared provider quotas (SPEC §11): one budget in Redis for every replica, a provider's pause
//! reaching every replica, and the chosen behaviour while Redis is gone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cancelgate_gateway::resilience::{ProviderQuota, QuotaMode, QuotaRefusal, QuotaStore};
use cancelgate_gateway::settings::{OnStoreError, ProviderRateLimit, RateLimitScope, RedisSettings};
use cancelgate_sandbox::{Fault, FaultRule, Sandbox, SandboxConfig, SimulatedProvider, bench_reference};
use serde_json::{Value, json};

use crate::postgres::with_schema;
use crate::process::{Gateway, sandbox_env};
use crate::redis_env::{OwnRedis, redis_url, unique_prefix};

fn store(url: &str, prefix: &str) -> Arc<QuotaStore> {
    QuotaStore::new(&RedisSettings {
        url: url.to_owned().into(),
        url_file: None,
        key_prefix: prefix.to_owned(),
        timeout_ms: 200,
    })
    .unwrap()
}

fn shared(per_second: u32, burst: u32, on_store_error: OnStoreError) -> ProviderRateLimit {
    ProviderRateLimit { per_second, burst: Some(burst), scope: RateLimitScope::Shared, on_store_error }
}

async fn admitted(quota: &ProviderQuota, tries: usize) -> usize {
    let mut n = 0;
    for _ in 0..tries {
        n += usize::from(quota.check().await.is_ok());
    }
    n
}

#[tokio::test]
async fn two_replicas_share_one_budget_the_burst_then_the_rate() {
    let Some(url) = redis_url("two_replicas_share_one_budget_the_burst_then_the_rate") else { return };
    let prefix = unique_prefix("budget");
    // Two "replicas": two stores (two connections), one key space.
    let (a, b) = (store(&url, &prefix), store(&url, &prefix));
    let limit = shared(10, 5, OnStoreError::Local);
    let (qa, qb) =
        (ProviderQuota::new("chargeapi", &limit, Some(&a)), ProviderQuota::new("chargeapi", &limit, Some(&b)));
    let together = admitted(&qa, 4).await + admitted(&qb, 4).await;
    assert_eq!(together, 5, "the burst is the fleet's, not each replica's");
    let Err(QuotaRefusal::Exhausted(wait)) = qb.check().await else { panic!("the budget is used up") };
    assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100), "one call per 100 ms: {wait:?}");
    tokio::time::sleep(wait + Duration::from_millis(5)).await;
    assert!(qa.check().await.is_ok(), "the next call is admitted once its interval passed");
    assert_eq!((qa.mode(), qb.mode()), (QuotaMode::Shared, QuotaMode::Shared));
    // A local quota of the same figures knows nothing of the other: each takes its own burst.
    let local = ProviderRateLimit { scope: RateLimitScope::Local, ..limit };
    let (la, lb) = (ProviderQuota::new("chargeapi", &local, None), ProviderQuota::new("chargeapi", &local, None));
    assert_eq!(admitted(&la, 5).await + admitted(&lb, 5).await, 10);
}

#[tokio::test]
async fn a_pause_set_by_one_replica_holds_the_others_back() {
    let Some(url) = redis_url("a_pause_set_by_one_replica_holds_the_others_back") else { return };
    let prefix = unique_prefix("pause");
    let limit = shared(1000, 1000, OnStoreError::Local);
    let (a, b) = (store(&url, &prefix), store(&url, &prefix));
    let (qa, qb) =
        (ProviderQuota::new("chargeapi", &limit, Some(&a)), ProviderQuota::new("chargeapi", &limit, Some(&b)));
    assert!(qb.check().await.is_ok());
    qa.pause(Duration::from_secs(3));
    let deadline = Instant::now() + Duration::from_secs(2);
    let wait = loop {
        match qb.check().await {
            Err(QuotaRefusal::Exhausted(wait)) => break wait,
            Ok(()) => assert!(Instant::now() < deadline, "the pause never reached the other replica"),
            Err(other) => panic!("{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(wait > Duration::from_secs(2) && wait <= Duration::from_secs(3), "the provider's Retry-After: {wait:?}");
}

#[tokio::test]
async fn a_store_outage_falls_back_or_denies_as_configured_and_recovers() {
    let Some(mut redis) = OwnRedis::start("a_store_outage_falls_back_or_denies_as_configured_and_recovers") else {
        return;
    };
    let s = store(&redis.url(), "outage");
    let fallback = ProviderQuota::new("chargeapi", &shared(3, 3, OnStoreError::Local), Some(&s));
    let deny = ProviderQuota::new("frontpayment", &shared(1000, 1000, OnStoreError::Deny), Some(&s));
    assert_eq!((fallback.probe().await, deny.probe().await), (QuotaMode::Shared, QuotaMode::Shared));
    assert_eq!(admitted(&fallback, 3).await, 3);

    redis.kill();
    let started = Instant::now();
    // The local limiter decides now, with its own budget (3 at once), never unlimited.
    assert_eq!(admitted(&fallback, 6).await, 3, "the local fallback keeps the local limit");
    assert_eq!(deny.check().await, Err(QuotaRefusal::StoreUnavailable));
    assert!(started.elapsed() < Duration::from_secs(1), "an outage costs at most a timeout, not a stall");
    assert_eq!((fallback.mode(), deny.mode()), (QuotaMode::LocalFallback, QuotaMode::Denying));

    assert!(redis.spawn(), "redis-server restarts on its port");
    let deadline = Instant::now() + Duration::from_secs(5);
    while deny.check().await.is_err() {
        assert!(Instant::now() < deadline, "the store is used again without a restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!((fallback.probe().await, deny.mode()), (QuotaMode::Shared, QuotaMode::Shared));
}

/// Drives `gateways` together for `for_s` seconds, each at `per_gateway` cancels a second of
/// unique references; returns every answer's status.
async fn drive(gateways: &[&Gateway], per_gateway: u32, for_s: u64, tag: &str) -> Vec<u16> {
    let mut tasks = tokio::task::JoinSet::new();
    for (g, gateway) in gateways.iter().enumerate() {
        let (client, url) = (gateway.client.clone(), gateway.url("/v1/cancellations"));
        let tag = tag.to_owned();
        tasks.spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(1) / per_gateway);
            let mut calls = tokio::task::JoinSet::new();
            for i in 0..u64::from(per_gateway) * for_s {
                ticker.tick().await;
                let reference = bench_reference(SimulatedProvider::ChargeApi, 1_000_000 * (g as u64 + 1) + i);
                let request = client
                    .post(&url)
                    .bearer_auth(crate::helpers::DEMO_KEY)
                    .header("idempotency-key", format!("{tag}-{g}-{i}"))
                    .json(&json!({"provider": "chargeapi", "reference": reference}))
                    .timeout(Duration::from_secs(20));
                calls.spawn(async move { request.send().await.map_or(0, |r| r.status().as_u16()) });
            }
            calls.join_all().await
        });
    }
    tasks.join_all().await.into_iter().flatten().collect()
}

fn quota_env(sandbox: &Sandbox, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let mut env = sandbox_env(sandbox);
    env.push(("CANCELGATE__PROVIDERS__CHARGEAPI__RATE_LIMIT__PER_SECOND".into(), PER_SECOND.to_string()));
    env.push(("CANCELGATE__PROVIDERS__CHARGEAPI__RATE_LIMIT__BURST".into(), PER_SECOND.to_string()));
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    env
}

const PER_SECOND: u32 = 20;
const RUN_S: u64 = 10;

/// SPEC §11's bound for a run of `window`: `per_second × seconds × 1.05 + burst`. The window is
/// the run as it happened (first request sent to last answer read), not as planned: on a loaded
/// machine the driving tasks run late and the run lasts longer than `RUN_S`.
fn bound(window: Duration) -> u64 {
    (f64::from(PER_SECOND) * window.as_secs_f64() * 1.05) as u64 + u64::from(PER_SECOND)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_at_three_times_the_quota_send_at_most_the_quota() {
    let test = "three_replicas_at_three_times_the_quota_send_at_most_the_quota";
    let Some(redis) = redis_url(test) else { return };
    with_schema(test, |ledger_url| async move {
        let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
        let env = quota_env(
            &sandbox,
            &[
                ("CANCELGATE__LEDGER__URL", ledger_url),
                ("CANCELGATE__REDIS__URL", redis),
                ("CANCELGATE__REDIS__KEY_PREFIX", unique_prefix("fleet")),
                ("CANCELGATE__PROVIDERS__CHARGEAPI__RATE_LIMIT__SCOPE", "shared".into()),
                // Generous: on a loaded test machine a starved process must not time out and
                // fall back to its local limiter (a fallback lets each replica send its own quota).
                ("CANCELGATE__REDIS__TIMEOUT_MS", "2000".into()),
            ],
        );
        let workdir = tempfile::tempdir().unwrap();
        let (a, b, c) = tokio::join!(
            Gateway::start(workdir.path(), &env),
            Gateway::start(workdir.path(), &env),
            Gateway::start(workdir.path(), &env)
        );
        let started = Instant::now();
        let statuses = drive(&[&a, &b, &c], PER_SECOND, RUN_S, "shared").await;
        let window = started.elapsed();
        let sent = sandbox.total_cancel_requests(SimulatedProvider::ChargeApi);
        let ok = statuses.iter().filter(|s| **s == 200).count() as u64;
        let limited = statuses.iter().filter(|s| **s == 429).count();
        eprintln!(
            "shared: {} requests in {window:.1?}, upstream received {sent} (bound {}), {limited} answered 429",
            statuses.len(),
            bound(window)
        );
        let other: Vec<_> = statuses.iter().filter(|s| ![200, 429].contains(*s)).collect();
        assert!(other.is_empty(), "only cancels and rate limits, not {other:?} ({ok} ok, {limited} limited)");
        assert!(sent <= bound(window), "the fleet sent {sent} in {window:?}, over the bound {}", bound(window));
        assert_eq!(ok, sent, "every admitted call was one upstream cancel, and only those");
        for gateway in [&a, &b, &c] {
            let metrics = gateway.client.get(gateway.url("/metrics")).send().await.unwrap().text().await.unwrap();
            let errors = r#"cancelgate_rate_limit_store_errors_total{provider="chargeapi"} 0"#;
            assert!(metrics.contains(errors), "the shared store answered every call: {metrics}");
        }
        // A loose floor (a loaded machine delays the driving tasks): the quota is used, not starved.
        assert!(sent >= u64::from(PER_SECOND) * RUN_S / 2, "only {sent} sent");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_local_limiters_at_three_times_the_quota_overshoot_it() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let env = quota_env(&sandbox, &[]);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (a, b, c) = tokio::join!(
        Gateway::start(dirs[0].path(), &env),
        Gateway::start(dirs[1].path(), &env),
        Gateway::start(dirs[2].path(), &env)
    );
    let started = Instant::now();
    let statuses = drive(&[&a, &b, &c], PER_SECOND, RUN_S, "local").await;
    let window = started.elapsed();
    let sent = sandbox.total_cancel_requests(SimulatedProvider::ChargeApi);
    eprintln!(
        "local: {} requests in {window:.1?}, upstream received {sent} (the shared bound is {})",
        statuses.len(),
        bound(window)
    );
    // Each process admits its own quota: together about three times the provider's.
    assert!(sent > bound(window) * 2, "local limiters overshoot a fleet's quota: {sent} in {window:?}");
}

async fn readyz(gateway: &Gateway) -> (u16, Value) {
    let response = gateway.client.get(gateway.url("/readyz")).timeout(Duration::from_secs(3)).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn cancel_status(gateway: &Gateway, n: u64) -> (u16, Value) {
    let reference = bench_reference(SimulatedProvider::ChargeApi, n);
    let (status, _, body) = gateway.cancel(&json!({"provider": "chargeapi", "reference": reference}), None).await;
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_429_seen_by_one_replica_pauses_the_others() {
    let Some(redis) = redis_url("a_provider_429_seen_by_one_replica_pauses_the_others") else { return };
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let prefix = unique_prefix("pause429");
    let env = quota_env(
        &sandbox,
        &[
            ("CANCELGATE__REDIS__URL", redis),
            ("CANCELGATE__REDIS__KEY_PREFIX", prefix),
            ("CANCELGATE__PROVIDERS__CHARGEAPI__RATE_LIMIT__SCOPE", "shared".into()),
        ],
    );
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (a, b, c) = tokio::join!(
        Gateway::start(dirs[0].path(), &env),
        Gateway::start(dirs[1].path(), &env),
        Gateway::start(dirs[2].path(), &env)
    );
    sandbox.inject(
        SimulatedProvider::ChargeApi,
        FaultRule::share(1.0, Fault::Status { status: 429, retry_after: Some(5), body: None }).times(1),
    );
    let (status, body) = cancel_status(&a, 1).await;
    assert_eq!((status, body["code"].as_str()), (429, Some("rate_limited")), "{body:#}");
    assert_eq!(sandbox.total_cancel_requests(SimulatedProvider::ChargeApi), 1);
    for (n, other) in [(2, &b), (3, &c)] {
        let (status, body) = cancel_status(other, n).await;
        assert_eq!((status, body["code"].as_str()), (429, Some("rate_limited")), "{body:#}");
    }
    assert_eq!(sandbox.total_cancel_requests(SimulatedProvider::ChargeApi), 1, "the others did not call the provider");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_mid_run_falls_back_or_denies_and_comes_back() {
    let Some(mut redis) = OwnRedis::start("redis_stopped_mid_run_falls_back_or_denies_and_comes_back") else {
        return;
    };
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let base = [
        ("CANCELGATE__REDIS__URL", redis.url()),
        ("CANCELGATE__PROVIDERS__CHARGEAPI__RATE_LIMIT__SCOPE", "shared".into()),
    ];
    let mut local_env = quota_env(&sandbox, &base);
    local_env.push(("CANCELGATE__PROVIDERS__CHARGEAPI__RATE_LIMIT__PER_SECOND".into(), "1".into()));
    local_env.push(("CANCELGATE__PROVIDERS__CHARGEAPI__RATE_LIMIT__BURST".into(), "3".into()));
    local_env.push(("CANCELGATE__REDIS__KEY_PREFIX".into(), "fallback".into()));
    let mut deny_env = quota_env(&sandbox, &base);
    deny_env.push(("CANCELGATE__PROVIDERS__CHARGEAPI__RATE_LIMIT__ON_STORE_ERROR".into(), "deny".into()));
    deny_env.push(("CANCELGATE__REDIS__KEY_PREFIX".into(), "deny".into()));
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (fallback, deny) =
        tokio::join!(Gateway::start(dirs[0].path(), &local_env), Gateway::start(dirs[1].path(), &deny_env));
    for gateway in [&fallback, &deny] {
        let (status, body) = readyz(gateway).await;
        assert_eq!((status, body["checks"]["rate_limits"].as_str()), (200, Some("shared")), "{body:#}");
    }
    assert_eq!(cancel_status(&deny, 1).await.0, 200);

    redis.kill();
    let (status, body) = readyz(&fallback).await;
    assert_eq!((status, body["checks"]["rate_limits"].as_str()), (200, Some("local_fallback")), "{body:#}");
    // Within the local limit (a burst of 3, then 1 a second), never unlimited, never a 5xx.
    let (mut statuses, started) = (Vec::new(), Instant::now());
    for n in 0..10 {
        statuses.push(cancel_status(&fallback, 100 + n).await.0);
    }
    let admitted = statuses.iter().filter(|s| **s == 200).count() as u64;
    let allowed = 3 + started.elapsed().as_secs() + 1;
    assert!((3..=allowed).contains(&admitted), "{admitted} admitted, at most {allowed} allowed: {statuses:?}");
    assert!(statuses.iter().all(|s| [200, 429].contains(s)), "{statuses:?}");
    let (status, body) = cancel_status(&deny, 2).await;
    assert_eq!((status, body["code"].as_str()), (503, Some("provider_unavailable")), "{body:#}");
    let (status, body) = readyz(&deny).await;
    assert_eq!((status, body["checks"]["rate_limits"].as_str()), (200, Some("store_unavailable")), "{body:#}");

    assert!(redis.spawn(), "redis-server restarts on its port");
    let deadline = Instant::now() + Duration::from_secs(10);
    for gateway in [&fallback, &deny] {
        loop {
            let (status, body) = readyz(gateway).await;
            assert_eq!(status, 200);
            if body["checks"]["rate_limits"] == "shared" {
                break;
            }
            assert!(Instant::now() < deadline, "never shared again: {body:#}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let (status, body) = cancel_status(&deny, 3).await;
    assert_eq!(status, 200, "shared again without a restart: {body:#}");
    // Nothing was sent twice: one upstream call per admitted cancel.
    for n in [1, 2, 3].into_iter().chain(100..110) {
        let calls = sandbox.calls(SimulatedProvider::ChargeApi, &bench_reference(SimulatedProvider::ChargeApi, n));
        assert!(calls.received <= 1, "reference {n} was sent {} times", calls.received);
    }
}
