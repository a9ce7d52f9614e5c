//! Outcome events and their webhook deliveries (SPEC §8): a durable outbox.
//!
//! The ledger knows no endpoint, no payload shape and no HTTP. What an event is and who takes it
//! is the gateway's [`EventRule`], installed with [`Ledger::with_events`]: every transaction that
//! makes a record final (or puts it in review), and every one that may complete a batch, asks it
//! and writes what it answers — the event and one pending delivery per endpoint — IN THAT SAME
//! TRANSACTION. So a record is never final without its events, whatever crashes when; a rule
//! that answers `None` (no endpoint takes it) costs no write at all.
//!
//! Deliveries are claimed like records are (a lease; `FOR UPDATE SKIP LOCKED` on PostgreSQL, so
//! replicas share the outbox), with one more rule: per endpoint, only the OLDEST pending delivery
//! of an order key (one reference) is ever claimable, so one reference's events arrive in order
//! while other references go on.

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::batch::{Batch, batch_from_row, item_from_row};
use crate::db::{Sql, Tx, args, normalize_time};
use crate::error::LedgerError;
use crate::types::{Record, Status};
use crate::{Ledger, sql as record_sql};

/// The event types of SPEC §8.
pub const EVENT_TYPES: [&str; 4] =
    ["cancellation.cancelled", "cancellation.failed", "cancellation.needs_review", "cancellation_batch.completed"];

/// An event about to be stored, with the endpoints that take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// `evt_…`.
    pub id: String,
    /// One of [`EVENT_TYPES`].
    pub kind: String,
    /// The record it is about (cancellation events), or
    pub cancellation_id: Option<String>,
    /// the batch (`cancellation_batch.completed`).
    pub batch_id: Option<String>,
    /// Deliveries of one order key reach an endpoint in creation order (the reference's
    /// provider, account and reference; a batch's id).
    pub order_key: String,
    /// Exactly the body every attempt sends and signs.
    pub payload: String,
    pub created_at: OffsetDateTime,
    /// The endpoints that take it; empty: nothing is stored.
    pub endpoints: Vec<String>,
}

/// What events a state change makes: the gateway's policy, asked inside the ledger's transaction
/// (on SQLite on the writer thread: it must be quick and never block).
pub trait EventRule: Send + Sync + fmt::Debug {
    /// The event of a record that just became final or entered review, if any endpoint takes it.
    fn for_record(&self, record: &Record) -> Option<NewEvent>;
    /// The event of a batch none of whose items is processing any more.
    fn for_batch(&self, batch: &Batch) -> Option<NewEvent>;
    /// Called after a commit that stored at least one event: wake the dispatcher.
    fn stored(&self);
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        Some(match s {
            "pending" => DeliveryStatus::Pending,
            "delivered" => DeliveryStatus::Delivered,
            "failed" => DeliveryStatus::Failed,
            _ => return None,
        })
    }
}

/// A stored event; `deliveries` is filled by [`Ledger::get_event`] only.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub kind: String,
    pub cancellation_id: Option<String>,
    pub batch_id: Option<String>,
    pub payload: String,
    pub created_at: OffsetDateTime,
    pub deliveries: Vec<Delivery>,
}

/// One delivery of an event to one endpoint (a redelivery is another one).
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub endpoint: String,
    pub status: DeliveryStatus,
    /// The endpoint is disabled (a `410`, or the configuration): a pending delivery waits.
    pub endpoint_disabled: bool,
    pub next_attempt_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub attempts: Vec<DeliveryAttempt>,
}

/// One attempt of a delivery, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub n: u32,
    pub at: OffsetDateTime,
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    /// Why it did not deliver; `None` when it did.
    pub error: Option<String>,
    /// The start of the receiver's answer (the dispatcher bounds it).
    pub answer: Option<String>,
}

/// A delivery handed to a dispatcher by [`Ledger::claim_deliveries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub event_id: String,
    pub endpoint: String,
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// How an attempt ended, as the dispatcher's policy decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Try again at this time.
    RetryAt(OffsetDateTime),
    /// No retry left.
    Failed,
    /// The receiver answered `410 Gone`: the endpoint is disabled, the delivery stays pending.
    EndpointGone,
}

/// Filters of [`Ledger::list_events`]; `None` matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub kind: Option<String>,
    pub cancellation_id: Option<String>,
    /// Events with at least one delivery in this status.
    pub delivery_status: Option<DeliveryStatus>,
}

/// A page of events, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    pub events: Vec<Event>,
    pub has_more: bool,
}

/// The backlog of one endpoint (for the gauges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingStat {
    pub endpoint: String,
    pub pending: u64,
    /// Creation time of the event of the oldest pending delivery.
    pub oldest: Option<OffsetDateTime>,
}

