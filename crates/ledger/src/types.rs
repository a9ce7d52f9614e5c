//! The plain values the ledger takes and gives: no sqlx type crosses the crate boundary.

use std::fmt;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;

use crate::stored_json::StoredJson;

/// Which database a [`Ledger`](crate::Ledger) talks to, chosen by the URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// `sqlite://path/to/file.db`: embedded, one process owns the file.
    Sqlite,
    /// `postgres://…`: shared by several gateway replicas.
    Postgres,
}

impl Backend {
    pub const fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How SQLite makes a commit durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteSync {
    /// `synchronous = FULL`: a commit survives a power loss, not only a crash of the process.
    /// The default, because an accepted cancellation must never be lost.
    #[default]
    Full,
    /// `synchronous = NORMAL`: in WAL mode still safe against a crash (kill -9) of the process,
    /// but the last commits may roll back after a power loss or an OS crash. Faster.
    Normal,
}

/// How to connect. `Default` gives the values of SPEC §5 (`ledger.lease_ms` = 15 s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerOptions {
    /// Pool size. On SQLite, of the read pool: writes have a connection of their own (one
    /// writer, see the crate docs).
    pub max_connections: u32,
    /// How long an operation waits for a pooled connection (PostgreSQL: connecting included)
    /// before failing as [`LedgerError::Unavailable`](crate::LedgerError::Unavailable). Short:
    /// a caller hears `ledger_unavailable` within a second of a database outage (SPEC §12),
    /// not after a stall.
    pub acquire_timeout: Duration,
    /// The lease length (`ledger.lease_ms`): how long a holder may drive a record before another
    /// replica may take it over. The ledger does not read the clock itself; callers compute
    /// `now + ledger.lease()` for [`NewCancellation::lease_until`] and renewals.
    pub lease: Duration,
    /// SQLite only: how long a writer waits for another process's write lock before failing.
    pub sqlite_busy_timeout: Duration,
    /// SQLite only: see [`SqliteSync`].
    pub sqlite_sync: SqliteSync,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_millis(500),
            lease: Duration::from_millis(15_000),
            sqlite_busy_timeout: Duration::from_secs(10),
            sqlite_sync: SqliteSync::Full,
        }
    }
}

/// The status of a cancellation (SPEC §2).
// One type for the record and the API's Cancellation object (the gateway serializes it by
// `as_str`); with the `openapi` feature it is also the document's `Status` schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(rename_all = "snake_case"))]
pub enum Status {
    /// Accepted; the outcome is not known yet. The only non-final status.
    Processing,
    /// The provider confirmed the cancellation.
    Cancelled,
    /// Ended without cancelling (a refusal or an exhausted retry budget); the reference may be
    /// cancelled again with a new record.
    Failed,
    /// The gateway cannot tell on its own whether the provider cancelled: an operator decides.
    NeedsReview,
}

impl Status {
    /// The spelling used in the database and in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Processing => "processing",
            Status::Cancelled => "cancelled",
            Status::Failed => "failed",
            Status::NeedsReview => "needs_review",
        }
    }

    /// Parses the spelling of [`Status::as_str`].
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "processing" => Status::Processing,
            "cancelled" => Status::Cancelled,
            "failed" => Status::Failed,
            "needs_review" => Status::NeedsReview,
            _ => return None,
        })
    }

    /// Every status other than `processing` is final: the database refuses to change it.
    pub const fn is_final(self) -> bool {
        !matches!(self, Status::Processing)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status a record may end in: [`Ledger::finish`](crate::Ledger::finish) cannot be asked to
/// "finish" into `processing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FinalStatus {
    Cancelled,
    Failed,
    NeedsReview,
}

impl From<FinalStatus> for Status {
    fn from(s: FinalStatus) -> Status {
        match s {
            FinalStatus::Cancelled => Status::Cancelled,
            FinalStatus::Failed => Status::Failed,
            FinalStatus::NeedsReview => Status::NeedsReview,
        }
    }
}

