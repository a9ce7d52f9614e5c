//! Outcome events and signed webhooks (SPEC §8, issue 16), the broad black-box proof: the gateway in this process
//! on the sandbox, endpoints at programmable receivers on 127.0.0.1 (`receiver.rs`), every
//! delivery's signature checked by an implementation the gateway's authors did not write
//! (`webhook_verifier.rs`: the `standardwebhooks` package from PyPI).

use std::time::Duration;

use cancelgate_sandbox::{Fault, FaultRule, SimulatedProvider, bench_reference, seeds};
use serde_json::{Value, json};

use crate::helpers::{DEMO_KEY, assert_problem, in_review};
use crate::receiver::{Answer, Delivery, Receiver};
use crate::webhook_verifier::{assert_signed, verdicts, with_only_signature};
use crate::webhooks_support::{
    PLAIN_KEY, SECRET_A, SECRET_B, WAIT, WebhookApp, assert_envelope, delivery, spawn_webhooks, webhooks_toml,
};

const CHARGE: SimulatedProvider = SimulatedProvider::ChargeApi;

/// Longer than the fastest retry (1 s) and the dispatcher's poll: what did not arrive by then
/// was not sent.
const QUIET: Duration = Duration::from_millis(2_500);

/// One endpoint `main` at `receiver`.
async fn one_endpoint(receiver: &Receiver) -> WebhookApp {
    spawn_webhooks(&webhooks_toml(&[("main", &receiver.url("/hooks"))], ""), &[]).await
}

fn ids(deliveries: &[Delivery]) -> Vec<String> {
    deliveries.iter().map(Delivery::id).collect()
}

#[tokio::test]
async fn each_event_type_arrives_once_signed_with_data_as_get_returns_it() {
    let test = "each_event_type_arrives_once_signed_with_data_as_get_returns_it";
    let receiver = Receiver::ok().await;
    let app = one_endpoint(&receiver).await;

    let (status, cancelled) = app.cancel(CHARGE, &bench_reference(CHARGE, 1)).await;
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("cancelled")), "{cancelled:#}");
    // A synchronous refusal is final too: it has its event.
    let (status, refused) = app.cancel(CHARGE, seeds::CHARGEAPI_COMPLETED).await;
    assert_eq!(status, 409, "{refused:#}");
    let refused_id = refused["cancellation_id"].as_str().unwrap().to_owned();
    // Attempts that ran out on 5xx answers end `failed` too.
    let broken = bench_reference(CHARGE, 2);
    app.sandbox.inject(CHARGE, FaultRule::reference(broken.clone(), Fault::status(500)));
    let (_, exhausted) = app.cancel(CHARGE, &broken).await;
    let exhausted_id = exhausted["cancellation_id"].as_str().or(exhausted["id"].as_str()).unwrap().to_owned();
    let review = in_review(&app, 3).await;
    let (status, _, batch) = app
        .post(
            DEMO_KEY,
            "/v1/cancellation-batches",
            &json!({"items": [
                {"provider": "chargeapi", "reference": bench_reference(CHARGE, 4)},
                {"provider": "accommodation", "reference": bench_reference(SimulatedProvider::Accommodation, 5)},
            ]})
            .to_string(),
        )
        .await;
    assert_eq!((status, batch["status"].as_str()), (200, Some("completed")), "{batch:#}");

    // 4 single records, 2 batch items, 1 batch.
    receiver.wait_for("seven events arrived", WAIT, |d| d.len() >= 7).await;
    tokio::time::sleep(QUIET).await;
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 7, "each event exactly once: {:#?}", ids(&deliveries));
    let mut unique = ids(&deliveries);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 7, "seven different events");
    assert_signed(test, SECRET_A, &deliveries);

    let expected_type = |id: &str| -> &'static str {
        if id == review["id"] {
            "cancellation.needs_review"
        } else if id == refused_id || id == exhausted_id {
            "cancellation.failed"
        } else {
            "cancellation.cancelled"
        }
    };
    let mut seen_types = Vec::new();
    for delivery in &deliveries {
        let body = delivery.json();
        assert_eq!(delivery.path, "/hooks");
        if body["type"] == "cancellation_batch.completed" {
            assert_envelope(delivery, "cancellation_batch.completed");
            let now = app.get_ok(&format!("/v1/cancellation-batches/{}", batch["id"].as_str().unwrap())).await;
            assert_eq!(body["data"], now, "the batch event's data is the batch as GET returns it");
        } else {
            let id = body["data"]["id"].as_str().expect("data is a Cancellation").to_owned();
            assert_envelope(delivery, expected_type(&id));
            assert_eq!(body["data"], app.record(&id).await, "the event's data is the record as GET returns it");
        }
        seen_types.push(body["type"].as_str().unwrap().to_owned());
    }
    seen_types.sort();
    assert_eq!(
        seen_types,
        [
            "cancellation.cancelled",
            "cancellation.cancelled",
            "cancellation.cancelled",
            "cancellation.failed",
            "cancellation.failed",
            "cancellation.needs_review",
            "cancellation_batch.completed"
        ]
    );
    // Each is recorded delivered.
    for delivery in &deliveries {
        app.wait_delivery(&delivery.id(), "main", "delivered").await;
    }
}

