//! Retention (`ledger.retain_days`): final records older than a cutoff are deleted with their
//! attempts, idempotency keys, events and deliveries, a few hundred per transaction; and the
//! ledger's size on disk for the `cancelgate_ledger_bytes` gauge.
//!
//! What is purged, and what never is:
//! - a record `cancelled` or `failed` (final: it never changes again) created AND last changed
//!   before the cutoff, none of whose events still has a `pending` delivery (a delivery still to
//!   be sent keeps its event, and the event its record);
//! - never a record `processing` or `needs_review`, whatever its age;
//! - never a record of a batch (created for one, or answering one of its items): a batch is
//!   read from its items' records, so they are kept as long as the batch is, and batches are
//!   not purged (yet): a batch with a live item must keep it, and one whose items all ended
//!   keeps answering its reads and its key's replays.
//!
//! Each batch of deletions is found by a read (on SQLite off the writer, on a reader), then
//! deleted in one short write that checks every condition again for exactly those records: the
//! writer is held for one batch's deletions only, never for the search.

use time::OffsetDateTime;
use time::macros::datetime;

use crate::Ledger;
use crate::db::{Arg, Decision, Sql, args, normalize_time};
use crate::error::LedgerError;
use crate::timer::Timer;

/// Records deleted per transaction at most: bounds how long one purge write holds the writer
/// (measured, 30,000 records purged under 200 writes/s: 500 a batch gave writes a p99 of 336 ms,
/// 100 a batch 39 ms).
pub const PURGE_BATCH: u32 = 100;

/// What makes a record purgeable (the record is `c`, `$1` the cutoff).
macro_rules! purgeable {
    () => {
        "c.status IN ('cancelled', 'failed') AND c.created_at < $1 AND c.updated_at < $1 AND c.batch_id IS NULL \
         AND NOT EXISTS (SELECT 1 FROM cancellation_batch_items i WHERE i.cancellation_id = c.id) \
         AND NOT EXISTS (SELECT 1 FROM webhook_events e JOIN webhook_deliveries d ON d.event_id = e.id \
         WHERE e.cancellation_id = c.id AND d.status = 'pending')"
    };
}

/// The next purgeable records after the position (`$2` created_at, `$3` id), oldest first. A
/// row value, so the scan starts at the position in `cancellations_by_created` (an `OR` of the two
/// comparisons made every batch scan from the oldest record again).
const CANDIDATES: Sql = Sql::both(concat!(
    "SELECT c.id, c.created_at FROM cancellations c WHERE c.created_at < $1 AND (c.created_at, c.id) > ($2, $3) AND ",
    purgeable!(),
    " ORDER BY c.created_at, c.id LIMIT $4"
));

/// The records of `$2` (a JSON array of ids) that are still purgeable, inside the write.
const RECHECK: Sql = Sql {
    sqlite: concat!(
        "SELECT c.id FROM cancellations c WHERE c.id IN (SELECT value FROM json_each($2)) AND ",
        purgeable!()
    ),
    pg: concat!(
        "SELECT c.id FROM cancellations c WHERE c.id IN (SELECT jsonb_array_elements_text($2)) AND ",
        purgeable!()
    ),
};

/// `$1`: a JSON array of the ids being purged.
macro_rules! ids {
    (sqlite) => {
        "(SELECT value FROM json_each($1))"
    };
    (pg) => {
        "(SELECT jsonb_array_elements_text($1))"
    };
}

/// One deletion, spelled for both backends around the ids.
macro_rules! delete {
    ($before:literal, $after:literal) => {
        Sql { sqlite: concat!($before, ids!(sqlite), $after), pg: concat!($before, ids!(pg), $after) }
    };
}

