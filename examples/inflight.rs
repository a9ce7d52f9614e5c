//! Load driver of `bench/inflight`: N concurrent cancels through the gateway against a slow
//! upstream, while a few requests to another provider measure whether it is starved.
//!
//! ```text
//! cargo run --release --example inflight -- --gateway http://127.0.0.1:24120 --n 1000 \
//!     [--gateway-pid PID] [--ramp-ms 500] [--tag abc] [--probe-every-ms 100] [--timeout-s 180]
//! ```
//!
//! Prints one JSON object: the flood's statuses, errors and latencies, the most requests it had
//! in flight at once, the probes' latencies before and during the flood, and (with
//! `--gateway-pid`) the gateway's RSS sampled every 50 ms and its VmHWM at the end. Loopback only;
//! every request has a timeout, so it always ends.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const KEY: &str = "Bearer cg_demo_key_local_only";

#[derive(Debug)]
struct Args {
    gateway: String,
    n: usize,
    gateway_pid: Option<u32>,
    ramp: Duration,
    tag: String,
    probe_every: Duration,
    timeout: Duration,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        gateway: "http://127.0.0.1:8080".to_owned(),
        n: 1000,
        gateway_pid: None,
        ramp: Duration::from_millis(500),
        tag: format!("{}", std::process::id()),
        probe_every: Duration::from_millis(100),
        timeout: Duration::from_secs(180),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--gateway" => a.gateway = value()?,
            "--n" => a.n = number(value()?)? as usize,
            "--gateway-pid" => a.gateway_pid = Some(number(value()?)? as u32),
            "--ramp-ms" => a.ramp = Duration::from_millis(number(value()?)?),
            "--tag" => a.tag = value()?,
            "--probe-every-ms" => a.probe_every = Duration::from_millis(number(value()?)?.max(1)),
            "--timeout-s" => a.timeout = Duration::from_secs(number(value()?)?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !a.tag.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("--tag: letters and digits only".to_owned());
    }
    Ok(a)
}

/// p50/p90/p99/max in milliseconds of a set of latencies.
fn percentiles(mut v: Vec<Duration>) -> Value {
    if v.is_empty() {
        return json!({"count": 0});
    }
    v.sort();
    let at = |p: f64| {
        let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
        (v[i].as_secs_f64() * 1e6).round() / 1e3
    };
    json!({"count": v.len(), "p50_ms": at(0.50), "p90_ms": at(0.90), "p99_ms": at(0.99), "max_ms": at(1.0)})
}

fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// One cancel; `Ok(status)` or `Err(what failed)`.
async fn cancel(
    client: &reqwest::Client,
    gateway: &str,
    provider: &str,
    reference: &str,
) -> (Duration, Result<u16, String>) {
    let started = Instant::now();
    let result = client
        .post(format!("{gateway}/v1/cancellations"))
        .header("authorization", KEY)
        .json(&json!({"provider": provider, "reference": reference}))
        .send()
        .await;
    let result = match result {
        Ok(response) => {
            let status = response.status().as_u16();
            // Read the whole answer: the latency is the caller's.
            match response.bytes().await {
                Ok(_) => Ok(status),
                Err(e) => Err(format!("body: {}", e.without_url())),
            }
        }
        Err(e) if e.is_timeout() => Err("timeout".to_owned()),
        Err(e) if e.is_connect() => Err("connect".to_owned()),
        Err(e) => Err(format!("{}", e.without_url())),
    };
    (started.elapsed(), result)
}

