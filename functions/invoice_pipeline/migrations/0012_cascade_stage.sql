-- Cascades (docs/cascade.md): an LLM_MODELS entry FIRST>SECOND[>THIRD] reads each invoice with its first stage and
-- passes it on only when the answer's evidence does not hold. Expand-only: both columns are new and nullable.

-- The stage (one model name of the cascade) whose answer this line is; NULL for the rows of single models.
ALTER TABLE benchmarking.invoice_items ADD COLUMN IF NOT EXISTS stage text;
-- The answers a cascade's stages gave so far, kept with the job while it waits (throttled, configuration error,
-- transient failure) so that no stage reads an invoice twice: a JSON array of
-- {"invoice_index", "source", "stage", "answer"}. Set to NULL when the job is done.
ALTER TABLE benchmarking.extraction_jobs ADD COLUMN IF NOT EXISTS stage_answers jsonb;
