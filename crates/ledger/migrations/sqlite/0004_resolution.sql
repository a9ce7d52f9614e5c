-- Operator actions on `needs_review` (SPEC §9), SQLite flavour (keep in step with
-- ../postgres/0004_resolution.sql).
--
-- A record in review may leave it in exactly two ways, and the triggers below refuse any other:
-- - resolved by an operator: `needs_review → cancelled | failed`, with who, when, why and to
--   what stored in the `resolution_*` columns of the same UPDATE, written once, never changed;
-- - driven again (an operator's retry, or the automatic re-check): `needs_review → processing`,
--   leased to the driver that takes it, never after a resolution.

-- Who resolved it (the client name), when, the note, and the status chosen: all four or none.
ALTER TABLE cancellations ADD COLUMN resolution_by TEXT;
ALTER TABLE cancellations ADD COLUMN resolution_at TEXT CHECK (resolution_at IS NULL OR resolution_at GLOB
    '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z');
ALTER TABLE cancellations ADD COLUMN resolution_note TEXT;
ALTER TABLE cancellations ADD COLUMN resolution_status TEXT
    CHECK (resolution_status IS NULL OR resolution_status IN ('cancelled', 'failed'));
-- `attempts` when the record was last put back to processing from review: the attempts of the
-- current round are those after it (`retry.max_attempts` bounds a round; the earlier ones stay
-- the record's history and evidence).
ALTER TABLE cancellations ADD COLUMN round_start INTEGER NOT NULL DEFAULT 0 CHECK (round_start >= 0);
-- Automatic re-checks (`providers.{id}.review_recheck_s`): how many were taken, and when the
-- next one is due (set only on a record in review, cleared when it is taken).
ALTER TABLE cancellations ADD COLUMN rechecks INTEGER NOT NULL DEFAULT 0 CHECK (rechecks >= 0);
ALTER TABLE cancellations ADD COLUMN recheck_at TEXT CHECK (recheck_at IS NULL OR recheck_at GLOB
    '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z');

CREATE INDEX cancellations_by_recheck ON cancellations (recheck_at) WHERE recheck_at IS NOT NULL;

DROP TRIGGER cancellations_final_status_is_final;

-- A final status never changes, except the two ways out of review.
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

-- A resolution is written with the status change out of review, whole, and never changed.
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
