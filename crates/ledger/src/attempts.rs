//! Attempts and leases: an attempt recorded before its request leaves, its answer, the record's
//! end, and the leases that make one driver per record.

use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;

use crate::db::{Decision, Tx, args, normalize_time};
use crate::error::LedgerError;
use crate::rows::{Written, record_from_row, record_from_written_row, records_by_age, to_u32};
use crate::timer::Timer;
use crate::types::{AttemptNo, AttemptResult, Backend, Final, Record, Status};
use crate::{Ledger, SENT, events, sql};

impl Ledger {
    /// Records an attempt BEFORE its request is sent: `attempts += 1`, an attempt row `sent`,
    /// and the record marked ambiguous until the attempt is finished, so a crash while the
    /// request is in flight is read as "it may have reached the provider". Only the holder of
    /// an unexpired lease may start one ([`LedgerError::LeaseLost`] otherwise), so two replicas
    /// never send for one record.
    pub async fn start_attempt(&self, id: &str, owner: &str, now: OffsetDateTime) -> Result<AttemptNo, LedgerError> {
        let _timer = Timer::start("start_attempt");
        let (id, owner, now) = (id.to_owned(), owner.to_owned(), normalize_time(now));
        self.db
            .write(move |mut tx| {
                Box::pin(async move {
                    let Some(row) = tx.fetch_optional(sql::START_ATTEMPT, args![&id, &owner, now]).await? else {
                        return Err(not_held(&mut tx, &id).await);
                    };
                    let n = row.int("attempts")?;
                    tx.execute(sql::INSERT_ATTEMPT, args![&id, n, &owner, now]).await?;
                    to_u32("attempts", n).map(Decision::Keep)
                })
            })
            .await
    }

    /// Records how attempt `n` ended. Allowed even after the lease was lost: it is a fact about
    /// what went over the wire. Outcome [`AMBIGUOUS`] keeps the record ambiguous for good; any
    /// other outcome clears the mark this attempt set (earlier ambiguous attempts still count).
    /// Repeating the call with the same outcome is a no-op; another outcome for a finished
    /// attempt is a [`LedgerError::Conflict`].
    pub async fn finish_attempt(&self, id: &str, n: AttemptNo, result: AttemptResult) -> Result<(), LedgerError> {
        let _timer = Timer::start("finish_attempt");
        validate_attempt(&result)?;
        let id = id.to_owned();
        self.db
            .write(move |mut tx| {
                Box::pin(async move {
                    Ok(match finish_attempt_in(&mut tx, &id, n, result).await? {
                        true => Decision::Keep(()),
                        false => Decision::Undo(()),
                    })
                })
            })
            .await
    }

    /// Ends a record: `processing → cancelled | failed | needs_review`, by the lease holder only
    /// (an expired but untaken lease still counts: nobody else drives the record). Clears the
    /// lease; `lease_owner` stays as who finalized it. Repeating the call (the same owner, the
    /// same status, e.g. after a lost commit acknowledgement) returns the stored record;
    /// anything else on a final record is [`LedgerError::LeaseLost`].
    pub async fn finish(&self, id: &str, owner: &str, fin: Final) -> Result<Record, LedgerError> {
        let _timer = Timer::start("finish");
        validate_final(&fin)?;
        let (id, owner) = (id.to_owned(), owner.to_owned());
        let rule = self.events.clone();
        let (record, stored) = self
            .db
            .write(move |mut tx| {
                Box::pin(async move {
                    let (record, changed) = finish_in(&mut tx, &id, &owner, fin).await?;
                    // The record's events in the transaction that ends it (a repeat emits nothing).
                    let stored = changed && events::after_change(&mut tx, rule.as_ref(), &record).await?;
                    Ok(Decision::Keep((record, stored)))
                })
            })
            .await?;
        self.events_stored(stored);
        Ok(record)
    }

