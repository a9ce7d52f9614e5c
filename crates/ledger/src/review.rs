//! Out of review (SPEC §9): an operator's resolution, a retry, the automatic re-checks.

use time::OffsetDateTime;

use crate::attempts::lease_until;
use crate::db::{Decision, args, normalize_time};
use crate::error::LedgerError;
use crate::rows::{record_from_row, records_by_age};
use crate::timer::Timer;
use crate::types::{Record, Resolve, Resolved, Status};
use crate::{Ledger, events, sql};

impl Ledger {
    /// An operator settles a `needs_review` record (SPEC §9): `cancelled` (at `now`) or `failed`
    /// (with `resolve.error`), the resolution stored with it in the same UPDATE. A record already
    /// resolved exactly so (same status and note: a repeated request) is [`Resolved::Replay`];
    /// any other record not in review is [`Resolved::NotInReview`], unchanged. Nothing is sent.
    pub async fn resolve(&self, id: &str, resolve: Resolve) -> Result<Resolved, LedgerError> {
        let _timer = Timer::start("resolve");
        let status = Status::from(resolve.status);
        if resolve.by.is_empty() || resolve.note.is_empty() {
            return Err(LedgerError::InvalidInput("a resolution names who resolved it and why".to_owned()));
        }
        if (status == Status::Failed) != resolve.error.is_some() {
            return Err(LedgerError::InvalidInput("a failed resolution, and only it, carries an error".to_owned()));
        }
        if !(100..=599).contains(&resolve.http_status) {
            return Err(LedgerError::InvalidInput(format!(
                "http_status {} is not an HTTP status",
                resolve.http_status
            )));
        }
        let id = id.to_owned();
        let rule = self.events.clone();
        let (resolved, stored) = self
            .db
            .write(move |mut tx| {
                Box::pin(async move {
                    let now = normalize_time(resolve.now);
                    let cancelled_at = (status == Status::Cancelled).then_some(now);
                    let row = tx
                        .fetch_optional(
                            sql::RESOLVE,
                            args![
                                &id,
                                status.as_str(),
                                cancelled_at,
                                resolve.error,
                                i64::from(resolve.http_status),
                                now,
                                &resolve.by,
                                &resolve.note,
                            ],
                        )
                        .await?;
                    if let Some(row) = row {
                        let record = record_from_row(&row)?;
                        let stored = events::after_change(&mut tx, rule.as_ref(), &record).await?;
                        return Ok(Decision::Keep((Resolved::Fresh(record), stored)));
                    }
                    let Some(row) = tx.fetch_optional(sql::SELECT_RECORD, args![&id]).await? else {
                        return Err(LedgerError::NotFound { id });
                    };
                    let record = record_from_row(&row)?;
                    let same = record.resolution.as_ref().is_some_and(|r| r.status == status && r.note == resolve.note);
                    let answer = if same { Resolved::Replay(record) } else { Resolved::NotInReview(record) };
                    Ok(Decision::Undo((answer, false)))
                })
            })
            .await?;
        self.events_stored(stored);
        Ok(resolved)
    }

    /// Puts a `needs_review` record back to `processing` for another round of attempts (an
    /// operator's retry, SPEC §9), leased to `owner` until `now + lease`: the caller drives it.
    /// `None` when the record is not in review (unchanged). Whether a repeated cancel is safe is
    /// the caller's to know (the ledger knows no provider).
    pub async fn retry(&self, id: &str, owner: &str, now: OffsetDateTime) -> Result<Option<Record>, LedgerError> {
        let _timer = Timer::start("retry");
        if owner.is_empty() {
            return Err(LedgerError::InvalidInput("owner must not be empty".to_owned()));
        }
        let until = lease_until(now, self.lease)?;
        let rows = self.db.write_all(sql::RETRY, args![id, owner, until, normalize_time(now)]).await?;
        rows.first().map(record_from_row).transpose()
    }

    /// Takes up to `limit` `needs_review` records whose automatic re-check is due
    /// (`recheck_at <= now`) back to `processing`, leased to `owner`, as [`Ledger::retry`] does,
    /// counting the re-check. Concurrent claimers (of any replica) never get the same record.
    pub async fn claim_rechecks(
        &self,
        owner: &str,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Record>, LedgerError> {
        let _timer = Timer::start("claim_rechecks");
        if limit == 0 {
            return Ok(Vec::new());
        }
        let until = lease_until(now, self.lease)?;
        let rows =
            self.db.write_all(sql::CLAIM_RECHECKS, args![owner, normalize_time(now), until, i64::from(limit)]).await?;
        records_by_age(rows)
    }
}
