-- Rate limits (docs/architecture.md §9): how long each job has waited for throttling (bounded by MAX_THROTTLE_WAIT_SECONDS;
-- throttled deliveries are not failures), and the budget per model shared by every container.
ALTER TABLE benchmarking.extraction_jobs ADD COLUMN IF NOT EXISTS throttles integer NOT NULL DEFAULT 0;
ALTER TABLE benchmarking.extraction_jobs
    ADD COLUMN IF NOT EXISTS throttled_seconds double precision NOT NULL DEFAULT 0;

-- One row per paced model: the limits (tpm, rpm per window_seconds, 60 but for scaled-down benchmarks), the
-- share kept free (margin), and two token buckets (tokens, requests) as of refilled_at. A level below zero is
-- the queue of reservations waiting for their turn. blocked_until: the provider's last 429 named this time.
CREATE TABLE IF NOT EXISTS benchmarking.model_budgets (
    llm text PRIMARY KEY,
    tpm integer NOT NULL CHECK (tpm > 0),
    rpm integer NOT NULL CHECK (rpm > 0),
    margin double precision NOT NULL DEFAULT 0.05 CHECK (margin >= 0 AND margin < 1),
    window_seconds double precision NOT NULL DEFAULT 60 CHECK (window_seconds > 0),
    tokens double precision NOT NULL,
    requests double precision NOT NULL,
    refilled_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    blocked_until timestamptz,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
