//! Every statement of the ledger, the SQLite and PostgreSQL spellings side by side so they do
//! not drift. Most are spelled once: `$n` placeholders, `RETURNING`, `ON CONFLICT … DO NOTHING`
//! and row values work on both. Times are bound as `TIMESTAMPTZ` on PostgreSQL and as
//! fixed-width UTC text on SQLite (whose text order is time order), so comparisons read the same.

use crate::db::Sql;
use crate::types::Status;

/// The columns of a [`Record`](crate::Record), in `SELECT` and `RETURNING` lists.
macro_rules! record_columns {
    () => {
        "id, client, provider, account, reference, status, idempotency_key, fingerprint, request, metadata, \
         attempts, ambiguous, cancelled_at, error, upstream, http_status, lease_owner, lease_until, created_at, \
         updated_at, batch_id, resolution_by, resolution_at, resolution_note, resolution_status, round_start, rechecks,
         recheck_at"
    };
}

// ---- begin -------------------------------------------------------------------------------------

/// Reserves the key. On PostgreSQL a racing insert of the same key WAITS here until the first
/// transaction ends, then either inserts (the first rolled back) or does nothing (it committed).
pub(crate) const INSERT_KEY: Sql = Sql::both(
    "INSERT INTO idempotency_keys (client, idempotency_key, cancellation_id, created_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (client, idempotency_key) DO NOTHING",
);

pub(crate) const SELECT_KEY: Sql =
    Sql::both("SELECT cancellation_id FROM idempotency_keys WHERE client = $1 AND idempotency_key = $2");

/// Inserts the record unless the reference has a live (non-failed) record; like the key, a
/// racing insert of the same reference waits for the first transaction on PostgreSQL. Born
/// with its first attempt started (`$13` = 1, `$14` = TRUE) or with none (0, FALSE).
pub(crate) const INSERT_RECORD: Sql = Sql::both(concat!(
    "INSERT INTO cancellations (id, client, provider, account, reference, status, idempotency_key, fingerprint, \
     request, metadata, attempts, ambiguous, lease_owner, lease_until, created_at, updated_at, batch_id) \
     VALUES ($1, $2, $3, $4, $5, 'processing', $6, $7, $8, $9, $13, $14, $10, $11, $12, $12, $15) \
     ON CONFLICT (provider, account, reference) WHERE status <> 'failed' DO NOTHING RETURNING ",
    record_columns!()
));

pub(crate) const SELECT_LIVE_BY_REFERENCE: Sql = Sql::both(concat!(
    "SELECT ",
    record_columns!(),
    " FROM cancellations WHERE provider = $1 AND account = $2 AND reference = $3 AND status <> 'failed'"
));

/// Begin's read before any write: the record a (client, key) names — `$2` NULL without a key —
/// then the live record of the reference, each tagged with how it was found (at most two rows).
pub(crate) const SELECT_EXISTING: Sql = Sql::both(concat!(
    "SELECT ",
    record_columns!(),
    ", 'key' AS found_by FROM cancellations WHERE id = \
     (SELECT cancellation_id FROM idempotency_keys WHERE client = $1 AND idempotency_key = $2) \
     UNION ALL SELECT ",
    record_columns!(),
    ", 'reference' AS found_by FROM cancellations \
     WHERE provider = $3 AND account = $4 AND reference = $5 AND status <> 'failed' \
     ORDER BY found_by"
));

// ---- reads -------------------------------------------------------------------------------------

pub(crate) const SELECT_RECORD: Sql =
    Sql::both(concat!("SELECT ", record_columns!(), " FROM cancellations WHERE id = $1"));

pub(crate) const SELECT_ATTEMPTS: Sql = Sql::both(
    "SELECT n, owner, started_at, finished_at, latency_ms, outcome, http_status, body, error \
     FROM cancellation_attempts WHERE cancellation_id = $1 ORDER BY n",
);

pub(crate) const SELECT_CREATED_AT: Sql = Sql::both("SELECT created_at FROM cancellations WHERE id = $1");

/// `list` appends `AND …` filters, then [`LIST_ORDER`].
pub(crate) const LIST_PREFIX: &str = concat!("SELECT ", record_columns!(), " FROM cancellations WHERE 1 = 1");
pub(crate) const LIST_ORDER: &str = " ORDER BY created_at DESC, id DESC LIMIT ";

pub(crate) const STATS: Sql = Sql::both(
    "SELECT COUNT(*) AS processing, MIN(created_at) AS oldest FROM cancellations WHERE status = 'processing'",
);

