//! Trip cancellation batches (SPEC §10): a batch and its items, stored so that a crash loses
//! neither. A batch stores no status of its own: its status follows from its items' records on
//! every read (see `migrations/*/0003_batches.sql`), so it can never be stale.
//!
//! The order of writes: [`Ledger::begin_batch`] stores the batch and every item, each naming the
//! cancellation id it is about to be recorded under, BEFORE any item is recorded or sent. Each
//! item's record is then begun like a single cancel (with `batch_id`), and
//! [`Ledger::seal_batch`] stores, in one transaction, what the begins found (an item shed, or
//! answered by an existing record) and marks the batch sealed. An item whose record was never
//! created (the process died between the two writes) is reported as such on read, once the
//! creating request can no longer create it (its `recording_until` passed).

use std::sync::Arc;

use serde_json::Value;
use time::OffsetDateTime;

use crate::db::{Decision, Row, args, normalize_time};
use crate::error::LedgerError;
use crate::rows::{record_from_row, to_u16, to_u32};
use crate::types::Record;
use crate::{Ledger, sql};

/// The most items a batch may have (SPEC §10).
pub const MAX_BATCH_ITEMS: usize = 50;

/// A batch about to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBatch {
    pub id: String,
    pub client: String,
    pub idempotency_key: Option<String>,
    /// A digest of the canonical batch body: the same key with another is [`BatchBegin::KeyReused`].
    pub fingerprint: String,
    pub metadata: Value,
    /// For each item, in order, the id its cancellation will be recorded under.
    pub item_ids: Vec<String>,
    /// The process recording it.
    pub owner: String,
    pub now: OffsetDateTime,
    /// Until when the creating request may still record items (a replay is `409` until then,
    /// unless the batch is sealed first).
    pub recording_until: OffsetDateTime,
}

/// A batch as stored, with its items.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub id: String,
    pub client: String,
    pub idempotency_key: Option<String>,
    pub fingerprint: String,
    pub metadata: Value,
    pub owner: String,
    /// `None` once every item is recorded.
    pub recording_until: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub items: Vec<BatchItem>,
}

impl Batch {
    /// Whether the creating request may still be recording items at `now`.
    pub fn is_recording(&self, now: OffsetDateTime) -> bool {
        self.recording_until.is_some_and(|until| until > now)
    }
}

/// One item of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchItem {
    /// 0-based, in the order of the request.
    pub index: u32,
    /// The cancellation the item names (to be recorded, or recorded).
    pub cancellation_id: Option<String>,
    /// That cancellation, when it exists.
    pub record: Option<Record>,
    /// The item's own problem (SPEC §3) when it was shed and never recorded.
    pub error: Option<Value>,
    pub http_status: Option<u16>,
}

/// What became of an item once its record was begun, stored by [`Ledger::seal_batch`].
#[derive(Debug, Clone, PartialEq)]
pub enum ItemEnd {
    /// Answered by this record (an existing one: a reference already cancelled, in review or
    /// in flight).
    Cancellation(String),
    /// Shed before anything was recorded: the item's problem and its HTTP status.
    Refused { error: Value, http_status: u16 },
}

/// What [`Ledger::begin_batch`] decided. Only `Fresh` stored anything.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchBegin {
    Fresh(Batch),
    /// Same client + key + fingerprint, not being recorded any more: answer with it, replayed.
    Replay(Batch),
    /// Same client + key + fingerprint, still being recorded: `409 request_in_progress`.
    KeyInFlight,
    /// Same client + key, another body: `422 idempotency_key_reused`.
    KeyReused,
}

