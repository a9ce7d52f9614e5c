-- Less work per cancel (issue 20), PostgreSQL flavour (keep in step with ../sqlite/0006_hot_path.sql).
--
-- `cancellations_by_status (status, created_at, id)` indexed every record, and every record's
-- end moved its entry. Its readers only ever ask for the two open statuses (the backlog and the
-- claim of due records: `processing`; the operators' queue and its count: `needs_review`), so two
-- partial indexes replace it: a final record leaves them and costs nothing more there. (JSONB
-- columns carry no CHECK to drop: the SQLite flavour's `json_valid` CHECKs are gone there.)

DROP INDEX cancellations_by_status;
-- The backlog (`stats`), the claim of due records and the listing of processing ones.
CREATE INDEX cancellations_processing ON cancellations (created_at, id) WHERE status = 'processing';
-- The operators' queue: its count at each scrape and its listing.
CREATE INDEX cancellations_in_review ON cancellations (created_at, id) WHERE status = 'needs_review';

-- Retention (`ledger.retain_days`) keeps a record that answers a batch's item (a batch is read
-- from its items' records): this finds such an item without a scan. Batch writes only.
CREATE INDEX cancellation_batch_items_by_cancellation ON cancellation_batch_items (cancellation_id)
    WHERE cancellation_id IS NOT NULL;

-- Retention deletes records; each deleted record's foreign keys are checked in its keys table
-- (`idempotency_keys.cancellation_id` references it). Without this index every deleted record
-- scanned the whole keys table inside the purge's write: 500 records held the SQLite writer
-- ~1.5 s with 30,000 keys. One entry per keyed cancel, the price of a purge that never stalls.
CREATE INDEX idempotency_keys_by_cancellation ON idempotency_keys (cancellation_id);