#[tokio::test]
async fn a_replay_emits_nothing() {
    let receiver = Receiver::ok().await;
    let app = one_endpoint(&receiver).await;
    let reference = bench_reference(CHARGE, 1);
    let (_, first) = app.cancel(CHARGE, &reference).await;
    receiver.wait_for("the event arrived", WAIT, |d| d.len() == 1).await;
    // The same reference again (answered from the ledger), and an idempotent replay.
    let (status, again) = app.cancel(CHARGE, &reference).await;
    assert_eq!((status, &again["replayed"], &again["id"]), (200, &json!(true), &first["id"]), "{again:#}");
    let body = json!({"provider": "chargeapi", "reference": bench_reference(CHARGE, 2)}).to_string();
    for _ in 0..2 {
        let request =
            app.client.post(app.url("/v1/cancellations")).bearer_auth(DEMO_KEY).header("idempotency-key", "k-1");
        let response = request.header("content-type", "application/json").body(body.clone()).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    tokio::time::sleep(QUIET).await;
    assert_eq!(receiver.count(), 2, "one event per record, none for the replays: {:#?}", ids(&receiver.deliveries()));
    let listed = app.get_ok(&format!("/v1/events?cancellation_id={}", first["id"].as_str().unwrap())).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed:#}");
}

#[tokio::test]
async fn a_500_then_200_sends_the_same_webhook_id_twice_and_the_second_is_recorded_delivered() {
    let test = "a_500_then_200_sends_the_same_webhook_id_twice_and_the_second_is_recorded_delivered";
    let receiver = Receiver::sequence(vec![Answer::Status(500)]).await;
    let app = one_endpoint(&receiver).await;
    app.cancel(CHARGE, &bench_reference(CHARGE, 1)).await;
    let seen = receiver.wait_for("the retry arrived", WAIT, |d| d.len() == 2).await;
    assert_eq!(seen[0].id(), seen[1].id(), "a retry carries the same webhook-id");
    assert_eq!(seen[0].body, seen[1].body, "and the same payload");
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(900), "retried after the schedule's 1 s, not {gap:?}");
    assert_signed(test, SECRET_A, &seen);
    let event = app.wait_delivery(&seen[0].id(), "main", "delivered").await;
    let attempts = delivery(&event, "main")["attempts"].as_array().unwrap().clone();
    assert_eq!(attempts.len(), 2, "{event:#}");
    assert_eq!((&attempts[0]["http_status"], &attempts[1]["http_status"]), (&json!(500), &json!(200)), "{event:#}");
    for attempt in &attempts {
        assert!(attempt["at"].is_string() && attempt["latency_ms"].is_number(), "{attempt:#}");
    }
    tokio::time::sleep(QUIET).await;
    assert_eq!(receiver.count(), 2, "nothing after the 200");
}

