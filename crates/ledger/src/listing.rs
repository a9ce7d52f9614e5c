//! Reads: one record, its attempts, the audit listing, the backlog counts; and the key sweep.

use std::fmt::Write as _;

use time::OffsetDateTime;

use crate::db::{Arg, Sql, args, normalize_time};
use crate::error::LedgerError;
use crate::rows::{attempt_from_row, record_from_row};
use crate::timer::Timer;
use crate::types::{AttemptRow, ListFilter, Page, Record, Stats, Status};
use crate::{Ledger, sql};

/// Keys deleted per transaction by [`Ledger::sweep_idempotency_keys`], so a sweep never holds
/// SQLite's write lock for long.
const SWEEP_BATCH: i64 = 1_000;

impl Ledger {
    /// One record, as stored.
    pub async fn get(&self, id: &str) -> Result<Option<Record>, LedgerError> {
        let _timer = Timer::start("get");
        self.db.fetch_optional(sql::SELECT_RECORD, args![id]).await?.as_ref().map(record_from_row).transpose()
    }

    /// The attempts of a record, in order (empty for an unknown id).
    pub async fn attempts(&self, id: &str) -> Result<Vec<AttemptRow>, LedgerError> {
        let _timer = Timer::start("attempts");
        self.db.fetch_all(sql::SELECT_ATTEMPTS, args![id]).await?.iter().map(attempt_from_row).collect()
    }

    /// The audit listing: records matching `filter`, newest first (`created_at DESC, id DESC`),
    /// at most `limit` (the caller bounds it, 1–100 in the API), after the record
    /// `starting_after` in that order. The cursor is the position (created_at, id) of that
    /// record, so paging is exact even when many records share one `created_at`, and stable
    /// while new records arrive. An unknown cursor is [`LedgerError::UnknownCursor`].
    pub async fn list(
        &self,
        filter: &ListFilter,
        limit: u32,
        starting_after: Option<&str>,
    ) -> Result<Page, LedgerError> {
        let _timer = Timer::start("list");
        if limit == 0 {
            return Err(LedgerError::InvalidInput("list limit must be at least 1".to_owned()));
        }
        let mut sql = String::from(sql::LIST_PREFIX);
        let mut args: Vec<Arg> = Vec::new();
        // Appends a bind value and returns its placeholder.
        fn bind(args: &mut Vec<Arg>, arg: Arg) -> String {
            args.push(arg);
            format!("${}", args.len())
        }
        let equal = [
            ("provider", filter.provider.as_deref()),
            ("account", filter.account.as_deref()),
            ("reference", filter.reference.as_deref()),
        ];
        for (column, value) in equal {
            if let Some(value) = value {
                let p = bind(&mut args, value.into());
                let _ = write!(sql, " AND {column} = {p}");
            }
        }
        // Spelled out, not bound: only a literal lets the planner pick the partial index of an
        // open status (`cancellations_processing`, `cancellations_in_review`). One of four
        // fixed words, never the caller's text.
        if let Some(status) = filter.status {
            let _ = write!(sql, " AND status = '{}'", status.as_str());
        }
        if let Some(gte) = filter.created_gte {
            let p = bind(&mut args, gte.into());
            let _ = write!(sql, " AND created_at >= {p}");
        }
        if let Some(lt) = filter.created_lt {
            let p = bind(&mut args, lt.into());
            let _ = write!(sql, " AND created_at < {p}");
        }
        if let Some(after) = starting_after {
            let row = self
                .db
                .fetch_optional(sql::SELECT_CREATED_AT, args![after])
                .await?
                .ok_or_else(|| LedgerError::UnknownCursor(after.to_owned()))?;
            let t = bind(&mut args, row.time("created_at")?.into());
            let id = bind(&mut args, after.into());
            let _ = write!(sql, " AND (created_at < {t} OR (created_at = {t} AND id < {id}))");
        }
        let p = bind(&mut args, (i64::from(limit) + 1).into());
        let _ = write!(sql, "{}{p}", sql::LIST_ORDER);
        let rows = self.db.fetch_all(Sql::both(&sql), args).await?;
        let mut records = rows.iter().map(record_from_row).collect::<Result<Vec<_>, _>>()?;
        let has_more = records.len() > limit as usize;
        records.truncate(limit as usize);
        Ok(Page { records, has_more })
    }

    /// Deletes idempotency keys created before `older_than` (pass `now - 24 h` or more: keys are
    /// kept at least 24 hours), except those of requests still processing, whose key must keep
    /// answering `409`. In batches, so a sweep never blocks writers for long. Returns how many.
    pub async fn sweep_idempotency_keys(&self, older_than: OffsetDateTime) -> Result<u64, LedgerError> {
        let _timer = Timer::start("sweep_idempotency_keys");
        let older_than = normalize_time(older_than);
        let mut total = 0;
        loop {
            let deleted = self.db.write_execute(sql::SWEEP_KEYS, args![older_than, SWEEP_BATCH]).await?;
            total += deleted;
            if deleted < SWEEP_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    /// The processing backlog: how many, and since when the oldest waits.
    pub async fn stats(&self) -> Result<Stats, LedgerError> {
        let _timer = Timer::start("stats");
        let row = self.db.fetch_one(sql::STATS, args![]).await?;
        Ok(Stats {
            processing: u64::try_from(row.int("processing")?).unwrap_or(0),
            oldest_processing_created_at: row.opt_time("oldest")?,
        })
    }

    /// How many records have `status` (e.g. `needs_review`, the operators' queue). Cheap for the
    /// open statuses, `processing` and `needs_review` (a count on their partial index), so
    /// `/metrics` can ask at every scrape; a final status is counted by a scan.
    pub async fn count(&self, status: Status) -> Result<u64, LedgerError> {
        let _timer = Timer::start("count");
        let row = self.db.fetch_one(sql::count_by_status(status), args![]).await?;
        Ok(u64::try_from(row.int("n")?).unwrap_or(0))
    }
}
