//! Observability: one span per request, one event per upstream attempt, and the Prometheus
//! metrics served at `/metrics`.
//!
//! The request span is created with every field `Empty`; handlers fill in what they learn
//! (client, provider, account, reference, cancellation id) through [`record`] and
//! [`record_provider`], and the middleware records the outcome, status and latency at the end.
//! Only validated values are recorded (a provider the registry knows, a reference that passed
//! its format check): nothing a caller sends goes raw into a log line or a metric label, and no
//! secret is ever a field.
//!
//! One Prometheus recorder is installed per process ([`prometheus`], a `OnceLock`): every
//! `Application` in the process (tests start many) shares it.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use cancelgate_core::ErrorCode;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use time::OffsetDateTime;
use tracing::field::Empty;

use cancelgate_engine::context;

/// Metric names (SPEC §2 names the first two; the rest are ours).
pub mod names {
    /// Counter `{provider, code, status}`: every answer to a `/v1` request (operations
    /// endpoints, probes and scrapes are not counted); `code` is the error code or `ok`.
    pub const REQUESTS_TOTAL: &str = "cancelgate_requests_total";
    /// Histogram `{provider}`: time to answer a `/v1` request, seconds.
    pub const REQUEST_DURATION: &str = "cancelgate_request_duration_seconds";
    /// The upstream attempts' metrics, recorded by the engine (`cancelgate_engine::telemetry`).
    pub use cancelgate_engine::telemetry::names::{
        CIRCUIT_STATE, RATE_LIMIT_STORE_ERRORS, RETRIES_TOTAL, UPSTREAM_DURATION, UPSTREAM_IN_FLIGHT,
    };
    /// Histogram `{op}`: one ledger operation, seconds (recorded by the ledger crate).
    pub const LEDGER_DURATION: &str = cancelgate_ledger::LEDGER_DURATION;
    /// Histogram: writes carried by one SQLite commit (group commit; recorded by the ledger crate).
    pub const LEDGER_WRITES_PER_COMMIT: &str = cancelgate_ledger::LEDGER_WRITES_PER_COMMIT;
    /// Gauge: cancellations `processing` (the background queue).
    pub const LEDGER_PROCESSING: &str = "cancelgate_ledger_processing";
    /// Gauge: age of the oldest `processing` cancellation, seconds (0 when none).
    pub const LEDGER_OLDEST_PROCESSING_AGE: &str = "cancelgate_ledger_oldest_processing_age_seconds";
    /// Gauge: cancellations `needs_review` (waiting for an operator).
    pub const LEDGER_NEEDS_REVIEW: &str = "cancelgate_ledger_needs_review";
    /// Gauge: the ledger's size on disk, bytes (SQLite: file + WAL; PostgreSQL: the database).
    pub const LEDGER_BYTES: &str = "cancelgate_ledger_bytes";
    /// Gauge `{version}`, always 1: which build answers.
    pub const BUILD_INFO: &str = "cancelgate_build_info";
}

/// The `provider` label of a request whose provider is not known (unauthorized, a listing, …).
const NO_PROVIDER: &str = "none";

