-- Line evidence (docs/trust.md): where each line was read, what checks it passed, how far to trust it; and the
-- per-invoice evidence of each job. Expand-only: every column is new and nullable, rows written before keep NULL.

-- 1-based page of the invoice's document (or image segment) the line was read on.
ALTER TABLE benchmarking.invoice_items ADD COLUMN IF NOT EXISTS page integer;
-- [x0, y0, x1, y1] as fractions of that page, origin top left.
ALTER TABLE benchmarking.invoice_items ADD COLUMN IF NOT EXISTS bbox jsonb;
-- The printed row as read (at most 1,000 characters: the normaliser cuts longer ones).
ALTER TABLE benchmarking.invoice_items ADD COLUMN IF NOT EXISTS source_text text;
-- {"passed": [check names], "failed": [check names]}
ALTER TABLE benchmarking.invoice_items ADD COLUMN IF NOT EXISTS checks jsonb;
-- verified | plausible | doubtful
ALTER TABLE benchmarking.invoice_items ADD COLUMN IF NOT EXISTS trust text;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'invoice_items_evidence_check') THEN
        ALTER TABLE benchmarking.invoice_items ADD CONSTRAINT invoice_items_evidence_check CHECK (
            (page IS NULL OR page >= 1)
            AND (bbox IS NULL OR (jsonb_typeof(bbox) = 'array' AND jsonb_array_length(bbox) = 4))
            AND (source_text IS NULL OR char_length(source_text) <= 1000)
            AND (checks IS NULL OR jsonb_typeof(checks) = 'object')
            AND (trust IS NULL OR trust IN ('verified', 'plausible', 'doubtful'))
        ) NOT VALID;  -- rows written before hold NULL in every new column: no need to scan them under a lock
    END IF;
END
$$;

-- Per invoice of a done job: line count, lines total, printed total, item-like rows, and the checks passed and
-- failed (a JSON array, one object per invoice; NULL for jobs written before).
ALTER TABLE benchmarking.extraction_jobs ADD COLUMN IF NOT EXISTS evidence jsonb;
