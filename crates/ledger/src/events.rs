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
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::batch::{Batch, batch_from_row, item_from_row};
use crate::db::{Arg, Decision, Row, Sql, Tx, args, normalize_time};
use crate::error::LedgerError;
use crate::types::{Record, Status};
use crate::{Ledger, lease_until, sql as record_sql, to_u16, to_u32};

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

/// What makes a pending delivery claimable besides being due and unleased: its endpoint is known
/// and enabled, and no older pending delivery of its endpoint and order key exists.
macro_rules! claimable {
    () => {
        "($5 = '' OR d.endpoint = $5) AND d.status = 'pending' AND d.next_attempt_at <= $2 AND (d.lease_until IS NULL OR d.lease_until <= $2) \
         AND EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.name = d.endpoint AND w.disabled_at IS NULL) \
         AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.status = 'pending' AND p.endpoint = d.endpoint \
         AND p.order_key = d.order_key AND (p.event_created_at < d.event_created_at \
         OR (p.event_created_at = d.event_created_at AND p.id < d.id)))"
    };
}

const CLAIM: Sql = Sql {
    sqlite: concat!(
        "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $3, updated_at = $2 WHERE id IN \
         (SELECT d.id FROM webhook_deliveries d WHERE ",
        claimable!(),
        " ORDER BY d.next_attempt_at, d.id LIMIT $4) RETURNING id, event_id, endpoint, attempts"
    ),
    pg: concat!(
        "WITH due AS (SELECT d.id AS due_id FROM webhook_deliveries d WHERE ",
        claimable!(),
        " ORDER BY d.next_attempt_at, d.id LIMIT $4 FOR UPDATE OF d SKIP LOCKED) \
         UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $3, updated_at = $2 FROM due \
         WHERE id = due.due_id AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $2) \
         RETURNING id, event_id, endpoint, attempts"
    ),
};

const SELECT_PAYLOAD: Sql = Sql::both("SELECT payload FROM webhook_events WHERE id = $1");

/// Settles one attempt, by the lease holder only: `$3` status, `$4` next attempt (pending) or
/// NULL, `$5` now.
const SETTLE: Sql = Sql::both(
    "UPDATE webhook_deliveries SET attempts = attempts + 1, status = $3, next_attempt_at = $4, lease_owner = NULL, \
     lease_until = NULL, updated_at = $5 WHERE id = $1 AND lease_owner = $2 AND status = 'pending' \
     RETURNING attempts",
);

const INSERT_DELIVERY_ATTEMPT: Sql = Sql::both(
    "INSERT INTO webhook_delivery_attempts (delivery_id, n, at, http_status, latency_ms, error, answer) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)",
);

const DISABLE_ENDPOINT: Sql = Sql::both(
    "INSERT INTO webhook_endpoints (name, disabled_at, disabled_reason) VALUES ($1, $2, $3) \
     ON CONFLICT (name) DO UPDATE SET disabled_at = excluded.disabled_at, disabled_reason = excluded.disabled_reason",
);

const ENABLE_ENDPOINT: Sql = Sql::both(
    "INSERT INTO webhook_endpoints (name, disabled_at, disabled_reason) VALUES ($1, NULL, NULL) \
     ON CONFLICT (name) DO UPDATE SET disabled_at = NULL, disabled_reason = NULL",
);

macro_rules! event_columns {
    () => {
        "e.id, e.type, e.cancellation_id, e.batch_id, e.payload, e.created_at"
    };
}

const SELECT_EVENT: Sql = Sql::both(concat!("SELECT ", event_columns!(), " FROM webhook_events e WHERE e.id = $1"));

const SELECT_DELIVERIES: Sql = Sql::both(
    "SELECT d.id, d.endpoint, d.status, d.next_attempt_at, d.created_at, \
     (w.disabled_at IS NOT NULL) AS endpoint_disabled FROM webhook_deliveries d \
     LEFT JOIN webhook_endpoints w ON w.name = d.endpoint WHERE d.event_id = $1 ORDER BY d.id",
);

const SELECT_DELIVERY_ATTEMPTS: Sql = Sql::both(
    "SELECT a.delivery_id, a.n, a.at, a.http_status, a.latency_ms, a.error, a.answer \
     FROM webhook_delivery_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id \
     WHERE d.event_id = $1 ORDER BY a.delivery_id, a.n",
);

