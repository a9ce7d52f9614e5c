//! The ledger's own cost per cancel, without HTTP: the same two writes per cancel as the gateway
//! (`begin_with_attempt`, then `finish_with_attempt` with a provider's answer), driven by
//! `--tasks` concurrent loops (as the gateway's concurrent requests are) for `--cancels` cancels
//! in all, through the ledger crate's public API. Prints one JSON line: cancels, wall seconds,
//! this process's CPU seconds (utime + stime of every thread, from `/proc/self/stat`) and CPU
//! per cancel. `bench/run` runs it for each durability next to the gateway, as one of the
//! "parts" of a cancel (the other is nginx's CPU per proxied request).
//!
//! ```text
//! cargo run --release -p cancelgate-ledger --example ledger_loop -- \
//!     --url sqlite:///tmp/x/ledger.db --sync normal --cancels 20000 --tasks 32
//! ```
//!
//! On PostgreSQL the figure is the client's CPU only (the server's is another process).
//!
//! `--rate R` paces the loops instead (R cancels per second in all, each loop starting its
//! next cancel on a fixed schedule) and adds the latency of one cancel (begin + finish, ms:
//! p50, p99, max): the ledger's share of the added latency at low load. On SQLite the line also
//! has the file's size after the run (closed, so checkpointed) per cancel, `bytes_per_cancel`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cancelgate_ledger::{
    AttemptResult, Begin, Final, FinalStatus, Ledger, LedgerOptions, NewCancellation, SqliteSync, StoredJson,
};
use serde_json::json;
use time::OffsetDateTime;

