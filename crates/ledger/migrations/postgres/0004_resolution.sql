-- Operator actions on `needs_review` (SPEC §9), PostgreSQL flavour (keep in step with
-- ../sqlite/0004_resolution.sql).
--
-- A record in review may leave it in exactly two ways, and the trigger below refuses any other:
-- - resolved by an operator: `needs_review → cancelled | failed`, with who, when, why and to
--   what stored in the `resolution_*` columns of the same UPDATE, written once, never changed;
-- - driven again (an operator's retry, or the automatic re-check): `needs_review → processing`,
--   leased to the driver that takes it, never after a resolution.

ALTER TABLE cancellations
    -- who resolved it (the client name), when, the note, and the status chosen: all four or none
    ADD COLUMN resolution_by     TEXT,
    ADD COLUMN resolution_at     TIMESTAMPTZ,
    ADD COLUMN resolution_note   TEXT,
    ADD COLUMN resolution_status TEXT CHECK (resolution_status IN ('cancelled', 'failed')),
    -- `attempts` when the record was last put back to processing from review: the attempts of
    -- the current round are those after it
    ADD COLUMN round_start       BIGINT NOT NULL DEFAULT 0 CHECK (round_start >= 0),
    -- automatic re-checks: how many were taken, and when the next one is due
    ADD COLUMN rechecks          BIGINT NOT NULL DEFAULT 0 CHECK (rechecks >= 0),
    ADD COLUMN recheck_at        TIMESTAMPTZ,
    ADD CONSTRAINT cancellations_resolution_whole CHECK (
        (resolution_status IS NULL) = (resolution_by IS NULL)
        AND (resolution_status IS NULL) = (resolution_at IS NULL)
        AND (resolution_status IS NULL) = (resolution_note IS NULL)),
    ADD CONSTRAINT cancellations_resolution_is_status CHECK (resolution_status IS NULL OR resolution_status = status);

CREATE INDEX cancellations_by_recheck ON cancellations (recheck_at) WHERE recheck_at IS NOT NULL;

-- A final status never changes, except the two ways out of review; a resolution is written with
-- the change out of review and never changed.
CREATE OR REPLACE FUNCTION cancellations_final_status_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF ROW(OLD.resolution_by, OLD.resolution_at, OLD.resolution_note, OLD.resolution_status)
            IS DISTINCT FROM ROW(NEW.resolution_by, NEW.resolution_at, NEW.resolution_note, NEW.resolution_status)
        AND NOT (OLD.status = 'needs_review' AND OLD.resolution_status IS NULL
            AND NEW.status IN ('cancelled', 'failed') AND NEW.resolution_status IS NOT DISTINCT FROM NEW.status) THEN
        RAISE EXCEPTION 'a resolution is written once, with the status change out of review (% is %)', OLD.id, OLD.status
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.status <> 'processing' AND NEW.status IS DISTINCT FROM OLD.status
        AND NOT (OLD.status = 'needs_review' AND NEW.status IN ('cancelled', 'failed')
            AND NEW.resolution_status IS NOT DISTINCT FROM NEW.status)
        AND NOT (OLD.status = 'needs_review' AND NEW.status = 'processing'
            AND NEW.lease_owner IS NOT NULL AND NEW.lease_until IS NOT NULL AND NEW.resolution_status IS NULL) THEN
        RAISE EXCEPTION 'this cancellation status change is not allowed (% is %)', OLD.id, OLD.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

-- Fired on every update, not only of `status`: the resolution columns are guarded too.
DROP TRIGGER cancellations_final_status_is_final ON cancellations;
CREATE TRIGGER cancellations_final_status_is_final
BEFORE UPDATE ON cancellations
FOR EACH ROW EXECUTE FUNCTION cancellations_final_status_is_final();
