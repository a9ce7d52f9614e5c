-- Trip cancellation (SPEC §10), SQLite flavour (keep in step with ../postgres/0003_batches.sql).
--
-- A batch stores no status: its status follows from its items' records every time it is read,
-- so no code path that settles a cancellation (the driver, a resume after a crash, an operator)
-- has to remember the batch, and a batch can never report a state its items have left.

-- The batch a cancellation was created for; NULL for a single cancel.
ALTER TABLE cancellations ADD COLUMN batch_id TEXT;

CREATE TABLE cancellation_batches (
    id              TEXT    NOT NULL PRIMARY KEY,
    client          TEXT    NOT NULL,
    idempotency_key TEXT,
    fingerprint     TEXT    NOT NULL,
    metadata        TEXT    NOT NULL CHECK (json_valid(metadata)),
    owner           TEXT    NOT NULL,
    -- while the creating request records its items: until when it may (a replay with the key
    -- is then 409); NULL once every item is recorded (sealed)
    recording_until TEXT    CHECK (recording_until IS NULL OR recording_until GLOB
        '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    created_at      TEXT    NOT NULL CHECK (created_at GLOB
        '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    updated_at      TEXT    NOT NULL
) STRICT;

CREATE UNIQUE INDEX cancellation_batches_by_key
    ON cancellation_batches (client, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- One row per item, written with the batch, before any item is recorded or sent: an item names
-- the cancellation id it is about to be recorded under (or, once known, the record that answered
-- for it), or carries its own problem when it was shed and never recorded.
CREATE TABLE cancellation_batch_items (
    batch_id         TEXT    NOT NULL REFERENCES cancellation_batches (id),
    idx              INTEGER NOT NULL CHECK (idx BETWEEN 0 AND 49),
    cancellation_id  TEXT,
    item_error       TEXT    CHECK (item_error IS NULL OR json_valid(item_error)),
    item_http_status INTEGER CHECK (item_http_status IS NULL OR item_http_status BETWEEN 100 AND 599),
    PRIMARY KEY (batch_id, idx),
    CHECK ((cancellation_id IS NULL) <> (item_error IS NULL)),
    CHECK ((item_error IS NULL) = (item_http_status IS NULL))
) STRICT, WITHOUT ROWID;
