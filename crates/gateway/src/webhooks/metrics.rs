//! The webhook metrics of SPEC §8. The counter is bumped by the dispatcher; the two gauges are
//! read from the ledger at each scrape (they span every replica's outbox).

use cancelgate_ledger::Ledger;
use time::OffsetDateTime;

use super::config::Webhooks;

/// Counter `{endpoint, outcome}`: attempts by how they ended.
pub const DELIVERIES_TOTAL: &str = "cancelgate_webhook_deliveries_total";
/// Gauge `{endpoint}`: deliveries pending (waiting, retrying, or for a disabled endpoint).
pub const PENDING: &str = "cancelgate_webhook_pending";
/// Gauge `{endpoint}`: age of the event of the oldest pending delivery, 0 when none.
pub const OLDEST_PENDING_AGE: &str = "cancelgate_webhook_oldest_pending_age_seconds";

/// The `outcome` label values: `delivered` (2xx), `retry` (to be tried again), `failed` (no
/// retry left), `disabled` (410: the endpoint was disabled).
pub const OUTCOMES: [&str; 4] = ["delivered", "retry", "failed", "disabled"];

/// Describes the series and creates each at 0 for every configured endpoint.
pub fn register(webhooks: &Webhooks) {
    use metrics::{Unit, describe_counter, describe_gauge};
    describe_counter!(DELIVERIES_TOTAL, "Webhook delivery attempts by endpoint and outcome.");
    describe_gauge!(PENDING, "Webhook deliveries pending, by endpoint.");
    describe_gauge!(OLDEST_PENDING_AGE, Unit::Seconds, "Age of the oldest pending webhook delivery, by endpoint.");
    for endpoint in &webhooks.endpoints {
        for outcome in OUTCOMES {
            metrics::counter!(DELIVERIES_TOTAL, "endpoint" => endpoint.name.clone(), "outcome" => outcome).increment(0);
        }
        metrics::gauge!(PENDING, "endpoint" => endpoint.name.clone()).set(0.0);
        metrics::gauge!(OLDEST_PENDING_AGE, "endpoint" => endpoint.name.clone()).set(0.0);
    }
}

pub fn attempt(endpoint: &str, outcome: &'static str) {
    metrics::counter!(DELIVERIES_TOTAL, "endpoint" => endpoint.to_owned(), "outcome" => outcome).increment(1);
}

/// Sets the gauges from the ledger (at a scrape); on an error they keep their last values.
pub async fn refresh(ledger: &Ledger, webhooks: &Webhooks, now: OffsetDateTime) {
    if webhooks.endpoints.is_empty() {
        return;
    }
    let stats = match ledger.pending_deliveries().await {
        Ok(stats) => stats,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the webhook backlog for /metrics");
            return;
        }
    };
    for endpoint in &webhooks.endpoints {
        let stat = stats.iter().find(|s| s.endpoint == endpoint.name);
        let pending = stat.map_or(0, |s| s.pending);
        let age = stat.and_then(|s| s.oldest).map_or(0.0, |t| (now - t).as_seconds_f64().max(0.0));
        metrics::gauge!(PENDING, "endpoint" => endpoint.name.clone()).set(pending as f64);
        metrics::gauge!(OLDEST_PENDING_AGE, "endpoint" => endpoint.name.clone()).set(age);
    }
}