/// The status is a literal, not a bound value: only then can the planner answer the open
/// statuses from their partial indexes (`cancellations_processing`, `cancellations_in_review`)
/// rather than a table scan; `needs_review` is counted at each scrape of `/metrics`.
pub(crate) const fn count_by_status(status: Status) -> Sql<'static> {
    Sql::both(match status {
        Status::Processing => "SELECT COUNT(*) AS n FROM cancellations WHERE status = 'processing'",
        Status::NeedsReview => "SELECT COUNT(*) AS n FROM cancellations WHERE status = 'needs_review'",
        Status::Cancelled => "SELECT COUNT(*) AS n FROM cancellations WHERE status = 'cancelled'",
        Status::Failed => "SELECT COUNT(*) AS n FROM cancellations WHERE status = 'failed'",
    })
}

// ---- attempts ----------------------------------------------------------------------------------

/// Counts the attempt and marks the record ambiguous BEFORE the request leaves: if the process
/// dies while it is in flight, whoever resumes the record knows it may have reached the
/// provider. Only the holder of an unexpired lease may start one.
pub(crate) const START_ATTEMPT: Sql = Sql::both(
    "UPDATE cancellations SET attempts = attempts + 1, ambiguous = TRUE, updated_at = $3 \
     WHERE id = $1 AND status = 'processing' AND lease_owner = $2 AND lease_until > $3 \
     RETURNING attempts",
);

pub(crate) const INSERT_ATTEMPT: Sql = Sql::both(
    "INSERT INTO cancellation_attempts (cancellation_id, n, owner, started_at, outcome) VALUES ($1, $2, $3, $4, 'sent')",
);

pub(crate) const FINISH_ATTEMPT: Sql = Sql::both(
    "UPDATE cancellation_attempts SET finished_at = $3, latency_ms = $4, outcome = $5, http_status = $6, body = $7, \
     error = $8 WHERE cancellation_id = $1 AND n = $2 AND outcome = 'sent'",
);

pub(crate) const ATTEMPT_EXISTS: Sql =
    Sql::both("SELECT outcome FROM cancellation_attempts WHERE cancellation_id = $1 AND n = $2");

/// Recomputed from the attempts rather than toggled, so an earlier ambiguous attempt keeps the
/// record ambiguous whatever a later attempt says.
pub(crate) const REFRESH_AMBIGUOUS: Sql = Sql::both(
    "UPDATE cancellations SET ambiguous = EXISTS (SELECT 1 FROM cancellation_attempts \
     WHERE cancellation_id = $1 AND outcome IN ('sent', 'ambiguous')) WHERE id = $1",
);

// ---- end and leases ----------------------------------------------------------------------------

pub(crate) const FINISH: Sql = Sql::both(concat!(
    "UPDATE cancellations SET status = $3, cancelled_at = $4, error = $5, upstream = $6, http_status = $7, \
     updated_at = $8, lease_until = NULL, recheck_at = $9 \
     WHERE id = $1 AND status = 'processing' AND lease_owner = $2 RETURNING ",
    record_columns!()
));

pub(crate) const RENEW_LEASE: Sql =
    Sql::both("UPDATE cancellations SET lease_until = $3 WHERE id = $1 AND status = 'processing' AND lease_owner = $2");

pub(crate) const RELEASE: Sql = Sql::both(
    "UPDATE cancellations SET lease_owner = NULL, lease_until = $3 \
     WHERE id = $1 AND status = 'processing' AND lease_owner = $2",
);

/// Takes over processing records whose lease expired (or was released and is due). PostgreSQL
/// locks the candidates with `SKIP LOCKED`, so concurrent claimers of other replicas take
/// disjoint sets without waiting; SQLite runs it in a write transaction (writers are serial).
/// The CTE's column is named `due_id` so the `RETURNING` list stays unqualified.
pub(crate) const CLAIM_DUE: Sql = Sql {
    sqlite: concat!(
        "UPDATE cancellations SET lease_owner = $1, lease_until = $3 \
         WHERE id IN (SELECT id FROM cancellations WHERE status = 'processing' \
         AND (lease_until IS NULL OR lease_until <= $2) ORDER BY created_at, id LIMIT $4) RETURNING ",
        record_columns!()
    ),
    pg: concat!(
        "WITH due AS (SELECT id AS due_id FROM cancellations WHERE status = 'processing' \
         AND (lease_until IS NULL OR lease_until <= $2) ORDER BY created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
         UPDATE cancellations SET lease_owner = $1, lease_until = $3 FROM due \
         WHERE id = due.due_id AND status = 'processing' RETURNING ",
        record_columns!()
    ),
};

