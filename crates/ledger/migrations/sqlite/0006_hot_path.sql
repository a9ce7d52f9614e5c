-- Less work per cancel (issue 20), SQLite flavour (keep in step with ../postgres/0006_hot_path.sql).
--
-- 1. No `json_valid` CHECK on JSON the gateway serialized itself (a record's request, metadata,
--    error and upstream answer, an attempt's body, an event's payload): each CHECK parsed the
--    whole document again on every INSERT and every UPDATE of the row. SQLite cannot drop a
--    CHECK, so the three tables are rebuilt; every other CHECK, every trigger, every foreign key
--    and every index that guards a guarantee is recreated as it was.
-- 2. `cancellations_by_status (status, created_at, id)` indexed every record, and every record's
--    end moved its entry. Its readers only ever ask for the two open statuses (the backlog and
--    the claim of due records: `processing`; the operators' queue and its count: `needs_review`),
--    so two partial indexes replace it: a final record leaves them and costs nothing more there.
-- 3. An index for retention (at the end).
--
-- The rebuild copies the rows; on a large ledger this migration takes a while at start.

-- The migrations run on a connection with foreign keys OFF (`Db::migrate`): with them on, the
-- implicit DELETE of a DROP TABLE would count every child row as a violation, and the renamed
-- table that carries the rows again does not undo the count. The copy changes no key, so the
-- foreign keys that name `cancellations` and `webhook_events` hold for the rebuilt tables.

-- ---- cancellations --------------------------------------------------------------------------

CREATE TABLE cancellations_0006 (
    id              TEXT    NOT NULL PRIMARY KEY,
    client          TEXT    NOT NULL,
    provider        TEXT    NOT NULL,
    account         TEXT    NOT NULL,
    reference       TEXT    NOT NULL,
    status          TEXT    NOT NULL
        CHECK (status IN ('processing', 'cancelled', 'failed', 'needs_review')),
    idempotency_key TEXT,
    fingerprint     TEXT    NOT NULL,
    -- JSON the gateway serialized (serde_json): not parsed again here
    request         TEXT    NOT NULL,
    metadata        TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    ambiguous       INTEGER NOT NULL DEFAULT 0 CHECK (ambiguous IN (0, 1)),
    cancelled_at    TEXT,
    error           TEXT,
    upstream        TEXT,
    http_status     INTEGER CHECK (http_status BETWEEN 100 AND 599),
    lease_owner     TEXT,
    lease_until     TEXT    CHECK (lease_until IS NULL OR lease_until GLOB
        '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    created_at      TEXT    NOT NULL CHECK (created_at GLOB
        '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    updated_at      TEXT    NOT NULL,
    batch_id        TEXT,
    resolution_by   TEXT,
    resolution_at   TEXT    CHECK (resolution_at IS NULL OR resolution_at GLOB
        '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    resolution_note TEXT,
    resolution_status TEXT
        CHECK (resolution_status IS NULL OR resolution_status IN ('cancelled', 'failed')),
    round_start     INTEGER NOT NULL DEFAULT 0 CHECK (round_start >= 0),
    rechecks        INTEGER NOT NULL DEFAULT 0 CHECK (rechecks >= 0),
    recheck_at      TEXT    CHECK (recheck_at IS NULL OR recheck_at GLOB
        '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    CHECK (status = 'processing' OR (lease_until IS NULL AND http_status IS NOT NULL)),
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL))
) STRICT;

INSERT INTO cancellations_0006 (id, client, provider, account, reference, status, idempotency_key, fingerprint,
    request, metadata, attempts, ambiguous, cancelled_at, error, upstream, http_status, lease_owner, lease_until,
    created_at, updated_at, batch_id, resolution_by, resolution_at, resolution_note, resolution_status,
    round_start, rechecks, recheck_at)
SELECT id, client, provider, account, reference, status, idempotency_key, fingerprint,
    request, metadata, attempts, ambiguous, cancelled_at, error, upstream, http_status, lease_owner, lease_until,
    created_at, updated_at, batch_id, resolution_by, resolution_at, resolution_note, resolution_status,
    round_start, rechecks, recheck_at
FROM cancellations ORDER BY rowid;

-- Drops its indexes and triggers with it.
DROP TABLE cancellations;
ALTER TABLE cancellations_0006 RENAME TO cancellations;

-- At most one record per reference that is not 'failed' (0001).
CREATE UNIQUE INDEX cancellations_one_live_per_reference
    ON cancellations (provider, account, reference) WHERE status <> 'failed';
-- The listing's reference filter (failed records included).
CREATE INDEX cancellations_by_reference ON cancellations (provider, account, reference, created_at);
-- The listing's order, and retention's scan of the oldest records.
CREATE INDEX cancellations_by_created ON cancellations (created_at, id);
-- The backlog (`stats`), the claim of due records and the listing of processing ones.
CREATE INDEX cancellations_processing ON cancellations (created_at, id) WHERE status = 'processing';
-- The operators' queue: its count at each scrape and its listing.
CREATE INDEX cancellations_in_review ON cancellations (created_at, id) WHERE status = 'needs_review';
-- The automatic re-checks (0004).
CREATE INDEX cancellations_by_recheck ON cancellations (recheck_at) WHERE recheck_at IS NOT NULL;

-- The triggers of 0004, unchanged.
CREATE TRIGGER cancellations_final_status_is_final
BEFORE UPDATE OF status ON cancellations
WHEN OLD.status <> 'processing' AND NEW.status <> OLD.status
    AND NOT (OLD.status = 'needs_review' AND NEW.status IN ('cancelled', 'failed')
        AND NEW.resolution_status IS NEW.status AND NEW.resolution_by IS NOT NULL
        AND NEW.resolution_at IS NOT NULL AND NEW.resolution_note IS NOT NULL)
    AND NOT (OLD.status = 'needs_review' AND NEW.status = 'processing'
        AND NEW.lease_owner IS NOT NULL AND NEW.lease_until IS NOT NULL AND NEW.resolution_status IS NULL)
BEGIN
    SELECT RAISE(ABORT, 'this cancellation status change is not allowed');
END;

CREATE TRIGGER cancellations_resolution_once
BEFORE UPDATE OF resolution_by, resolution_at, resolution_note, resolution_status ON cancellations
WHEN (OLD.resolution_by IS NOT NEW.resolution_by OR OLD.resolution_at IS NOT NEW.resolution_at
        OR OLD.resolution_note IS NOT NEW.resolution_note OR OLD.resolution_status IS NOT NEW.resolution_status)
    AND NOT (OLD.status = 'needs_review' AND OLD.resolution_status IS NULL
        AND NEW.status IN ('cancelled', 'failed') AND NEW.resolution_status IS NEW.status
        AND NEW.resolution_by IS NOT NULL AND NEW.resolution_at IS NOT NULL AND NEW.resolution_note IS NOT NULL)
BEGIN
    SELECT RAISE(ABORT, 'a resolution is written once, with the status change out of review');
END;

CREATE TRIGGER cancellations_born_unresolved
BEFORE INSERT ON cancellations
WHEN NEW.resolution_by IS NOT NULL OR NEW.resolution_at IS NOT NULL OR NEW.resolution_note IS NOT NULL
    OR NEW.resolution_status IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'a cancellation is resolved only out of review');
END;

-- ---- cancellation_attempts -------------------------------------------------------------------

CREATE TABLE cancellation_attempts_0006 (
    cancellation_id TEXT    NOT NULL REFERENCES cancellations (id),
    n               INTEGER NOT NULL CHECK (n >= 1),
    owner           TEXT    NOT NULL,
    started_at      TEXT    NOT NULL,
    finished_at     TEXT,
    latency_ms      INTEGER CHECK (latency_ms >= 0),
    outcome         TEXT    NOT NULL CHECK (outcome <> ''),
    http_status     INTEGER CHECK (http_status BETWEEN 100 AND 999),
    -- the provider's answer as the gateway parsed and serialized it
    body            TEXT,
    error           TEXT,
    PRIMARY KEY (cancellation_id, n),
    CHECK ((outcome = 'sent') = (finished_at IS NULL))
) STRICT, WITHOUT ROWID;

INSERT INTO cancellation_attempts_0006 (cancellation_id, n, owner, started_at, finished_at, latency_ms, outcome,
    http_status, body, error)
SELECT cancellation_id, n, owner, started_at, finished_at, latency_ms, outcome, http_status, body, error
FROM cancellation_attempts;

DROP TABLE cancellation_attempts;
ALTER TABLE cancellation_attempts_0006 RENAME TO cancellation_attempts;

-- ---- webhook_events --------------------------------------------------------------------------

CREATE TABLE webhook_events_0006 (
    id              TEXT    NOT NULL PRIMARY KEY,
    type            TEXT    NOT NULL CHECK (type IN ('cancellation.cancelled', 'cancellation.failed',
        'cancellation.needs_review', 'cancellation_batch.completed')),
    cancellation_id TEXT,
    batch_id        TEXT,
    order_key       TEXT    NOT NULL,
    -- exactly the body every attempt sends (and signs), serialized by the gateway
    payload         TEXT    NOT NULL,
    created_at      TEXT    NOT NULL CHECK (created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    CHECK ((cancellation_id IS NULL) <> (batch_id IS NULL))
) STRICT;

INSERT INTO webhook_events_0006 (id, type, cancellation_id, batch_id, order_key, payload, created_at)
SELECT id, type, cancellation_id, batch_id, order_key, payload, created_at FROM webhook_events ORDER BY rowid;

DROP TABLE webhook_events;
ALTER TABLE webhook_events_0006 RENAME TO webhook_events;

CREATE INDEX webhook_events_by_created ON webhook_events (created_at, id);
CREATE INDEX webhook_events_by_cancellation ON webhook_events (cancellation_id) WHERE cancellation_id IS NOT NULL;
CREATE UNIQUE INDEX webhook_events_one_per_batch ON webhook_events (batch_id)
    WHERE type = 'cancellation_batch.completed';

-- Retention (`ledger.retain_days`) keeps a record that answers a batch's item (a batch is read
-- from its items' records): this finds such an item without a scan. Batch writes only.
CREATE INDEX cancellation_batch_items_by_cancellation ON cancellation_batch_items (cancellation_id)
    WHERE cancellation_id IS NOT NULL;

-- Retention deletes records; each deleted record's foreign keys are checked in its keys table
-- (`idempotency_keys.cancellation_id` references it). Without this index every deleted record
-- scanned the whole keys table inside the purge's write: 500 records held the SQLite writer
-- ~1.5 s with 30,000 keys. One entry per keyed cancel, the price of a purge that never stalls.
CREATE INDEX idempotency_keys_by_cancellation ON idempotency_keys (cancellation_id);