    /// [`Ledger::finish_attempt`] of attempt `n` and [`Ledger::finish`] of the record, in one
    /// transaction: the answer that settles a record and the record's end are stored together
    /// (one commit instead of two).
    pub async fn finish_with_attempt(
        &self,
        id: &str,
        owner: &str,
        n: AttemptNo,
        attempt: AttemptResult,
        fin: Final,
    ) -> Result<Record, LedgerError> {
        let _timer = Timer::start("finish_with_attempt");
        validate_attempt(&attempt)?;
        validate_final(&fin)?;
        let (id, owner) = (id.to_owned(), owner.to_owned());
        let rule = self.events.clone();
        let (record, stored) = self
            .db
            .write(move |mut tx| {
                Box::pin(async move {
                    finish_attempt_in(&mut tx, &id, n, attempt).await?;
                    // The attempt's answer is a fact about the wire: kept even when the record
                    // is no longer this owner's to end.
                    Ok(Decision::Keep(match finish_in(&mut tx, &id, &owner, fin).await {
                        Err(e @ (LedgerError::LeaseLost { .. } | LedgerError::NotFound { .. })) => (Err(e), false),
                        Err(e) => return Err(e),
                        Ok((record, changed)) => {
                            let stored = changed && events::after_change(&mut tx, rule.as_ref(), &record).await?;
                            (Ok(record), stored)
                        }
                    }))
                })
            })
            .await?;
        self.events_stored(stored);
        record
    }

    /// Extends the lease while an attempt is slow. `false` when `owner` no longer holds it (taken
    /// over, or final): stop driving the record.
    pub async fn renew_lease(&self, id: &str, owner: &str, until: OffsetDateTime) -> Result<bool, LedgerError> {
        let _timer = Timer::start("renew_lease");
        Ok(self.db.write_execute(sql::RENEW_LEASE, args![id, owner, normalize_time(until)]).await? == 1)
    }

    /// Gives the record up while keeping it `processing`: the background driver (of any
    /// replica) claims it once `next_attempt_at` has passed. Used when the synchronous path
    /// answers `202` and when a retry is scheduled for later. `false` when `owner` did not hold
    /// the lease.
    pub async fn release(&self, id: &str, owner: &str, next_attempt_at: OffsetDateTime) -> Result<bool, LedgerError> {
        let _timer = Timer::start("release");
        Ok(self.db.write_execute(sql::RELEASE, args![id, owner, normalize_time(next_attempt_at)]).await? == 1)
    }

