-- Completion events (docs/events-and-lanes.md): the outbox. One row per `done` or `failed` transition, written
-- by the same statement as the transition, so an event exists exactly when its transition committed. The
-- invocation that committed publishes it and sets sent_at; a row still unsent after OUTBOX_RETRY_SECONDS is
-- published by the next consumer invocation or producer run (at least once: receivers deduplicate by
-- order_id, llm and finished_at, all in detail).
CREATE TABLE IF NOT EXISTS benchmarking.event_outbox (
    id bigserial PRIMARY KEY,
    order_id bigint NOT NULL,
    llm text NOT NULL,
    detail_type text NOT NULL,
    detail jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    publish_attempts integer NOT NULL DEFAULT 0,
    last_error text
);
-- The sweep reads only the unsent rows, oldest first.
CREATE INDEX IF NOT EXISTS event_outbox_unsent_idx ON benchmarking.event_outbox (created_at) WHERE sent_at IS NULL;