/// The deletions of one batch, children first (the foreign keys are checked as they go).
const DELETES: [Sql<'static>; 6] = [
    delete!(
        "DELETE FROM webhook_delivery_attempts WHERE delivery_id IN (SELECT d.id FROM webhook_deliveries d \
         JOIN webhook_events e ON e.id = d.event_id WHERE e.cancellation_id IN ",
        ")"
    ),
    delete!(
        "DELETE FROM webhook_deliveries WHERE event_id IN (SELECT id FROM webhook_events WHERE cancellation_id IN ",
        ")"
    ),
    delete!("DELETE FROM webhook_events WHERE cancellation_id IN ", ""),
    delete!("DELETE FROM cancellation_attempts WHERE cancellation_id IN ", ""),
    // By the key's primary key (the record names its key): no index on the key's record needed.
    // Only a key still naming the record: a key swept and taken again names a newer record.
    Sql {
        sqlite: concat!(
            "DELETE FROM idempotency_keys WHERE (client, idempotency_key) IN (SELECT client, idempotency_key \
             FROM cancellations WHERE idempotency_key IS NOT NULL AND id IN ",
            ids!(sqlite),
            ") AND cancellation_id IN ",
            ids!(sqlite)
        ),
        pg: concat!(
            "DELETE FROM idempotency_keys WHERE (client, idempotency_key) IN (SELECT client, idempotency_key \
             FROM cancellations WHERE idempotency_key IS NOT NULL AND id IN ",
            ids!(pg),
            ") AND cancellation_id IN ",
            ids!(pg)
        ),
    },
    delete!("DELETE FROM cancellations WHERE id IN ", ""),
];

const DATABASE_SIZE: Sql =
    Sql { sqlite: "SELECT 0 AS bytes", pg: "SELECT pg_database_size(current_database()) AS bytes" };

impl Ledger {
    /// Deletes the final records older than `older_than` (see the module docs for what is kept),
    /// with their attempts, idempotency keys, events, deliveries and delivery attempts, at most
    /// `batch` records per transaction (1 at least; [`PURGE_BATCH`] is a good size). Returns how
    /// many records were deleted.
    pub async fn purge_final_before(&self, older_than: OffsetDateTime, batch: u32) -> Result<u64, LedgerError> {
        let _timer = Timer::start("purge_final_before");
        let cutoff = normalize_time(older_than);
        let batch = i64::from(batch.max(1));
        let (mut after_t, mut after_id) = (datetime!(0001-01-01 0:00 UTC), String::new());
        let mut total = 0;
        loop {
            let rows = self.db.fetch_all(CANDIDATES, args![cutoff, after_t, after_id.as_str(), batch]).await?;
            let Some(last) = rows.last() else { return Ok(total) };
            (after_t, after_id) = (last.time("created_at")?, last.text("id")?);
            let ids =
                rows.iter().map(|r| r.text("id").map(serde_json::Value::String)).collect::<Result<Vec<_>, _>>()?;
            let ids = serde_json::Value::Array(ids);
            total += self
                .db
                // A batch of deletes may take a while: never on the caller's async worker.
                .write_queued(move |mut tx| {
                    Box::pin(async move {
                        let still = tx.fetch_all(RECHECK, args![cutoff, ids]).await?;
                        if still.is_empty() {
                            return Ok(Decision::Undo(0));
                        }
                        let ids = still
                            .iter()
                            .map(|r| r.text("id").map(serde_json::Value::String))
                            .collect::<Result<Vec<_>, _>>()?;
                        let ids = Arg::from(serde_json::Value::Array(ids));
                        let mut deleted = 0;
                        for delete in DELETES {
                            deleted = tx.execute(delete, vec![ids.clone()]).await?;
                        }
                        Ok(Decision::Keep(deleted))
                    })
                })
                .await?;
            if rows.len() < batch as usize {
                return Ok(total);
            }
        }
    }

    /// The ledger's size on disk in bytes: on SQLite the database file and its log (WAL), on
    /// PostgreSQL the database's (`pg_database_size`).
    pub async fn size_bytes(&self) -> Result<u64, LedgerError> {
        let _timer = Timer::start("size_bytes");
        if let Some(bytes) = self.db.sqlite_file_bytes() {
            return bytes;
        }
        let row = self.db.fetch_one(DATABASE_SIZE, args![]).await?;
        Ok(u64::try_from(row.int("bytes")?).unwrap_or(0))
    }
}
