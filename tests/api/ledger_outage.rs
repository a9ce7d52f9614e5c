//! SPEC §12: the ledger failing is never a provider's fault. The real binary on a PostgreSQL
//! server of the test's own that is stopped (`pg_ctl -m immediate stop`), and on a SQLite file
//! on a small tmpfs that fills up: a request the gateway cannot record is `503
//! ledger_unavailable` with `Retry-After` within 1 s, nothing is sent upstream, `/readyz`
//! answers `503` within 1 s naming the cause, the log names it without the URL's password, and
//! all of it recovers once the database does.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::read;
use crate::observability::cancelled_reservation;
use crate::own_postgres::OwnPostgres;
use crate::postgres_env::in_ci;
use crate::process::Gateway;

/// SPEC §12: answered within this, not after a stall.
const WITHIN: Duration = Duration::from_secs(1);
/// A password in the ledger URL (trust authentication ignores it): it must never be logged.
const URL_PASSWORD: &str = "pw-never-logged-7f3a";

/// chargeapi confirming every cancel at once.
async fn confirming_upstream() -> MockServer {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("^/v1/reservations/[A-Za-z0-9_]+/cancel$"))
        .respond_with(|request: &Request| {
            let reference = request.url.path().split('/').nth(3).unwrap_or_default().to_owned();
            ResponseTemplate::new(200).set_body_json(cancelled_reservation(&reference))
        })
        .mount(&upstream)
        .await;
    upstream
}

/// How many cancels of `reference` reached the upstream.
async fn sent(upstream: &MockServer, reference: &str) -> usize {
    let path = format!("/v1/reservations/{reference}/cancel");
    upstream.received_requests().await.unwrap().iter().filter(|r| r.url.path() == path).count()
}

fn gateway_env(ledger_url: String, upstream: &MockServer) -> Vec<(String, String)> {
    vec![
        ("CANCELGATE__LEDGER__URL".to_owned(), ledger_url),
        ("CANCELGATE__PROVIDERS__CHARGEAPI__BASE_URL".to_owned(), upstream.uri()),
    ]
}

/// `POST /v1/cancellations` of `reference` (with an idempotency key), timed.
async fn timed_cancel(gateway: &Gateway, reference: &str) -> (Duration, u16, reqwest::header::HeaderMap, Value) {
    let started = Instant::now();
    let body = json!({"provider": "chargeapi", "reference": reference});
    let (status, headers, body) = gateway.cancel(&body, Some(&format!("key-{reference}"))).await;
    (started.elapsed(), status, headers, body)
}

/// `GET /readyz`, timed.
async fn timed_readyz(gateway: &Gateway) -> (Duration, u16, Value) {
    let started = Instant::now();
    let response = gateway.client.get(gateway.url("/readyz")).timeout(Duration::from_secs(10)).send().await.unwrap();
    let (status, _, body) = read(response).await;
    (started.elapsed(), status, body)
}

/// A refused request: `503 ledger_unavailable`, retryable, `Retry-After`, in time, nothing sent.
async fn assert_refused_in_time(gateway: &Gateway, upstream: &MockServer, reference: &str, detail_says: &str) {
    let (took, status, headers, body) = timed_cancel(gateway, reference).await;
    assert_eq!((status, body["code"].as_str()), (503, Some("ledger_unavailable")), "{reference}: {body:#}");
    assert_eq!(body["type"], "/errors/ledger_unavailable");
    assert_eq!(body["retryable"], true);
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    assert!(body["detail"].as_str().unwrap().contains(detail_says), "{body:#}");
    assert!(took < WITHIN, "{reference}: answered after {took:?}");
    assert_eq!(sent(upstream, reference).await, 0, "{reference}: sent although it could not be recorded");
}