const LIST_EVENTS_PREFIX: &str = concat!("SELECT ", event_columns!(), " FROM webhook_events e WHERE 1 = 1");
const LIST_EVENTS_ORDER: &str = " ORDER BY e.created_at DESC, e.id DESC LIMIT ";
const SELECT_EVENT_CREATED_AT: Sql = Sql::both("SELECT created_at FROM webhook_events WHERE id = $1");

const PENDING_BY_ENDPOINT: Sql = Sql::both(
    "SELECT endpoint, COUNT(*) AS n, MIN(event_created_at) AS oldest FROM webhook_deliveries \
     WHERE status = 'pending' GROUP BY endpoint",
);

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

// ---- the outbox's own operations -------------------------------------------------------------

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

    /// Makes the configured endpoints known: each `(name, enabled)` is enabled or disabled as
    /// configured (enabling clears a disable a `410` stored: SPEC §8, "until `enabled` is set
    /// again and the gateway restarted"); endpoints not configured any more are disabled, so
    /// their pending deliveries wait instead of being claimed by nobody who can send them.
    pub async fn sync_endpoints(&self, endpoints: Vec<(String, bool)>, now: OffsetDateTime) -> Result<(), LedgerError> {
        let now = normalize_time(now);
        self.db
            .write(move |mut tx| {
                Box::pin(async move {
                    for (name, enabled) in &endpoints {
                        if *enabled {
                            tx.execute(ENABLE_ENDPOINT, args![name.as_str()]).await?;
                        } else {
                            tx.execute(DISABLE_ENDPOINT, args![name.as_str(), now, "disabled in the configuration"])
                                .await?;
                        }
                    }
                    let mut sql = String::from(
                        "UPDATE webhook_endpoints SET disabled_at = $1, disabled_reason = 'not configured' \
                         WHERE disabled_at IS NULL",
                    );
                    let mut binds: Vec<Arg> = vec![now.into()];
                    for (name, _) in &endpoints {
                        binds.push(name.as_str().into());
                        let _ = write!(sql, " AND name <> ${}", binds.len());
                    }
                    tx.execute(Sql::both(&sql), binds).await?;
                    Ok(Decision::Keep(()))
                })
            })
            .await
    }

    /// Leases up to `limit` claimable deliveries (of `endpoint` only, if given) to `owner` for
    /// `lease` (see the module docs: due, unleased or lease expired, endpoint enabled, oldest
    /// pending of its order key). Concurrent claimers (of any replica) never get the same one.
    pub async fn claim_deliveries(
        &self,
        owner: &str,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
        endpoint: Option<&str>,
    ) -> Result<Vec<ClaimedDelivery>, LedgerError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let until = lease_until(now, lease)?;
        let args = args![owner, normalize_time(now), until, i64::from(limit), endpoint.unwrap_or("")];
        self.db
            .write(move |mut tx| {
                Box::pin(async move {
                    let rows = tx.fetch_all(CLAIM, args).await?;
                    let mut claimed = Vec::with_capacity(rows.len());
                    for row in &rows {
                        let event_id = row.text("event_id")?;
                        let payload = tx
                            .fetch_optional(SELECT_PAYLOAD, args![event_id.as_str()])
                            .await?
                            .ok_or_else(|| LedgerError::Corrupt(format!("delivery of unknown event {event_id}")))?
                            .text("payload")?;
                        claimed.push(ClaimedDelivery {
                            id: row.int("id")?,
                            event_id,
                            endpoint: row.text("endpoint")?,
                            payload,
                            attempts: to_u32("attempts", row.int("attempts")?)?,
                        });
                    }
                    // RETURNING gives no order: oldest due first.
                    claimed.sort_by_key(|c| c.id);
                    Ok(Decision::Keep(claimed))
                })
            })
            .await
    }

    /// Records an attempt of a claimed delivery and what follows from it, in one transaction, by
    /// the lease holder only: `false` (nothing recorded) when `owner` lost the lease (another
    /// replica took the delivery over and sends it itself).
    pub async fn record_delivery(
        &self,
        delivery_id: i64,
        owner: &str,
        endpoint: &str,
        attempt: DeliveryAttempt,
        outcome: DeliveryOutcome,
    ) -> Result<bool, LedgerError> {
        let (owner, endpoint) = (owner.to_owned(), endpoint.to_owned());
        let at = normalize_time(attempt.at);
        let (status, next) = match outcome {
            DeliveryOutcome::Delivered => (DeliveryStatus::Delivered, None),
            DeliveryOutcome::Failed => (DeliveryStatus::Failed, None),
            DeliveryOutcome::RetryAt(t) => (DeliveryStatus::Pending, Some(normalize_time(t))),
            // Stays pending, due: sent as soon as the endpoint is enabled again.
            DeliveryOutcome::EndpointGone => (DeliveryStatus::Pending, Some(at)),
        };
        self.db
            .write(move |mut tx| {
                Box::pin(async move {
                    let Some(row) = tx
                        .fetch_optional(SETTLE, args![delivery_id, owner.as_str(), status.as_str(), next, at])
                        .await?
                    else {
                        return Ok(Decision::Undo(false));
                    };
                    let n = row.int("attempts")?;
                    tx.execute(
                        INSERT_DELIVERY_ATTEMPT,
                        args![
                            delivery_id,
                            n,
                            at,
                            attempt.http_status.map(i64::from),
                            i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX),
                            attempt.error.as_deref(),
                            attempt.answer.as_deref(),
                        ],
                    )
                    .await?;
                    if outcome == DeliveryOutcome::EndpointGone {
                        tx.execute(DISABLE_ENDPOINT, args![endpoint.as_str(), at, "the receiver answered 410 Gone"])
                            .await?;
                    }
                    Ok(Decision::Keep(true))
                })
            })
            .await
    }

    /// Queues `event_id` again: a new pending delivery to each of `endpoints`, due at `now`.
    /// `None` for an unknown event. The event as stored afterwards otherwise.
    pub async fn redeliver(
        &self,
        event_id: &str,
        endpoints: Vec<String>,
        now: OffsetDateTime,
    ) -> Result<Option<Event>, LedgerError> {
        let id = event_id.to_owned();
        let now = normalize_time(now);
        let stored = self
            .db
            .write(move |mut tx| {
                Box::pin(async move {
                    let Some(row) = tx.fetch_optional(SELECT_EVENT, args![id.as_str()]).await? else {
                        return Ok(Decision::Undo(None));
                    };
                    let event = event_from_row(&row)?;
                    let order_key = tx
                        .fetch_optional(Sql::both("SELECT order_key FROM webhook_events WHERE id = $1"), args![&id])
                        .await?
                        .map(|r| r.text("order_key"))
                        .transpose()?
                        .unwrap_or_default();
                    for endpoint in &endpoints {
                        tx.execute(
                            Sql::both(
                                "INSERT INTO webhook_deliveries (event_id, endpoint, order_key, event_created_at, \
                                 status, next_attempt_at, created_at, updated_at) \
                                 VALUES ($1, $2, $3, $4, 'pending', $5, $5, $5)",
                            ),
                            args![&id, endpoint.as_str(), order_key.as_str(), event.created_at, now],
                        )
                        .await?;
                    }
                    Ok(Decision::Keep(Some(!endpoints.is_empty())))
                })
            })
            .await?;
        match stored {
            None => Ok(None),
            Some(any) => {
                self.events_stored(any);
                self.get_event(event_id).await
            }
        }
    }

    /// One event with its deliveries and their attempts.
    pub async fn get_event(&self, id: &str) -> Result<Option<Event>, LedgerError> {
        let Some(row) = self.db.fetch_optional(SELECT_EVENT, args![id]).await? else { return Ok(None) };
        let mut event = event_from_row(&row)?;
        let mut deliveries = self
            .db
            .fetch_all(SELECT_DELIVERIES, args![id])
            .await?
            .iter()
            .map(delivery_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        for row in self.db.fetch_all(SELECT_DELIVERY_ATTEMPTS, args![id]).await? {
            let delivery_id = row.int("delivery_id")?;
            if let Some(d) = deliveries.iter_mut().find(|d| d.id == delivery_id) {
                d.attempts.push(delivery_attempt_from_row(&row)?);
            }
        }
        event.deliveries = std::mem::take(&mut deliveries);
        Ok(Some(event))
    }

    /// Events matching `filter`, newest first (`created_at DESC, id DESC`), at most `limit`,
    /// after the event `starting_after` in that order ([`LedgerError::UnknownCursor`] if unknown).
    pub async fn list_events(
        &self,
        filter: &EventFilter,
        limit: u32,
        starting_after: Option<&str>,
    ) -> Result<EventPage, LedgerError> {
        if limit == 0 {
            return Err(LedgerError::InvalidInput("list limit must be at least 1".to_owned()));
        }
        let mut sql = String::from(LIST_EVENTS_PREFIX);
        let mut binds: Vec<Arg> = Vec::new();
        fn bind(binds: &mut Vec<Arg>, arg: Arg) -> String {
            binds.push(arg);
            format!("${}", binds.len())
        }
        if let Some(kind) = &filter.kind {
            let p = bind(&mut binds, kind.as_str().into());
            let _ = write!(sql, " AND e.type = {p}");
        }
        if let Some(id) = &filter.cancellation_id {
            let p = bind(&mut binds, id.as_str().into());
            let _ = write!(sql, " AND e.cancellation_id = {p}");
        }
        if let Some(status) = filter.delivery_status {
            let p = bind(&mut binds, status.as_str().into());
            let _ = write!(
                sql,
                " AND EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.status = {p})"
            );
        }
        if let Some(after) = starting_after {
            let row = self
                .db
                .fetch_optional(SELECT_EVENT_CREATED_AT, args![after])
                .await?
                .ok_or_else(|| LedgerError::UnknownCursor(after.to_owned()))?;
            let t = bind(&mut binds, row.time("created_at")?.into());
            let id = bind(&mut binds, after.into());
            let _ = write!(sql, " AND (e.created_at < {t} OR (e.created_at = {t} AND e.id < {id}))");
        }
        let p = bind(&mut binds, (i64::from(limit) + 1).into());
        let _ = write!(sql, "{LIST_EVENTS_ORDER}{p}");
        let rows = self.db.fetch_all(Sql::both(&sql), binds).await?;
        let mut events = rows.iter().map(event_from_row).collect::<Result<Vec<_>, _>>()?;
        let has_more = events.len() > limit as usize;
        events.truncate(limit as usize);
        Ok(EventPage { events, has_more })
    }

    /// Pending deliveries per endpoint, and how old the oldest one's event is.
    pub async fn pending_deliveries(&self) -> Result<Vec<PendingStat>, LedgerError> {
        self.db
            .fetch_all(PENDING_BY_ENDPOINT, args![])
            .await?
            .iter()
            .map(|row| {
                Ok(PendingStat {
                    endpoint: row.text("endpoint")?,
                    pending: u64::try_from(row.int("n")?).unwrap_or(0),
                    oldest: row.opt_time("oldest")?,
                })
            })
            .collect()
    }
}

