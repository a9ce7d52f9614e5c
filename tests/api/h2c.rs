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
        .mount(&app.upstreams.chargeapi)
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
