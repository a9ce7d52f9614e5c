-- The cancellation ledger, PostgreSQL flavour (keep in step with ../sqlite/0001_ledger.sql).
--
-- Objects are created unqualified, so they land in the first schema of the search_path.

CREATE TABLE cancellations (
    id              TEXT        NOT NULL PRIMARY KEY,
    client          TEXT        NOT NULL,
    provider        TEXT        NOT NULL,
    account         TEXT        NOT NULL,
    reference       TEXT        NOT NULL,
    status          TEXT        NOT NULL
        CHECK (status IN ('processing', 'cancelled', 'failed', 'needs_review')),
    idempotency_key TEXT,
    fingerprint     TEXT        NOT NULL,
    request         JSONB       NOT NULL,
    metadata        JSONB       NOT NULL,
    -- upstream requests started for this record (an attempt row exists for each)
    attempts        BIGINT      NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- an attempt may have reached the provider without us knowing its effect: one that ended
    -- ambiguous, or one that was started and never finished (still 'sent')
    ambiguous       BOOLEAN     NOT NULL DEFAULT FALSE,
    cancelled_at    TIMESTAMPTZ,
    error           JSONB,
    upstream        JSONB,
    http_status     BIGINT      CHECK (http_status BETWEEN 100 AND 599),
    -- while processing: who drives the record and until when; once final: who finalized it
    lease_owner     TEXT,
    lease_until     TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    CHECK (status = 'processing' OR (lease_until IS NULL AND http_status IS NOT NULL)),
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL))
);

-- At most one record per reference that is not 'failed': one upstream cancel in flight per
-- reference across all replicas, and a reference cancelled through the gateway stays answered
-- by its record.
CREATE UNIQUE INDEX cancellations_one_live_per_reference
    ON cancellations (provider, account, reference) WHERE status <> 'failed';
CREATE INDEX cancellations_by_reference ON cancellations (provider, account, reference, created_at);
CREATE INDEX cancellations_by_created ON cancellations (created_at, id);
CREATE INDEX cancellations_by_status ON cancellations (status, created_at, id);

-- A final status never changes, whatever statement tries.
CREATE FUNCTION cancellations_final_status_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'processing' AND NEW.status IS DISTINCT FROM OLD.status THEN
        RAISE EXCEPTION 'a final cancellation status never changes (% is %)', OLD.id, OLD.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER cancellations_final_status_is_final
BEFORE UPDATE OF status ON cancellations
FOR EACH ROW EXECUTE FUNCTION cancellations_final_status_is_final();

-- The key row is inserted before its record in the same transaction (the key's unique index is
-- what serializes racing requests), hence the deferred foreign key.
CREATE TABLE idempotency_keys (
    client          TEXT        NOT NULL,
    idempotency_key TEXT        NOT NULL,
    cancellation_id TEXT        NOT NULL REFERENCES cancellations (id) DEFERRABLE INITIALLY DEFERRED,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (client, idempotency_key)
);

CREATE INDEX idempotency_keys_by_created ON idempotency_keys (created_at);

-- One row per upstream request, written ('sent') BEFORE the request leaves.
CREATE TABLE cancellation_attempts (
    cancellation_id TEXT        NOT NULL REFERENCES cancellations (id),
    n               BIGINT      NOT NULL CHECK (n >= 1),
    owner           TEXT        NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ,
    latency_ms      BIGINT      CHECK (latency_ms >= 0),
    outcome         TEXT        NOT NULL CHECK (outcome <> ''),
    http_status     BIGINT      CHECK (http_status BETWEEN 100 AND 999),
    body            JSONB,
    error           TEXT,
    PRIMARY KEY (cancellation_id, n),
    CHECK ((outcome = 'sent') = (finished_at IS NULL))
);
