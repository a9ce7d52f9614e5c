//! Hostile input, end to end: whatever a caller (or an upstream) sends, the answer is a
//! documented code, never `internal`, nothing reaches an upstream that should not, the echo of an
//! upstream answer stays bounded, and the process keeps serving (`/healthz` answers afterwards).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cancelgate_gateway::conn_limits::{self, ConnLimits};
use cancelgate_gateway::{Application, Settings};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{DEMO_KEY, TestApp, assert_problem, config_dir, read, spawn_app, spawn_app_with};

/// The process still serves.
async fn assert_healthy(addr: SocketAddr) {
    let response = reqwest::get(format!("http://{addr}/healthz")).await.expect("the gateway still answers");
    assert_eq!(response.status(), 200);
}

/// Write `bytes` (the server may close before it has read them all), then read until the server
/// closes or `wait` passes. Returns what was read and whether the server closed in time.
async fn raw_exchange(addr: SocketAddr, bytes: &[u8], wait: Duration) -> (String, bool) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(bytes).await;
    read_until_closed(&mut stream, wait).await
}

async fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), false),
        }
    }
}

/// The gateway served by [`conn_limits::serve`] (the hardened accept loop), upstreams unreachable.
async fn spawn_hardened(limits: ConnLimits) -> (SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut env = HashMap::from([
        ("CANCELGATE__LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("CANCELGATE__LEDGER__URL".to_owned(), format!("sqlite://{}/ledger.db", dir.path().display())),
    ]);
    for id in ["CHARGEAPI", "FRONTPAYMENT", "ACCOMMODATION"] {
        env.insert(format!("CANCELGATE__PROVIDERS__{id}__BASE_URL"), "http://127.0.0.1:9".to_owned());
    }
    let settings = Settings::load_with_env(&config_dir(), Some(env)).unwrap();
    let app = Application::build(settings).await.unwrap();
    let router = cancelgate_gateway::routes::router(app.state().clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(conn_limits::serve(listener, router, limits, std::future::pending()));
    (addr, dir)
}

fn tight_limits() -> ConnLimits {
    ConnLimits {
        header_read_timeout: Duration::from_millis(300),
        max_header_bytes: 16 * 1024,
        max_headers: 64,
        shutdown_grace: Duration::from_secs(1),
    }
}

fn status_of(response: &str) -> Option<u16> {
    response.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

struct Case {
    what: &'static str,
    method: reqwest::Method,
    path: String,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Option<Vec<u8>>,
    status: u16,
    code: &'static str,
    param: Option<&'static str>,
}

fn post(
    what: &'static str,
    body: impl Into<Vec<u8>>,
    status: u16,
    code: &'static str,
    param: Option<&'static str>,
) -> Case {
    Case {
        what,
        method: reqwest::Method::POST,
        path: "/v1/cancellations".into(),
        headers: vec![],
        body: Some(body.into()),
        status,
        code,
        param,
    }
}

fn get(
    what: &'static str,
    path: impl Into<String>,
    status: u16,
    code: &'static str,
    param: Option<&'static str>,
) -> Case {
    Case { what, method: reqwest::Method::GET, path: path.into(), headers: vec![], body: None, status, code, param }
}

fn with_header(mut case: Case, name: &'static str, value: impl Into<Vec<u8>>) -> Case {
    case.headers.push((name, value.into()));
    case
}

fn valid(extra: Value) -> Vec<u8> {
    let mut body = json!({"provider": "chargeapi", "reference": "res_abc"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body.to_string().into_bytes()
}

#[tokio::test]
async fn hostile_requests_get_their_documented_4xx_and_reach_no_upstream() {
    let app = spawn_app().await;
    let deep_array = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_object = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    let deep_in_metadata =
        format!(r#"{{"provider":"chargeapi","reference":"res_abc","metadata":{{"a":{deep_array}}}}}"#);
    let mut invalid_utf8 = br#"{"provider":"chargeapi","reference":"res_"#.to_vec();
    invalid_utf8.extend_from_slice(b"\xff\xfe\"}");
    let many_keys: serde_json::Map<String, Value> = (0..2000).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases = vec![
        post("10,000-deep array", deep_array.clone(), 400, "invalid_request", Some("body")),
        // Refused at the first member that cannot be one (an unknown member, a value that is not
        // a string), without descending into it.
        post("10,000-deep object", deep_object, 400, "invalid_request", Some("a")),
        post("deep nesting inside metadata", deep_in_metadata, 400, "invalid_request", Some("metadata.a")),
        post("1 MiB body", vec![b' '; 1024 * 1024], 413, "payload_too_large", None),
        post("invalid UTF-8 in a string", invalid_utf8, 400, "invalid_request", Some("body")),
        post(
            "lone surrogate",
            r#"{"provider":"chargeapi","reference":"res_\ud800"}"#,
            400,
            "invalid_request",
            Some("body"),
        ),
        post(
            "number out of range",
            r#"{"provider":"chargeapi","reference":1e400}"#,
            400,
            "invalid_request",
            Some("body"),
        ),
        post(
            "NUL bytes",
            b"{\"provider\":\"chargeapi\",\0\"reference\":\"res_abc\"}".to_vec(),
            400,
            "invalid_request",
            Some("body"),
        ),
        post(
            "trailing garbage",
            format!("{}garbage", String::from_utf8(valid(json!({}))).unwrap()),
            400,
            "invalid_request",
            Some("body"),
        ),
        post(
            "10 KiB reference",
            valid(json!({"reference": format!("res_{}", "a".repeat(10_240))})),
            400,
            "invalid_request",
            Some("reference"),
        ),
        post("homoglyph reference", valid(json!({"reference": "res_аbc"})), 400, "invalid_request", Some("reference")),
        post(
            "65-character account",
            valid(json!({"account": "a".repeat(65)})),
            400,
            "invalid_request",
            Some("account"),
        ),
        post("path in account", valid(json!({"account": "../default"})), 400, "invalid_request", Some("account")),
        post("empty account", valid(json!({"account": ""})), 400, "invalid_request", Some("account")),
        post("501-character reason", valid(json!({"reason": "é".repeat(501)})), 400, "invalid_request", Some("reason")),
        post("CR/LF in reason", valid(json!({"reason": "x\r\nX-Injected: 1"})), 400, "invalid_request", Some("reason")),
        post(
            "17-character language",
            valid(json!({"language": "a".repeat(17)})),
            400,
            "invalid_request",
            Some("language"),
        ),
        post(
            "language with a header",
            valid(json!({"language": "EN\r\nX-Injected: 1"})),
            400,
            "invalid_request",
            Some("language"),
        ),
        post(
            "41-character metadata key",
            valid(json!({"metadata": {"k".repeat(41): "v"}})),
            400,
            "invalid_request",
            Some("metadata"),
        ),
        post("empty metadata key", valid(json!({"metadata": {"": "v"}})), 400, "invalid_request", Some("metadata")),
        post(
            "501-character metadata value",
            valid(json!({"metadata": {"k": "v".repeat(501)}})),
            400,
            "invalid_request",
            Some("metadata"),
        ),
        post("2,000 metadata entries", valid(json!({"metadata": many_keys})), 400, "invalid_request", Some("metadata")),
        post(
            "object as metadata value",
            valid(json!({"metadata": {"k": {"x": 1}}})),
            400,
            "invalid_request",
            Some("metadata.k"),
        ),
        post("metadata as a list", valid(json!({"metadata": ["a"]})), 400, "invalid_request", Some("metadata")),
        post(
            "provider as a number",
            r#"{"provider":1,"reference":"res_abc"}"#,
            400,
            "invalid_request",
            Some("provider"),
        ),
        post(
            "65-character provider",
            valid(json!({"provider": "p".repeat(65)})),
            400,
            "invalid_request",
            Some("provider"),
        ),
        with_header(
            post("256-byte idempotency key", valid(json!({})), 400, "invalid_request", Some("Idempotency-Key")),
            "idempotency-key",
            vec![b'k'; 256],
        ),
        with_header(
            post("non-ASCII idempotency key", valid(json!({})), 400, "invalid_request", Some("Idempotency-Key")),
            "idempotency-key",
            b"caf\xc3\xa9".to_vec(),
        ),
        with_header(
            post("empty idempotency key", valid(json!({})), 400, "invalid_request", Some("Idempotency-Key")),
            "idempotency-key",
            b"".to_vec(),
        ),
        with_header(
            post("tab in idempotency key", valid(json!({})), 400, "invalid_request", Some("Idempotency-Key")),
            "idempotency-key",
            b"a\tb".to_vec(),
        ),
        with_header(
            post("XML body", valid(json!({})), 400, "invalid_request", Some("Content-Type")),
            "content-type",
            b"application/xml".to_vec(),
        ),
        get("id that is not UTF-8", "/v1/cancellations/%FF%FE", 404, "not_found", None),
        get("error page name that is not UTF-8", "/errors/%FF%FE", 404, "not_found", None),
        get("65-character id", format!("/v1/cancellations/can_{}", "a".repeat(61)), 404, "not_found", None),
        get("encoded path in id", "/v1/cancellations/..%2F..%2Fhealthz", 404, "not_found", None),
        get("path traversal", "/v1/cancellations/../../healthz/x", 404, "not_found", None),
        get("limit 0", "/v1/cancellations?limit=0", 400, "invalid_request", Some("limit")),
        get("limit 101", "/v1/cancellations?limit=101", 400, "invalid_request", Some("limit")),
        get("limit huge", "/v1/cancellations?limit=99999999999999999999999", 400, "invalid_request", Some("limit")),
        get("limit not a number", "/v1/cancellations?limit=1e2", 400, "invalid_request", Some("limit")),
        // `param` names the parameter itself, as it names a body's member.
        get("limit twice", "/v1/cancellations?limit=1&limit=2", 400, "invalid_request", Some("limit")),
        get("unknown query parameter", "/v1/cancellations?debug=1", 400, "invalid_request", Some("debug")),
        get("bad time", "/v1/cancellations?created_gte=yesterday", 400, "invalid_request", Some("created_gte")),
        get("bad status", "/v1/cancellations?status=%00", 400, "invalid_request", Some("status")),
        get(
            "unknown cursor",
            "/v1/cancellations?starting_after=can_nope",
            400,
            "invalid_request",
            Some("starting_after"),
        ),
        Case {
            what: "POST to an operations route",
            method: reqwest::Method::POST,
            path: "/healthz".into(),
            headers: vec![],
            body: Some(b"{}".to_vec()),
            status: 405,
            code: "method_not_allowed",
            param: None,
        },
    ];
    for case in cases {
        let mut request = app
            .client
            .request(case.method.clone(), app.url(&case.path))
            .header("authorization", format!("Bearer {DEMO_KEY}"));
        if case.body.is_some() && !case.headers.iter().any(|(n, _)| *n == "content-type") {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in &case.headers {
            request = request.header(*name, reqwest::header::HeaderValue::from_bytes(value).unwrap());
        }
        if let Some(body) = case.body {
            request = request.body(body);
        }
        let (status, headers, problem) = read(request.send().await.unwrap()).await;
        assert_eq!(status, case.status, "{}: {problem:#}", case.what);
        assert_problem(status, &headers, &problem, case.status, case.code);
        assert_eq!(problem.get("param").and_then(Value::as_str), case.param, "{}: {problem:#}", case.what);
    }
    assert_eq!(app.upstreams.received_count().await, 0, "nothing hostile reaches an upstream");
    assert!(!app.logs.text().contains("\"internal error\""), "no hostile input is a bug");
    assert_healthy(app.addr).await;
}

#[tokio::test]
async fn a_huge_authorization_or_request_id_is_refused_without_harm() {
    let app = spawn_app().await;
    // Large, but within the head limit (`limits.max_header_bytes`, 16 KiB): the app decides.
    let huge_key = format!("Bearer {DEMO_KEY}{}", "x".repeat(6_000));
    let response = app
        .client
        .post(app.url("/v1/cancellations"))
        .header("authorization", huge_key)
        .header("x-request-id", "r".repeat(6_000))
        .json(&json!({"provider": "chargeapi", "reference": "res_abc"}))
        .send()
        .await
        .unwrap();
    let (status, headers, problem) = read(response).await;
    assert_problem(status, &headers, &problem, 401, "unauthorized");
    assert!(headers["x-request-id"].to_str().unwrap().starts_with("req_"), "an oversized id is replaced");
    assert_healthy(app.addr).await;
}

#[tokio::test]
async fn oversized_request_heads_get_431_and_the_process_stays_healthy() {
    // The shipped accept loop (`axum::serve`): hyper's own ~400 KiB limit.
    let app = spawn_app().await;
    let head = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n", "a".repeat(1024 * 1024));
    let (response, closed) = raw_exchange(app.addr, head.as_bytes(), Duration::from_secs(5)).await;
    assert!(closed, "the connection is closed");
    assert!(response.is_empty() || status_of(&response) == Some(431), "{response}");
    assert_healthy(app.addr).await;

    // The hardened accept loop: 16 KiB of head, 64 header fields.
    let (addr, _dir) = spawn_hardened(tight_limits()).await;
    let big = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n", "a".repeat(20 * 1024));
    let many = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..70).map(|i| format!("X-H{i}: v\r\n")).collect::<String>()
    );
    for head in [big, many] {
        let (response, closed) = raw_exchange(addr, head.as_bytes(), Duration::from_secs(5)).await;
        assert_eq!(status_of(&response), Some(431), "{response}");
        assert!(closed);
    }
    let fits =
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\nConnection: close\r\n\r\n", "a".repeat(8 * 1024));
    let (response, _) = raw_exchange(addr, fits.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(status_of(&response), Some(200), "{response}");
    assert_healthy(addr).await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_head_is_cut_off() {
    let (addr, _dir) = spawn_hardened(tight_limits()).await;
    for partial in [&b""[..], b"POST /v1/cancellations HTTP/1.1\r\nHost: x\r\n", b"GE"] {
        let started = Instant::now();
        let (_, closed) = raw_exchange(addr, partial, Duration::from_secs(3)).await;
        assert!(closed, "a partial head ({partial:?}) must not hold the connection");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }
    // A head sent a byte at a time, each byte within the timeout, is still bounded as a whole.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let head =
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut cut = false;
    for byte in head {
        if stream.write_all(&[*byte]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(2)).await;
    assert!(cut || closed, "a head sent byte by byte was not cut");
    assert!(started.elapsed() < Duration::from_secs(5));

    // An idle keep-alive connection is closed too.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let started = Instant::now();
    let (response, closed) = read_until_closed(&mut stream, Duration::from_secs(3)).await;
    assert_eq!(status_of(&response), Some(200), "{response}");
    assert!(closed && started.elapsed() < Duration::from_secs(2), "idle keep-alive held for {:?}", started.elapsed());
    assert_healthy(addr).await;
}

#[tokio::test]
async fn a_body_that_never_arrives_or_trickles_in_is_cut_off() {
    let app =
        spawn_app_with(HashMap::from([("CANCELGATE__LIMITS__BODY_READ_TIMEOUT_MS".to_owned(), "300".to_owned())]))
            .await;
    let head = format!(
        "POST /v1/cancellations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {DEMO_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
    );
    // Part of the body, then nothing.
    let started = Instant::now();
    let (response, _) =
        raw_exchange(app.addr, format!("{head}{{\"provider\":").as_bytes(), Duration::from_secs(3)).await;
    assert_eq!(status_of(&response), Some(400), "{response}");
    assert!(response.contains("\"param\":\"body\"") && response.contains("application/problem+json"), "{response}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());

    // A byte every 50 ms: each chunk is "on time", the whole is not.
    let stream = TcpStream::connect(app.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        for _ in 0..200 {
            if writer.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), reader.read_to_end(&mut response)).await;
    trickle.abort();
    let response = String::from_utf8_lossy(&response);
    assert_eq!(status_of(&response), Some(400), "{response}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());

    assert_eq!(app.upstreams.received_count().await, 0);
    assert_healthy(app.addr).await;
}

#[tokio::test]
async fn cr_lf_and_control_characters_cannot_inject_headers_or_log_lines() {
    let app = spawn_app().await;
    // Bytes HTTP forbids in a header value: hyper refuses the request before any routing.
    for raw in [
        &b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc\rSet-Cookie: a=b\r\n\r\n"[..],
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc\x00def\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc\r\n Set-Cookie: a=b\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nIdempotency-Key: a\x01b\r\n\r\n",
    ] {
        let (response, _) = raw_exchange(app.addr, raw, Duration::from_secs(3)).await;
        assert!(!response.to_ascii_lowercase().contains("set-cookie"), "{response}");
        assert!(matches!(status_of(&response), None | Some(400)), "{response}");
    }
    // Bytes HTTP allows but we never echo: obs-text, quotes, spaces, a percent-encoded CR/LF.
    let hostile_ids: [&[u8]; 5] = [b"caf\xc3\xa9", b"a b", b"a\"b", b"%0d%0aSet-Cookie:%20a=b", b"a\tb"];
    for id in hostile_ids {
        let response = app
            .client
            .post(app.url("/v1/cancellations"))
            .bearer_auth(DEMO_KEY)
            .header("x-request-id", reqwest::header::HeaderValue::from_bytes(id).unwrap())
            .header("idempotency-key", reqwest::header::HeaderValue::from_bytes(id).unwrap())
            .json(&json!({"provider": "chargeapi", "reference": "res_abc", "metadata": {"k": "v\r\nSet-Cookie: a=b"}}))
            .send()
            .await
            .unwrap();
        let echoed = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(echoed.starts_with("req_") || echoed.as_bytes() == id, "{echoed}");
        assert!(echoed.bytes().all(|b| b.is_ascii_graphic()), "{echoed:?}");
        assert!(response.headers().get("set-cookie").is_none());
    }
    // A metadata value may hold a line break: it is JSON data, stored and returned escaped.
    let response = app
        .client
        .post(app.url("/v1/cancellations"))
        .bearer_auth(DEMO_KEY)
        .json(&json!({"provider": "chargeapi", "reference": "res_", "metadata": {"k": "v\r\nSet-Cookie: a=b"}}))
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("set-cookie").is_none());
    // Every log line is one JSON document: nothing a caller sent started a line of its own.
    let logs = app.logs.text();
    for line in logs.lines() {
        assert!(serde_json::from_str::<Value>(line).is_ok(), "a log line was split or injected: {line:?}");
        assert!(!line.starts_with("Set-Cookie"));
    }
    assert_healthy(app.addr).await;
}

/// A pseudo-random byte sequence (no extra dependency, same bytes every run).
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `upstream.body` as echoed: JSON verbatim only when it is small, else text of at most 4 KiB.
#[track_caller]
fn assert_bounded_upstream(what: &str, upstream: &Value) {
    match &upstream["body"] {
        Value::String(text) => {
            assert!(text.len() <= cancelgate_core::UPSTREAM_TEXT_LIMIT, "{what}: {} bytes", text.len())
        }
        Value::Null => {}
        other => {
            assert!(other.to_string().len() <= cancelgate_core::UPSTREAM_JSON_LIMIT, "{what}: JSON echoed in full")
        }
    }
    for member in ["message", "code"] {
        if let Some(text) = upstream[member].as_str() {
            assert!(text.len() <= cancelgate_core::UPSTREAM_TEXT_LIMIT, "{what}: {member} is {} bytes", text.len());
        }
    }
}

/// Backoff capped low: an upstream `Retry-After` is honoured only up to the cap.
async fn spawn_fast_retries() -> TestApp {
    spawn_app_with(HashMap::from([(
        "CANCELGATE__PROVIDERS__CHARGEAPI__RETRY__BACKOFF_MAX_MS".to_owned(),
        "50".to_owned(),
    )]))
    .await
}

/// Each chargeapi reference answered by its template: the gateway's answer (and, when it went on
/// in the background, the final record) has a documented code and a bounded echo.
async fn check_upstream_cases(app: &TestApp, cases: Vec<(&str, ResponseTemplate)>) {
    let documented = [200, 202, 403, 404, 409, 422, 429, 502, 503, 504];
    for (reference, template) in cases {
        Mock::given(method("POST"))
            .and(path(format!("/v1/reservations/{reference}/cancel")))
            .respond_with(template)
            .mount(app.upstreams.of("chargeapi"))
            .await;
        let response = app.cancel(json!({"provider": "chargeapi", "reference": reference})).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert!(text.len() <= 32 * 1024, "{reference}: a {} byte answer", text.len());
        let body: Value = serde_json::from_str(&text).unwrap();
        assert!(documented.contains(&status), "{reference}: {status} {body:#}");
        assert_ne!(body["code"], "internal", "{reference}: {body:#}");
        assert_bounded_upstream(reference, &body["upstream"]);
        if status == 202 {
            let record = app.wait_final(body["id"].as_str().unwrap()).await;
            assert_bounded_upstream(reference, &record["upstream"]);
            if let Some(error) = record["error"].as_object() {
                assert_ne!(error["code"], "internal");
            }
        }
    }
    assert!(!app.logs.text().contains("\"internal error\""));
    assert_healthy(app.addr).await;
}

#[tokio::test]
async fn a_50_mib_upstream_body_is_cut_and_echoed_bounded() {
    let app = spawn_fast_retries().await;
    let fifty_mib = vec![b'x'; 50 * 1024 * 1024];
    check_upstream_cases(
        &app,
        vec![
            ("res_huge200", ResponseTemplate::new(200).set_body_bytes(fifty_mib.clone())),
            ("res_huge500", ResponseTemplate::new(500).set_body_bytes(fifty_mib)),
        ],
    )
    .await;
}

#[tokio::test]
async fn hostile_upstream_answers_get_a_documented_code_and_a_bounded_echo() {
    let app = spawn_fast_retries().await;
    let big_json = json!({"error": {"code": "reservation_cancelled", "message": "m".repeat(200 * 1024)}}).to_string();
    assert!(big_json.len() < 256 * 1024, "just under the executor's read limit");
    let deep_json = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    check_upstream_cases(
        &app,
        vec![
            ("res_noise400", ResponseTemplate::new(400).set_body_bytes(noise(100_000))),
            ("res_noise200", ResponseTemplate::new(200).set_body_bytes(noise(3_000))),
            ("res_invalidutf8", ResponseTemplate::new(409).set_body_bytes(vec![0xff; 10_000])),
            ("res_bigjson", ResponseTemplate::new(400).set_body_raw(big_json, "application/json")),
            ("res_deepjson", ResponseTemplate::new(400).set_body_raw(deep_json, "application/json")),
            ("res_hugeheader", ResponseTemplate::new(200).insert_header("x-filler", "a".repeat(512 * 1024).as_str())),
            ("res_badretryafter", ResponseTemplate::new(429).insert_header("retry-after", "99999999999999999999")),
            ("res_maxretryafter", ResponseTemplate::new(429).insert_header("retry-after", "18446744073709551615")),
            ("res_retryafter503", ResponseTemplate::new(503).insert_header("retry-after", "18446744073709551615")),
        ],
    )
    .await;
    // A JSON answer that fits is echoed verbatim (a fresh gateway: the 429s above rightly keep
    // this one away from the provider for their Retry-After).
    let app = spawn_fast_retries().await;
    let mid_json = json!({"error": {"code": "reservation_completed", "message": "m".repeat(10 * 1024)}});
    Mock::given(method("POST"))
        .and(path("/v1/reservations/res_midjson/cancel"))
        .respond_with(ResponseTemplate::new(409).set_body_json(mid_json.clone()))
        .mount(app.upstreams.of("chargeapi"))
        .await;
    let (status, _, body) = read(app.cancel(json!({"provider": "chargeapi", "reference": "res_midjson"})).await).await;
    assert_eq!((status, &body["upstream"]["body"]), (409, &mid_json), "{body:#}");
}
