-- What the consumer records beyond 0001: the currency of each item's invoice, and which SQS message a job
-- failed permanently for (re-deliveries of that very message fail fast; a redriven copy has a new id).
ALTER TABLE benchmarking.invoice_items ADD COLUMN IF NOT EXISTS currency text;
ALTER TABLE benchmarking.extraction_jobs ADD COLUMN IF NOT EXISTS failed_message_id text;