struct Args {
    url: String,
    sync: SqliteSync,
    cancels: u64,
    tasks: u64,
    /// Cancels per second in all; 0: as fast as the loops go.
    rate: f64,
    /// After the run, purge every record (retention) while one loop goes on writing at 200
    /// cancels/s, and report the purge's time and the worst write latency during it.
    purge: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args =
        Args { url: String::new(), sync: SqliteSync::Full, cancels: 20_000, tasks: 32, rate: 0.0, purge: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => args.url = value,
            "--sync" => {
                args.sync = match value.as_str() {
                    "full" => SqliteSync::Full,
                    "normal" => SqliteSync::Normal,
                    other => return Err(format!("--sync {other}: full or normal")),
                }
            }
            "--cancels" => args.cancels = value.parse().map_err(|e| format!("--cancels: {e}"))?,
            "--tasks" => args.tasks = value.parse().map_err(|e| format!("--tasks: {e}"))?,
            "--rate" => args.rate = value.parse().map_err(|e| format!("--rate: {e}"))?,
            "--purge" => args.purge = value == "on",
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.url.is_empty() {
        return Err("--url is required".into());
    }
    Ok(args)
}

/// CPU seconds of this process, all threads (utime + stime, fields 14 and 15 of `/proc/self/stat`).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return f64::NAN };
    // Fields after `(comm) `: the comm may hold spaces, the last `)` ends it.
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // The clock tick of /proc is USER_HZ, 100 on every Linux this runs on.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

fn new_cancellation(run: &str, n: u64, now: OffsetDateTime) -> NewCancellation {
    // Shaped like the gateway's own: a ChargeAPI reference, the request's reason and request id,
    // a client's metadata and an idempotency key.
    NewCancellation {
        id: format!("can_{run}{n:012}"),
        client: "demo".into(),
        provider: "chargeapi".into(),
        account: "default".into(),
        reference: format!("res_bench{run}{n}"),
        idempotency_key: Some(format!("key-{run}-{n}")),
        fingerprint: format!("{:064x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        request: json!({"reason": "customer_request", "request_id": format!("{run}{n:020}")}),
        metadata: json!({"order": format!("ord_{n}")}),
        owner: "bench".into(),
        now,
        lease_until: now + Duration::from_secs(30),
        batch_id: None,
    }
}

async fn one_cancel(ledger: &Ledger, run: &str, n: u64) -> Result<(), String> {
    let now = OffsetDateTime::now_utc();
    let record = match ledger.begin_with_attempt(new_cancellation(run, n, now)).await {
        Ok(Begin::Fresh(record)) => record,
        Ok(other) => return Err(format!("cancel {n}: not fresh: {other:?}")),
        Err(e) => return Err(format!("cancel {n}: begin: {e}")),
    };
    let body = json!({"id": record.reference, "status": "cancelled", "cancelled_at": "2026-12-02T01:00:00Z"});
    let end = OffsetDateTime::now_utc();
    let attempt = AttemptResult {
        finished_at: end,
        latency_ms: 1,
        outcome: "cancelled".into(),
        http_status: Some(200),
        body: Some(body.clone()),
        error: None,
    };
    let fin = Final {
        status: FinalStatus::Cancelled,
        cancelled_at: Some(end),
        error: None,
        upstream: Some(StoredJson::of_value(&json!({"status": 200, "body": body}))),
        http_status: 200,
        now: end,
        recheck_at: None,
    };
    ledger
        .finish_with_attempt(&record.id, "bench", record.attempts, attempt, fin)
        .await
        .map(drop)
        .map_err(|e| format!("cancel {n}: finish: {e}"))
}

async fn run(args: Args) -> Result<(), String> {
    let options = LedgerOptions { sqlite_sync: args.sync, ..LedgerOptions::default() };
    let ledger = Ledger::connect(&args.url, options).await.map_err(|e| format!("connect: {e}"))?;
    ledger.migrate().await.map_err(|e| format!("migrate: {e}"))?;
    let run = format!("{:x}", OffsetDateTime::now_utc().unix_timestamp_nanos() % 0xffff_ffff);
    let run: Arc<str> = run.into();
    // A short warm-up (statement caches, page cache), not measured.
    for n in 0..200 {
        one_cancel(&ledger, &run, u64::MAX / 2 + n).await?;
    }
    let per_task = args.cancels.div_ceil(args.tasks.max(1));
    // Paced: each loop starts a cancel every `period`, its start offset so the loops interleave.
    let period = (args.rate > 0.0).then(|| Duration::from_secs_f64(args.tasks.max(1) as f64 / args.rate));
    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    let mut tasks = Vec::new();
    for t in 0..args.tasks.max(1) {
        let (ledger, run) = (ledger.clone(), run.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_task as usize);
            let mut next = tokio::time::Instant::now() + period.map_or(Duration::ZERO, |p| p.mul_f64(t as f64 / 8.0));
            for i in 0..per_task {
                if let Some(period) = period {
                    tokio::time::sleep_until(next).await;
                    next += period;
                }
                let started = Instant::now();
                one_cancel(&ledger, &run, t * per_task + i).await?;
                latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<Vec<f64>, String>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.map_err(|e| format!("task: {e}"))??);
    }
    let (cpu, wall) = (cpu_seconds() - cpu0, wall0.elapsed().as_secs_f64());
    let purge = match args.purge {
        true => Some(purge_under_writes(&ledger, &run).await?),
        false => None,
    };
    ledger.close().await;
    let done = per_task * args.tasks.max(1);
    latencies.sort_by(f64::total_cmp);
    let quantile =
        |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0);
    // After `close` (a checkpoint): the file holds every cancel, the log is gone.
    let file = args.url.strip_prefix("sqlite://").map(|p| p.split('?').next().unwrap_or(p).to_owned());
    let bytes = file.and_then(|p| std::fs::metadata(p).ok()).map(|m| m.len());
    println!(
        "{}",
        json!({
            "backend": format!("{:?}", ledger.backend()).to_lowercase(),
            "sync": match args.sync { SqliteSync::Full => "full", SqliteSync::Normal => "normal" },
            "tasks": args.tasks, "cancels": done, "wall_s": wall, "cpu_s": cpu,
            "cancels_per_s": done as f64 / wall, "cpu_ms_per_cancel": cpu * 1000.0 / done as f64,
            "rate": args.rate, "latency_ms": {"p50": quantile(0.5), "p99": quantile(0.99), "max": quantile(1.0)},
            "purge": purge,
            "db_bytes": bytes, "bytes_per_cancel": bytes.map(|b| b as f64 / (done + 200) as f64),
        })
    );
    Ok(())
}

/// Purges every record stored so far while a loop writes 200 cancels/s: the purge's time and
/// count, and the write latencies (begin + finish, ms) during it.
async fn purge_under_writes(ledger: &Ledger, run: &str) -> Result<serde_json::Value, String> {
    let cutoff = OffsetDateTime::now_utc() + Duration::from_secs(1);
    let started = Instant::now();
    let purging = {
        let ledger = ledger.clone();
        tokio::spawn(async move { ledger.purge_final_before(cutoff, cancelgate_ledger::PURGE_BATCH).await })
    };
    let mut latencies = Vec::new();
    let mut next = tokio::time::Instant::now();
    let mut n = u64::MAX / 4;
    while !purging.is_finished() {
        tokio::time::sleep_until(next).await;
        next += Duration::from_millis(5);
        let t = Instant::now();
        one_cancel(ledger, run, n).await?;
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        n += 1;
    }
    let purged = purging.await.map_err(|e| format!("purge: {e}"))?.map_err(|e| format!("purge: {e}"))?;
    let purge_s = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let q = |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0);
    Ok(json!({"purged": purged, "purge_s": purge_s, "writes": latencies.len(),
        "write_ms": {"p50": q(0.5), "p99": q(0.99), "max": q(1.0)}}))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("ledger_loop: {e}");
            return ExitCode::from(2);
        }
    };
    // Two workers, as the gateway has on this machine's two cores.
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ledger_loop: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ledger_loop: {e}");
            ExitCode::FAILURE
        }
    }
}