async fn probes(
    client: &reqwest::Client,
    gateway: &str,
    tag: &str,
    label: &str,
    count: usize,
    every: Duration,
) -> Value {
    let mut latencies = Vec::new();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..count {
        let (latency, result) = cancel(client, gateway, "accommodation", &format!("BK_BENCH_{tag}{label}{i}")).await;
        latencies.push(latency);
        *statuses.entry(result.map_or_else(|e| e, |s| s.to_string())).or_default() += 1;
        tokio::time::sleep(every).await;
    }
    json!({"latency": percentiles(latencies), "statuses": statuses})
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args().map_err(|e| format!("inflight: {e}"))?;
    let flood_client =
        reqwest::Client::builder().timeout(a.timeout).pool_idle_timeout(Duration::from_secs(5)).build()?;
    let probe_client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let rss_before = a.gateway_pid.and_then(|p| proc_status_kb(p, "VmRSS:"));

    // Another provider, before the flood: its baseline latency through the same gateway.
    let baseline = probes(&probe_client, &a.gateway, &a.tag, "base", 20, Duration::from_millis(20)).await;

    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));

    // Gateway memory and descriptors, sampled while the flood runs.
    let sampler = a.gateway_pid.map(|pid| {
        let done = done.clone();
        tokio::spawn(async move {
            let (mut max_rss, mut max_fds) = (0u64, 0usize);
            while !done.load(Ordering::Relaxed) {
                max_rss = max_rss.max(proc_status_kb(pid, "VmRSS:").unwrap_or(0));
                max_fds = max_fds.max(open_fds(pid).unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (max_rss, max_fds)
        })
    });

    let started = Instant::now();
    let mut tasks = Vec::with_capacity(a.n);
    for i in 0..a.n {
        // Spread the connects over the ramp, so the listen backlog is not the thing measured.
        let due = a.ramp.mul_f64(i as f64 / a.n.max(1) as f64);
        let (client, gateway, reference) =
            (flood_client.clone(), a.gateway.clone(), format!("res_benchIF{}n{i}", a.tag));
        let (in_flight, max_in_flight) = (in_flight.clone(), max_in_flight.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until((started + due).into()).await;
            let now = in_flight.fetch_add(1, Ordering::Relaxed) + 1;
            max_in_flight.fetch_max(now, Ordering::Relaxed);
            let out = cancel(&client, &gateway, "chargeapi", &reference).await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            out
        }));
    }

    // The other provider, during the flood (starts once the ramp is half way).
    let probe_during = {
        let (client, gateway, tag, every, ramp) =
            (probe_client.clone(), a.gateway.clone(), a.tag.clone(), a.probe_every, a.ramp);
        tokio::spawn(async move {
            tokio::time::sleep(ramp / 2).await;
            probes(&client, &gateway, &tag, "during", 30, every).await
        })
    };

    let mut latencies = Vec::with_capacity(a.n);
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for task in tasks {
        let (latency, result) = task.await?;
        latencies.push(latency);
        *statuses.entry(result.map_or_else(|e| e, |s| s.to_string())).or_default() += 1;
    }
    let flood_s = started.elapsed().as_secs_f64();
    let during = probe_during.await?;
    done.store(true, Ordering::Relaxed);
    let (sampled_rss, sampled_fds) = match sampler {
        Some(s) => s.await?,
        None => (0, 0),
    };
    let errors: usize = statuses.iter().filter(|(k, _)| k.as_str() != "200").map(|(_, v)| v).sum();
    let report = json!({
        "n": a.n,
        "ramp_ms": a.ramp.as_millis() as u64,
        "flood_s": (flood_s * 1000.0).round() / 1000.0,
        "flood_statuses": statuses,
        "flood_not_200": errors,
        "flood_latency": percentiles(latencies),
        "client_max_in_flight": max_in_flight.load(Ordering::Relaxed),
        "other_provider_before": baseline,
        "other_provider_during": during,
        "gateway_rss_before_kb": rss_before,
        "gateway_max_rss_sampled_kb": sampled_rss,
        "gateway_peak_rss_kb": a.gateway_pid.and_then(|p| proc_status_kb(p, "VmHWM:")),
        "gateway_max_open_fds": sampled_fds,
    });
    println!("{report}");
    Ok(())
}