#[tokio::test]
async fn a_410_disables_the_endpoint() {
    let receiver = Receiver::sequence(vec![Answer::Status(410)]).await;
    let app = one_endpoint(&receiver).await;
    app.cancel(CHARGE, &bench_reference(CHARGE, 1)).await;
    let first = receiver.wait_for("the first event arrived", WAIT, |d| d.len() == 1).await[0].id();
    let (_, second) = app.cancel(CHARGE, &bench_reference(CHARGE, 2)).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(receiver.count(), 1, "nothing is sent to an endpoint that answered 410");
    let event = app.event(&first).await;
    assert_ne!(delivery(&event, "main")["status"], "delivered", "{event:#}");
    let listed = app.get_ok(&format!("/v1/events?cancellation_id={}", second["id"].as_str().unwrap())).await;
    let later = app.event(listed["data"][0]["id"].as_str().expect("the later event is stored")).await;
    let status = delivery(&later, "main")["status"].as_str().unwrap_or_default().to_owned();
    assert!(status == "pending" || status == "disabled", "the later event waits: {later:#}");
}

#[tokio::test]
async fn retry_after_is_honoured_on_429_and_503() {
    let wait = |status: u16| Answer::WithHeaders(status, vec![("retry-after".to_owned(), "3".to_owned())]);
    let (r429, r503) = (Receiver::sequence(vec![wait(429)]).await, Receiver::sequence(vec![wait(503)]).await);
    let toml = webhooks_toml(&[("too_many", &r429.url("/")), ("unavailable", &r503.url("/"))], "");
    let app = spawn_webhooks(&toml, &[]).await;
    app.cancel(CHARGE, &bench_reference(CHARGE, 1)).await;
    for (receiver, name) in [(&r429, "429"), (&r503, "503")] {
        let seen = receiver.wait_for("the retry arrived", WAIT, |d| d.len() == 2).await;
        let gap = seen[1].at - seen[0].at;
        // The schedule alone would retry after 1 s.
        assert!(gap >= Duration::from_millis(2_950), "after a {name} with Retry-After: 3 the retry came after {gap:?}");
        assert_eq!(seen[0].id(), seen[1].id());
    }
}

#[tokio::test]
async fn while_a_previous_secret_is_configured_each_delivery_carries_two_signatures_each_valid_for_its_secret() {
    let test = "rotation";
    let receiver = Receiver::ok().await;
    let toml = webhooks_toml(&[], "")
        + &format!(
            "\n[webhooks.endpoints.main]\nurl = \"{}\"\nsecret = \"{SECRET_B}\"\nprevious_secret = \"{SECRET_A}\"\n",
            receiver.url("/")
        );
    let app = spawn_webhooks(&toml, &[]).await;
    app.cancel(CHARGE, &bench_reference(CHARGE, 1)).await;
    let seen = receiver.wait_for("the event arrived", WAIT, |d| d.len() == 1).await;
    let header = seen[0].header("webhook-signature").unwrap_or_default().to_owned();
    let signatures: Vec<&str> = header.split(' ').collect();
    assert_eq!(signatures.len(), 2, "two space-separated signatures: {header}");
    assert!(signatures.iter().all(|s| s.starts_with("v1,")), "{header}");
    assert_signed(test, SECRET_B, &seen);
    assert_signed(test, SECRET_A, &seen);
    // Each signature alone is valid for exactly one of the two secrets.
    let alone = [with_only_signature(&seen[0], 0), with_only_signature(&seen[0], 1)];
    if let (Some(new), Some(old)) = (verdicts(test, SECRET_B, &alone), verdicts(test, SECRET_A, &alone)) {
        let valid_new: Vec<bool> = new.iter().map(Option::is_none).collect();
        let valid_old: Vec<bool> = old.iter().map(Option::is_none).collect();
        assert!(
            (valid_new == [true, false] && valid_old == [false, true])
                || (valid_new == [false, true] && valid_old == [true, false]),
            "one signature per secret: current {new:?}, previous {old:?}"
        );
    }
}