/// Latency buckets, seconds: from a fast local answer to a slow provider's timeout.
const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Writes per SQLite commit: 1 when idle, up to the writer's group limit (256) under load.
const GROUPS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// The process's Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(names::LEDGER_WRITES_PER_COMMIT.to_owned()), GROUPS))
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        match metrics::set_global_recorder(recorder) {
            Ok(()) => describe(),
            // Another recorder (an embedding program's) owns the process: /metrics stays empty.
            Err(_) => tracing::warn!("a metrics recorder was already installed; /metrics will not show cancelgate's"),
        }
        handle
    })
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(names::REQUESTS_TOTAL, "Answers by provider, error code (or ok) and HTTP status.");
    describe_histogram!(names::REQUEST_DURATION, Unit::Seconds, "Time to answer a request.");
    describe_histogram!(names::UPSTREAM_DURATION, Unit::Seconds, "One upstream attempt, by outcome.");
    describe_counter!(names::RETRIES_TOTAL, "Upstream attempts after the first one of a cancellation.");
    describe_counter!(names::RATE_LIMIT_STORE_ERRORS, "Shared quota store (Redis) calls that failed or timed out.");
    describe_gauge!(names::UPSTREAM_IN_FLIGHT, "Upstream calls in flight.");
    describe_gauge!(names::CIRCUIT_STATE, "Circuit breaker state: 0 closed, 1 half open, 2 open.");
    describe_histogram!(names::LEDGER_DURATION, Unit::Seconds, "One ledger operation.");
    describe_histogram!(names::LEDGER_WRITES_PER_COMMIT, Unit::Count, "Writes carried by one SQLite commit.");
    describe_gauge!(names::LEDGER_PROCESSING, "Cancellations still processing (the background queue).");
    describe_gauge!(names::LEDGER_OLDEST_PROCESSING_AGE, Unit::Seconds, "Age of the oldest processing cancellation.");
    describe_gauge!(names::LEDGER_NEEDS_REVIEW, "Cancellations awaiting an operator's review.");
    describe_gauge!(names::LEDGER_BYTES, Unit::Bytes, "The ledger's size on disk.");
    describe_gauge!(names::BUILD_INFO, "Always 1; the version label says which build answers.");
}

