-- Outcome events and their webhook deliveries (SPEC §8), SQLite flavour (keep in step with
-- ../postgres/0005_events.sql).
--
-- An event and one pending delivery per endpoint that takes it are inserted in the SAME
-- transaction that makes a record final (or puts it in review): nothing final without its events.
-- A delivery is the outbox row a dispatcher claims (a lease, as records have), tries and settles.

CREATE TABLE webhook_events (
    id              TEXT    NOT NULL PRIMARY KEY,
    type            TEXT    NOT NULL CHECK (type IN ('cancellation.cancelled', 'cancellation.failed',
        'cancellation.needs_review', 'cancellation_batch.completed')),
    cancellation_id TEXT,
    batch_id        TEXT,
    -- what orders deliveries: one reference's events reach an endpoint in creation order
    order_key       TEXT    NOT NULL,
    -- exactly the body every attempt sends (and signs)
    payload         TEXT    NOT NULL CHECK (json_valid(payload)),
    created_at      TEXT    NOT NULL CHECK (created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    -- a cancellation's event names it; a batch's names the batch
    CHECK ((cancellation_id IS NULL) <> (batch_id IS NULL))
) STRICT;

CREATE INDEX webhook_events_by_created ON webhook_events (created_at, id);
CREATE INDEX webhook_events_by_cancellation ON webhook_events (cancellation_id) WHERE cancellation_id IS NOT NULL;
-- One completion event per batch.
CREATE UNIQUE INDEX webhook_events_one_per_batch ON webhook_events (batch_id)
    WHERE type = 'cancellation_batch.completed';

CREATE TABLE webhook_deliveries (
    id               INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    event_id         TEXT    NOT NULL REFERENCES webhook_events (id),
    endpoint         TEXT    NOT NULL,
    -- the event's, copied: the claim orders and blocks by them without a join
    order_key        TEXT    NOT NULL,
    event_created_at TEXT    NOT NULL CHECK (event_created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  TEXT    CHECK (next_attempt_at IS NULL OR next_attempt_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    lease_owner      TEXT,
    lease_until      TEXT    CHECK (lease_until IS NULL OR lease_until GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL,
    CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
) STRICT;

-- The claim's scan (due pending deliveries) and its head-of-line test (an older pending
-- delivery of the same endpoint and order key).
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (endpoint, order_key, event_created_at, id)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event_id, id);

CREATE TABLE webhook_delivery_attempts (
    delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries (id),
    n           INTEGER NOT NULL CHECK (n >= 1),
    at          TEXT    NOT NULL,
    http_status INTEGER CHECK (http_status IS NULL OR http_status BETWEEN 100 AND 599),
    latency_ms  INTEGER NOT NULL CHECK (latency_ms >= 0),
    -- why it did not deliver (timeout, connection refused, HTTP 500…); NULL when it did
    error       TEXT,
    -- the start of the receiver's answer, bounded by the dispatcher
    answer      TEXT,
    PRIMARY KEY (delivery_id, n)
) STRICT;

-- Endpoints the gateway knows; disabled (a 410 from the receiver, or `enabled = false`) ones
-- are never claimed for. Synchronised with the configuration at start.
CREATE TABLE webhook_endpoints (
    name            TEXT NOT NULL PRIMARY KEY,
    disabled_at     TEXT,
    disabled_reason TEXT
) STRICT;
