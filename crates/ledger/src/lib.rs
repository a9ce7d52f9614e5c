//! The durable ledger of cancellations: records, upstream attempts, idempotency keys and leases,
//! on SQLite (embedded, one process) or PostgreSQL (shared by several gateway replicas).
//!
//! Architecture invariant: storage only. No HTTP, no provider, no other cancelgate crate; the
//! API speaks plain values (strings, [`serde_json::Value`], [`time::OffsetDateTime`]).
//!
//! # What the ledger guarantees, and how
//!
//! Every guarantee below holds across processes because the DATABASE enforces it (unique
//! indexes, conditional updates, a trigger), never an in-process lock:
//!
//! - **One live record per reference.** A partial unique index on (provider, account,
//!   reference) `WHERE status <> 'failed'`: at most one upstream cancel per reference is in
//!   flight anywhere, and a reference cancelled through the gateway stays answered by its
//!   original record. A `failed` reference may be begun again.
//! - **Idempotency keys.** (client, key) is a primary key. [`Ledger::begin`] inserts the key and
//!   the record in ONE transaction, key first: the key's unique index serializes racing requests
//!   with one key, the reference's index those for one reference; when the record cannot be
//!   inserted the transaction rolls back, so a `409` is never stored under a key.
//! - **Never sent twice, never guessed.** An attempt is written ([`Ledger::start_attempt`])
//!   before its request leaves, by the holder of an unexpired lease only; a started attempt that
//!   never finished makes the record [`Record::ambiguous`], as does one that ended ambiguous.
//! - **One driver per record.** Every state change is an `UPDATE … WHERE lease_owner = $owner
//!   AND status = 'processing'`; expired leases are taken over with [`Ledger::claim_due`]
//!   (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so two replicas never drive one record.
//! - **Final is final.** `processing → cancelled | failed | needs_review`, and out of review only
//!   `needs_review → cancelled | failed` (an operator's resolution, stored whole with the change:
//!   [`Ledger::resolve`]) or `needs_review → processing` (driven again, leased:
//!   [`Ledger::retry`], [`Ledger::claim_rechecks`]); triggers refuse any other change of a final
//!   status, and any resolution written another way or changed afterwards.
//!
//! No transaction is ever held open across an upstream call: each method is one short
//! transaction, and the caller sends upstream between [`Ledger::start_attempt`] (or
//! [`Ledger::begin_with_attempt`]) and [`Ledger::finish_attempt`] (or
//! [`Ledger::finish_with_attempt`]). A cancel answered at once is two commits: the record with
//! its first attempt, then the answer with the record's end.
//!
//! # What it costs
//!
//! On SQLite every write goes through one writer task that groups the writes waiting for it
//! into one transaction (group commit, see `sqlite.rs`): under load one fsync serves many
//! callers, and no caller waits in SQLite's busy handler. A replay (a key or a reference already
//! stored) is answered by a read, without a turn at the writer.
//!
//! The ledger never reads the clock: callers pass `now`, which keeps it testable and makes one
//! request's times consistent. Times are stored in UTC with microsecond precision.

mod batch;
mod db;
mod error;
mod events;
mod inline_reads;
mod sql;
mod sqlite;
mod timer;
mod types;

use std::collections::HashMap;
use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use time::OffsetDateTime;

pub use crate::batch::{Batch, BatchBegin, BatchItem, ItemEnd, MAX_BATCH_ITEMS, NewBatch};
use crate::db::{Arg, Db, Decision, Row, Sql, Tx, args, normalize_time};
pub use crate::error::{BoxError, LedgerError, NoConnection, Outage, redact_url};
pub use crate::events::{
    ClaimedDelivery, Delivery, DeliveryAttempt, DeliveryOutcome, DeliveryStatus, EVENT_TYPES, Event, EventFilter,
    EventPage, EventRule, NewEvent, PendingStat,
};
pub use crate::sqlite::GROUP_SIZE as LEDGER_WRITES_PER_COMMIT;
pub use crate::timer::LEDGER_DURATION;
use crate::timer::Timer;
pub use crate::types::{
    AttemptNo, AttemptResult, AttemptRow, Backend, Begin, Final, FinalStatus, LedgerOptions, ListFilter,
    NewCancellation, Page, Record, Resolution, Resolve, Resolved, ResolvedStatus, SqliteSync, Stats, Status,
};

