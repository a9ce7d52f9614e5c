//! SPEC §8 end to end (the core's own proof; the broader proof is `w3-whproof`'s): one cancel
//! makes one delivery to a receiver on 127.0.0.1, signed per Standard Webhooks (checked by the
//! `standardwebhooks` crate, which we did not write), its `data` equal to `GET` of the record;
//! the event is readable with its delivery; no secret and no URL token reaches a log or an answer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{DEMO_KEY, read, spawn_app_with};

const REF: &str = "res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq";
const CANCEL_PATH: &str = "/v1/reservations/res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq/cancel";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Part of the endpoint URL: a token that must never be shown.
const TOKEN: &str = "tok_Hq8s0PzLm2";

async fn received(receiver: &MockServer, n: usize, within: Duration) -> Vec<wiremock::Request> {
    let deadline = Instant::now() + within;
    loop {
        let got = receiver.received_requests().await.unwrap_or_default();
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn one_cancel_makes_one_signed_delivery_whose_data_is_the_get() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/hooks/{TOKEN}")))
        .respond_with(ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    let env = HashMap::from([
        ("CANCELGATE__WEBHOOKS__ENDPOINTS__OPS__URL".to_owned(), format!("{}/hooks/{TOKEN}", receiver.uri())),
        ("CANCELGATE__WEBHOOKS__ENDPOINTS__OPS__SECRET".to_owned(), SECRET.to_owned()),
    ]);
    let app = spawn_app_with(env).await;
    Mock::given(method("POST"))
        .and(path(CANCEL_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": REF, "status": "cancelled"})))
        .mount(app.upstreams.of("chargeapi"))
        .await;
    let started = Instant::now();
    let (status, _, body) = read(app.cancel(json!({"provider": "chargeapi", "reference": REF})).await).await;
    assert_eq!(status, 200, "{body:#}");
    let id = body["id"].as_str().unwrap();

    // Woken by the commit, not by the 1 s poll.
    let got = received(&receiver, 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1, "one delivery");
    assert!(started.elapsed() < Duration::from_millis(900), "delivered after {:?}", started.elapsed());
    let delivery = &got[0];
    assert_eq!(delivery.headers["content-type"], "application/json");
    let webhook_id = delivery.headers["webhook-id"].to_str().unwrap().to_owned();
    assert!(webhook_id.starts_with("evt_") && webhook_id.len() == 30, "{webhook_id}");
    let signature = delivery.headers["webhook-signature"].to_str().unwrap();
    assert!(signature.starts_with("v1,") && !signature.contains(' '), "one secret, one signature: {signature}");
    standardwebhooks::Webhook::new(SECRET)
        .unwrap()
        .verify(&delivery.body, &delivery.headers)
        .expect("the standardwebhooks crate verifies the delivery");
    let wrong = standardwebhooks::Webhook::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
    assert!(wrong.verify(&delivery.body, &delivery.headers).is_err(), "another secret does not");

    let payload: Value = serde_json::from_slice(&delivery.body).unwrap();
    assert_eq!(payload["id"], webhook_id.as_str());
    assert_eq!((payload["object"].as_str(), payload["type"].as_str()), (Some("event"), Some("cancellation.cancelled")));
    assert!(payload["created_at"].as_str().unwrap().ends_with('Z'));
    let (status, get) = app.get_cancellation(id).await;
    assert_eq!(status, 200);
    assert_eq!(payload["data"], get, "the event's data is the Cancellation as GET returns it");

    // The event with its delivery (recorded right after the receiver answered).
    let url = app.url(&format!("/v1/events/{webhook_id}"));
    let mut event = Value::Null;
    for _ in 0..100 {
        let (status, _, body) = read(app.client.get(&url).bearer_auth(DEMO_KEY).send().await.unwrap()).await;
        assert_eq!(status, 200, "{body:#}");
        event = body;
        if event["deliveries"][0]["status"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(event["deliveries"][0]["endpoint"], "ops", "{event:#}");
    assert_eq!(event["deliveries"][0]["status"], "delivered", "{event:#}");
    assert_eq!(event["deliveries"][0]["attempts"][0]["http_status"], 204);
    assert_eq!(event["deliveries"][0]["next_attempt_at"], Value::Null);
    assert_eq!(event["data"], get);
    let (status, _, list) = read(
        app.client
            .get(app.url(&format!("/v1/events?cancellation_id={id}")))
            .bearer_auth(DEMO_KEY)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["data"][0]["id"], webhook_id.as_str());

    // Sent once: a delivered event is not sent again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received_requests().await.unwrap_or_default().len(), 1);

    // Neither the secret nor the URL's token anywhere a person reads.
    let encoded = SECRET.trim_start_matches("whsec_");
    let logs = app.logs.text();
    let (_, _, metrics) = read(app.client.get(app.url("/metrics")).send().await.unwrap()).await;
    for shown in [logs, event.to_string(), list.to_string(), metrics.to_string()] {
        assert!(!shown.contains(TOKEN) && !shown.contains(encoded), "a secret leaked: {shown}");
    }
    assert!(app.logs.text().contains(&format!("{}", receiver.address())), "the endpoint is logged as host:port");
    let metrics = metrics.as_str().unwrap_or_default();
    assert!(
        metrics.contains(r#"cancelgate_webhook_deliveries_total{endpoint="ops",outcome="delivered"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"cancelgate_webhook_pending{endpoint="ops"} 0"#), "{metrics}");
}

#[tokio::test]
async fn redeliver_sends_the_same_event_again_and_needs_operate() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&receiver).await;
    let env = HashMap::from([
        ("CANCELGATE__WEBHOOKS__ENDPOINTS__OPS__URL".to_owned(), format!("{}/h", receiver.uri())),
        ("CANCELGATE__WEBHOOKS__ENDPOINTS__OPS__SECRET".to_owned(), SECRET.to_owned()),
    ]);
    let app = spawn_app_with(env).await;
    Mock::given(method("POST"))
        .and(path(CANCEL_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": REF, "status": "cancelled"})))
        .mount(app.upstreams.of("chargeapi"))
        .await;
    let (status, _, _) = read(app.cancel(json!({"provider": "chargeapi", "reference": REF})).await).await;
    assert_eq!(status, 200);
    let first = received(&receiver, 1, Duration::from_secs(5)).await;
    let webhook_id = first[0].headers["webhook-id"].to_str().unwrap().to_owned();
    let url = app.url(&format!("/v1/events/{webhook_id}/redeliver"));
    // Unknown members and endpoints are refused, naming them.
    for (body, param) in [(json!({"x": 1}), "x"), (json!({"endpoint": "nope"}), "endpoint")] {
        let (status, _, problem) =
            read(app.client.post(&url).bearer_auth(DEMO_KEY).json(&body).send().await.unwrap()).await;
        assert_eq!((status, problem["param"].as_str()), (400, Some(param)), "{problem:#}");
    }
    let (status, _, event) =
        read(app.client.post(&url).bearer_auth(DEMO_KEY).json(&json!({})).send().await.unwrap()).await;
    assert_eq!(status, 202, "{event:#}");
    assert_eq!(event["deliveries"].as_array().map(Vec::len), Some(2));
    let both = received(&receiver, 2, Duration::from_secs(5)).await;
    assert_eq!(both.len(), 2);
    assert_eq!(both[1].headers["webhook-id"], webhook_id.as_str(), "the same webhook-id: receivers deduplicate by it");
    assert_eq!(both[0].body, both[1].body);
    // Unknown event: 404 problem.
    let (status, _, problem) =
        read(app.client.get(app.url("/v1/events/evt_nope")).bearer_auth(DEMO_KEY).send().await.unwrap()).await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")));
}