fn event_from_row(row: &Row) -> Result<Event, LedgerError> {
    Ok(Event {
        id: row.text("id")?,
        kind: row.text("type")?,
        cancellation_id: row.opt_text("cancellation_id")?,
        batch_id: row.opt_text("batch_id")?,
        payload: row.text("payload")?,
        created_at: row.time("created_at")?,
        deliveries: Vec::new(),
    })
}

fn delivery_from_row(row: &Row) -> Result<Delivery, LedgerError> {
    let status = row.text("status")?;
    Ok(Delivery {
        id: row.int("id")?,
        endpoint: row.text("endpoint")?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| LedgerError::Corrupt(format!("delivery status {status:?}")))?,
        endpoint_disabled: row.bool("endpoint_disabled")?,
        next_attempt_at: row.opt_time("next_attempt_at")?,
        created_at: row.time("created_at")?,
        attempts: Vec::new(),
    })
}

fn delivery_attempt_from_row(row: &Row) -> Result<DeliveryAttempt, LedgerError> {
    Ok(DeliveryAttempt {
        n: to_u32("n", row.int("n")?)?,
        at: row.time("at")?,
        http_status: row.opt_int("http_status")?.map(|v| to_u16("http_status", v)).transpose()?,
        latency_ms: u64::try_from(row.int("latency_ms")?).unwrap_or(0),
        error: row.opt_text("error")?,
        answer: row.opt_text("answer")?,
    })
}