/// A request about to be sent upstream, as [`Ledger::begin`](crate::Ledger::begin) records it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCancellation {
    /// The record id, chosen by the caller (ULID-like, so ids sort by creation time).
    pub id: String,
    /// The authenticated client: idempotency keys are scoped to it.
    pub client: String,
    pub provider: String,
    pub account: String,
    pub reference: String,
    /// The `Idempotency-Key` header, if the client sent one.
    pub idempotency_key: Option<String>,
    /// A digest of the canonical request body: the same key with another fingerprint is
    /// [`Begin::KeyReused`].
    pub fingerprint: String,
    /// What is needed to (re)build the upstream request later (`reason`, `language`), so a
    /// background driver can resume the record after a crash.
    pub request: Value,
    /// The client's metadata, stored and returned, never sent upstream.
    pub metadata: Value,
    /// Who takes the lease on the new record (a replica/process id).
    pub owner: String,
    /// The time of the request: `created_at`, `updated_at` and the key's age.
    pub now: OffsetDateTime,
    /// Until when `owner` holds the lease.
    pub lease_until: OffsetDateTime,
    /// The batch (SPEC §10) this record is an item of; `None` for a single cancel.
    pub batch_id: Option<String>,
}

/// A cancellation record: every field needed to render the SPEC's Cancellation object, plus the
/// bookkeeping needed to drive it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    pub client: String,
    pub provider: String,
    pub account: String,
    pub reference: String,
    pub status: Status,
    pub idempotency_key: Option<String>,
    pub fingerprint: String,
    pub request: Value,
    pub metadata: Value,
    /// Upstream requests started for this record (`attempts` in the API).
    pub attempts: u32,
    /// Whether an earlier attempt may have reached the provider without us knowing its effect:
    /// one finished with outcome [`AMBIGUOUS`](crate::AMBIGUOUS), or one started and never
    /// finished (the process died while it was in flight). Once true it stays true. It decides
    /// how a later "already cancelled" or "completed" answer is read.
    pub ambiguous: bool,
    pub cancelled_at: Option<OffsetDateTime>,
    /// The problem JSON of a `failed` (or `needs_review`) record.
    pub error: Option<Value>,
    /// `{"status", "body"}` of the provider's answer, when one came.
    pub upstream: Option<StoredJson>,
    /// The HTTP status the caller is answered with once the record is final.
    pub http_status: Option<u16>,
    /// While processing: who drives the record (`None` once released). Once final: who
    /// finalized it.
    pub lease_owner: Option<String>,
    /// While processing: until when the lease holds, or when a released record is due again.
    pub lease_until: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// The batch this record is an item of; `None` for a single cancel.
    pub batch_id: Option<String>,
    /// How an operator settled it out of review (SPEC §9); `None` for a record never resolved.
    pub resolution: Option<Resolution>,
    /// `attempts` when the record was last put back to `processing` from review (an operator's
    /// retry or an automatic re-check): the attempts after it are the current round's, which
    /// `retry.max_attempts` bounds. 0 for a record never retried.
    pub round_start: u32,
    /// Automatic re-checks taken so far.
    pub rechecks: u32,
    /// When the next automatic re-check of this `needs_review` record is due, if one is scheduled.
    pub recheck_at: Option<OffsetDateTime>,
}

/// An operator's settlement of a `needs_review` record, stored with the status it chose.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// The client that resolved it.
    pub by: String,
    pub at: OffsetDateTime,
    pub note: String,
    /// `Cancelled` or `Failed`.
    pub status: Status,
}

/// What [`Ledger::resolve`](crate::Ledger::resolve) writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolve {
    /// The client resolving it.
    pub by: String,
    pub note: String,
    /// `Cancelled` (with `cancelled_at` = `now`) or `Failed` (with `error`).
    pub status: ResolvedStatus,
    /// The problem JSON of a `Failed` resolution (refused for `Cancelled`).
    pub error: Option<Value>,
    /// What the caller is answered (and replays answer) with.
    pub http_status: u16,
    pub now: OffsetDateTime,
}

/// The statuses an operator may resolve a record to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResolvedStatus {
    Cancelled,
    Failed,
}

impl From<ResolvedStatus> for Status {
    fn from(s: ResolvedStatus) -> Status {
        match s {
            ResolvedStatus::Cancelled => Status::Cancelled,
            ResolvedStatus::Failed => Status::Failed,
        }
    }
}

/// What [`Ledger::resolve`](crate::Ledger::resolve) did.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// Resolved now, as asked.
    Fresh(Record),
    /// Already resolved exactly so (same status, same note): the stored record, unchanged.
    Replay(Record),
    /// Not in review (and not resolved so): nothing changed.
    NotInReview(Record),
}

