//! The engine's side of observability: one event and the metrics of each upstream attempt, the
//! upstream calls in flight, and the names of the metrics the engine records. The recorder, the
//! request metrics and `/metrics` are the facade's (`gateway/src/telemetry.rs`).

use std::time::Duration;

use crate::attempt_outcome::AttemptOutcome;
use crate::context;

/// The names of the metrics recorded by the engine (the facade registers them at start).
pub mod names {
    /// Histogram `{provider, outcome}`: one upstream attempt, seconds.
    pub const UPSTREAM_DURATION: &str = "cancelgate_upstream_duration_seconds";
    /// Counter `{provider}`: attempts after the first for one cancellation.
    pub const RETRIES_TOTAL: &str = "cancelgate_retries_total";
    /// Gauge `{provider}`: upstream calls in flight.
    pub const UPSTREAM_IN_FLIGHT: &str = "cancelgate_upstream_in_flight";
    /// Gauge `{provider}`: 0 closed, 1 half open, 2 open.
    pub const CIRCUIT_STATE: &str = "cancelgate_circuit_state";
    /// Counter `{provider}`: calls to the shared quota store (Redis) that failed or timed out.
    pub const RATE_LIMIT_STORE_ERRORS: &str = "cancelgate_rate_limit_store_errors_total";
}

/// One upstream attempt: its event and metrics. Returns the record unchanged, so the driver
/// calls it in line where it stores the attempt. The histogram takes the measured `latency`, not
/// the record's whole milliseconds: a loopback or same-zone answer is well under one.
pub fn upstream_attempt(
    provider: &str,
    cancellation_id: &str,
    attempt: u32,
    latency: Duration,
    record: cancelgate_ledger::AttemptResult,
) -> cancelgate_ledger::AttemptResult {
    // A label missing from the list would be a series `register` did not create at 0.
    debug_assert!(
        AttemptOutcome::parse(&record.outcome).is_some(),
        "attempt outcome {:?} is not an AttemptOutcome",
        record.outcome
    );
    metrics::histogram!(names::UPSTREAM_DURATION, "provider" => provider.to_owned(), "outcome" => record.outcome.clone())
        .record(latency.as_secs_f64());
    if attempt > 1 {
        metrics::counter!(names::RETRIES_TOTAL, "provider" => provider.to_owned()).increment(1);
    }
    let request_id = context::request_id();
    tracing::info!(
        provider,
        cancellation_id,
        attempt,
        outcome = %record.outcome,
        upstream_status = record.http_status,
        latency_ms = record.latency_ms,
        request_id = request_id.as_ref().map(context::RequestId::as_str),
        "upstream attempt"
    );
    record
}

/// Counts one upstream call in flight until dropped.
#[derive(Debug)]
pub struct InFlight(metrics::Gauge);

impl InFlight {
    pub fn start(provider: &str) -> Self {
        let gauge = metrics::gauge!(names::UPSTREAM_IN_FLIGHT, "provider" => provider.to_owned());
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;
    use time::OffsetDateTime;

    use super::*;

    /// A sub-millisecond attempt shows in the histogram as what it took, not as zero (the
    /// record's `latency_ms` is whole milliseconds).
    #[test]
    fn upstream_attempts_are_timed_below_a_millisecond() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let record = cancelgate_ledger::AttemptResult {
            finished_at: OffsetDateTime::UNIX_EPOCH,
            latency_ms: 0,
            outcome: "cancelled".to_owned(),
            http_status: Some(200),
            body: None,
            error: None,
        };
        metrics::with_local_recorder(&recorder, || {
            upstream_attempt("chargeapi", "can_1", 1, Duration::from_micros(250), record);
        });
        let text = handle.render();
        let sum = text
            .lines()
            .find(|l| l.starts_with("cancelgate_upstream_duration_seconds_sum{"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok());
        assert_eq!(sum, Some(0.00025), "{text}");
    }
}
