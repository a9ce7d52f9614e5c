//! Driver of `bench/webhooks` (SPEC §8, issue 16): how long after a record's final state its
//! event reaches a receiver that answers at once, at a steady rate of cancels.
//!
//! ```text
//! cargo run --release --example webhook_latency -- --bin target/release/cancelgate \
//!     [--rate 100] [--duration-s 20] [--ledger full|normal]
//! ```
//!
//! Starts the sandbox and an instant receiver (`tests/api/receiver.rs`) in this process and the
//! real `cancelgate serve` as a child (SQLite ledger in a temp dir, one endpoint), sends `rate`
//! ChargeAPI cancels a second for `duration` seconds (each answered `200 cancelled`), waits (at
//! most 15 s) for every event, and prints one JSON object: the latency from the record's
//! `updated_at` (its final state) and from the event's `created_at` to the delivery's arrival,
//! p50/p90/p99/max, and how many events did not arrive. Loopback only, bounded, stops by itself.
//! Exit status 1 when an event is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a harness: any surprise should stop it loudly

#[allow(dead_code)]
#[path = "../tests/api/receiver.rs"]
mod receiver;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use cancelgate_sandbox::{Sandbox, SandboxConfig, SimulatedProvider, bench_reference};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const KEY: &str = "cg_demo_key_local_only";
const SECRET: &str = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2A=";

