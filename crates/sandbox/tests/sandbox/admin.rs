use std::time::Duration;

use cancelgate_sandbox::{
    CallCount, CallsReport, Sandbox, SandboxConfig, SandboxError, SimulatedProvider, bench_reference, seeds,
};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn calls_report_counts_received_and_committed_and_resets() {
    let t = spawn().await;
    t.chargeapi_cancel(seeds::CHARGEAPI_CONFIRMED).await;
    t.chargeapi_cancel(seeds::CHARGEAPI_CONFIRMED).await;
    t.chargeapi_cancel(seeds::CHARGEAPI_UNKNOWN).await;
    let report = t.admin_get(ChargeApi, "/_sandbox/calls").await.json();
    assert_eq!(
        report,
        json!({"cancel_requests": 3, "by_reference": {
            "res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq": {"received": 2, "committed": 1},
            "res_doesNotExist01": {"received": 1, "committed": 0}}})
    );
    let one = t.admin_get(ChargeApi, &format!("/_sandbox/calls/{}", seeds::CHARGEAPI_CONFIRMED)).await.json();
    assert_eq!(one, json!({"received": 2, "committed": 1}));
    assert_eq!(t.sandbox.total_cancel_requests(ChargeApi), 3);
    assert_eq!(t.sandbox.total_cancel_requests(FrontPayment), 0);

    assert_eq!(t.admin_delete(ChargeApi, "/_sandbox/calls").await.status, 200);
    assert_eq!(t.sandbox.calls_report(ChargeApi), CallsReport::default());
    // Counters reset, state kept.
    assert_eq!(t.status_of(ChargeApi, seeds::CHARGEAPI_CONFIRMED).await, "cancelled");
}

#[tokio::test]
async fn accommodation_requests_without_a_reference_count_only_in_the_total() {
    let t = spawn().await;
    t.send(t.accommodation_request(&json!({}))).await;
    let report = t.sandbox.calls_report(Accommodation);
    assert_eq!((report.cancel_requests, report.by_reference.len()), (1, 0));
}

#[tokio::test]
async fn state_of_an_unknown_reference_is_404() {
    let t = spawn().await;
    for p in SimulatedProvider::ALL {
        let a = t.admin_get(p, "/_sandbox/state/nope").await;
        assert_eq!(a.status, 404, "{p}");
        assert!(a.json()["error"].is_string());
        assert!(t.sandbox.state(p, "nope").is_none());
    }
}

#[tokio::test]
async fn reset_restores_the_seeds() {
    let t = spawn().await;
    assert_eq!(t.chargeapi_cancel(seeds::CHARGEAPI_CONFIRMED).await.status, 200);
    t.admin_post(ChargeApi, "/_sandbox/reservations", &json!({"id": "res_extra"})).await;
    t.admin_post(ChargeApi, "/_sandbox/faults", &json!({"share": 1.0, "fault": {"kind": "status", "status": 500}}))
        .await;
    assert_eq!(t.admin_post(ChargeApi, "/_sandbox/reset", &json!({})).await.status, 200);
    assert_eq!(t.status_of(ChargeApi, seeds::CHARGEAPI_CONFIRMED).await, "confirmed");
    assert_eq!(t.admin_get(ChargeApi, "/_sandbox/state/res_extra").await.status, 404);
    assert_eq!(t.sandbox.total_cancel_requests(ChargeApi), 0);
    assert_eq!(t.chargeapi_cancel(seeds::CHARGEAPI_CONFIRMED).await.status, 200);

    assert_eq!(t.frontpayment_cancel(seeds::FRONTPAYMENT_RESERVED).await.status, 202);
    assert_eq!(t.accommodation_cancel(seeds::ACCOMMODATION_CANCELLABLE).await.status, 200);
    t.sandbox.reset();
    assert_eq!(t.status_of(FrontPayment, seeds::FRONTPAYMENT_RESERVED).await, "reserved");
    assert_eq!(t.status_of(Accommodation, seeds::ACCOMMODATION_CANCELLABLE).await, "success");
}

