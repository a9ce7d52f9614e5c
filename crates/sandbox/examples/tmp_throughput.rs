#![allow(clippy::unwrap_used)]
use cancelgate_sandbox::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

#[tokio::main]
async fn main() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let base = sb.base_url(SimulatedProvider::ChargeApi);
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap();
    let n = Arc::new(AtomicU64::new(0));
    let total = 100_000u64;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (c, b, n) = (client.clone(), base.clone(), n.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = n.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let r = if std::env::var("MODE").as_deref() == Ok("trivial") {
                    c.get(format!("{b}/_sandbox/calls/res_bench{i}")).send().await.unwrap()
                } else {
                    c.post(format!("{b}/v1/reservations/res_bench{i}/cancel"))
                        .bearer_auth(credentials::CHARGEAPI_SECRET_KEY)
                        .body("{}")
                        .send()
                        .await
                        .unwrap()
                };
                assert_eq!(r.status(), 200);
                let _ = r.bytes().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let el = start.elapsed();
    println!(
        "{total} cancels in {el:?}: {:.0}/s; committed sample {:?}",
        total as f64 / el.as_secs_f64(),
        sb.calls(SimulatedProvider::ChargeApi, "res_bench5")
    );
    println!("total {}", sb.total_cancel_requests(SimulatedProvider::ChargeApi));
}
