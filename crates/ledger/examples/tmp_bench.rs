#![allow(clippy::unwrap_used)]
use cancelgate_ledger::*;
use serde_json::json;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

#[tokio::main]
async fn main() {
    let url = std::env::args().nth(1).unwrap();
    let conc: usize = std::env::args().nth(2).unwrap().parse().unwrap();
    let l = Ledger::connect(
        &url,
        LedgerOptions {
            max_connections: 16,
            sqlite_sync: if std::env::var("NORMAL").is_ok() { SqliteSync::Normal } else { SqliteSync::Full },
            ..Default::default()
        },
    )
    .await
    .unwrap();
    l.migrate().await.unwrap();
    let per = 200usize;
    let start = Instant::now();
    let tasks: Vec<_> = (0..conc)
        .map(|c| {
            let l = l.clone();
            tokio::spawn(async move {
                for i in 0..per {
                    let now = OffsetDateTime::now_utc();
                    let id = format!("b_{c}_{i}_{}", now.unix_timestamp_nanos());
                    let n = NewCancellation {
                        id: id.clone(),
                        client: "c".into(),
                        provider: "p".into(),
                        account: "a".into(),
                        reference: id.clone(),
                        idempotency_key: Some(id.clone()),
                        fingerprint: "f".into(),
                        request: json!({}),
                        metadata: json!({}),
                        owner: "o".into(),
                        now,
                        lease_until: now + Duration::from_secs(15),
                    };
                    let Begin::Fresh(_) = l.begin(n).await.unwrap() else { panic!() };
                    let a = l.start_attempt(&id, "o", now).await.unwrap();
                    l.finish_attempt(
                        &id,
                        a,
                        AttemptResult {
                            finished_at: now,
                            latency_ms: 1,
                            outcome: "cancelled".into(),
                            http_status: Some(200),
                            body: None,
                            error: None,
                        },
                    )
                    .await
                    .unwrap();
                    l.finish(
                        &id,
                        "o",
                        Final {
                            status: FinalStatus::Cancelled,
                            cancelled_at: Some(now),
                            error: None,
                            upstream: None,
                            http_status: 200,
                            now,
                        },
                    )
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let el = start.elapsed();
    let total = conc * per;
    println!(
        "{url} conc={conc}: {total} requests (4 writes each) in {el:?} = {:.0} req/s, {:.2} ms/request/task",
        total as f64 / el.as_secs_f64(),
        el.as_secs_f64() * 1000.0 / per as f64
    );
}
