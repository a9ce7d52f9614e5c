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

mod attempts;
mod batch;
mod begin;
mod db;
mod deliveries;
mod error;
mod events;
mod inline_reads;
mod listing;
mod retention;
mod review;
mod rows;
mod sql;
mod sqlite;
mod stored_json;
mod timer;
mod types;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use time::OffsetDateTime;

pub use crate::batch::{Batch, BatchBegin, BatchItem, ItemEnd, MAX_BATCH_ITEMS, NewBatch};
use crate::db::{Db, args, normalize_time};
pub use crate::error::{BoxError, LedgerError, NoConnection, Outage, redact_url};
pub use crate::events::{
    ClaimedDelivery, Delivery, DeliveryAttempt, DeliveryOutcome, DeliveryStatus, EVENT_TYPES, Event, EventFilter,
    EventPage, EventRule, NewEvent, PendingStat,
};
pub use crate::retention::PURGE_BATCH;
pub use crate::sqlite::GROUP_SIZE as LEDGER_WRITES_PER_COMMIT;
pub use crate::stored_json::StoredJson;
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
}
