-- The answers of a job's invoices already extracted, kept across hand-backs of the same job (throttled, or a
-- transient failure) so an invoice is billed once: a JSON array of {"invoice_index", "source", "answer"}. Written
-- when the job goes back to `queued`, read by the next claim, set to NULL when the job commits (`done`) or fails.
ALTER TABLE benchmarking.extraction_jobs ADD COLUMN IF NOT EXISTS kept_answers jsonb;