/// The outcome of an attempt that was started and not (yet) finished. Reserved: it cannot be
/// passed to [`Ledger::finish_attempt`].
pub const SENT: &str = "sent";
/// The outcome of an attempt whose effect upstream is unknown (timeout or reset after the
/// request was sent): it marks the record [`Record::ambiguous`] for good.
pub const AMBIGUOUS: &str = "ambiguous";

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How often [`Ledger::begin`] starts over when a racing transaction changed what it read
/// (a key swept, a live record failed, a PostgreSQL serialization failure) before giving up
/// with [`LedgerError::Contention`]. Each retry sees the other transaction's result, so more
/// than one is rare.
const BEGIN_TRIES: usize = 5;
/// Keys deleted per transaction by [`Ledger::sweep_idempotency_keys`], so a sweep never holds
/// SQLite's write lock for long.
const SWEEP_BATCH: i64 = 1_000;

/// The ledger: a pool over one backend. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct Ledger {
    db: Db,
    backend: Backend,
    lease: Duration,
    /// For `Debug` and logs: the URL with its password redacted.
    url: Arc<str>,
    /// What events a state change makes (SPEC §8, see `events.rs`); none without a rule.
    events: Option<Arc<dyn EventRule>>,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hand-written: sqlx's connect options would print the password.
        f.debug_struct("Ledger")
            .field("backend", &self.backend)
            .field("url", &self.url)
            .field("lease", &self.lease)
            .field("events", &self.events)
            .finish()
    }
}

impl Ledger {
    /// Connects to `sqlite://path/to/file.db` (the parent directory and the file are created if
    /// missing; WAL journal, busy timeout, foreign keys on) or `postgres://…`. Opens one
    /// connection right away, so a wrong URL or an unreachable database fails here
    /// ([`LedgerError::Connect`]) rather than on the first request.
    pub async fn connect(url: &str, options: LedgerOptions) -> Result<Ledger, LedgerError> {
        let (db, backend) = Db::connect(url, &options).await?;
        Ok(Ledger { db, backend, lease: options.lease, url: redact_url(url).into(), events: None })
    }

    /// Which backend the URL chose.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The configured lease length (`ledger.lease_ms`).
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Applies the embedded migrations of this backend; a no-op when they are applied. On
    /// PostgreSQL sqlx holds an advisory lock meanwhile, so replicas starting together migrate
    /// once. Fails if the database holds a migration this binary does not know (a newer
    /// version migrated it) or one whose content changed.
    pub async fn migrate(&self) -> Result<(), LedgerError> {
        self.db.migrate(&SQLITE_MIGRATOR, &POSTGRES_MIGRATOR).await
    }

    fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        }
    }

    /// Whether every embedded migration is applied, unchanged (for `/readyz`). Read-only: it
    /// never creates sqlx's bookkeeping table.
    pub async fn is_migrated(&self) -> Result<bool, LedgerError> {
        let present = self.db.fetch_one(sql::MIGRATIONS_TABLE_EXISTS, args![]).await?.bool("present")?;
        if !present {
            return Ok(false);
        }
        let applied = self
            .db
            .fetch_all(sql::APPLIED_MIGRATIONS, args![])
            .await?
            .iter()
            .map(|row| Ok((row.int("version")?, row.bytes("checksum")?)))
            .collect::<Result<HashMap<i64, Vec<u8>>, LedgerError>>()?;
        Ok(self
            .migrator()
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .all(|m| applied.get(&m.version).is_some_and(|checksum| *checksum == *m.checksum)))
    }

    /// One round trip to the database (for `/readyz`).
    pub async fn ping(&self) -> Result<(), LedgerError> {
        let _timer = Timer::start("ping");
        self.db.fetch_one(sql::PING, args![]).await.map(drop)
    }

    /// Whether the ledger takes writes now (for `/readyz`; a read proves nothing on a full disk).
    /// Cheap when the ledger is busy: a write stored within the last second, with no failure
    /// since, is proof enough. Otherwise it writes one row of its own (`ledger_probe`, by
    /// `owner` at `now`), one probe at a time. The error names the cause
    /// ([`LedgerError::outage`] and its message).
    pub async fn check_writable(&self, owner: &str, now: OffsetDateTime) -> Result<(), LedgerError> {
        let _timer = Timer::start("check_writable");
        self.db.probe_write(sql::PROBE_WRITE, args![normalize_time(now), owner]).await
    }

    /// Closes the pool, waiting for connections in use to be returned (graceful shutdown; on
    /// SQLite this also checkpoints the WAL).
    pub async fn close(&self) {
        self.db.close().await;
    }

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
            ("status", filter.status.map(Status::as_str)),
        ];
        for (column, value) in equal {
            if let Some(value) = value {
                let p = bind(&mut args, value.into());
                let _ = write!(sql, " AND {column} = {p}");
            }
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

    /// How many records have `status` (e.g. `needs_review`, the operators' queue). Cheap: a
    /// count on the status index, so `/metrics` can ask at every scrape.
    pub async fn count(&self, status: Status) -> Result<u64, LedgerError> {
        let _timer = Timer::start("count");
        let row = self.db.fetch_one(sql::COUNT_BY_STATUS, args![status.as_str()]).await?;
        Ok(u64::try_from(row.int("n")?).unwrap_or(0))
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
        let record = record_from_row(&row)?;
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
        return Ok((record_from_row(&row)?, true));
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

fn lease_until(now: OffsetDateTime, lease: Duration) -> Result<OffsetDateTime, LedgerError> {
    time::Duration::try_from(lease)
        .ok()
        .and_then(|lease| now.checked_add(lease))
        .map(normalize_time)
        .ok_or_else(|| LedgerError::InvalidInput(format!("lease {lease:?} is out of range")))
}

fn to_u32(column: &str, v: i64) -> Result<u32, LedgerError> {
    u32::try_from(v).map_err(|_| LedgerError::Corrupt(format!("column {column}: {v} is out of range")))
}

fn to_u16(column: &str, v: i64) -> Result<u16, LedgerError> {
    u16::try_from(v).map_err(|_| LedgerError::Corrupt(format!("column {column}: {v} is out of range")))
}

fn records_by_age(rows: Vec<Row>) -> Result<Vec<Record>, LedgerError> {
    // RETURNING gives no order.
    let mut records = rows.iter().map(record_from_row).collect::<Result<Vec<_>, _>>()?;
    records.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(records)
}

fn record_from_row(row: &Row) -> Result<Record, LedgerError> {
    let status = row.text("status")?;
    Ok(Record {
        id: row.text("id")?,
        client: row.text("client")?,
        provider: row.text("provider")?,
        account: row.text("account")?,
        reference: row.text("reference")?,
        status: Status::parse(&status).ok_or_else(|| LedgerError::Corrupt(format!("status {status:?}")))?,
        idempotency_key: row.opt_text("idempotency_key")?,
        fingerprint: row.text("fingerprint")?,
        request: row.json("request")?,
        metadata: row.json("metadata")?,
        attempts: to_u32("attempts", row.int("attempts")?)?,
        ambiguous: row.bool("ambiguous")?,
        cancelled_at: row.opt_time("cancelled_at")?,
        error: row.opt_json("error")?,
        upstream: row.opt_json("upstream")?,
        http_status: row.opt_int("http_status")?.map(|v| to_u16("http_status", v)).transpose()?,
        lease_owner: row.opt_text("lease_owner")?,
        lease_until: row.opt_time("lease_until")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        batch_id: row.opt_text("batch_id")?,
        resolution: resolution_from_row(row)?,
        round_start: to_u32("round_start", row.int("round_start")?)?,
        rechecks: to_u32("rechecks", row.int("rechecks")?)?,
        recheck_at: row.opt_time("recheck_at")?,
    })
}

fn resolution_from_row(row: &Row) -> Result<Option<Resolution>, LedgerError> {
    let Some(status) = row.opt_text("resolution_status")? else { return Ok(None) };
    let missing = |column: &str| LedgerError::Corrupt(format!("a resolution without {column}"));
    Ok(Some(Resolution {
        by: row.opt_text("resolution_by")?.ok_or_else(|| missing("resolution_by"))?,
        at: row.opt_time("resolution_at")?.ok_or_else(|| missing("resolution_at"))?,
        note: row.opt_text("resolution_note")?.ok_or_else(|| missing("resolution_note"))?,
        status: Status::parse(&status).ok_or_else(|| LedgerError::Corrupt(format!("resolution_status {status:?}")))?,
    }))
}

fn attempt_from_row(row: &Row) -> Result<AttemptRow, LedgerError> {
    Ok(AttemptRow {
        n: to_u32("n", row.int("n")?)?,
        owner: row.text("owner")?,
        started_at: row.time("started_at")?,
        finished_at: row.opt_time("finished_at")?,
        latency_ms: row
            .opt_int("latency_ms")?
            .map(|v| u64::try_from(v).map_err(|_| LedgerError::Corrupt(format!("column latency_ms: {v}"))))
            .transpose()?,
        outcome: row.text("outcome")?,
        http_status: row.opt_int("http_status")?.map(|v| to_u16("http_status", v)).transpose()?,
        body: row.opt_json("body")?,
        error: row.opt_text("error")?,
    })
}