impl Ledger {
    /// Records a batch and its items atomically (with its idempotency key, if any), or stores
    /// nothing and says why.
    pub async fn begin_batch(&self, new: NewBatch) -> Result<BatchBegin, LedgerError> {
        if new.item_ids.is_empty() || new.item_ids.len() > MAX_BATCH_ITEMS {
            return Err(LedgerError::InvalidInput(format!("a batch has 1 to {MAX_BATCH_ITEMS} items")));
        }
        if [&new.id, &new.client, &new.fingerprint, &new.owner].iter().any(|v| v.is_empty())
            || new.idempotency_key.as_deref() == Some("")
            || new.item_ids.iter().any(String::is_empty)
        {
            return Err(LedgerError::InvalidInput("a batch's ids, client, fingerprint and key are not empty".into()));
        }
        let input = Arc::new(new);
        let write = input.clone();
        let inserted = self
            .db
            .write(move |mut tx| {
                Box::pin(async move {
                    let new = &*write;
                    let now = normalize_time(new.now);
                    let row = tx
                        .fetch_optional(
                            sql::INSERT_BATCH,
                            args![
                                &new.id,
                                &new.client,
                                new.idempotency_key.as_deref(),
                                &new.fingerprint,
                                new.metadata.clone(),
                                &new.owner,
                                normalize_time(new.recording_until),
                                now,
                            ],
                        )
                        .await?;
                    if row.is_none() {
                        return Ok(Decision::Undo(false));
                    }
                    for (index, id) in new.item_ids.iter().enumerate() {
                        let index = i64::try_from(index).unwrap_or(i64::MAX);
                        tx.execute(sql::INSERT_BATCH_ITEM, args![&new.id, index, id]).await?;
                    }
                    Ok(Decision::Keep(true))
                })
            })
            .await?;
        if inserted {
            let batch = self.get_batch(&input.id).await?;
            return batch
                .map(BatchBegin::Fresh)
                .ok_or_else(|| LedgerError::Corrupt(format!("batch {} vanished after it was recorded", input.id)));
        }
        // The key is taken: by this body or another.
        let key = input.idempotency_key.as_deref();
        let Some(row) = self.db.fetch_optional(sql::SELECT_BATCH_BY_KEY, args![&input.client, key]).await? else {
            return Err(LedgerError::Contention { operation: "begin_batch" });
        };
        let earlier = batch_from_row(&row)?;
        if earlier.fingerprint != input.fingerprint {
            return Ok(BatchBegin::KeyReused);
        }
        if earlier.is_recording(input.now) {
            return Ok(BatchBegin::KeyInFlight);
        }
        let batch = self.get_batch(&earlier.id).await?;
        batch.map(BatchBegin::Replay).ok_or_else(|| LedgerError::Corrupt(format!("batch {} vanished", earlier.id)))
    }

    /// Stores what became of the items that were not recorded under their planned id, and
    /// seals the batch: one transaction. By the batch's owner only; sealing twice is a no-op.
    pub async fn seal_batch(
        &self,
        id: &str,
        owner: &str,
        ends: Vec<(u32, ItemEnd)>,
        now: OffsetDateTime,
    ) -> Result<(), LedgerError> {
        let (id, owner, now) = (id.to_owned(), owner.to_owned(), normalize_time(now));
        let rule = self.events.clone();
        let stored = self
            .db
            .write(move |mut tx| {
                Box::pin(async move {
                    for (index, end) in ends {
                        let index = i64::from(index);
                        match end {
                            ItemEnd::Cancellation(record) => {
                                tx.execute(sql::SET_ITEM_CANCELLATION, args![&id, index, record]).await?;
                            }
                            ItemEnd::Refused { error, http_status } => {
                                let status = i64::from(http_status);
                                tx.execute(sql::SET_ITEM_ERROR, args![&id, index, error, status]).await?;
                            }
                        }
                    }
                    let sealed = tx.execute(sql::SEAL_BATCH, args![&id, &owner, now]).await? == 1;
                    // Every item may be final already: the completion event, in this transaction.
                    let stored = match &rule {
                        Some(rule) if sealed => crate::events::batch_completed(&mut tx, rule, &id).await?,
                        _ => false,
                    };
                    Ok(Decision::Keep(stored))
                })
            })
            .await?;
        self.events_stored(stored);
        Ok(())
    }

    /// A batch with its items, each with its record as stored now.
    pub async fn get_batch(&self, id: &str) -> Result<Option<Batch>, LedgerError> {
        let Some(row) = self.db.fetch_optional(sql::SELECT_BATCH, args![id]).await? else {
            return Ok(None);
        };
        let mut batch = batch_from_row(&row)?;
        let rows = self.db.fetch_all(sql::SELECT_BATCH_ITEMS, args![id]).await?;
        batch.items = rows.iter().map(item_from_row).collect::<Result<_, _>>()?;
        Ok(Some(batch))
    }
}

pub(crate) fn batch_from_row(row: &Row) -> Result<Batch, LedgerError> {
    Ok(Batch {
        id: row.text("id")?,
        client: row.text("client")?,
        idempotency_key: row.opt_text("idempotency_key")?,
        fingerprint: row.text("fingerprint")?,
        metadata: row.json("metadata")?,
        owner: row.text("owner")?,
        recording_until: row.opt_time("recording_until")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        items: Vec::new(),
    })
}

pub(crate) fn item_from_row(row: &Row) -> Result<BatchItem, LedgerError> {
    // The LEFT JOIN gives NULL record columns when the item's record does not exist.
    let record = match row.opt_text("id")? {
        Some(_) => Some(record_from_row(row)?),
        None => None,
    };
    Ok(BatchItem {
        index: to_u32("idx", row.int("idx")?)?,
        cancellation_id: row.opt_text("item_cancellation_id")?,
        record,
        error: row.opt_json("item_error")?,
        http_status: row.opt_int("item_http_status")?.map(|v| to_u16("item_http_status", v)).transpose()?,
    })
}
