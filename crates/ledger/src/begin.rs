//! The begin decision: a new request is a fresh record, a replay of a key, or answered by the
//! live record of its reference (see [`Ledger::begin`]).

use std::sync::Arc;

use crate::db::{Decision, Row, Tx, args, normalize_time};
use crate::error::{self, LedgerError};
use crate::rows::{Written, record_from_row, record_from_written_row};
use crate::timer::Timer;
use crate::types::{Begin, NewCancellation, Record, Status};
use crate::{Ledger, sql};

/// How often [`Ledger::begin`] starts over when a racing transaction changed what it read
/// (a key swept, a live record failed, a PostgreSQL serialization failure) before giving up
/// with [`LedgerError::Contention`]. Each retry sees the other transaction's result, so more
/// than one is rare.
const BEGIN_TRIES: usize = 5;

impl Ledger {
    /// Records a new request, atomically: reserves its idempotency key (if any) AND inserts a
    /// `processing` record leased to `new.owner` until `new.lease_until`, or stores nothing and
    /// says why (see [`Begin`]). Never an error because of a concurrent request: racing begins
    /// with one key or one reference produce exactly one [`Begin::Fresh`].
    pub async fn begin(&self, new: NewCancellation) -> Result<Begin, LedgerError> {
        let _timer = Timer::start("begin");
        self.begin_inner(new, false).await
    }

    /// [`Ledger::begin`] and, for a fresh record, [`Ledger::start_attempt`] of its first attempt,
    /// in one transaction: the record is born with attempt 1 started (`attempts = 1`, ambiguous
    /// until the attempt is finished). For the caller about to send at once, it saves a commit.
    pub async fn begin_with_attempt(&self, new: NewCancellation) -> Result<Begin, LedgerError> {
        let _timer = Timer::start("begin_with_attempt");
        self.begin_inner(new, true).await
    }

    async fn begin_inner(&self, new: NewCancellation, start_attempt: bool) -> Result<Begin, LedgerError> {
        validate_new(&new)?;
        // Replays are answered from a read, without a turn at the writer: a key seen before or a
        // live record of the reference. What the read finds was true when it was read, and final
        // records never change; if it finds nothing, the write below decides, race-free.
        if let Some(row) = self
            .db
            .fetch_optional(
                sql::SELECT_EXISTING,
                args![&new.client, new.idempotency_key.as_deref(), &new.provider, &new.account, &new.reference],
            )
            .await?
            && let Some(found) = existing_answer(&row, &new.fingerprint)?
        {
            return Ok(found);
        }
        let new = Arc::new(new);
        for attempt in 1..=BEGIN_TRIES {
            let input = new.clone();
            let tried = self
                .db
                .write(move |mut tx| Box::pin(async move { try_begin(&mut tx, &input, start_attempt).await }))
                .await;
            match tried {
                Ok(Some(begin)) => return Ok(begin),
                Ok(None) => {
                    tracing::debug!(id = %new.id, attempt, "ledger begin raced a concurrent change; retrying");
                }
                Err(LedgerError::Database(e)) if error::is_retryable_conflict(&e) => {
                    tracing::debug!(id = %new.id, attempt, error = %e, "ledger begin conflicted; retrying");
                }
                Err(e) => return Err(e),
            }
        }
        tracing::warn!(id = %new.id, "ledger begin stayed contended");
        Err(LedgerError::Contention { operation: "begin" })
    }
}

/// One pass of [`Ledger::begin`]'s write; `None` when what it read changed under it (start over).
async fn try_begin(
    tx: &mut Tx<'_>,
    new: &NewCancellation,
    start_attempt: bool,
) -> Result<Decision<Option<Begin>>, LedgerError> {
    let now = normalize_time(new.now);
    if let Some(key) = &new.idempotency_key {
        // Key first: on PostgreSQL this waits for a racing transaction holding the same key.
        if tx.execute(sql::INSERT_KEY, args![&new.client, key, &new.id, now]).await? == 0 {
            let mut earlier = None;
            if let Some(row) = tx.fetch_optional(sql::SELECT_KEY, args![&new.client, key]).await? {
                let id = row.text("cancellation_id")?;
                if let Some(row) = tx.fetch_optional(sql::SELECT_RECORD, args![id]).await? {
                    earlier = Some(record_from_row(&row)?);
                }
            }
            // No row: the key was swept between the two statements.
            return Ok(Decision::Undo(earlier.map(|earlier| keyed_answer(earlier, &new.fingerprint))));
        }
    }
    let attempts = i64::from(start_attempt);
    let inserted = tx
        .fetch_optional(
            sql::INSERT_RECORD,
            args![
                &new.id,
                &new.client,
                &new.provider,
                &new.account,
                &new.reference,
                new.idempotency_key.as_deref(),
                &new.fingerprint,
                new.request.clone(),
                new.metadata.clone(),
                &new.owner,
                normalize_time(new.lease_until),
                now,
                attempts,
                start_attempt,
                new.batch_id.as_deref(),
            ],
        )
        .await?;
    if let Some(row) = inserted {
        let written =
            Written { request: Some(new.request.clone()), metadata: Some(new.metadata.clone()), ..Written::default() };
        let record = record_from_written_row(&row, written)?;
        if start_attempt {
            tx.execute(sql::INSERT_ATTEMPT, args![&new.id, attempts, &new.owner, now]).await?;
        }
        return Ok(Decision::Keep(Some(Begin::Fresh(record))));
    }
    // The reference has a live record: answer with it, and undo so the key is not kept.
    let live =
        tx.fetch_optional(sql::SELECT_LIVE_BY_REFERENCE, args![&new.provider, &new.account, &new.reference]).await?;
    // No row: the live record failed between the two statements.
    let answer = match live {
        Some(row) => reference_answer(record_from_row(&row)?),
        None => None,
    };
    Ok(Decision::Undo(answer))
}

/// What a key seen before answers.
fn keyed_answer(earlier: Record, fingerprint: &str) -> Begin {
    if earlier.fingerprint != fingerprint {
        Begin::KeyReused
    } else if earlier.status == Status::Processing {
        Begin::KeyInFlight
    } else {
        Begin::Replay(earlier)
    }
}

/// What a live record of the reference answers (`None` for a failed one: not live).
fn reference_answer(live: Record) -> Option<Begin> {
    Some(match live.status {
        Status::Processing => Begin::ReferenceBusy(live),
        Status::NeedsReview => Begin::ReferenceNeedsReview(live),
        Status::Cancelled => Begin::ReferenceCancelled(live),
        Status::Failed => return None,
    })
}

/// The answer a row of [`sql::SELECT_EXISTING`] gives, if any.
fn existing_answer(row: &Row, fingerprint: &str) -> Result<Option<Begin>, LedgerError> {
    let record = record_from_row(row)?;
    Ok(match row.text("found_by")?.as_str() {
        "key" => Some(keyed_answer(record, fingerprint)),
        _ => reference_answer(record),
    })
}

fn validate_new(new: &NewCancellation) -> Result<(), LedgerError> {
    let required = [
        ("id", new.id.as_str()),
        ("client", &new.client),
        ("provider", &new.provider),
        ("account", &new.account),
        ("reference", &new.reference),
        ("fingerprint", &new.fingerprint),
        ("owner", &new.owner),
    ];
    if let Some((name, _)) = required.iter().find(|(_, v)| v.is_empty()) {
        return Err(LedgerError::InvalidInput(format!("{name} must not be empty")));
    }
    if new.idempotency_key.as_deref() == Some("") {
        return Err(LedgerError::InvalidInput("an idempotency key must not be empty".to_owned()));
    }
    Ok(())
}