/// Only run on SQLite, where one process owns the file (see `Ledger::claim_all_processing`).
pub(crate) const CLAIM_ALL_PROCESSING: Sql = Sql::both(concat!(
    "UPDATE cancellations SET lease_owner = $1, lease_until = $2 WHERE status = 'processing' RETURNING ",
    record_columns!()
));

// ---- out of review (SPEC §9) ------------------------------------------------------------------

/// An operator's resolution: only from `needs_review` (the trigger refuses any other way a
/// resolution could be written).
pub(crate) const RESOLVE: Sql = Sql::both(concat!(
    "UPDATE cancellations SET status = $2, cancelled_at = $3, error = $4, http_status = $5, \
     updated_at = $6, recheck_at = NULL, resolution_by = $7, resolution_at = $6, resolution_note = $8, \
     resolution_status = $2 WHERE id = $1 AND status = 'needs_review' RETURNING ",
    record_columns!()
));

/// Back to processing, leased to `$2` until `$3`, for a new round of attempts; the review's
/// evidence is cleared from the record (its attempts keep it).
pub(crate) const RETRY: Sql = Sql::both(concat!(
    "UPDATE cancellations SET status = 'processing', lease_owner = $2, lease_until = $3, updated_at = $4, \
     round_start = attempts, error = NULL, upstream = NULL, http_status = NULL, recheck_at = NULL \
     WHERE id = $1 AND status = 'needs_review' RETURNING ",
    record_columns!()
));

/// Takes the records in review whose re-check is due, back to processing like [`RETRY`]
/// (disjoint sets for concurrent claimers, as [`CLAIM_DUE`]).
pub(crate) const CLAIM_RECHECKS: Sql = Sql {
    sqlite: concat!(
        "UPDATE cancellations SET status = 'processing', lease_owner = $1, lease_until = $3, updated_at = $2, \
         round_start = attempts, rechecks = rechecks + 1, error = NULL, upstream = NULL, http_status = NULL, \
         recheck_at = NULL WHERE id IN (SELECT id FROM cancellations WHERE status = 'needs_review' \
         AND recheck_at <= $2 ORDER BY recheck_at, id LIMIT $4) RETURNING ",
        record_columns!()
    ),
    pg: concat!(
        "WITH due AS (SELECT id AS due_id FROM cancellations WHERE status = 'needs_review' \
         AND recheck_at <= $2 ORDER BY recheck_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
         UPDATE cancellations SET status = 'processing', lease_owner = $1, lease_until = $3, updated_at = $2, \
         round_start = attempts, rechecks = rechecks + 1, error = NULL, upstream = NULL, http_status = NULL, \
         recheck_at = NULL FROM due WHERE id = due.due_id AND status = 'needs_review' RETURNING ",
        record_columns!()
    ),
};

// ---- maintenance -------------------------------------------------------------------------------

/// Deletes one batch of keys older than the cutoff whose request ended (the key of a request
/// still processing keeps answering `409` instead of letting a retry fall through to the
/// reference check).
pub(crate) const SWEEP_KEYS: Sql = Sql::both(
    "DELETE FROM idempotency_keys WHERE (client, idempotency_key) IN (\
     SELECT k.client, k.idempotency_key FROM idempotency_keys k WHERE k.created_at < $1 \
     AND NOT EXISTS (SELECT 1 FROM cancellations c WHERE c.id = k.cancellation_id AND c.status = 'processing') \
     LIMIT $2)",
);

pub(crate) const PING: Sql = Sql::both("SELECT 1");

/// The write `/readyz` makes when no recent write proves the ledger takes them: one row. On
/// SQLite it carries 64 KiB of padding (16 pages, more than a cancellation's largest write):
/// a full disk may still fit a small write into the log space that failed writes left
/// allocated, and the probe must not pass where a cancellation would fail.
pub(crate) const PROBE_WRITE: Sql = Sql {
    sqlite: "INSERT INTO ledger_probe (id, probed_at, probed_by, padding) VALUES (1, $1, $2, zeroblob(65536)) \
             ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at, probed_by = excluded.probed_by, \
             padding = excluded.padding",
    pg: "INSERT INTO ledger_probe (id, probed_at, probed_by) VALUES (1, $1, $2) \
         ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at, probed_by = excluded.probed_by",
};

