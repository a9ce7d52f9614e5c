-- One row that `/readyz` rewrites to prove the ledger takes writes: a read succeeds on a full disk
-- (keep in step with ../postgres/0002_write_probe.sql).
CREATE TABLE ledger_probe (
    id        INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    probed_at TEXT    NOT NULL,
    -- the gateway process (lease owner id) that probed last
    probed_by TEXT    NOT NULL,
    -- rewritten by each probe, so that it needs as much room in the log as a cancellation's
    -- largest write: room for the probe is room for them (a full disk may still fit a
    -- one-page write into the space failed writes left allocated)
    padding   BLOB
);
