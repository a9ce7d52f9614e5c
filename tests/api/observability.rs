//! Operability: the request span and the upstream attempt event in the logs, W3C trace context
//! forwarded upstream, and the Prometheus series at `/metrics` after real traffic.

use std::collections::HashMap;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{DEMO_KEY, read, spawn_app};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

pub fn cancelled_reservation(id: &str) -> Value {
    json!({
        "id": id, "object": "reservation", "status": "cancelled", "created": "2026-04-01T00:40:25.838Z",
        "updated": "2026-04-01T01:38:06.924Z", "metadata": {}
    })
}

/// The samples of `name` in a Prometheus text exposition: labels and value.
fn samples(text: &str, name: &str) -> Vec<(HashMap<String, String>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, labels) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let labels = labels
                .split(',')
                .filter(|kv| !kv.is_empty())
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
                .collect();
            Some((labels, value.parse().ok()?))
        })
        .collect()
}

#[track_caller]
fn has(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    let found = samples(text, name)
        .into_iter()
        .find(|(labels, _)| want.iter().all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v)));
    match found {
        Some((_, value)) => value,
        None => panic!(
            "no {name} with {want:?} in:\n{}",
            text.lines().filter(|l| l.contains(name)).collect::<Vec<_>>().join("\n")
        ),
    }
}

