//! The outbox's own operations (SPEC §8): endpoints known to the ledger, claiming and settling
//! deliveries, redelivery, and reading events with their deliveries.

use std::fmt::Write as _;
use std::time::Duration;

use time::OffsetDateTime;

use crate::Ledger;
use crate::attempts::lease_until;
use crate::db::{Arg, Decision, Row, Sql, args, normalize_time};
use crate::error::LedgerError;
use crate::events::{
    ClaimedDelivery, Delivery, DeliveryAttempt, DeliveryOutcome, DeliveryStatus, Event, EventFilter, EventPage,
    PendingStat,
};
use crate::rows::{to_u16, to_u32};

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

impl Ledger {
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
