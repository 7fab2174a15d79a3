-- The workbench (issue 17): the model's time per job in the ledger, and who saved an order's ground truth,
-- when, with every replaced version kept so a reviewer's mistake can be undone.

-- Milliseconds spent in the model for the whole order (sum over its invoices); NULL for jobs written before.
ALTER TABLE benchmarking.extraction_jobs ADD COLUMN IF NOT EXISTS model_ms bigint;

ALTER TABLE benchmarking.ground_truth_items ADD COLUMN IF NOT EXISTS saved_by text;
ALTER TABLE benchmarking.ground_truth_items ADD COLUMN IF NOT EXISTS saved_at timestamptz;

-- One row per replaced version of an order's ground truth: its lines as a JSON array, who saved that version and
-- when, and who replaced it and when. Restoring a version replaces the current one (which is kept here in turn).
CREATE TABLE IF NOT EXISTS benchmarking.ground_truth_versions (
    id bigserial PRIMARY KEY,
    order_id bigint NOT NULL,
    items jsonb NOT NULL,
    saved_by text,
    saved_at timestamptz,
    replaced_by text,
    replaced_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ground_truth_versions_order_idx ON benchmarking.ground_truth_versions (order_id, id);