// ---- SQL ---------------------------------------------------------------------------------------

const INSERT_EVENT: Sql = Sql::both(
    "INSERT INTO webhook_events (id, type, cancellation_id, batch_id, order_key, payload, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)",
);

/// Due at once: `next_attempt_at` is the event's creation.
const INSERT_DELIVERY: Sql = Sql::both(
    "INSERT INTO webhook_deliveries (event_id, endpoint, order_key, event_created_at, status, next_attempt_at, \
     created_at, updated_at) VALUES ($1, $2, $3, $4, 'pending', $4, $4, $4)",
);

/// The batch row, locked on PostgreSQL: a transaction ending an item and the one sealing the
/// batch are serialized on it, so whichever commits second sees the first and the completion is
/// never missed by both.
const LOCK_BATCH: Sql = Sql {
    sqlite: "SELECT id FROM cancellation_batches WHERE id = $1",
    pg: "SELECT id FROM cancellation_batches WHERE id = $1 FOR UPDATE",
};

const BATCH_EVENT_EXISTS: Sql =
    Sql::both("SELECT id FROM webhook_events WHERE batch_id = $1 AND type = 'cancellation_batch.completed'");

// ---- inside the transactions that end records ----------------------------------------------

/// Writes `event` and its deliveries in the caller's transaction. `false` when there is nothing
/// to write (no event, or no endpoint takes it).
async fn store(tx: &mut Tx<'_>, event: Option<NewEvent>) -> Result<bool, LedgerError> {
    let Some(event) = event.filter(|e| !e.endpoints.is_empty()) else { return Ok(false) };
    let created = normalize_time(event.created_at);
    tx.execute(
        INSERT_EVENT,
        args![
            &event.id,
            &event.kind,
            event.cancellation_id.as_deref(),
            event.batch_id.as_deref(),
            &event.order_key,
            &event.payload,
            created,
        ],
    )
    .await?;
    let mut endpoints = event.endpoints;
    endpoints.sort();
    endpoints.dedup();
    for endpoint in &endpoints {
        tx.execute(INSERT_DELIVERY, args![&event.id, endpoint.as_str(), &event.order_key, created]).await?;
    }
    Ok(true)
}

/// The events of a record that just changed status (not of a replay: the caller knows it
/// changed): its own if it is final or in review, and its batch's if that change completed it.
/// `true` when something was stored.
pub(crate) async fn after_change(
    tx: &mut Tx<'_>,
    rule: Option<&Arc<dyn EventRule>>,
    record: &Record,
) -> Result<bool, LedgerError> {
    let Some(rule) = rule else { return Ok(false) };
    let mut stored = false;
    if record.status != Status::Processing {
        stored |= store(tx, rule.for_record(record)).await?;
        if let Some(batch_id) = &record.batch_id {
            stored |= batch_completed(tx, rule, batch_id).await?;
        }
    }
    Ok(stored)
}

/// The batch's completion event if it is sealed, none of its items is processing, and it has
/// none yet.
pub(crate) async fn batch_completed(
    tx: &mut Tx<'_>,
    rule: &Arc<dyn EventRule>,
    batch_id: &str,
) -> Result<bool, LedgerError> {
    if tx.fetch_optional(LOCK_BATCH, args![batch_id]).await?.is_none() {
        return Ok(false);
    }
    let Some(row) = tx.fetch_optional(record_sql::SELECT_BATCH, args![batch_id]).await? else { return Ok(false) };
    let mut batch = batch_from_row(&row)?;
    if batch.recording_until.is_some() {
        return Ok(false);
    }
    let items = tx.fetch_all(record_sql::SELECT_BATCH_ITEMS, args![batch_id]).await?;
    batch.items = items.iter().map(item_from_row).collect::<Result<_, _>>()?;
    if batch.items.iter().any(|i| i.record.as_ref().is_some_and(|r| r.status == Status::Processing)) {
        return Ok(false);
    }
    if tx.fetch_optional(BATCH_EVENT_EXISTS, args![batch_id]).await?.is_some() {
        return Ok(false);
    }
    store(tx, rule.for_batch(&batch)).await
}

// ---- the rule, installed on the ledger ---------------------------------------------------------

impl Ledger {
    /// Installs the rule that makes events (see [`EventRule`]); without one, nothing is emitted.
    pub fn with_events(mut self, rule: Arc<dyn EventRule>) -> Ledger {
        self.events = Some(rule);
        self
    }

    pub(crate) fn events_stored(&self, stored: bool) {
        if stored && let Some(rule) = &self.events {
            rule.stored();
        }
    }
}