/// Whether sqlx's bookkeeping table exists (in the schema of the search path, on PostgreSQL).
pub(crate) const MIGRATIONS_TABLE_EXISTS: Sql = Sql {
    sqlite: "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations') AS present",
    pg: "SELECT to_regclass('_sqlx_migrations') IS NOT NULL AS present",
};

pub(crate) const APPLIED_MIGRATIONS: Sql =
    Sql::both("SELECT version, checksum FROM _sqlx_migrations WHERE success = TRUE");

// ---- batches (SPEC §10) ------------------------------------------------------------------------

/// The columns of a [`Record`](crate::Record) of the `cancellations` table aliased `c`.
macro_rules! record_columns_of_c {
    () => {
        "c.id, c.client, c.provider, c.account, c.reference, c.status, c.idempotency_key, c.fingerprint, \
         c.request, c.metadata, c.attempts, c.ambiguous, c.cancelled_at, c.error, c.upstream, c.http_status, \
         c.lease_owner, c.lease_until, c.created_at, c.updated_at, c.batch_id, c.resolution_by, c.resolution_at, \
         c.resolution_note, c.resolution_status, c.round_start, c.rechecks, c.recheck_at"
    };
}

macro_rules! batch_columns {
    () => {
        "id, client, idempotency_key, fingerprint, metadata, owner, recording_until, created_at, updated_at"
    };
}

/// Inserts the batch unless its (client, key) is taken; like a cancellation's key, a racing
/// insert of the same key waits for the first transaction on PostgreSQL.
pub(crate) const INSERT_BATCH: Sql = Sql::both(concat!(
    "INSERT INTO cancellation_batches (id, client, idempotency_key, fingerprint, metadata, owner, recording_until, \
     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
     ON CONFLICT (client, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING ",
    batch_columns!()
));

pub(crate) const INSERT_BATCH_ITEM: Sql =
    Sql::both("INSERT INTO cancellation_batch_items (batch_id, idx, cancellation_id) VALUES ($1, $2, $3)");

pub(crate) const SELECT_BATCH: Sql =
    Sql::both(concat!("SELECT ", batch_columns!(), " FROM cancellation_batches WHERE id = $1"));

pub(crate) const SELECT_BATCH_BY_KEY: Sql = Sql::both(concat!(
    "SELECT ",
    batch_columns!(),
    " FROM cancellation_batches WHERE client = $1 AND idempotency_key = $2"
));

/// The items of a batch in order, each with the record it names when that record exists.
pub(crate) const SELECT_BATCH_ITEMS: Sql = Sql::both(concat!(
    "SELECT i.idx, i.cancellation_id AS item_cancellation_id, i.item_error, i.item_http_status, ",
    record_columns_of_c!(),
    " FROM cancellation_batch_items i LEFT JOIN cancellations c ON c.id = i.cancellation_id \
     WHERE i.batch_id = $1 ORDER BY i.idx"
));

/// An item answered by another record than the one it was to be recorded under (a reference
/// already cancelled, in review or in flight).
pub(crate) const SET_ITEM_CANCELLATION: Sql =
    Sql::both("UPDATE cancellation_batch_items SET cancellation_id = $3 WHERE batch_id = $1 AND idx = $2");

/// An item shed before it was recorded: its own problem, no record.
pub(crate) const SET_ITEM_ERROR: Sql = Sql::both(
    "UPDATE cancellation_batch_items SET cancellation_id = NULL, item_error = $3, item_http_status = $4 \
     WHERE batch_id = $1 AND idx = $2",
);

/// Every item is recorded: a replay with the key no longer waits for this request.
pub(crate) const SEAL_BATCH: Sql = Sql::both(
    "UPDATE cancellation_batches SET recording_until = NULL, updated_at = $3 \
     WHERE id = $1 AND owner = $2 AND recording_until IS NOT NULL",
);

#[cfg(test)]
mod column_list_tests {
    /// The two spellings of a record's columns must not drift (a column added to one only is a
    /// `Corrupt` "no column found" at run time).
    #[test]
    fn the_aliased_record_columns_are_the_record_columns() {
        let words = |s: &str| s.split(',').map(|c| c.trim().trim_start_matches("c.").to_owned()).collect::<Vec<_>>();
        assert_eq!(words(record_columns_of_c!()), words(record_columns!()));
    }
}