/// What [`Ledger::begin`](crate::Ledger::begin) decided. Only `Fresh` stored anything.
#[derive(Debug, Clone, PartialEq)]
pub enum Begin {
    /// Inserted (with its idempotency key, if any); the caller holds the lease and sends upstream.
    Fresh(Record),
    /// Same client + key + fingerprint, and that request ended: re-render it with
    /// `replayed: true`, without calling upstream.
    Replay(Record),
    /// Same client + key + fingerprint, still processing: `409 request_in_progress`.
    KeyInFlight,
    /// Same client + key, another body: `422 idempotency_key_reused`.
    KeyReused,
    /// Another record of the same (provider, account, reference) is processing:
    /// `409 request_in_progress`. The key was not stored.
    ReferenceBusy(Record),
    /// … is `needs_review`: answered with that record. The key was not stored.
    ReferenceNeedsReview(Record),
    /// … is `cancelled`: answered with the ORIGINAL record, replayed. The key was not stored.
    ReferenceCancelled(Record),
}

/// The number of an attempt, 1-based, as returned by
/// [`Ledger::start_attempt`](crate::Ledger::start_attempt).
pub type AttemptNo = u32;

/// How one upstream request ended, recorded by
/// [`Ledger::finish_attempt`](crate::Ledger::finish_attempt).
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptResult {
    pub finished_at: OffsetDateTime,
    pub latency_ms: u64,
    /// A short classification chosen by the caller (e.g. `cancelled`, `refused`, `transient`,
    /// `rate_limited`). [`AMBIGUOUS`](crate::AMBIGUOUS) marks the record ambiguous for good;
    /// [`SENT`](crate::SENT) is reserved for "not finished".
    pub outcome: String,
    pub http_status: Option<u16>,
    /// The provider's answer, already bounded in size by the caller.
    pub body: Option<Value>,
    /// A transport error (timeout, reset…), never containing secrets.
    pub error: Option<String>,
}

/// One upstream request of a record, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRow {
    pub n: AttemptNo,
    /// The lease holder that sent it.
    pub owner: String,
    pub started_at: OffsetDateTime,
    /// `None` while the request is in flight, or forever if the process died during it.
    pub finished_at: Option<OffsetDateTime>,
    pub latency_ms: Option<u64>,
    /// [`SENT`](crate::SENT) until finished.
    pub outcome: String,
    pub http_status: Option<u16>,
    pub body: Option<Value>,
    pub error: Option<String>,
}

impl AttemptRow {
    /// Started and never finished: it may have reached the provider.
    pub fn is_unfinished(&self) -> bool {
        self.finished_at.is_none()
    }
}

/// How a record ends, written by [`Ledger::finish`](crate::Ledger::finish).
#[derive(Debug, Clone, PartialEq)]
pub struct Final {
    pub status: FinalStatus,
    /// Required for `Cancelled` (the provider's time, else the gateway's), refused otherwise.
    pub cancelled_at: Option<OffsetDateTime>,
    /// Problem JSON (SPEC §3) for `Failed`/`NeedsReview`.
    pub error: Option<Value>,
    /// `{"status", "body"}` of the provider's answer, when one came.
    pub upstream: Option<StoredJson>,
    /// What the caller is answered (and replays answer) with.
    pub http_status: u16,
    pub now: OffsetDateTime,
    /// `NeedsReview` only: when the automatic re-check should drive it again (refused for the
    /// other statuses). `None`: no re-check.
    pub recheck_at: Option<OffsetDateTime>,
}

/// Filters of the audit listing (`GET /v1/cancellations`); `None` means "any".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListFilter {
    pub provider: Option<String>,
    pub account: Option<String>,
    pub reference: Option<String>,
    pub status: Option<Status>,
    /// Inclusive lower bound on `created_at`.
    pub created_gte: Option<OffsetDateTime>,
    /// Exclusive upper bound on `created_at`.
    pub created_lt: Option<OffsetDateTime>,
}

/// One page of the audit listing, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub records: Vec<Record>,
    /// More records follow the last one: pass its id as `starting_after`.
    pub has_more: bool,
}

/// What an operator (and `/metrics`) wants to know about the backlog.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub processing: u64,
    pub oldest_processing_created_at: Option<OffsetDateTime>,
}