#[tokio::test]
async fn benchmark_references_exist_lazily_and_cancel_once() {
    let t = spawn().await;
    for p in SimulatedProvider::ALL {
        for n in [1, 2, 0xfeed] {
            let reference = bench_reference(p, n);
            assert!(t.sandbox.state(p, &reference).is_none(), "{reference}");
            let first = t.cancel(p, &reference).await;
            assert_eq!(first.status, if p == FrontPayment { 202 } else { 200 }, "{reference}: {}", first.text);
            assert_eq!(t.cancel(p, &reference).await.status, 400, "{reference}");
            assert_eq!(t.sandbox.calls(p, &reference), CallCount { received: 2, committed: 1 });
        }
    }
    assert_eq!(t.chargeapi_cancel("res_benchXYZ09").await.status, 200);
    assert_eq!(t.chargeapi_cancel("res_bench_x").await.status, 404);
    assert_eq!(t.frontpayment_cancel("00000000-1111-2222-3333-444444444444").await.status, 202);
    assert_eq!(t.frontpayment_cancel("00000001-1111-2222-3333-444444444444").await.status, 404);
    assert_eq!(t.accommodation_cancel("BK_BENCH_run-7_1").await.status, 200);
    assert_eq!(t.accommodation_cancel("BK_BENCHX").await.status, 404);
}

#[tokio::test]
async fn concurrent_cancels_of_one_reference_commit_exactly_once() {
    let t = spawn().await;
    let r = seeds::CHARGEAPI_CONFIRMED;
    let answers = futures_join_all((0..40).map(|_| t.chargeapi_cancel(r))).await;
    let ok = answers.iter().filter(|a| a.status == 200).count();
    let refused = answers.iter().filter(|a| a.status == 400).count();
    assert_eq!((ok, refused), (1, 39));
    assert_eq!(t.sandbox.calls(ChargeApi, r), CallCount { received: 40, committed: 1 });
}

/// Runs futures concurrently on the current task (no extra dependency).
async fn futures_join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in set.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

#[tokio::test]
async fn rust_api_create_and_state() {
    let t = spawn().await;
    let created = t.sandbox.create(ChargeApi, &json!({"id": "res_rustApi1", "status": "pending"})).unwrap();
    assert_eq!(created["status"], "pending");
    assert_eq!(t.chargeapi_cancel("res_rustApi1").await.status, 200);
    assert_eq!(t.sandbox.state(ChargeApi, "res_rustApi1").unwrap()["status"], "cancelled");
    let err = t.sandbox.create(ChargeApi, &json!({"id": "res_rustApi1"})).unwrap_err();
    assert!(matches!(err, SandboxError::Admin { status: 409, .. }), "{err}");
    let state = t.sandbox.state(FrontPayment, &seeds::FRONTPAYMENT_RESERVED.to_ascii_uppercase()).unwrap();
    assert_eq!(state["status"], "reserved");
}

#[tokio::test]
async fn provider_ids_and_urls() {
    let t = spawn().await;
    for p in SimulatedProvider::ALL {
        assert_eq!(p.id().parse::<SimulatedProvider>().unwrap(), p);
        assert_eq!(t.sandbox.base_url(p), format!("http://127.0.0.1:{}", t.sandbox.addr(p).port()));
        assert_ne!(t.sandbox.addr(p).port(), 0);
    }
    assert!("stripe".parse::<SimulatedProvider>().is_err());
    assert_eq!(serde_json::to_value(FrontPayment).unwrap(), json!("frontpayment"));
}

#[tokio::test]
async fn shutdown_closes_the_listeners() {
    let t = spawn().await;
    let url = t.url(ChargeApi, "/_sandbox/calls");
    assert_eq!(t.send(t.client.get(&url)).await.status, 200);
    t.sandbox.shutdown().await;
    let fresh = reqwest::Client::builder().timeout(Duration::from_secs(1)).build().unwrap();
    assert!(fresh.get(&url).send().await.is_err());
}

#[tokio::test]
async fn drop_stops_the_sandbox_and_the_port_can_be_reused() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let addr = sandbox.addr(ChargeApi);
    drop(sandbox);
    // The accept loop ends shortly after the drop; bind the same port again.
    let config = SandboxConfig::default().with_addr(SimulatedProvider::ChargeApi, addr);
    let mut started = None;
    for _ in 0..50 {
        match Sandbox::start(config).await {
            Ok(s) => {
                started = Some(s);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let sandbox = started.expect("port reusable after drop");
    assert_eq!(sandbox.addr(ChargeApi), addr);
    let bound = Sandbox::start(config).await.unwrap_err();
    assert!(matches!(bound, SandboxError::Bind { provider: SimulatedProvider::ChargeApi, .. }), "{bound}");
    sandbox.shutdown().await;
}
