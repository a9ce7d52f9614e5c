//! SIGTERM on the real binary while requests are in flight against a slow upstream: the server
//! stops accepting, the requests in flight get their answers (200 within the grace, or 202 for
//! work left in the background), the process exits within `limits.shutdown_grace_ms`, and every
//! accepted cancellation is in the ledger at the next start, where it is driven to the end.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::{DEMO_KEY, config_dir, read};
use crate::observability::cancelled_reservation;

const GRACE_MS: u64 = 4_000;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cancelgate serve` in `workdir` (SQLite ledger there), chargeapi at `upstream`.
fn start(workdir: &Path, upstream: &str) -> (Running, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cancelgate"))
        .arg("serve")
        .current_dir(workdir)
        .env("CANCELGATE_CONFIG_DIR", config_dir())
        .env("CANCELGATE__LISTEN", "127.0.0.1:0")
        .env("CANCELGATE__LEDGER__URL", format!("sqlite://{}/ledger.db", workdir.display()))
        .env("CANCELGATE__PROVIDERS__CHARGEAPI__BASE_URL", upstream)
        .env("CANCELGATE__PROVIDERS__CHARGEAPI__TIMEOUT_MS", "20000")
        // The lease must outlast an attempt (checked at start).
        .env("CANCELGATE__LEDGER__LEASE_MS", "60000")
        .env("CANCELGATE__LIMITS__RESPOND_WITHIN_MS", "2500")
        .env("CANCELGATE__LIMITS__SHUTDOWN_GRACE_MS", GRACE_MS.to_string())
        // No drain period: this test is about what follows it (see `drain.rs` for the drain).
        .env("CANCELGATE__LIMITS__DRAIN_MS", "0")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary starts");
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
    let addr = rx.recv_timeout(Duration::from_secs(60)).expect("the gateway says where it listens");
    (Running(child), addr)
}

/// chargeapi answering after `delay` (the reference from the path).
async fn slow(upstream: &MockServer, reference_pattern: &str, delay: Duration) {
    Mock::given(method("POST"))
        .and(path_regex(format!("^/v1/reservations/({reference_pattern})/cancel$")))
        .respond_with(move |request: &Request| {
            let reference = request.url.path().split('/').nth(3).unwrap_or_default().to_owned();
            ResponseTemplate::new(200).set_body_json(cancelled_reservation(&reference)).set_delay(delay)
        })
        .mount(upstream)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_in_flight_finish_loses_nothing_and_exits_within_the_grace() {
    let workdir = tempfile::tempdir().unwrap();
    let upstream = MockServer::start().await;
    // Answered within the grace, and much slower than the grace (left to the background).
    slow(&upstream, "res_quick[0-9]", Duration::from_millis(1_200)).await;
    slow(&upstream, "res_slow[0-9]", Duration::from_secs(30)).await;
    let (mut gateway, addr) = start(workdir.path(), &upstream.uri());

    let client = reqwest::Client::new();
    let mut in_flight = Vec::new();
    for reference in ["res_quick1", "res_quick2", "res_slow1", "res_slow2"] {
        let request = client
            .post(format!("http://{addr}/v1/cancellations"))
            .bearer_auth(DEMO_KEY)
            .json(&json!({"provider": "chargeapi", "reference": reference}))
            .send();
        in_flight.push((reference, tokio::spawn(request)));
    }
    // Every request reached the upstream: they are in flight.
    let deadline = Instant::now() + Duration::from_secs(10);
    while upstream.received_requests().await.unwrap().len() < 4 {
        assert!(Instant::now() < deadline, "the requests never reached the upstream");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let pid = gateway.0.id().to_string();
    let signalled = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());

    // No new connection is accepted once the signal is in.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let late = reqwest::Client::new().get(format!("http://{addr}/healthz")).send().await;
    assert!(late.is_err(), "a new request was accepted after SIGTERM: {late:?}");

    let mut accepted = Vec::new();
    for (reference, request) in in_flight {
        let response = request.await.unwrap().unwrap_or_else(|e| panic!("{reference}: no answer: {e}"));
        let (status, headers, body) = read(response).await;
        if reference.starts_with("res_quick") {
            assert_eq!((status, &body["status"]), (200, &json!("cancelled")), "{reference}: {body:#}");
        } else {
            assert_eq!((status, &body["status"]), (202, &json!("processing")), "{reference}: {body:#}");
            assert!(headers.contains_key("location"));
        }
        accepted.push(body["id"].as_str().unwrap().to_owned());
    }

    let exited = loop {
        if let Some(status) = gateway.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_millis(GRACE_MS + 1_500),
            "still running {:?} after SIGTERM (grace {GRACE_MS} ms)",
            signalled.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert!(exited.success(), "{exited:?}");
    assert!(signalled.elapsed() < Duration::from_millis(GRACE_MS + 1_000), "{:?}", signalled.elapsed());
    drop(gateway);

    // The next start finds every accepted cancellation and finishes the ones left processing.
    upstream.reset().await;
    slow(&upstream, "res_[a-z]+[0-9]", Duration::ZERO).await;
    let (_gateway, addr) = start(workdir.path(), &upstream.uri());
    for id in &accepted {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let response =
                client.get(format!("http://{addr}/v1/cancellations/{id}")).bearer_auth(DEMO_KEY).send().await.unwrap();
            let (status, _, body) = read(response).await;
            assert_eq!(status, 200, "{id} lost: {body:#}");
            if body["status"] == "cancelled" {
                break;
            }
            assert_eq!(body["status"], "processing", "{body:#}");
            assert!(Instant::now() < deadline, "{id} never finished: {body:#}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