struct Args {
    bin: String,
    rate: u64,
    duration: Duration,
    ledger: String,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        bin: "target/release/cancelgate".to_owned(),
        rate: 100,
        duration: Duration::from_secs(20),
        ledger: "full".to_owned(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--bin" => a.bin = value,
            "--rate" => a.rate = number(&value)?.clamp(1, 1000),
            "--duration-s" => a.duration = Duration::from_secs(number(&value)?.clamp(1, 120)),
            "--ledger" => a.ledger = value,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

fn percentiles(mut v: Vec<f64>) -> Value {
    if v.is_empty() {
        return json!({"count": 0});
    }
    v.sort_by(f64::total_cmp);
    let at = |p: f64| {
        let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
        (v[i] * 10.0).round() / 10.0
    };
    json!({"count": v.len(), "p50_ms": at(0.50), "p90_ms": at(0.90), "p99_ms": at(0.99), "max_ms": at(1.0)})
}

fn unix_ms(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0)
}

fn rfc3339_ms(value: &Value) -> Option<f64> {
    let t = OffsetDateTime::parse(value.as_str()?, &Rfc3339).ok()?;
    Some(t.unix_timestamp_nanos() as f64 / 1e6)
}

#[tokio::main]
async fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("webhook_latency: {e}");
            std::process::exit(2);
        }
    };
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let receiver = receiver::Receiver::ok().await;

    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("config");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config"), &config);
    let mut gateway_toml = std::fs::read_to_string(config.join("gateway.toml")).unwrap();
    gateway_toml.push_str(&format!(
        "\n[webhooks]\nretry_schedule_s = [1]\n[webhooks.endpoints.bench]\nurl = \"{}\"\nsecret = \"{SECRET}\"\n",
        receiver.url("/bench")
    ));
    std::fs::write(config.join("gateway.toml"), gateway_toml).unwrap();

    // The child runs in the temp dir: a relative `--bin` is taken from here.
    let bin = std::fs::canonicalize(&a.bin).unwrap_or_else(|e| panic!("{}: {e}", a.bin));
    let mut command = Command::new(&bin);
    command
        .arg("serve")
        .current_dir(work.path())
        .env("CANCELGATE_CONFIG_DIR", &config)
        .env("CANCELGATE__LISTEN", "127.0.0.1:0")
        .env("CANCELGATE__LOG__FORMAT", "json")
        .env("CANCELGATE__LEDGER__URL", format!("sqlite://{}/ledger.db", work.path().display()))
        .env("CANCELGATE__LEDGER__SQLITE_SYNCHRONOUS", &a.ledger)
        .env("CANCELGATE__CLIENTS__DEMO__RATE_LIMIT__PER_SECOND", "10000")
        .env("CANCELGATE__PROVIDERS__CHARGEAPI__RATE_LIMIT__PER_SECOND", "10000")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for p in SimulatedProvider::ALL {
        command.env(format!("CANCELGATE__PROVIDERS__{}__BASE_URL", p.id().to_uppercase()), sandbox.base_url(p));
    }
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(event) = serde_json::from_str::<Value>(&line)
                && event["message"] == "cancelgate listening"
                && let Some(addr) = event["addr"].as_str()
            {
                let _ = tx.send(addr.to_owned());
            }
        }
    });
    let Ok(addr) = rx.recv_timeout(Duration::from_secs(30)) else {
        let _ = child.kill();
        panic!("the gateway did not say where it listens");
    };
    let base = format!("http://{addr}");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();

    // Warm-up: connections and caches, outside the figures.
    let offset = 1_000_000 + u64::from(std::process::id()) * 10_000;
    for n in 0..20 {
        let body =
            json!({"provider": "chargeapi", "reference": bench_reference(SimulatedProvider::ChargeApi, offset + n)});
        let _ = client.post(format!("{base}/v1/cancellations")).bearer_auth(KEY).json(&body).send().await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let skip = receiver.count();

    let cancelled = Arc::new(AtomicU64::new(0));
    let other = Arc::new(AtomicU64::new(0));
    let total = a.rate * a.duration.as_secs();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / a.rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    for n in 0..total {
        tick.tick().await;
        let (client, base, cancelled, other) = (client.clone(), base.clone(), cancelled.clone(), other.clone());
        let reference = bench_reference(SimulatedProvider::ChargeApi, offset + 1_000 + n);
        tasks.push(tokio::spawn(async move {
            let body = json!({"provider": "chargeapi", "reference": reference});
            let answer = client.post(format!("{base}/v1/cancellations")).bearer_auth(KEY).json(&body).send().await;
            match answer {
                Ok(response) if response.status() == 200 => cancelled.fetch_add(1, Ordering::Relaxed),
                Ok(response) => {
                    if other.fetch_add(1, Ordering::Relaxed) == 0 {
                        let status = response.status();
                        eprintln!(
                            "webhook_latency: first non-200 answer: {status} {}",
                            response.text().await.unwrap_or_default()
                        );
                    }
                    0
                }
                Err(e) => {
                    if other.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("webhook_latency: first failed request: {}", e.without_url());
                    }
                    0
                }
            };
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let expected = cancelled.load(Ordering::Relaxed) as usize;
    let deadline = Instant::now() + Duration::from_secs(15);
    while receiver.count() < skip + expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (now_wall, now) = (SystemTime::now(), Instant::now());
    let deliveries = receiver.deliveries();
    let _ = child.kill();
    let _ = child.wait();

    let (mut from_final, mut from_created) = (Vec::new(), Vec::new());
    let mut seen = std::collections::BTreeSet::new();
    for delivery in &deliveries[skip.min(deliveries.len())..] {
        if !seen.insert(delivery.id()) {
            continue; // a redelivery: the first arrival counts
        }
        let arrived = unix_ms(now_wall) - now.duration_since(delivery.at).as_secs_f64() * 1e3;
        let body = delivery.json();
        if let Some(t) = rfc3339_ms(&body["data"]["updated_at"]) {
            from_final.push(arrived - t);
        }
        if let Some(t) = rfc3339_ms(&body["created_at"]) {
            from_created.push(arrived - t);
        }
    }
    let missing = expected.saturating_sub(seen.len());
    let p50 = percentiles(from_final.clone())["p50_ms"].as_f64();
    let report = json!({
        "rate_per_s": a.rate,
        "duration_s": a.duration.as_secs(),
        "ledger": a.ledger,
        "cancels": {"cancelled": expected, "other": other.load(Ordering::Relaxed)},
        "events": {"arrived": seen.len(), "missing": missing, "requests": deliveries.len() - skip.min(deliveries.len())},
        "final_state_to_arrival": percentiles(from_final),
        "event_created_to_arrival": percentiles(from_created),
        "target_p50_ms": 100,
        "target_met": p50.is_some_and(|p| p <= 100.0),
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    if missing > 0 {
        std::process::exit(1);
    }
}