/// Creates every series whose label values are known at start, at 0: an alert on a rate (say
/// of retries) can then be written before the first event, and `absent()` is not needed. The
/// labels: the configured `providers` (plus `none` where a request may have none), every error
/// code with its HTTP status (and `ok` with 200 and 202), every attempt outcome. Incrementing
/// by 0 registers a series without changing it (another `Application` in the process shares
/// the recorder).
pub fn register(providers: &[&'static str]) {
    let _ = prometheus();
    let answers = [("ok", 200u16), ("ok", 202)]
        .into_iter()
        .chain(ErrorCode::ALL.iter().map(|code| (code.as_str(), code.http_status())));
    let answers: Vec<(&'static str, u16)> = answers.collect();
    for provider in providers.iter().copied().chain([NO_PROVIDER]) {
        for (code, status) in &answers {
            metrics::counter!(names::REQUESTS_TOTAL, "provider" => provider, "code" => *code,
                "status" => status.to_string())
            .increment(0);
        }
        let _ = metrics::histogram!(names::REQUEST_DURATION, "provider" => provider);
    }
    for provider in providers.iter().copied() {
        metrics::counter!(names::RETRIES_TOTAL, "provider" => provider).increment(0);
        metrics::counter!(names::RATE_LIMIT_STORE_ERRORS, "provider" => provider).increment(0);
        metrics::gauge!(names::UPSTREAM_IN_FLIGHT, "provider" => provider).increment(0.0);
        for outcome in crate::attempt_outcome::AttemptOutcome::ALL.map(|o| o.as_str()) {
            let _ = metrics::histogram!(names::UPSTREAM_DURATION, "provider" => provider, "outcome" => outcome);
        }
    }
    metrics::gauge!(names::LEDGER_PROCESSING).increment(0.0);
    metrics::gauge!(names::LEDGER_OLDEST_PROCESSING_AGE).increment(0.0);
    metrics::gauge!(names::LEDGER_NEEDS_REVIEW).increment(0.0);
    metrics::gauge!(names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// Histograms are drained into their buckets here; without it they grow until the next scrape.
pub fn spawn_upkeep() {
    let handle = prometheus();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            handle.run_upkeep();
        }
    });
}

/// Record a field of the request span (`client`, `account`, `reference`, `cancellation_id`).
/// Only values the gateway validated or generated: never raw input, never a secret.
pub fn record(field: &'static str, value: &str) {
    tracing::Span::current().record(field, value);
}

/// Record the (known, configured) provider of this request: on the span and as the metric label.
pub fn record_provider(id: &str) {
    record("provider", id);
    if let Some(context) = context::current() {
        context.set_provider(id);
    }
}

/// Put on a response to say more than its status: `cancelled`, `processing`, `needs_review`.
#[derive(Debug, Clone, Copy)]
pub struct Outcome(pub &'static str);

/// The request span and the request metrics, around every route: a part of the one edge layer
/// (`edge_layer::Edge`). [`RequestRecord::start`] when the request arrives (the span, which the
/// request runs in), [`RequestRecord::finish`] with its answer.
#[derive(Debug)]
pub struct RequestRecord {
    started: Instant,
    route: String,
    counted: bool,
    context: Arc<context::RequestContext>,
    span: tracing::Span,
}

impl RequestRecord {
    /// The request's record and span, in its context (`request_id::start`: its id, trace, label).
    pub fn start(request: &Request, context: &Arc<context::RequestContext>) -> Self {
        let started = Instant::now();
        let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
        // The request metrics are the API's (SPEC §12): probes, scrapes and docs would drown them.
        let path = request.uri().path();
        let counted = path == "/v1" || path.starts_with("/v1/");
        let span = tracing::info_span!(
            "request",
            method = %request.method(),
            route = %route,
            request_id = %context.request_id.as_str(),
            trace_id = Empty,
            client = Empty,
            provider = Empty,
            account = Empty,
            reference = Empty,
            cancellation_id = Empty,
            code = Empty,
            outcome = Empty,
            status = Empty,
            latency_ms = Empty,
        );
        if let Some(trace) = &context.trace {
            span.record("trace_id", trace.trace_id());
        }
        Self { started, route, counted, context: context.clone(), span }
    }

    /// The span the request runs in.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// The answer's status, code, outcome and latency: on the span, in the metrics, in the log.
    pub fn finish(self, response: &Response) {
        let Self { started, route, counted, context, span } = self;
        let latency = started.elapsed();
        let status = response.status();
        let code = response.extensions().get::<ErrorCode>().copied();
        let code_label = match code {
            Some(code) => code.as_str(),
            None if status.is_client_error() || status.is_server_error() => "other",
            None => "ok",
        };
        let outcome = response.extensions().get::<Outcome>().map_or(code_label, |o| o.0);
        span.record("code", code_label);
        span.record("outcome", outcome);
        span.record("status", status.as_u16());
        span.record("latency_ms", latency.as_millis() as u64);
        if counted {
            let provider = context.provider().unwrap_or_else(|| NO_PROVIDER.to_owned());
            metrics::counter!(names::REQUESTS_TOTAL, "provider" => provider.clone(), "code" => code_label,
                "status" => status.as_u16().to_string())
            .increment(1);
            metrics::histogram!(names::REQUEST_DURATION, "provider" => provider).record(latency.as_secs_f64());
        }
        let _entered = span.enter();
        if status.is_server_error() {
            tracing::warn!("request answered");
        } else if route.starts_with("/v1") {
            tracing::info!("request answered");
        } else {
            // Probes and scrapes: not worth a line each at the default level.
            tracing::debug!("request answered");
        }
    }
}

/// The circuit gauge: 0 closed, 1 half open, 2 open (refreshed at each scrape).
pub fn set_circuit_state(provider: &str, state: crate::resilience::CircuitState) {
    use crate::resilience::CircuitState;
    let value = match state {
        CircuitState::Closed => 0.0,
        CircuitState::HalfOpen => 1.0,
        CircuitState::Open => 2.0,
    };
    metrics::gauge!(names::CIRCUIT_STATE, "provider" => provider.to_owned()).set(value);
}

/// The background queue, from `Ledger::stats()` (refreshed at each scrape).
pub fn set_ledger_backlog(stats: &cancelgate_ledger::Stats, now: OffsetDateTime) {
    metrics::gauge!(names::LEDGER_PROCESSING).set(stats.processing as f64);
    let age = stats.oldest_processing_created_at.map_or(0.0, |t| (now - t).as_seconds_f64().max(0.0));
    metrics::gauge!(names::LEDGER_OLDEST_PROCESSING_AGE).set(age);
}

/// The operators' queue, from `Ledger::count(NeedsReview)` (refreshed at each scrape).
pub fn set_ledger_needs_review(count: u64) {
    metrics::gauge!(names::LEDGER_NEEDS_REVIEW).set(count as f64);
}

pub fn set_ledger_bytes(bytes: u64) {
    metrics::gauge!(names::LEDGER_BYTES).set(bytes as f64);
}