#[tokio::test]
async fn events_of_one_reference_arrive_in_order_and_a_failing_reference_holds_back_no_other() {
    let test = "ordering";
    let receiver = Receiver::start(|d, _| {
        // The review event fails until the test says otherwise.
        if d.event_type() == "cancellation.needs_review" { Answer::Status(500) } else { Answer::Status(200) }
    })
    .await;
    let app = one_endpoint(&receiver).await;
    let review = in_review(&app, 1).await;
    let reference = review["reference"].as_str().unwrap().to_owned();
    receiver.wait_for("the review event's first attempt", WAIT, |d| !d.is_empty()).await;
    // The same reference's next event (its resolution) is created while the first is failing.
    let resolve = format!("/v1/cancellations/{}/resolve", review["id"].as_str().unwrap());
    let (status, _, resolved) =
        app.post(DEMO_KEY, &resolve, r#"{"status":"cancelled","note":"checked by phone"}"#).await;
    assert_eq!(status, 200, "{resolved:#}");
    // Another reference is not held back.
    let other = bench_reference(CHARGE, 2);
    app.cancel(CHARGE, &other).await;
    let seen =
        receiver.wait_for("the other reference's event", WAIT, |d| d.iter().any(|x| x.reference() == other)).await;
    // It arrived while the review event was still failing and pending (not after it was given up).
    let review_event = seen.iter().find(|d| d.event_type() == "cancellation.needs_review").unwrap().id();
    let pending = app.event(&review_event).await;
    assert_eq!(delivery(&pending, "main")["status"], "pending", "the other reference waited: {pending:#}");
    assert!(
        !seen.iter().any(|d| d.reference() == reference && d.event_type() == "cancellation.cancelled"),
        "the reference's second event overtook its first"
    );
    // Now the receiver takes everything: the review event goes through on its next retry.
    receiver.set_script(|_, _| Answer::Status(200));
    let seen = receiver
        .wait_for("the resolution's event", WAIT, |d| {
            d.iter().any(|x| x.reference() == reference && x.event_type() == "cancellation.cancelled")
        })
        .await;
    let of_reference: Vec<&Delivery> = seen.iter().filter(|d| d.reference() == reference).collect();
    let last_review = of_reference.iter().rposition(|d| d.event_type() == "cancellation.needs_review").unwrap();
    let first_cancel = of_reference.iter().position(|d| d.event_type() == "cancellation.cancelled").unwrap();
    assert!(
        last_review < first_cancel,
        "the reference's second event arrived before its first was delivered: {:#?}",
        of_reference.iter().map(|d| d.event_type()).collect::<Vec<_>>()
    );
    app.wait_delivery(&of_reference[last_review].id(), "main", "delivered").await;
    assert_signed(test, SECRET_A, &seen);
}

#[tokio::test]
async fn an_endpoint_gets_only_the_event_types_and_clients_it_takes() {
    let (failed_only, plain_only, all) = (Receiver::ok().await, Receiver::ok().await, Receiver::ok().await);
    let toml = webhooks_toml(&[("all", &all.url("/"))], "")
        + &format!(
            "\n[webhooks.endpoints.failed_only]\nurl = \"{}\"\nsecret = \"{SECRET_A}\"\nevents = [\"cancellation.failed\"]\n\
             \n[webhooks.endpoints.plain_only]\nurl = \"{}\"\nsecret = \"{SECRET_A}\"\nclients = [\"plain\"]\n",
            failed_only.url("/"),
            plain_only.url("/")
        );
    let app = spawn_webhooks(&toml, &[]).await;
    app.cancel(CHARGE, &bench_reference(CHARGE, 1)).await;
    let (status, _) = app.cancel(CHARGE, seeds::CHARGEAPI_COMPLETED).await;
    assert_eq!(status, 409);
    let (_, plains) = app.cancel_as(PLAIN_KEY, CHARGE, &bench_reference(CHARGE, 2)).await;
    all.wait_for("three events", WAIT, |d| d.len() == 3).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(all.count(), 3);
    let failed = failed_only.deliveries();
    assert_eq!(failed.len(), 1, "{:#?}", ids(&failed));
    assert_eq!(failed[0].event_type(), "cancellation.failed");
    let plain = plain_only.deliveries();
    assert_eq!(plain.len(), 1, "{:#?}", ids(&plain));
    assert_eq!(plain[0].json()["data"]["id"], plains["id"]);
    // The plain client's event has no delivery to the failed-only endpoint.
    let event = app.event(&plain[0].id()).await;
    let endpoints: Vec<&Value> = event["deliveries"].as_array().unwrap().iter().map(|d| &d["endpoint"]).collect();
    assert!(!endpoints.contains(&&json!("failed_only")), "{event:#}");
}

#[tokio::test]
async fn events_are_listed_newest_first_filtered_by_type_cancellation_and_delivery_status_and_paged() {
    let stuck = bench_reference(CHARGE, 9);
    let blocked = stuck.clone();
    let receiver =
        Receiver::start(move |d, _| if d.reference() == blocked { Answer::Status(500) } else { Answer::Status(200) })
            .await;
    let app = one_endpoint(&receiver).await;
    let mut ids_in_order = Vec::new();
    for n in 1..=3 {
        let (_, record) = app.cancel(CHARGE, &bench_reference(CHARGE, n)).await;
        ids_in_order.push(record["id"].as_str().unwrap().to_owned());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    app.cancel(CHARGE, seeds::CHARGEAPI_COMPLETED).await;
    app.cancel(CHARGE, &stuck).await;
    receiver
        .wait_for("five events", WAIT, |d| {
            let mut unique = ids(d);
            unique.sort();
            unique.dedup();
            unique.len() == 5
        })
        .await;

    let all = app.get_ok("/v1/events").await;
    assert_eq!((&all["object"], &all["has_more"]), (&json!("list"), &json!(false)), "{all:#}");
    let events = all["data"].as_array().unwrap();
    assert_eq!(events.len(), 5, "{all:#}");
    let created: Vec<&str> = events.iter().map(|e| e["created_at"].as_str().unwrap()).collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first: {created:?}");
    assert!(events.iter().all(|e| e["object"] == "event" && e["id"].as_str().unwrap().starts_with("evt_")));

    let first = app.get_ok("/v1/events?limit=2").await;
    assert_eq!((first["data"].as_array().unwrap().len(), &first["has_more"]), (2, &json!(true)), "{first:#}");
    let cursor = first["data"][1]["id"].as_str().unwrap();
    let rest = app.get_ok(&format!("/v1/events?limit=10&starting_after={cursor}")).await;
    let paged: Vec<&Value> =
        first["data"].as_array().unwrap().iter().chain(rest["data"].as_array().unwrap()).map(|e| &e["id"]).collect();
    let listed: Vec<&Value> = events.iter().map(|e| &e["id"]).collect();
    assert_eq!(paged, listed, "two pages are the whole list, in order");
    assert_eq!(rest["has_more"], false);

    let failed = app.get_ok("/v1/events?type=cancellation.failed").await;
    let failed = failed["data"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["type"], "cancellation.failed");

    let one = app.get_ok(&format!("/v1/events?cancellation_id={}", ids_in_order[1])).await;
    let one = one["data"].as_array().unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["data"]["id"], ids_in_order[1].as_str());

    // The stuck reference's event stays pending (500s, retried); the others are delivered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pending = app.get_ok("/v1/events?delivery_status=pending").await;
    let pending = pending["data"].as_array().unwrap();
    assert_eq!(pending.len(), 1, "{pending:#?}");
    assert_eq!(pending[0]["data"]["reference"], stuck.as_str());
    let delivered = app.get_ok("/v1/events?delivery_status=delivered").await;
    assert_eq!(delivered["data"].as_array().unwrap().len(), 4, "{delivered:#}");

    let event = app.event(pending[0]["id"].as_str().unwrap()).await;
    let stuck_delivery = delivery(&event, "main");
    assert_eq!(stuck_delivery["status"], "pending");
    assert!(stuck_delivery["next_attempt_at"].is_string(), "{event:#}");
    assert!(stuck_delivery["attempts"].as_array().is_some_and(|a| !a.is_empty()), "{event:#}");

    for bad in ["limit=0", "limit=101", "type=cancellation.exploded", "delivery_status=lost", "starting_after=evt_nope"]
    {
        let response =
            app.client.get(app.url(&format!("/v1/events?{bad}"))).bearer_auth(DEMO_KEY).send().await.unwrap();
        let (status, headers, body) = crate::helpers::read(response).await;
        assert_problem(status, &headers, &body, 400, "invalid_request");
        assert!(body["param"].is_string(), "{bad}: {body:#}");
    }
    let response = app.client.get(app.url("/v1/events/evt_nope")).bearer_auth(DEMO_KEY).send().await.unwrap();
    let (status, headers, body) = crate::helpers::read(response).await;
    assert_problem(status, &headers, &body, 404, "not_found");
    let unauthenticated = app.client.get(app.url("/v1/events")).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
}

#[tokio::test]
async fn redeliver_sends_the_event_again_and_needs_operate() {
    let test = "redeliver";
    let receiver = Receiver::ok().await;
    let app = one_endpoint(&receiver).await;
    app.cancel(CHARGE, &bench_reference(CHARGE, 1)).await;
    let id = receiver.wait_for("the event", WAIT, |d| d.len() == 1).await[0].id();
    app.wait_delivery(&id, "main", "delivered").await;

    let path = format!("/v1/events/{id}/redeliver");
    let (status, headers, body) = app.post(PLAIN_KEY, &path, "{}").await;
    assert_problem(status, &headers, &body, 403, "forbidden");
    tokio::time::sleep(QUIET).await;
    assert_eq!(receiver.count(), 1, "a client without `operate` sent nothing");

    let (status, _, body) = app.post(DEMO_KEY, &path, "{}").await;
    assert_eq!((status, &body["id"], &body["object"]), (202, &json!(id), &json!("event")), "{body:#}");
    let seen = receiver.wait_for("the redelivery", WAIT, |d| d.len() == 2).await;
    assert_eq!(seen[1].id(), id, "the same webhook-id");
    assert_eq!(seen[1].json(), seen[0].json(), "the same payload");
    let (status, _, body) = app.post(DEMO_KEY, &path, r#"{"endpoint":"main"}"#).await;
    assert_eq!(status, 202, "{body:#}");
    let seen = receiver.wait_for("the second redelivery", WAIT, |d| d.len() == 3).await;
    assert_signed(test, SECRET_A, &seen);

    let (status, _, body) = app.post(DEMO_KEY, "/v1/events/evt_nope/redeliver", "{}").await;
    assert_eq!((status, &body["code"]), (404, &json!("not_found")), "{body:#}");
    let (status, _, body) = app.post(DEMO_KEY, &path, r#"{"endpoint":"main","x":1}"#).await;
    assert_eq!((status, &body["code"]), (400, &json!("invalid_request")), "unknown fields are refused: {body:#}");
}

#[tokio::test]
async fn without_an_endpoint_that_takes_it_no_event_is_stored() {
    let app = spawn_webhooks("", &[]).await;
    let (_, record) = app.cancel(CHARGE, &bench_reference(CHARGE, 1)).await;
    assert_eq!(record["status"], "cancelled");
    let listed = app.get_ok("/v1/events").await;
    assert_eq!(listed["data"], json!([]), "no endpoint, no event: {listed:#}");

    // An endpoint that takes only failures stores nothing for a cancelled record.
    let receiver = Receiver::ok().await;
    let toml = webhooks_toml(&[], "")
        + &format!(
            "\n[webhooks.endpoints.failures]\nurl = \"{}\"\nsecret = \"{SECRET_A}\"\nevents = [\"cancellation.failed\"]\n",
            receiver.url("/")
        );
    let app = spawn_webhooks(&toml, &[]).await;
    let (_, record) = app.cancel(CHARGE, &bench_reference(CHARGE, 2)).await;
    let listed = app.get_ok(&format!("/v1/events?cancellation_id={}", record["id"].as_str().unwrap())).await;
    assert_eq!(listed["data"], json!([]), "{listed:#}");
    tokio::time::sleep(QUIET).await;
    assert_eq!(receiver.count(), 0);
}
