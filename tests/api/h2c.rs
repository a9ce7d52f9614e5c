//! SPEC §12: HTTP/2 with prior knowledge (h2c, `curl --http2-prior-knowledge`) is served as
//! HTTP/1.1 is, through the same accept loop and limits.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{DEMO_KEY, read, spawn_app, spawn_app_with};
use crate::observability::cancelled_reservation;

fn h2c_client() -> reqwest::Client {
    reqwest::Client::builder().http2_prior_knowledge().build().unwrap()
}

#[tokio::test]
async fn h2c_with_prior_knowledge_is_answered_like_http1() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .and(path("/v1/reservations/res_h2c/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(cancelled_reservation("res_h2c")))
        .expect(1)
        .mount(app.upstreams.of("chargeapi"))
        .await;
    let client = h2c_client();

    let response = client.get(app.url("/healthz")).send().await.expect("an h2c answer");
    assert_eq!((response.version(), response.status().as_u16()), (reqwest::Version::HTTP_2, 200));

    // Several requests multiplexed on the one connection.
    let (a, b) = tokio::join!(
        client.get(app.url("/readyz")).send(),
        client.get(app.url("/v1/providers")).bearer_auth(DEMO_KEY).send()
    );
    assert_eq!((a.unwrap().status().as_u16(), b.unwrap().status().as_u16()), (200, 200));

    let response = client
        .post(app.url("/v1/cancellations"))
        .bearer_auth(DEMO_KEY)
        .json(&json!({"provider": "chargeapi", "reference": "res_h2c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let (status, headers, body) = read(response).await;
    assert_eq!((status, &body["status"]), (200, &json!("cancelled")), "{body:#}");
    assert!(headers.contains_key("x-request-id"));
    assert!(!headers.contains_key("connection"), "a connection header is not HTTP/2");

    // Errors keep their shape.
    let (status, headers, body) = read(client.get(app.url("/v1/cancellations/can_nope")).send().await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")), "{body:#}");
    assert_eq!(headers["content-type"], "application/problem+json");

    // The head size limit holds for HTTP/2 too.
    let huge = "a".repeat(64 * 1024);
    let refused = client.get(app.url("/healthz")).header("x-huge", huge).send().await;
    assert!(refused.as_ref().map_or(true, |r| r.status() == 431), "{refused:?}");

    // HTTP/1.1 is still served beside it.
    let response = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!((response.version(), response.status().as_u16()), (reqwest::Version::HTTP_11, 200));
}

#[tokio::test]
async fn a_connection_that_stops_inside_the_http2_preface_is_cut_off() {
    // The preface must arrive within the header read timeout, as an HTTP/1 head must (a guard:
    // the protocol is told from the first bytes, and waiting for them must not be unbounded).
    let timeout = HashMap::from([("CANCELGATE__LIMITS__HEADER_READ_TIMEOUT_MS".to_owned(), "300".to_owned())]);
    let app = spawn_app_with(timeout).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "the connection was held: {read:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

/// One HTTP/2 frame: its type, flags, stream and payload.
async fn read_frame(stream: &mut TcpStream) -> Option<(u8, u8, u32, Vec<u8>)> {
    let mut head = [0u8; 9];
    stream.read_exact(&mut head).await.ok()?;
    let length = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
    let stream_id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; length];
    stream.read_exact(&mut payload).await.ok()?;
    Some((head[3], head[4], stream_id, payload))
}

fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let length = payload.len().to_be_bytes();
    let mut out = vec![length[5], length[6], length[7], kind, flags];
    out.extend_from_slice(&stream_id.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_like_an_idle_http1_one() {
    // A well-behaved client (it acknowledges settings and pings) that asks once, then idles: an
    // HTTP/1 connection would be closed after the header read timeout; so is this one (GOAWAY).
    let timeout = HashMap::from([("CANCELGATE__LIMITS__HEADER_READ_TIMEOUT_MS".to_owned(), "300".to_owned())]);
    let app = spawn_app_with(timeout).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame(0x4, 0, 0, &[]));
    // GET /healthz (HPACK: :method GET, :scheme http, :path literal, :authority literal).
    let mut block = vec![0x82, 0x86, 0x44, 8];
    block.extend_from_slice(b"/healthz");
    block.extend_from_slice(&[0x41, 1, b'x']);
    hello.extend(frame(0x1, 0x5, 1, &block));
    stream.write_all(&hello).await.unwrap();
    let started = Instant::now();
    let (mut answered, mut goaway) = (false, false);
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some((kind, flags, stream_id, payload)) = read_frame(&mut stream).await {
            match (kind, flags & 0x1) {
                (0x1, _) if stream_id == 1 => answered = payload.first() == Some(&0x88), // :status 200
                (0x4, 0) => stream.write_all(&frame(0x4, 0x1, 0, &[])).await.unwrap(),
                (0x6, 0) => stream.write_all(&frame(0x6, 0x1, 0, &payload)).await.unwrap(),
                (0x7, _) => goaway = true,
                _ => {}
            }
        }
    })
    .await;
    assert!(answered, "the request was not answered 200");
    assert!(closed.is_ok() && goaway, "an idle HTTP/2 connection was held for {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}
