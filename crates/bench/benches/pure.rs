//! The pure parts of one cancellation, each on its own: what the gateway spends per request
//! outside I/O and the ledger. `cargo bench -p cancelgate-bench` (see BENCHMARKS.md).

use std::hint::black_box;

use cancelgate_core::{Account, AttemptContext, CancelProvider, CancelRequest, HttpResponse, check_reference};
use cancelgate_gateway::api::CancelBody;
use cancelgate_gateway::cancel::scrub;
use cancelgate_provider_accommodation::Accommodation;
use cancelgate_provider_chargeapi::ChargeApi;
use cancelgate_provider_frontpayment::FrontPayment;
use criterion::{Criterion, criterion_group, criterion_main};
use http::StatusCode;

// The providers' documented answers, as the adapters' own tests read them.
const CHARGE_200: &str = include_str!("../../provider-chargeapi/tests/fixtures/chargeapi-cancel__200-cancelled.json");
const CHARGE_400: &str =
    include_str!("../../provider-chargeapi/tests/fixtures/sandbox__400-reservation-already-cancelled.json");
const FRONT_202: &str =
    include_str!("../../provider-frontpayment/tests/fixtures/frontpayment-cancel__202-cancelledOrderSuccessfully.json");
const FRONT_404: &str =
    include_str!("../../provider-frontpayment/tests/fixtures/frontpayment-cancel__404-orderNotFound.json");
const ACCOM_200: &str =
    include_str!("../../provider-accommodation/tests/fixtures/accommodation-cancel__200-success.json");
const ACCOM_400: &str =
    include_str!("../../provider-accommodation/tests/fixtures/accommodation-cancel__400-not-refundable.json");

const CHARGE_REF: &str = "res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq";
const FRONT_REF: &str = "9B2F6A3E-1C4D-4E8F-A7B6-5D4C3B2A1F00";
const ACCOM_REF: &str = "BK_EXAMPLE_001";

fn request(adapter: &dyn CancelProvider, reference: &str) -> CancelRequest {
    CancelRequest {
        reference: adapter.parse_reference(reference).unwrap_or_else(|e| panic!("{reference}: {e}")),
        reason: Some("Customer changed plans".to_owned()),
        language: Some("en".to_owned()),
    }
}

fn adapters() -> [(&'static str, Box<dyn CancelProvider>, Account, &'static str); 3] {
    [
        (
            "chargeapi",
            Box::new(ChargeApi),
            Account::new("default").with_secret("secret_key", "ch_sk_test_bench"),
            CHARGE_REF,
        ),
        (
            "frontpayment",
            Box::new(FrontPayment),
            Account::new("default").with_secret("token", "fp_bench_token"),
            FRONT_REF,
        ),
        (
            "accommodation",
            Box::new(Accommodation),
            Account::new("default").with_secret("api_key", "acc_bench_key").with_secret("connection_code", "10001"),
            ACCOM_REF,
        ),
    ]
}

fn references(c: &mut Criterion) {
    let mut group = c.benchmark_group("reference");
    for (name, adapter, _, reference) in adapters() {
        group.bench_function(format!("{name}/valid"), |b| b.iter(|| adapter.parse_reference(black_box(reference))));
    }
    group.bench_function("chargeapi/invalid", |b| {
        b.iter(|| ChargeApi.parse_reference(black_box("res_../../admin?x=1")))
    });
    group.bench_function("core/check_reference", |b| {
        b.iter(|| check_reference(black_box(CHARGE_REF).to_owned(), "bench"))
    });
    group.finish();
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build_cancel");
    for (name, adapter, account, reference) in adapters() {
        let req = request(adapter.as_ref(), reference);
        group.bench_function(name, |b| b.iter(|| adapter.build_cancel(black_box(&req), black_box(&account))));
    }
    group.finish();
}

fn classify(c: &mut Criterion) {
    let mut group = c.benchmark_group("classify_cancel");
    let context = AttemptContext::default();
    let cases: [(&str, Box<dyn CancelProvider>, StatusCode, &str); 6] = [
        ("chargeapi/200-cancelled", Box::new(ChargeApi), StatusCode::OK, CHARGE_200),
        ("chargeapi/400-already-cancelled", Box::new(ChargeApi), StatusCode::BAD_REQUEST, CHARGE_400),
        ("frontpayment/202-cancelled", Box::new(FrontPayment), StatusCode::ACCEPTED, FRONT_202),
        ("frontpayment/404-not-found", Box::new(FrontPayment), StatusCode::NOT_FOUND, FRONT_404),
        ("accommodation/200-success", Box::new(Accommodation), StatusCode::OK, ACCOM_200),
        ("accommodation/400-not-refundable", Box::new(Accommodation), StatusCode::BAD_REQUEST, ACCOM_400),
    ];
    for (name, adapter, status, body) in cases {
        let response = HttpResponse::new(status, bytes::Bytes::from_static(body.as_bytes()));
        group.bench_function(name, |b| b.iter(|| adapter.classify_cancel(black_box(&response), context)));
    }
    let html = HttpResponse::new(StatusCode::BAD_GATEWAY, "<html><body><h1>502 Bad Gateway</h1></body></html>");
    group.bench_function("chargeapi/502-html", |b| b.iter(|| ChargeApi.classify_cancel(black_box(&html), context)));
    group.finish();
}

fn body(c: &mut Criterion) {
    let mut group = c.benchmark_group("cancel_body");
    let minimal = br#"{"provider":"chargeapi","reference":"res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq"}"#;
    let full = br#"{"provider":"accommodation","reference":"BK_EXAMPLE_001","account":"default",
        "reason":"Customer changed plans","language":"en","metadata":{"order":"ord_123","agent":"web"}}"#;
    let unknown_field = br#"{"provider":"chargeapi","reference":"res_x","refrence":"typo"}"#;
    group.bench_function("parse/minimal", |b| b.iter(|| CancelBody::parse(black_box(minimal))));
    group.bench_function("parse/all-fields", |b| b.iter(|| CancelBody::parse(black_box(full))));
    group.bench_function("parse/unknown-field", |b| b.iter(|| CancelBody::parse(black_box(unknown_field))));
    // What a POST pays: one pass into the typed body, then the fingerprint stored with the record.
    group.bench_function("parse+fingerprint/all-fields", |b| {
        b.iter(|| CancelBody::parse(black_box(full)).map(|body| body.fingerprint()))
    });
    group.finish();
}

fn scrubbing(c: &mut Criterion) {
    // Every upstream answer is searched for the account's secrets before anything reads it.
    let mut group = c.benchmark_group("scrub");
    let clean = bytes::Bytes::from_static(CHARGE_200.as_bytes());
    group.bench_function("chargeapi-200/no-secret", |b| {
        b.iter(|| scrub(black_box(clean.clone()), ["ch_sk_test_bench"].into_iter()))
    });
    let echoed = bytes::Bytes::from(format!("{{\"echo\":\"Bearer ch_sk_test_bench\",{}", &CHARGE_200[1..]));
    group.bench_function("chargeapi-200/echoed-secret", |b| {
        b.iter(|| scrub(black_box(echoed.clone()), ["ch_sk_test_bench"].into_iter()))
    });
    group.finish();
}

criterion_group!(benches, references, build, classify, body, scrubbing);
criterion_main!(benches);
