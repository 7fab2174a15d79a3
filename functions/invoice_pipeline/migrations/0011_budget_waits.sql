-- Waiting for a model's budget is not an attempt: the ledger counts those waits apart (how many, how long), and
-- remembers the turn an order was handed back for, with the budget tokens it holds for that turn (NULL: none).
ALTER TABLE benchmarking.extraction_jobs ADD COLUMN IF NOT EXISTS budget_waits integer NOT NULL DEFAULT 0;
ALTER TABLE benchmarking.extraction_jobs
    ADD COLUMN IF NOT EXISTS budget_wait_seconds double precision NOT NULL DEFAULT 0;
ALTER TABLE benchmarking.extraction_jobs ADD COLUMN IF NOT EXISTS budget_held_tokens integer;
ALTER TABLE benchmarking.extraction_jobs ADD COLUMN IF NOT EXISTS budget_turn_at timestamptz;
