//! Webhooks (SPEC §8) with the real binary: malformed configuration fails at start naming the
//! key; URL tokens and secrets never reach the logs or the API; kill -9 loses no event (SQLite,
//! and two replicas on PostgreSQL); hostile receivers exhaust neither memory nor the other
//! endpoints.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cancelgate_sandbox::{Sandbox, SandboxConfig, SimulatedProvider, bench_reference};
use serde_json::{Value, json};

use crate::helpers::{DEMO_KEY, read};
use crate::postgres::with_schema;
use crate::process::{Gateway, sandbox_env};
use crate::receiver::{Answer, Delivery, Receiver};
use crate::webhook_verifier::assert_signed;
use crate::webhooks_support::{
    SECRET_16, SECRET_23, SECRET_24, SECRET_64, SECRET_65, SECRET_A, SECRET_B, config_with, wait_delivery,
    webhooks_toml,
};

const CHARGE: SimulatedProvider = SimulatedProvider::ChargeApi;

/// Long enough for a delivery lease (the endpoint's timeout + 10 s) to expire and be taken over.
const TAKEOVER: Duration = Duration::from_secs(45);

/// The overrides of a webhook test of the binary: the ledger in `data`, the config in `config`,
/// providers at the sandbox.
fn env(sandbox: &Sandbox, config: &Path, ledger: &str) -> Vec<(String, String)> {
    let mut env = sandbox_env(sandbox);
    env.push(("CANCELGATE_CONFIG_DIR".to_owned(), config.display().to_string()));
    env.push(("CANCELGATE__LEDGER__URL".to_owned(), ledger.to_owned()));
    env
}

fn sqlite(dir: &Path) -> String {
    format!("sqlite://{}/ledger.db", dir.display())
}

async fn cancel(gateway: &Gateway, n: u64) -> Value {
    let (status, _, body) =
        gateway.cancel(&json!({"provider": "chargeapi", "reference": bench_reference(CHARGE, n)}), None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("cancelled")), "{body:#}");
    body
}

fn cancellation_ids(deliveries: &[Delivery]) -> BTreeSet<String> {
    deliveries.iter().filter_map(|d| d.json()["data"]["id"].as_str().map(str::to_owned)).collect()
}

