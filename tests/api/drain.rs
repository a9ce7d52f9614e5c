//! SPEC §12, SIGTERM on the real binary: `/readyz` turns `503` at once while requests keep being
//! served for `limits.drain_ms` (over connections kept alive from before the signal, and new
//! ones), every HTTP/1 answer from then on says `Connection: close`, then no new connection is
//! accepted, and a request already read is answered, never dropped.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::DEMO_KEY;
use crate::observability::cancelled_reservation;
use crate::process::Gateway;

/// Long enough for the checks below to run inside it on a busy machine.
const DRAIN_MS: u64 = 4_000;
const GRACE_MS: u64 = 4_000;

/// One HTTP/1.1 connection kept alive across requests, written and read by hand: the test
/// must know which connection each request goes over.
struct Connection {
    stream: TcpStream,
    buffered: Vec<u8>,
}

struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: Value,
}

impl Answer {
    fn closes(&self) -> bool {
        self.headers.get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

impl Connection {
    async fn open(addr: &str) -> std::io::Result<Connection> {
        Ok(Connection { stream: TcpStream::connect(addr).await?, buffered: Vec::new() })
    }

    async fn send(&mut self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {DEMO_KEY}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream.write_all(request.as_bytes()).await.unwrap();
        let head_end = loop {
            if let Some(at) = self.buffered.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            self.read_more().await;
        };
        let head = String::from_utf8_lossy(&self.buffered[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers["content-length"].parse().unwrap();
        while self.buffered.len() < head_end + 4 + length {
            self.read_more().await;
        }
        let body = serde_json::from_slice(&self.buffered[head_end + 4..head_end + 4 + length]).unwrap_or(Value::Null);
        self.buffered.drain(..head_end + 4 + length);
        Answer { status, headers, body }
    }

    async fn read_more(&mut self) {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
            .await
            .expect("an answer within 10 s")
            .expect("the connection stays readable");
        assert!(n > 0, "the connection was closed without an answer");
        self.buffered.extend_from_slice(&chunk[..n]);
    }

    /// Whether the server closes the connection (within 2 s).
    async fn closed_by_server(&mut self) -> bool {
        let mut chunk = [0u8; 64];
        matches!(tokio::time::timeout(Duration::from_secs(2), self.stream.read(&mut chunk)).await, Ok(Ok(0) | Err(_)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_readyz_503_at_once_requests_served_then_connections_refused() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("^/v1/reservations/[a-z_0-9]+/cancel$"))
        .respond_with(|request: &Request| {
            let reference = request.url.path().split('/').nth(3).unwrap_or_default().to_owned();
            // The slow one is still in flight when the drain period ends.
            let delay = if reference == "res_slow" { DRAIN_MS + 1_000 } else { 0 };
            ResponseTemplate::new(200)
                .set_body_json(cancelled_reservation(&reference))
                .set_delay(Duration::from_millis(delay))
        })
        .mount(&upstream)
        .await;
    let workdir = tempfile::tempdir().unwrap();
    let env = [
        ("CANCELGATE__LEDGER__URL", format!("sqlite://{}/ledger.db", workdir.path().display())),
        ("CANCELGATE__PROVIDERS__CHARGEAPI__BASE_URL", upstream.uri()),
        ("CANCELGATE__PROVIDERS__CHARGEAPI__TIMEOUT_MS", "10000".to_owned()),
        ("CANCELGATE__LEDGER__LEASE_MS", "60000".to_owned()),
        ("CANCELGATE__LIMITS__DRAIN_MS", DRAIN_MS.to_string()),
        ("CANCELGATE__LIMITS__SHUTDOWN_GRACE_MS", GRACE_MS.to_string()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let mut gateway = Gateway::start(workdir.path(), &env).await;
    let addr = gateway.addr.clone();

    // A keep-alive connection from before the signal, idle when it comes.
    let mut kept = Connection::open(&addr).await.unwrap();
    let answer = kept.send("GET", "/readyz", None).await;
    assert_eq!((answer.status, answer.closes()), (200, false), "{:?}", answer.body);
    // A request in flight across the end of the drain period.
    let slow = tokio::spawn({
        let addr = addr.clone();
        async move {
            let mut connection = Connection::open(&addr).await.unwrap();
            connection
                .send("POST", "/v1/cancellations", Some(json!({"provider": "chargeapi", "reference": "res_slow"})))
                .await
        }
    });
    while upstream.received_requests().await.unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let signalled = Instant::now();
    let pid = gateway.pid().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());

    // `/readyz` turns 503 at once (over new connections: still accepted).
    let body = loop {
        let answer = Connection::open(&addr).await.expect("still accepting").send("GET", "/readyz", None).await;
        if answer.status == 503 {
            assert!(answer.closes());
            break answer.body;
        }
        assert!(signalled.elapsed() < Duration::from_secs(1), "/readyz still {} after SIGTERM", answer.status);
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!((body["status"].as_str(), body["checks"]["shutdown"].as_str()), (Some("not_ready"), Some("draining")));

    // The connection kept alive from before still gets its answer, and is then closed.
    let answer =
        kept.send("POST", "/v1/cancellations", Some(json!({"provider": "chargeapi", "reference": "res_kept"}))).await;
    assert_eq!((answer.status, &answer.body["status"]), (200, &json!("cancelled")), "{:?}", answer.body);
    assert!(answer.closes(), "{:?}", answer.headers);
    assert!(kept.closed_by_server().await, "the connection stayed open after `Connection: close`");

    // New connections are served until the drain period ends.
    let answer = Connection::open(&addr)
        .await
        .expect("still accepting during the drain")
        .send("POST", "/v1/cancellations", Some(json!({"provider": "chargeapi", "reference": "res_new"})))
        .await;
    assert_eq!((answer.status, &answer.body["status"]), (200, &json!("cancelled")), "{:?}", answer.body);
    assert!(signalled.elapsed() < Duration::from_millis(DRAIN_MS), "the test was too slow to check the drain");

    // Then no new connection is accepted.
    loop {
        if Connection::open(&addr).await.is_err() {
            break;
        }
        assert!(signalled.elapsed() < Duration::from_millis(DRAIN_MS + 1_000), "still accepting after the drain");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(signalled.elapsed() >= Duration::from_millis(DRAIN_MS - 100), "stopped accepting before the drain ended");

    // The request read before the end is answered, with `Connection: close`.
    let answer = slow.await.unwrap();
    assert_eq!((answer.status, &answer.body["status"]), (200, &json!("cancelled")), "{:?}", answer.body);
    assert!(answer.closes(), "{:?}", answer.headers);

    let exited = gateway.wait_exit(Duration::from_millis(DRAIN_MS + GRACE_MS + 1_000)).await;
    assert!(exited.is_some_and(|s| s.success()), "{exited:?}");
    assert!(gateway.logs().contains("draining"), "{}", gateway.logs());
}
