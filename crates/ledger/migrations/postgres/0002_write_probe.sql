-- One row that `/readyz` rewrites to prove the ledger takes writes: a read succeeds on a full disk
-- (keep in step with ../sqlite/0002_write_probe.sql, which pads the row: see sql.rs PROBE_WRITE).
CREATE TABLE ledger_probe (
    id        INTEGER     NOT NULL PRIMARY KEY CHECK (id = 1),
    probed_at TIMESTAMPTZ NOT NULL,
    -- the gateway process (lease owner id) that probed last
    probed_by TEXT        NOT NULL
);