    /// Takes over up to `limit` processing records whose lease expired or was released and is
    /// due (`lease_until <= now`, or absent), oldest first, leasing them to `owner` until
    /// `now + lease`. Concurrent claimers (of any replica) never get the same record. A claimed
    /// record may carry an unfinished attempt: check [`Record::ambiguous`].
    pub async fn claim_due(
        &self,
        owner: &str,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Record>, LedgerError> {
        let _timer = Timer::start("claim_due");
        if limit == 0 {
            return Ok(Vec::new());
        }
        let until = lease_until(now, lease)?;
        let rows =
            self.db.write_all(sql::CLAIM_DUE, args![owner, normalize_time(now), until, i64::from(limit)]).await?;
        records_by_age(rows)
    }

    /// SQLite start-up: takes over EVERY processing record, leases unexpired included. Correct
    /// only because one process owns the SQLite file, so anything processing was left by a dead
    /// process and is resumed at once (SPEC §5). Refused on PostgreSQL
    /// ([`LedgerError::Unsupported`]), where live replicas hold leases: use
    /// [`Ledger::claim_due`], which resumes them once their lease expires.
    pub async fn claim_all_processing(
        &self,
        owner: &str,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<Vec<Record>, LedgerError> {
        let _timer = Timer::start("claim_all_processing");
        if self.backend != Backend::Sqlite {
            return Err(LedgerError::Unsupported(
                "claim_all_processing is for SQLite, where one process owns the ledger; use claim_due on PostgreSQL",
            ));
        }
        let until = lease_until(now, lease)?;
        let rows = self.db.write_all(sql::CLAIM_ALL_PROCESSING, args![owner, until]).await?;
        records_by_age(rows)
    }
}

/// Finishes attempt `n` inside a write: `true` when it changed it, `false` when it was already
/// finished the same way.
async fn finish_attempt_in(
    tx: &mut Tx<'_>,
    id: &str,
    n: AttemptNo,
    result: AttemptResult,
) -> Result<bool, LedgerError> {
    let outcome = result.outcome.clone();
    let changed = tx
        .execute(
            sql::FINISH_ATTEMPT,
            args![
                id,
                i64::from(n),
                normalize_time(result.finished_at),
                i64::try_from(result.latency_ms).unwrap_or(i64::MAX),
                &result.outcome,
                result.http_status.map(i64::from),
                result.body,
                result.error.as_deref(),
            ],
        )
        .await?;
    if changed == 0 {
        return match tx.fetch_optional(sql::ATTEMPT_EXISTS, args![id, i64::from(n)]).await? {
            None => Err(LedgerError::NotFound { id: format!("{id} (attempt {n})") }),
            Some(row) if row.text("outcome")? == outcome => Ok(false),
            Some(row) => Err(LedgerError::Conflict {
                id: id.to_owned(),
                detail: format!("attempt {n} already finished as {:?}", row.text("outcome")?),
            }),
        };
    }
    tx.execute(sql::REFRESH_AMBIGUOUS, args![id]).await?;
    Ok(true)
}

/// Ends the record inside a write (see [`Ledger::finish`]); `true` when this call ended it,
/// `false` for a repeat that found it ended so already.
async fn finish_in(tx: &mut Tx<'_>, id: &str, owner: &str, fin: Final) -> Result<(Record, bool), LedgerError> {
    let status = Status::from(fin.status);
    let written = Written {
        error: Some(fin.error.clone().unwrap_or(Value::Null)),
        upstream: Some(fin.upstream.clone().filter(|u| !u.is_null())),
        ..Written::default()
    };
    let row = tx
        .fetch_optional(
            sql::FINISH,
            args![
                id,
                owner,
                status.as_str(),
                fin.cancelled_at.map(normalize_time),
                fin.error,
                fin.upstream,
                i64::from(fin.http_status),
                normalize_time(fin.now),
                fin.recheck_at.map(normalize_time),
            ],
        )
        .await?;
    if let Some(row) = row {
        return Ok((record_from_written_row(&row, written)?, true));
    }
    match tx.fetch_optional(sql::SELECT_RECORD, args![id]).await? {
        None => Err(LedgerError::NotFound { id: id.to_owned() }),
        Some(row) => {
            let r = record_from_row(&row)?;
            if r.status == status && r.lease_owner.as_deref() == Some(owner) {
                Ok((r, false))
            } else {
                Err(LedgerError::LeaseLost { id: id.to_owned() })
            }
        }
    }
}

/// Why a lease-guarded update changed nothing.
async fn not_held(tx: &mut Tx<'_>, id: &str) -> LedgerError {
    match tx.fetch_optional(sql::SELECT_RECORD, args![id]).await {
        Ok(None) => LedgerError::NotFound { id: id.to_owned() },
        Ok(Some(_)) => LedgerError::LeaseLost { id: id.to_owned() },
        Err(e) => e,
    }
}

fn validate_attempt(result: &AttemptResult) -> Result<(), LedgerError> {
    if result.outcome.is_empty() || result.outcome == SENT {
        return Err(LedgerError::InvalidInput(format!("attempt outcome {:?} is reserved", result.outcome)));
    }
    Ok(())
}

fn validate_final(fin: &Final) -> Result<(), LedgerError> {
    let status = Status::from(fin.status);
    match (status, fin.cancelled_at) {
        (Status::Cancelled, None) => {
            return Err(LedgerError::InvalidInput("a cancelled record needs cancelled_at".to_owned()));
        }
        (Status::Failed | Status::NeedsReview, Some(_)) => {
            return Err(LedgerError::InvalidInput(format!("a {status} record has no cancelled_at")));
        }
        _ => {}
    }
    if fin.recheck_at.is_some() && status != Status::NeedsReview {
        return Err(LedgerError::InvalidInput(format!("a {status} record is not re-checked")));
    }
    if !(100..=599).contains(&fin.http_status) {
        return Err(LedgerError::InvalidInput(format!("http_status {} is not an HTTP status", fin.http_status)));
    }
    Ok(())
}

pub(crate) fn lease_until(now: OffsetDateTime, lease: Duration) -> Result<OffsetDateTime, LedgerError> {
    time::Duration::try_from(lease)
        .ok()
        .and_then(|lease| now.checked_add(lease))
        .map(normalize_time)
        .ok_or_else(|| LedgerError::InvalidInput(format!("lease {lease:?} is out of range")))
}
