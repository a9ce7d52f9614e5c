-- The cancellation ledger, SQLite flavour (keep in step with ../postgres/0001_ledger.sql).
--
-- Times are UTC text of one fixed width, 'YYYY-MM-DDTHH:MM:SS.ffffffZ' (microseconds, as in
-- PostgreSQL), so that comparing or ordering the text compares or orders the instants. The CHECKs
-- on the columns that are compared refuse any other spelling. JSON is text checked by json_valid.

CREATE TABLE cancellations (
    id              TEXT    NOT NULL PRIMARY KEY,
    client          TEXT    NOT NULL,
    provider        TEXT    NOT NULL,
    account         TEXT    NOT NULL,
    reference       TEXT    NOT NULL,
    status          TEXT    NOT NULL
        CHECK (status IN ('processing', 'cancelled', 'failed', 'needs_review')),
    idempotency_key TEXT,
    fingerprint     TEXT    NOT NULL,
    request         TEXT    NOT NULL CHECK (json_valid(request)),
    metadata        TEXT    NOT NULL CHECK (json_valid(metadata)),
    -- upstream requests started for this record (an attempt row exists for each)
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- an attempt may have reached the provider without us knowing its effect: one that ended
    -- ambiguous, or one that was started and never finished (still 'sent')
    ambiguous       INTEGER NOT NULL DEFAULT 0 CHECK (ambiguous IN (0, 1)),
    cancelled_at    TEXT,
    error           TEXT    CHECK (error IS NULL OR json_valid(error)),
    upstream        TEXT    CHECK (upstream IS NULL OR json_valid(upstream)),
    http_status     INTEGER CHECK (http_status BETWEEN 100 AND 599),
    -- while processing: who drives the record and until when; once final: who finalized it
    lease_owner     TEXT,
    lease_until     TEXT    CHECK (lease_until IS NULL OR lease_until GLOB
        '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    created_at      TEXT    NOT NULL CHECK (created_at GLOB
        '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    updated_at      TEXT    NOT NULL,
    CHECK (status = 'processing' OR (lease_until IS NULL AND http_status IS NOT NULL)),
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL))
) STRICT;

-- At most one record per reference that is not 'failed': one upstream cancel in flight per
-- reference, and a reference cancelled through the gateway stays answered by its record.
CREATE UNIQUE INDEX cancellations_one_live_per_reference
    ON cancellations (provider, account, reference) WHERE status <> 'failed';
CREATE INDEX cancellations_by_reference ON cancellations (provider, account, reference, created_at);
CREATE INDEX cancellations_by_created ON cancellations (created_at, id);
CREATE INDEX cancellations_by_status ON cancellations (status, created_at, id);

-- A final status never changes, whatever statement tries.
CREATE TRIGGER cancellations_final_status_is_final
BEFORE UPDATE OF status ON cancellations
WHEN OLD.status <> 'processing' AND NEW.status <> OLD.status
BEGIN
    SELECT RAISE(ABORT, 'a final cancellation status never changes');
END;

-- The key row is inserted before its record in the same transaction (the key is what
-- serializes racing requests), hence the deferred foreign key.
CREATE TABLE idempotency_keys (
    client          TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    cancellation_id TEXT NOT NULL REFERENCES cancellations (id) DEFERRABLE INITIALLY DEFERRED,
    created_at      TEXT NOT NULL CHECK (created_at GLOB
        '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    PRIMARY KEY (client, idempotency_key)
) STRICT, WITHOUT ROWID;

CREATE INDEX idempotency_keys_by_created ON idempotency_keys (created_at);

-- One row per upstream request, written ('sent') BEFORE the request leaves.
CREATE TABLE cancellation_attempts (
    cancellation_id TEXT    NOT NULL REFERENCES cancellations (id),
    n               INTEGER NOT NULL CHECK (n >= 1),
    owner           TEXT    NOT NULL,
    started_at      TEXT    NOT NULL,
    finished_at     TEXT,
    latency_ms      INTEGER CHECK (latency_ms >= 0),
    outcome         TEXT    NOT NULL CHECK (outcome <> ''),
    http_status     INTEGER CHECK (http_status BETWEEN 100 AND 999),
    body            TEXT    CHECK (body IS NULL OR json_valid(body)),
    error           TEXT,
    PRIMARY KEY (cancellation_id, n),
    CHECK ((outcome = 'sent') = (finished_at IS NULL))
) STRICT, WITHOUT ROWID;