/// Polls `/readyz` until it answers `want` (at most `within`).
async fn readyz_until(gateway: &Gateway, want: u16, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (_, status, body) = timed_readyz(gateway).await;
        if status == want {
            return body;
        }
        assert!(Instant::now() < deadline, "/readyz still {status} after {within:?}: {body:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_postgres_is_ledger_unavailable_within_a_second_and_readyz_says_why() {
    let Some(pg) = OwnPostgres::start("a_stopped_postgres_is_ledger_unavailable_within_a_second_and_readyz_says_why")
    else {
        return;
    };
    let upstream = confirming_upstream().await;
    let workdir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(workdir.path(), &gateway_env(pg.url_with_password(URL_PASSWORD), &upstream)).await;
    let (_, status, _, body) = timed_cancel(&gateway, "res_before").await;
    assert_eq!((status, &body["status"]), (200, &json!("cancelled")), "{body:#}");
    assert_eq!(timed_readyz(&gateway).await.1, 200);

    pg.stop_immediate();
    for n in 0..3 {
        assert_refused_in_time(&gateway, &upstream, &format!("res_during{n}"), "cannot be reached").await;
    }
    let (took, status, body) = timed_readyz(&gateway).await;
    assert_eq!((status, &body["checks"]["ledger"]), (503, &json!("unreachable")), "{body:#}");
    assert!(took < WITHIN, "/readyz took {took:?}");
    let cause = body["cause"].as_str().unwrap().to_lowercase();
    assert!(cause.contains("connection refused"), "{body:#}");
    // Again, past the reuse of the last diagnosis: still in time.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (took, status, _) = timed_readyz(&gateway).await;
    assert!(status == 503 && took < WITHIN, "{status} after {took:?}");

    let logs = gateway.logs();
    assert!(logs.to_lowercase().contains("connection refused"), "the log does not name the cause:\n{logs}");
    assert!(!logs.contains(URL_PASSWORD), "the ledger URL's password was logged:\n{logs}");

    pg.start_again();
    readyz_until(&gateway, 200, Duration::from_secs(15)).await;
    // A request refused during the outage, retried with its key, is performed now: nothing of
    // it was stored before.
    let (_, status, _, body) = timed_cancel(&gateway, "res_during0").await;
    assert_eq!((status, &body["status"], &body["replayed"]), (200, &json!("cancelled"), &json!(false)), "{body:#}");
    assert_eq!(sent(&upstream, "res_during0").await, 1);
}

/// A tmpfs of its own, unmounted when dropped (after whatever uses it).
struct Tmpfs(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Tmpfs {
    /// `mount -t tmpfs -o size=…`, or `None` (after saying so) where mounting is not allowed;
    /// under `CI` that fails the test instead.
    fn mount(test: &str, size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"])
            .arg(&path)
            .output()
            .unwrap();
        if out.status.success() {
            return Some(Tmpfs(path, dir));
        }
        let why = format!("cannot mount a tmpfs here: {}", String::from_utf8_lossy(&out.stderr).trim());
        assert!(!in_ci(), "CI is set: {test} must run, but {why}");
        let _ = writeln!(std::io::stderr(), "skipped: {test} ({why})");
        None
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Fills what is left of the disk with one file; removing it frees the space again.
    fn fill(&self) -> PathBuf {
        let filler = self.0.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        // The last pages: smaller writes until none fits.
        let mut small = 4096;
        while small > 0 {
            if file.write(&block[..small]).is_err() {
                small /= 2;
            }
        }
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_a_sqlite_ledger_is_ledger_unavailable_and_readyz_says_so() {
    let test = "a_full_disk_under_a_sqlite_ledger_is_ledger_unavailable_and_readyz_says_so";
    let Some(disk) = Tmpfs::mount(test, "4m") else { return };
    let upstream = confirming_upstream().await;
    let ledger_url = format!("sqlite://{}/ledger.db", disk.path().display());
    let gateway = Gateway::start(disk.path(), &gateway_env(ledger_url, &upstream)).await;
    let (_, status, _, body) = timed_cancel(&gateway, "res_before").await;
    assert_eq!((status, &body["status"]), (200, &json!("cancelled")), "{body:#}");
    assert_eq!(timed_readyz(&gateway).await.1, 200);

    let filler = disk.fill();
    // SQLite may still reuse room it holds (the log's): cancels go through until it is used up,
    // and each one is performed, or recorded and sent but its answer not stored (`202`
    // `processing`: it stays to be resumed), or refused with nothing sent.
    let mut refused = None;
    for n in 0..200 {
        let reference = format!("res_filling{n}");
        let (took, status, _, body) = timed_cancel(&gateway, &reference).await;
        match status {
            200 => assert_eq!(body["status"], "cancelled", "{body:#}"),
            202 => assert_eq!(body["status"], "processing", "{body:#}"),
            503 => {
                assert_eq!(body["code"], "ledger_unavailable", "{body:#}");
                assert!(took < WITHIN, "refused after {took:?}");
                refused = Some(reference);
                break;
            }
            _ => panic!("{reference}: {status} {body:#}\n{}", gateway.logs()),
        }
    }
    let refused = refused.expect("the full disk never refused a write");
    assert_eq!(sent(&upstream, &refused).await, 0, "sent although it could not be recorded");
    for n in 0..3 {
        assert_refused_in_time(&gateway, &upstream, &format!("res_full{n}"), "disk is full").await;
    }
    let (took, status, body) = timed_readyz(&gateway).await;
    assert_eq!((status, &body["checks"]["ledger"]), (503, &json!("disk_full")), "{body:#}\n{}", gateway.logs());
    assert!(took < WITHIN, "/readyz took {took:?}");
    assert!(body["cause"].as_str().unwrap().contains("full"), "{body:#}");
    let logs = gateway.logs();
    assert!(logs.contains("database or disk is full"), "the log does not name the cause:\n{logs}");

    std::fs::remove_file(filler).unwrap();
    readyz_until(&gateway, 200, Duration::from_secs(10)).await;
    let (_, status, _, body) = timed_cancel(&gateway, "res_full0").await;
    assert_eq!((status, &body["status"], &body["replayed"]), (200, &json!("cancelled"), &json!(false)), "{body:#}");
    drop(gateway);
}
