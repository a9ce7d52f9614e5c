//! The events API's shapes (SPEC §8): an event as `GET /v1/events/{id}` shows it, with its
//! deliveries and their attempts, and the body of a redeliver. The console shows the same.

use cancelgate_ledger::{Delivery, DeliveryStatus, Event};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::api::rfc3339;

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryAttemptView {
    #[schema(format = DateTime)]
    pub at: String,
    /// The receiver's HTTP status; null when no answer came (timeout, connection error).
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    /// Why it did not deliver (`HTTP 500`, `timed out`, `connection failed: …`); null when it did.
    pub error: Option<String>,
}

/// The state of one delivery of an event to one endpoint.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatusView {
    Pending,
    Delivered,
    Failed,
    /// Pending for an endpoint that is disabled (it answered `410 Gone`, or `enabled = false`).
    Disabled,
}

/// One delivery of an event to one endpoint (a redelivery adds another).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryView {
    /// The endpoint's name (`webhooks.endpoints.{name}`).
    pub endpoint: String,
    pub status: DeliveryStatusView,
    pub attempts: Vec<DeliveryAttemptView>,
    /// When the next attempt is due; null once delivered or failed.
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
}

/// An event: exactly the body its deliveries carry, and on `GET /v1/events/{id}` its deliveries.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventView {
    #[schema(example = "evt_01JD7Q2Z3X4Y5W6V7U8T9S0R1P")]
    pub id: String,
    #[schema(example = "event")]
    pub object: String,
    /// `cancellation.cancelled`, `cancellation.failed`, `cancellation.needs_review` or
    /// `cancellation_batch.completed`.
    #[serde(rename = "type")]
    #[schema(example = "cancellation.cancelled")]
    pub kind: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The Cancellation (or, for `cancellation_batch.completed`, the batch) as its GET returned it
    /// when the event was made.
    #[schema(value_type = Object)]
    pub data: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<Vec<DeliveryView>>,
}

/// A page of events.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventList {
    #[schema(example = "list")]
    pub object: String,
    pub data: Vec<EventView>,
    pub has_more: bool,
}

/// The body of `POST /v1/events/{id}/redeliver`: `{}` (every endpoint that takes the event) or
/// one endpoint by name.
#[derive(Debug, Clone, Default, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the schema of the body `parse_redeliver` reads
pub struct RedeliverBody {
    /// An endpoint's name (`webhooks.endpoints.{name}`).
    pub endpoint: Option<String>,
}

pub fn event_view(event: &Event, with_deliveries: bool) -> EventView {
    // The payload is the gateway's own JSON; a stored one that does not parse shows as null.
    let payload: Value = serde_json::from_str(&event.payload).unwrap_or(Value::Null);
    let deliveries = with_deliveries.then(|| event.deliveries.iter().map(delivery_view).collect());
    EventView {
        id: event.id.clone(),
        object: "event".to_owned(),
        kind: event.kind.clone(),
        created_at: payload["created_at"].as_str().map_or_else(|| rfc3339(event.created_at), str::to_owned),
        data: payload.get("data").cloned().unwrap_or(Value::Null),
        deliveries,
    }
}

fn delivery_view(d: &Delivery) -> DeliveryView {
    let status = match d.status {
        DeliveryStatus::Pending if d.endpoint_disabled => DeliveryStatusView::Disabled,
        DeliveryStatus::Pending => DeliveryStatusView::Pending,
        DeliveryStatus::Delivered => DeliveryStatusView::Delivered,
        DeliveryStatus::Failed => DeliveryStatusView::Failed,
    };
    DeliveryView {
        endpoint: d.endpoint.clone(),
        status,
        attempts: d
            .attempts
            .iter()
            .map(|a| DeliveryAttemptView {
                at: rfc3339(a.at),
                http_status: a.http_status,
                latency_ms: a.latency_ms,
                error: a.error.clone(),
            })
            .collect(),
        next_attempt_at: d.next_attempt_at.map(rfc3339),
    }
}