/// Runs `cancelgate serve` with `webhooks` appended to the shipped config (and `extra` env):
/// its exit status (None: still running after 15 s, then killed) and its stderr.
fn start_fails(webhooks: &str, extra: &[(&str, &str)]) -> (Option<i32>, String) {
    let config = config_with(webhooks);
    let data = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_cancelgate"));
    command
        .arg("serve")
        .current_dir(data.path())
        .env("CANCELGATE_CONFIG_DIR", config.path())
        .env("CANCELGATE__LISTEN", "127.0.0.1:0")
        .env("CANCELGATE__LEDGER__URL", sqlite(data.path()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in extra {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
    }
    let output = child.wait_with_output().unwrap();
    let code = if output.status.success() || output.status.code().is_some() { output.status.code() } else { None };
    let text = format!("{}{}", String::from_utf8_lossy(&output.stderr), String::from_utf8_lossy(&output.stdout));
    (code, text)
}

fn endpoint(lines: &str) -> String {
    format!("\n[webhooks.endpoints.main]\n{lines}\n")
}

#[test]
fn every_malformed_webhook_key_fails_at_start_naming_the_key() {
    let url = "url = \"http://127.0.0.1:9/hooks\"";
    let secret = format!("secret = \"{SECRET_A}\"");
    let dir = tempfile::tempdir().unwrap();
    let bad_file = dir.path().join("bad_secret");
    std::fs::write(&bad_file, "not_a_webhook_secret\n").unwrap();
    let missing_file = dir.path().join("no_such_file");
    let no_prefix = SECRET_A.trim_start_matches("whsec_");
    let cases: Vec<(String, &str, Option<&str>)> = vec![
        (endpoint(&format!("url = \"ftp://127.0.0.1/hooks\"\n{secret}")), "webhooks.endpoints.main.url", None),
        (endpoint(&format!("url = \"not a url\"\n{secret}")), "webhooks.endpoints.main.url", None),
        (endpoint(&format!("url = \"http://\"\n{secret}")), "webhooks.endpoints.main.url", None),
        (endpoint(url), "webhooks.endpoints.main.secret", None),
        (endpoint(&format!("{url}\nsecret = \"{no_prefix}\"")), "webhooks.endpoints.main.secret", Some(no_prefix)),
        (endpoint(&format!("{url}\nsecret = \"whsec_%%%not-base64%%%\"")), "webhooks.endpoints.main.secret", None),
        (endpoint(&format!("{url}\nsecret = \"{SECRET_16}\"")), "webhooks.endpoints.main.secret", Some(SECRET_16)),
        (endpoint(&format!("{url}\nsecret = \"{SECRET_23}\"")), "webhooks.endpoints.main.secret", Some(SECRET_23)),
        (endpoint(&format!("{url}\nsecret = \"{SECRET_65}\"")), "webhooks.endpoints.main.secret", Some(SECRET_65)),
        (
            endpoint(&format!("{url}\n{secret}\nprevious_secret = \"{SECRET_16}\"")),
            "webhooks.endpoints.main.previous_secret",
            Some(SECRET_16),
        ),
        (
            endpoint(&format!("{url}\nsecret_file = \"{}\"", bad_file.display())),
            "webhooks.endpoints.main.secret",
            Some("not_a_webhook_secret"),
        ),
        (
            endpoint(&format!("{url}\nsecret_file = \"{}\"", missing_file.display())),
            "webhooks.endpoints.main.secret_file",
            None,
        ),
        (
            endpoint(&format!("{url}\n{secret}\nevents = [\"cancellation.exploded\"]")),
            "webhooks.endpoints.main.events",
            None,
        ),
    ];
    for (toml, key, secret_text) in &cases {
        let (code, stderr) = start_fails(&format!("\n[webhooks]\n{toml}"), &[]);
        assert!(matches!(code, Some(c) if c != 0), "{key}: the gateway started (or hung): {code:?}\n{toml}\n{stderr}");
        assert!(stderr.contains(key), "the error names {key}: {stderr}\n{toml}");
        if let Some(text) = secret_text {
            assert!(!stderr.contains(text), "the error shows the secret: {stderr}");
        }
    }
    // From the environment too.
    let (code, stderr) = start_fails(
        "",
        &[
            ("CANCELGATE__WEBHOOKS__ENDPOINTS__ENV__URL", "http://127.0.0.1:9/"),
            ("CANCELGATE__WEBHOOKS__ENDPOINTS__ENV__SECRET", SECRET_16),
        ],
    );
    assert!(matches!(code, Some(c) if c != 0), "{stderr}");
    assert!(stderr.contains("webhooks.endpoints.env.secret"), "{stderr}");
    assert!(!stderr.contains(SECRET_16.trim_start_matches("whsec_")), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_of_24_and_64_bytes_are_taken() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let receiver = Receiver::ok().await;
    let toml = format!(
        "\n[webhooks]\nretry_schedule_s = [1]\n[webhooks.endpoints.short]\nurl = \"{}\"\nsecret = \"{SECRET_24}\"\n\
         [webhooks.endpoints.long]\nurl = \"{}\"\nsecret = \"{SECRET_64}\"\n",
        receiver.url("/short"),
        receiver.url("/long")
    );
    let config = config_with(&toml);
    let data = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(data.path(), &env(&sandbox, config.path(), &sqlite(data.path()))).await;
    cancel(&gateway, 1).await;
    let seen = receiver.wait_for("both endpoints got the event", Duration::from_secs(20), |d| d.len() == 2).await;
    let short: Vec<Delivery> = seen.iter().filter(|d| d.path == "/short").cloned().collect();
    let long: Vec<Delivery> = seen.iter().filter(|d| d.path == "/long").cloned().collect();
    assert_signed("secrets_of_24_and_64_bytes_are_taken", SECRET_24, &short);
    assert_signed("secrets_of_24_and_64_bytes_are_taken", SECRET_64, &long);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_tokens_and_secrets_never_reach_the_logs_or_the_api() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    // A reset, then a 500, then a 200: the error texts of the attempts are logged and shown.
    let receiver = Receiver::sequence(vec![Answer::Reset, Answer::Status(500)]).await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("webhook_secret");
    std::fs::write(&secret_file, format!("{SECRET_A}\n")).unwrap();
    let url = receiver.url("/hooks/tok_s3cr3tPathToken?sig=qs_s3cr3tQuery");
    let toml = format!(
        "\n[webhooks]\nretry_schedule_s = [1, 1, 1]\n[webhooks.endpoints.main]\nurl = \"{url}\"\nsecret_file = \"{}\"\n",
        secret_file.display()
    );
    let config = config_with(&toml);
    let mut vars = env(&sandbox, config.path(), &sqlite(dir.path()));
    vars.push(("CANCELGATE__WEBHOOKS__ENDPOINTS__MAIN__PREVIOUS_SECRET".to_owned(), SECRET_B.to_owned()));
    vars.push(("RUST_LOG".to_owned(), "debug".to_owned()));
    let gateway = Gateway::start(dir.path(), &vars).await;
    let record = cancel(&gateway, 1).await;
    let seen = receiver.wait_for("the third attempt", Duration::from_secs(20), |d| d.len() == 3).await;
    assert!(seen.iter().all(|d| d.path == "/hooks/tok_s3cr3tPathToken?sig=qs_s3cr3tQuery"), "the URL is used whole");
    assert_signed("url_tokens_and_secrets_never_reach_the_logs_or_the_api", SECRET_A, &seen[2..]);
    assert_signed("url_tokens_and_secrets_never_reach_the_logs_or_the_api", SECRET_B, &seen[2..]);
    let id = seen[0].id();
    wait_delivery(&gateway.client, &gateway.url(""), &id, "main", "delivered").await;

    let mut shown = String::new();
    for path in [
        "/v1/events".to_owned(),
        format!("/v1/events/{id}"),
        format!("/v1/events?cancellation_id={}", record["id"].as_str().unwrap()),
        format!("/v1/cancellations/{}", record["id"].as_str().unwrap()),
        "/v1/providers".to_owned(),
        "/readyz".to_owned(),
    ] {
        let response = gateway.client.get(gateway.url(&path)).bearer_auth(DEMO_KEY).send().await.unwrap();
        let (_, _, body) = read(response).await;
        shown.push_str(&body.to_string());
    }
    let metrics = gateway.client.get(gateway.url("/metrics")).send().await.unwrap().text().await.unwrap();
    shown.push_str(&metrics);
    let logs = gateway.logs();
    for secret in [
        "tok_s3cr3tPathToken",
        "qs_s3cr3tQuery",
        SECRET_A,
        SECRET_A.trim_start_matches("whsec_"),
        SECRET_B,
        SECRET_B.trim_start_matches("whsec_"),
    ] {
        assert!(!logs.contains(secret), "the log shows {secret}:\n{logs}");
        assert!(!shown.contains(secret), "the API shows {secret}:\n{shown}");
    }
    // The metrics of SPEC §8 exist.
    for name in [
        "cancelgate_webhook_deliveries_total",
        "cancelgate_webhook_pending",
        "cancelgate_webhook_oldest_pending_age_seconds",
    ] {
        assert!(metrics.lines().any(|l| l.starts_with(name) && l.contains("endpoint=\"main\"")), "{name}:\n{metrics}");
    }
    let delivered = metrics
        .lines()
        .find(|l| {
            l.starts_with("cancelgate_webhook_deliveries_total")
                && l.contains("endpoint=\"main\"")
                && l.contains("outcome=\"delivered\"")
        })
        .unwrap_or_else(|| panic!("no delivered count:\n{metrics}"));
    assert!(delivered.ends_with(" 1"), "{delivered}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_the_receiver_holds_the_delivery_it_is_delivered_after_restart_with_the_same_id() {
    let test = "killed_while_the_receiver_holds_the_delivery";
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let receiver = Receiver::start(|_, n| if n == 0 { Answer::Hang } else { Answer::Status(200) }).await;
    let config = config_with(&webhooks_toml(&[("main", &receiver.url("/"))], ""));
    let data = tempfile::tempdir().unwrap();
    let vars = env(&sandbox, config.path(), &sqlite(data.path()));
    let gateway = Gateway::start(data.path(), &vars).await;
    let record = cancel(&gateway, 1).await;
    let held = receiver.wait_for("the delivery left", Duration::from_secs(20), |d| d.len() == 1).await;
    let event = held[0].id();
    gateway.kill();

    let gateway = Gateway::start(data.path(), &vars).await;
    let seen = receiver.wait_for("the event again after the restart", TAKEOVER, |d| d.len() >= 2).await;
    assert!(
        seen.iter().all(|d| d.id() == event),
        "the same event id: {:?}",
        seen.iter().map(Delivery::id).collect::<Vec<_>>()
    );
    assert_eq!(seen[1].json()["data"], gateway.get(record["id"].as_str().unwrap()).await);
    assert_signed(test, SECRET_A, &seen);
    wait_delivery(&gateway.client, &gateway.url(""), &event, "main", "delivered").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_a_stream_of_deliveries_no_event_is_lost() {
    let test = "killed_during_a_stream_of_deliveries_no_event_is_lost";
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    // Answers take 0 to 300 ms: at the kill, some are in flight, some sent, some not yet.
    let receiver = Receiver::start(|_, n| {
        Answer::Delay(Duration::from_millis((n as u64 % 4) * 100), Box::new(Answer::Status(200)))
    })
    .await;
    let config = config_with(&webhooks_toml(&[("main", &receiver.url("/"))], ""));
    let data = tempfile::tempdir().unwrap();
    let vars = env(&sandbox, config.path(), &sqlite(data.path()));
    let gateway = Gateway::start(data.path(), &vars).await;
    let mut records = BTreeSet::new();
    for n in 1..=20 {
        records.insert(cancel(&gateway, n).await["id"].as_str().unwrap().to_owned());
        if n == 15 {
            receiver.wait_for("a few deliveries", Duration::from_secs(20), |d| d.len() >= 3).await;
        }
    }
    gateway.kill();
    let before = receiver.count();

    let gateway = Gateway::start(data.path(), &vars).await;
    let seen = receiver.wait_for("every record's event", TAKEOVER, |d| cancellation_ids(d) == records).await;
    assert_signed(test, SECRET_A, &seen);
    let listed = gateway.client.get(gateway.url("/v1/events?limit=100")).bearer_auth(DEMO_KEY).send().await.unwrap();
    let (_, _, listed) = read(listed).await;
    let events: Vec<String> =
        listed["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(events.len(), 20, "one event per record: {listed:#}");
    for event in &events {
        wait_delivery(&gateway.client, &gateway.url(""), event, "main", "delivered").await;
    }
    let _ = writeln_stderr(&format!("{test}: {before} requests before the kill, {} in all", receiver.count()));
}

fn writeln_stderr(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(std::io::stderr(), "{text}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_two_replicas_deliver_every_event_and_a_dead_ones_deliveries_are_taken_over() {
    with_schema("webhooks_two_replicas", |url| async move {
        let test = "on_postgresql_two_replicas";
        let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
        let hold = Arc::new(AtomicBool::new(false));
        let holding = hold.clone();
        let receiver = Receiver::start(
            move |_, _| if holding.load(Ordering::SeqCst) { Answer::Hang } else { Answer::Status(200) },
        )
        .await;
        let config = config_with(&webhooks_toml(&[("main", &receiver.url("/"))], ""));
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let vars = env(&sandbox, config.path(), &url);
        let a = Gateway::start(dir_a.path(), &vars).await;
        let b = Gateway::start(dir_b.path(), &vars).await;

        let mut records = BTreeSet::new();
        for n in 1..=10 {
            let gateway = if n % 2 == 0 { &a } else { &b };
            records.insert(cancel(gateway, n).await["id"].as_str().unwrap().to_owned());
        }
        let seen = receiver.wait_for("every record's event", TAKEOVER, |d| cancellation_ids(d) == records).await;
        assert_signed(test, SECRET_A, &seen);

        // A takes deliveries and dies holding them; B takes them over after their lease.
        hold.store(true, Ordering::SeqCst);
        let before = receiver.count();
        let mut held = BTreeSet::new();
        for n in 11..=13 {
            held.insert(cancel(&a, n).await["id"].as_str().unwrap().to_owned());
        }
        receiver.wait_for("the held deliveries left", Duration::from_secs(20), |d| d.len() >= before + 3).await;
        a.kill();
        hold.store(false, Ordering::SeqCst);
        let killed_at = Instant::now();
        let seen = receiver
            .wait_for("the dead replica's deliveries, from the other", TAKEOVER, |d| {
                let delivered: BTreeSet<String> = cancellation_ids(&d[before + 3..]);
                held.is_subset(&delivered)
            })
            .await;
        assert_signed(test, SECRET_A, &seen[before..]);
        let listed = b.client.get(b.url("/v1/events?limit=100")).bearer_auth(DEMO_KEY).send().await.unwrap();
        let (_, _, listed) = read(listed).await;
        let events = listed["data"].as_array().unwrap();
        assert_eq!(events.len(), 13, "{listed:#}");
        for event in events {
            wait_delivery(&b.client, &b.url(""), event["id"].as_str().unwrap(), "main", "delivered").await;
        }
        let _ = writeln_stderr(&format!("{test}: taken over {:?} after the kill", killed_at.elapsed()));
    })
    .await;
}

/// The gateway's resident memory (KiB), from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_receivers_cannot_exhaust_the_gateways_memory() {
    hostile_receivers("hostile_receivers_cannot_exhaust_the_gateways_memory", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_receivers_do_not_hold_back_a_good_endpoint() {
    hostile_receivers("hostile_receivers_do_not_hold_back_a_good_endpoint", true).await;
}

/// Four endpoints (a 50 MiB answer, no answer, a reset, a good one) take 40 events; the
/// gateway's RSS stays within less than one hostile answer of its baseline, its API answers, and
/// (`check_stall`) the good endpoint gets every event within 5 s of its record.
async fn hostile_receivers(test: &str, check_stall: bool) {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let huge = Receiver::start(|_, _| Answer::Huge(50 * 1024 * 1024)).await;
    let silent = Receiver::start(|_, _| Answer::Hang).await;
    let reset = Receiver::start(|_, _| Answer::Reset).await;
    let good = Receiver::ok().await;
    let mut toml = String::from("\n[webhooks]\nretry_schedule_s = [1, 1, 1, 1]\n");
    // A long timeout: waiting on a hostile endpoint would show as a 10 s stall, far above what
    // a loaded machine adds to a fair dispatcher.
    let timeout_ms = 10_000;
    for (name, receiver) in [("huge", &huge), ("silent", &silent), ("reset", &reset), ("good", &good)] {
        toml.push_str(&format!(
            "\n[webhooks.endpoints.{name}]\nurl = \"{}\"\nsecret = \"{SECRET_A}\"\ntimeout_ms = {timeout_ms}\n",
            receiver.url("/")
        ));
    }
    let config = config_with(&toml);
    let data = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(data.path(), &env(&sandbox, config.path(), &sqlite(data.path()))).await;
    // Warm up (first connections, the ledger's caches), then take the baseline.
    cancel(&gateway, 1).await;
    good.wait_for("the warm-up event", Duration::from_secs(20), |d| d.len() == 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = rss_kib(gateway.pid());
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampling = Arc::new(AtomicBool::new(true));
    let (pid, peak_w, sampling_r) = (gateway.pid(), peak.clone(), sampling.clone());
    let sampler = std::thread::spawn(move || {
        while sampling_r.load(Ordering::SeqCst) {
            peak_w.fetch_max(rss_kib(pid), Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(10));
        }
    });

    let mut finals = HashMap::new();
    let mut slowest_cancel = Duration::ZERO;
    for n in 2..=41 {
        let started = Instant::now();
        let record = cancel(&gateway, n).await;
        slowest_cancel = slowest_cancel.max(started.elapsed());
        finals.insert(record["id"].as_str().unwrap().to_owned(), Instant::now());
    }
    let seen = good
        .wait_for("every event at the good endpoint", Duration::from_secs(60), |d| cancellation_ids(d).len() == 41)
        .await;
    // The hostile ones got them too (they are tried, not skipped), and are retried.
    huge.wait_for("the huge receiver was tried", Duration::from_secs(60), |d| d.len() >= 40).await;
    silent.wait_for("the silent receiver was tried", Duration::from_secs(60), |d| d.len() >= 40).await;
    reset.wait_for("the resetting receiver was tried", Duration::from_secs(60), |d| d.len() >= 40).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    sampling.store(false, Ordering::SeqCst);
    sampler.join().unwrap();

    let mut worst = Duration::ZERO;
    for delivery in &seen {
        let id = delivery.json()["data"]["id"].as_str().unwrap_or_default().to_owned();
        if let Some(done) = finals.remove(&id) {
            worst = worst.max(delivery.at.saturating_duration_since(done));
        }
    }
    assert!(finals.is_empty(), "events the good endpoint never got: {finals:?}");
    let peak = peak.load(Ordering::SeqCst);
    let _ = writeln_stderr(&format!(
        "{test}: RSS {baseline} KiB before, peak {peak} KiB; good endpoint: worst {worst:?} after the record; slowest cancel {slowest_cancel:?}"
    ));
    if check_stall {
        assert!(worst < Duration::from_secs(5), "a hostile endpoint held the good one back: {worst:?}");
    }
    assert!(slowest_cancel < Duration::from_secs(5), "the API stalled: {slowest_cancel:?}");
    // Less than one 50 MiB answer: the gateway never holds a hostile answer whole.
    assert!(peak.saturating_sub(baseline) < 40 * 1024, "RSS grew from {baseline} KiB to {peak} KiB");
    let health = gateway.client.get(gateway.url("/healthz")).timeout(Duration::from_secs(1)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_signed(test, SECRET_A, &seen);
}
