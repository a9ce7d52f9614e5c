//! Property tests over real HTTP: arbitrary bodies and header values never make the gateway
//! answer anything but a documented code (`200`/`202`, or a problem whose 400s name a `param`),
//! never `internal`, and the process keeps serving.
//!
//! Cases are drawn from proptest strategies with a deterministic runner (the same cases every
//! run); each is a real request, so the count is kept small. The exhaustive properties of the
//! parsers themselves are unit tests in `crates/gateway` (`api.rs`, `extract.rs`, `request_id.rs`).

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

use crate::helpers::{DEMO_KEY, TestApp, read, spawn_app};

const CASES: usize = 48;

fn draw<S: Strategy>(strategy: S, runner: &mut TestRunner) -> S::Value {
    strategy.new_tree(runner).expect("a value").current()
}

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "res_[A-Za-z0-9]{1,70}",
        "[A-Za-z0-9_-]{0,80}",
        "[\\x00-\\x1f\\x7f/%?#.\\\\ ]{0,12}",
        "[0-9a-fA-F-]{36}",
        Just("../../admin".to_owned()),
    ]
}

fn json_field() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => hostile_string().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => any::<i64>().prop_map(Value::from),
        1 => proptest::collection::vec(hostile_string().prop_map(Value::from), 0..3).prop_map(Value::from),
        1 => proptest::collection::btree_map(hostile_string(), hostile_string(), 0..25)
            .prop_map(|m| json!(m)),
    ]
}

fn body() -> impl Strategy<Value = Value> {
    let provider =
        prop_oneof![Just(json!("chargeapi")), Just(json!("frontpayment")), Just(json!("accommodation")), json_field(),];
    let optional = |s: BoxedStrategy<Value>| proptest::option::of(s);
    (
        provider,
        json_field(),
        optional(json_field().boxed()),
        optional(json_field().boxed()),
        optional(json_field().boxed()),
        optional(json_field().boxed()),
        optional(hostile_string().prop_map(Value::from).boxed()),
    )
        .prop_map(|(provider, reference, account, reason, language, metadata, extra)| {
            let mut body = json!({"provider": provider, "reference": reference});
            for (name, value) in
                [("account", account), ("reason", reason), ("language", language), ("metadata", metadata)]
            {
                if let Some(v) = value {
                    body[name] = v;
                }
            }
            if let Some(extra) = extra.and_then(|e| e.as_str().map(str::to_owned)) {
                body[extra] = json!(1);
            }
            body
        })
}

#[track_caller]
fn assert_documented(what: &str, status: u16, body: &Value) {
    match status {
        200 | 202 => assert_eq!(body["object"], "cancellation", "{what}: {body:#}"),
        400 => {
            assert_eq!(body["code"], "invalid_request", "{what}: {body:#}");
            assert!(body["param"].as_str().is_some_and(|p| !p.is_empty()), "{what}: a 400 names its param: {body:#}");
        }
        401 | 403 | 404 | 409 | 413 | 422 | 429 | 502 | 503 | 504 => {
            assert!(body["code"].is_string() && body["code"] != "internal", "{what}: {body:#}");
            assert_eq!(body["status"], status, "{what}: {body:#}");
        }
        other => panic!("{what}: undocumented status {other}: {body:#}"),
    }
}

async fn post(app: &TestApp, body: Vec<u8>, headers: &[(&str, Vec<u8>)]) -> (u16, Value) {
    let mut request =
        app.client.post(app.url("/v1/cancellations")).bearer_auth(DEMO_KEY).header("content-type", "application/json");
    for (name, value) in headers {
        if let Ok(value) = reqwest::header::HeaderValue::from_bytes(value) {
            request = request.header(*name, value);
        }
    }
    let (status, _, body) = read(request.body(body).send().await.unwrap()).await;
    (status, body)
}

#[tokio::test]
async fn arbitrary_bodies_get_a_documented_answer() {
    let app = spawn_app().await;
    let mut runner = TestRunner::deterministic();
    for _ in 0..CASES {
        let body = draw(body(), &mut runner);
        let (status, answer) = post(&app, body.to_string().into_bytes(), &[]).await;
        assert_documented(&body.to_string(), status, &answer);
    }
    for _ in 0..CASES {
        let bytes = draw(proptest::collection::vec(any::<u8>(), 0..256), &mut runner);
        let (status, answer) = post(&app, bytes.clone(), &[]).await;
        assert_documented(&format!("{bytes:?}"), status, &answer);
        assert_eq!(status, 400, "random bytes are not a request: {answer:#}");
    }
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn arbitrary_idempotency_keys_and_request_ids_get_a_documented_answer() {
    let app = spawn_app().await;
    let mut runner = TestRunner::deterministic();
    let header_bytes = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        "[ -~]{0,260}".prop_map(String::into_bytes),
        proptest::collection::vec(prop_oneof![Just(b'\t'), Just(b' '), 0x21u8..0x7f, 0x80u8..=0xff], 0..40),
    ];
    let body = json!({"provider": "chargeapi", "reference": "res_abc"}).to_string().into_bytes();
    for _ in 0..CASES {
        let key = draw(header_bytes.clone(), &mut runner);
        let id = draw(header_bytes.clone(), &mut runner);
        let mut request = app.client.post(app.url("/v1/cancellations")).bearer_auth(DEMO_KEY).body(body.clone());
        let key_value = reqwest::header::HeaderValue::from_bytes(&key).ok();
        if let Some(v) = key_value.clone() {
            request = request.header("idempotency-key", v);
        }
        if let Ok(v) = reqwest::header::HeaderValue::from_bytes(&id) {
            request = request.header("x-request-id", v);
        }
        let (status, headers, answer) = read(request.send().await.unwrap()).await;
        let what = format!("key {key:?}, id {id:?}");
        assert_documented(&what, status, &answer);
        // HTTP trims a value's surrounding whitespace: judge the key as the server receives it.
        let received = key_value.as_ref().map(|v| v.as_bytes().trim_ascii());
        let key_ok =
            received.is_none_or(|k| (1..=255).contains(&k.len()) && k.iter().all(|b| (0x20..=0x7e).contains(b)));
        if !key_ok {
            assert_eq!((status, answer["param"].as_str()), (400, Some("Idempotency-Key")), "{what}: {answer:#}");
        }
        let echoed = headers["x-request-id"].to_str().unwrap();
        assert!(echoed.starts_with("req_") || echoed.as_bytes() == id.trim_ascii(), "{what}: echoed {echoed:?}");
        assert!(echoed.len() <= 128 && echoed.bytes().all(|b| b.is_ascii_graphic()), "{what}: {echoed:?}");
    }
}
