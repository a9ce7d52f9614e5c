//! The gateway's [`EventRule`]: which state change makes which event, for which endpoints, with
//! which payload. The payload's `data` is rendered by the API's own functions (the Cancellation
//! of `GET /v1/cancellations/{id}`, the batch of `GET /v1/cancellation-batches/{id}`), so an
//! event says exactly what a GET says.

use std::sync::Arc;

use cancelgate_ledger::{Batch, EventRule, NewEvent, Record, Status};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::Notify;

use super::config::Webhooks;
use crate::api::rfc3339;
use crate::routes::{batches, cancellations};

/// The body of every delivery (SPEC §8).
#[derive(Debug, Serialize)]
pub struct Envelope<'a, T: Serialize> {
    pub id: &'a str,
    pub object: &'static str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub created_at: String,
    pub data: T,
}

#[derive(Debug)]
pub struct Rule {
    webhooks: Arc<Webhooks>,
    /// Woken after a commit that stored an event: the dispatcher claims at once.
    wake: Arc<Notify>,
}

impl Rule {
    pub fn new(webhooks: Arc<Webhooks>, wake: Arc<Notify>) -> Rule {
        Rule { webhooks, wake }
    }

    fn endpoints(&self, kind: &str, client: &str) -> Vec<String> {
        self.webhooks.endpoints.iter().filter(|e| e.takes(kind, client)).map(|e| e.name.clone()).collect()
    }
}

/// The event type of a record's status; `None` while processing.
pub fn record_event_type(status: Status) -> Option<&'static str> {
    Some(match status {
        Status::Cancelled => "cancellation.cancelled",
        Status::Failed => "cancellation.failed",
        Status::NeedsReview => "cancellation.needs_review",
        Status::Processing => return None,
    })
}

fn new_event<T: Serialize>(
    kind: &'static str,
    created_at: OffsetDateTime,
    data: T,
    endpoints: Vec<String>,
) -> Option<NewEvent> {
    let id = format!("evt_{}", ulid::Ulid::new());
    let envelope = Envelope { id: &id, object: "event", kind, created_at: rfc3339(created_at), data };
    // Serializing our own types cannot fail; if it ever did, no event beats a malformed one.
    let payload = serde_json::to_string(&envelope).ok()?;
    Some(NewEvent {
        id,
        kind: kind.to_owned(),
        cancellation_id: None,
        batch_id: None,
        order_key: String::new(),
        payload,
        created_at,
        endpoints,
    })
}

impl EventRule for Rule {
    fn for_record(&self, record: &Record) -> Option<NewEvent> {
        let kind = record_event_type(record.status)?;
        let endpoints = self.endpoints(kind, &record.client);
        if endpoints.is_empty() {
            return None;
        }
        let mut event = new_event(kind, record.updated_at, cancellations::cancellation(record, false), endpoints)?;
        event.cancellation_id = Some(record.id.clone());
        event.order_key = format!("{}/{}/{}", record.provider, record.account, record.reference);
        Some(event)
    }

    fn for_batch(&self, batch: &Batch) -> Option<NewEvent> {
        let kind = "cancellation_batch.completed";
        let endpoints = self.endpoints(kind, &batch.client);
        if endpoints.is_empty() {
            return None;
        }
        let view = batches::batch_view(batch, false);
        let created_at =
            batch.items.iter().filter_map(|i| i.record.as_ref()).map(|r| r.updated_at).fold(batch.updated_at, Ord::max);
        let mut event = new_event(kind, created_at, view, endpoints)?;
        event.batch_id = Some(batch.id.clone());
        event.order_key = batch.id.clone();
        Some(event)
    }

    fn stored(&self) {
        self.wake.notify_one();
    }
}