#[tokio::test]
async fn metrics_show_requests_upstream_attempts_retries_and_the_ledger() {
    let app = spawn_app().await;
    // One transient failure, then the cancellation: one retry.
    Mock::given(method("POST"))
        .and(path("/v1/reservations/res_metrics1/cancel"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(app.upstreams.of("chargeapi"))
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/reservations/res_metrics1/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(cancelled_reservation("res_metrics1")))
        .mount(app.upstreams.of("chargeapi"))
        .await;
    let (status, _, body) = read(app.cancel(json!({"provider": "chargeapi", "reference": "res_metrics1"})).await).await;
    assert!(status == 200 || status == 202, "{body:#}");
    let done = app.wait_final(body["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "cancelled");
    let (status, _, _) = read(app.cancel(json!({"provider": "chargeapi", "reference": "bad ref"})).await).await;
    assert_eq!(status, 400);

    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().await.unwrap();

    assert!(
        has(&text, "cancelgate_requests_total", &[("provider", "chargeapi"), ("code", "ok"), ("status", "200")]) >= 1.0
    );
    assert!(
        has(
            &text,
            "cancelgate_requests_total",
            &[("provider", "chargeapi"), ("code", "invalid_request"), ("status", "400")]
        ) >= 1.0
    );
    has(
        &text,
        "cancelgate_upstream_duration_seconds_bucket",
        &[("provider", "chargeapi"), ("outcome", "cancelled"), ("le", "+Inf")],
    );
    has(&text, "cancelgate_upstream_duration_seconds_count", &[("provider", "chargeapi"), ("outcome", "transient")]);
    assert!(has(&text, "cancelgate_retries_total", &[("provider", "chargeapi")]) >= 1.0);
    has(&text, "cancelgate_upstream_in_flight", &[("provider", "chargeapi")]);
    has(&text, "cancelgate_circuit_state", &[("provider", "frontpayment")]);
    has(&text, "cancelgate_ledger_duration_seconds_bucket", &[("op", "begin_with_attempt"), ("le", "+Inf")]);
    has(&text, "cancelgate_ledger_duration_seconds_bucket", &[("op", "finish_with_attempt"), ("le", "+Inf")]);
    // Group commit: its own buckets (writes, not seconds).
    assert!(has(&text, "cancelgate_ledger_writes_per_commit_bucket", &[("le", "256")]) >= 1.0);
    has(&text, "cancelgate_ledger_processing", &[]);
    has(&text, "cancelgate_ledger_oldest_processing_age_seconds", &[]);
    has(&text, "cancelgate_request_duration_seconds_bucket", &[("provider", "chargeapi")]);
    assert!(text.contains("# TYPE cancelgate_upstream_duration_seconds histogram"), "a histogram, not a summary");
}

#[tokio::test]
async fn traceparent_is_forwarded_and_logged_and_the_request_span_carries_what_is_known() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .and(path("/v1/reservations/res_trace1/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(cancelled_reservation("res_trace1")))
        .mount(app.upstreams.of("chargeapi"))
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/reservations/res_trace2/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(cancelled_reservation("res_trace2")))
        .mount(app.upstreams.of("chargeapi"))
        .await;
    let send = |reference: &str, traceparent: &str| {
        app.client
            .post(app.url("/v1/cancellations"))
            .bearer_auth(DEMO_KEY)
            .header("x-request-id", format!("rid-{reference}"))
            .header("traceparent", traceparent)
            .json(&json!({"provider": "chargeapi", "reference": reference}))
            .send()
    };
    let (status, _, body) = read(send("res_trace1", TRACEPARENT).await.unwrap()).await;
    assert_eq!(status, 200, "{body:#}");
    let id = body["id"].as_str().unwrap().to_owned();
    // All-zero trace id: ignored, not forwarded.
    let (status, _, _) =
        read(send("res_trace2", "00-00000000000000000000000000000000-00f067aa0ba902b7-01").await.unwrap()).await;
    assert_eq!(status, 200);

    let received = app.upstreams.of("chargeapi").received_requests().await.unwrap();
    let first = received.iter().find(|r| r.url.path().contains("res_trace1")).unwrap();
    assert_eq!(first.headers["traceparent"], TRACEPARENT);
    assert_eq!(first.headers["x-request-id"], "rid-res_trace1");
    let second = received.iter().find(|r| r.url.path().contains("res_trace2")).unwrap();
    assert!(second.headers.get("traceparent").is_none(), "a malformed traceparent is not forwarded");
    assert_eq!(second.headers["x-request-id"], "rid-res_trace2");

    let logs = app.logs.text();
    let events: Vec<Value> = logs.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let answered = events
        .iter()
        .find(|e| e["fields"]["message"] == "request answered" && e["span"]["request_id"] == "rid-res_trace1")
        .unwrap_or_else(|| panic!("no request span event in:\n{logs}"));
    let span = &answered["span"];
    assert_eq!(span["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(span["client"], "demo");
    assert_eq!(span["provider"], "chargeapi");
    assert_eq!(span["account"], "default");
    assert_eq!(span["reference"], "res_trace1");
    assert_eq!(span["cancellation_id"], id.as_str());
    assert_eq!(span["outcome"], "cancelled");
    assert_eq!(span["status"], 200);
    assert!(span["latency_ms"].is_u64());
    let attempt = events
        .iter()
        .find(|e| e["fields"]["message"] == "upstream attempt" && e["fields"]["cancellation_id"] == id.as_str())
        .unwrap_or_else(|| panic!("no upstream attempt event in:\n{logs}"));
    assert_eq!(attempt["fields"]["outcome"], "cancelled");
    assert_eq!(attempt["fields"]["upstream_status"], 200);
    assert_eq!(attempt["fields"]["provider"], "chargeapi");
    assert!(attempt["fields"]["latency_ms"].is_u64());
    assert_eq!(
        attempt["span"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
        "the attempt runs in the request's span"
    );
}

#[tokio::test]
async fn readyz_is_503_with_reasons_when_the_ledger_is_gone() {
    let app = spawn_app().await;
    let (status, _, body) = read(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!((status, &body["status"]), (200, &json!("ready")), "{body:#}");
    app.state.driver.ledger.close().await;
    let (status, _, body) = read(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, 503, "{body:#}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["ledger"], "unreachable");
}

/// Leaves `reviews` records `needs_review` and one `cancelled` in a fresh SQLite ledger at `url`.
async fn seed_ledger(url: &str, reviews: usize) {
    use cancelgate_ledger::{Begin, Final, FinalStatus, Ledger, LedgerOptions, NewCancellation};
    let now = time::OffsetDateTime::now_utc();
    let ledger = Ledger::connect(url, LedgerOptions::default()).await.unwrap();
    ledger.migrate().await.unwrap();
    for n in 0..=reviews {
        let id = format!("can_seed{n}");
        let new = NewCancellation {
            id: id.clone(),
            client: "demo".to_owned(),
            provider: "chargeapi".to_owned(),
            account: "default".to_owned(),
            reference: format!("res_seed{n}"),
            idempotency_key: None,
            fingerprint: format!("fp{n}"),
            request: json!({"reason": null, "language": null}),
            metadata: json!({}),
            owner: "gw_seed".to_owned(),
            now,
            lease_until: now + time::Duration::minutes(1),
            batch_id: None,
        };
        assert!(matches!(ledger.begin(new).await.unwrap(), Begin::Fresh(_)));
        let fin = if n < reviews {
            Final {
                status: FinalStatus::NeedsReview,
                cancelled_at: None,
                error: Some(json!({"code": "upstream_timeout"})),
                upstream: None,
                http_status: 202,
                now,
                recheck_at: None,
            }
        } else {
            Final {
                status: FinalStatus::Cancelled,
                cancelled_at: Some(now),
                error: None,
                upstream: None,
                http_status: 200,
                now,
                recheck_at: None,
            }
        };
        ledger.finish(&id, "gw_seed", fin).await.unwrap();
    }
    ledger.close().await;
}

/// A fresh process (the real binary: its own metrics recorder): before any cancellation every
/// counter and upstream series already exists at 0, so an alert on a rate can be written; probes,
/// scrapes and the docs are not counted as requests; the operators' queue and the build are shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_series_exists_at_start_and_only_v1_requests_are_counted() {
    use crate::process::Gateway;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ledger.db", dir.path().display());
    seed_ledger(&url, 2).await;
    let gateway = Gateway::start(dir.path(), &[("CANCELGATE__LEDGER__URL".to_owned(), url)]).await;
    let scrape = || async { gateway.client.get(gateway.url("/metrics")).send().await.unwrap().text().await.unwrap() };

    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs/", "/errors", "/errors/not_found"] {
        let status = gateway.client.get(gateway.url(path)).send().await.unwrap().status();
        assert_eq!(status, 200, "{path}");
    }
    let text = scrape().await;
    let requests = samples(&text, "cancelgate_requests_total");
    assert!(requests.iter().all(|(_, v)| *v == 0.0), "operations endpoints were counted: {requests:?}");
    let providers = ["chargeapi", "frontpayment", "accommodation"];
    for provider in providers {
        assert_eq!(has(&text, "cancelgate_retries_total", &[("provider", provider)]), 0.0);
        assert_eq!(has(&text, "cancelgate_upstream_in_flight", &[("provider", provider)]), 0.0);
        for (code, status) in [("ok", "200"), ("ok", "202"), ("upstream_timeout", "504"), ("upstream_error", "502")] {
            let labels = [("provider", provider), ("code", code), ("status", status)];
            assert_eq!(has(&text, "cancelgate_requests_total", &labels), 0.0);
        }
        for outcome in ["cancelled", "refused", "transient", "ambiguous", "rate_limited", "needs_review"] {
            let labels = [("provider", provider), ("outcome", outcome)];
            assert_eq!(has(&text, "cancelgate_upstream_duration_seconds_count", &labels), 0.0);
        }
        has(&text, "cancelgate_request_duration_seconds_count", &[("provider", provider)]);
    }
    has(&text, "cancelgate_requests_total", &[("provider", "none"), ("code", "unauthorized"), ("status", "401")]);
    assert_eq!(has(&text, "cancelgate_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);
    assert_eq!(has(&text, "cancelgate_ledger_needs_review", &[]), 2.0, "read from the ledger at the scrape");
    assert!(text.contains("# TYPE cancelgate_ledger_needs_review gauge"), "{text}");
    assert!(has(&text, "cancelgate_ledger_bytes", &[]) > 0.0, "the ledger's size on disk, read at the scrape");
    assert!(text.contains("# TYPE cancelgate_ledger_bytes gauge"), "{text}");
    assert!(text.contains("# TYPE cancelgate_build_info gauge"), "{text}");

    // `/v1` requests are counted, with the provider when known, else `none`.
    let unauthorized = gateway.client.get(gateway.url("/v1/providers")).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);
    let listed = gateway.client.get(gateway.url("/v1/providers")).bearer_auth(DEMO_KEY).send().await.unwrap();
    assert_eq!(listed.status(), 200);
    let text = scrape().await;
    let labels = [("provider", "none"), ("code", "unauthorized"), ("status", "401")];
    assert_eq!(has(&text, "cancelgate_requests_total", &labels), 1.0);
    assert_eq!(
        has(&text, "cancelgate_requests_total", &[("provider", "none"), ("code", "ok"), ("status", "200")]),
        1.0
    );
    let total: f64 = samples(&text, "cancelgate_requests_total").iter().map(|(_, v)| v).sum();
    assert_eq!(total, 2.0, "the scrapes in between were not counted");
}
