"""Completion events and their outbox ``benchmarking.event_outbox`` (docs/events-and-lanes.md).

When a job becomes `done` or `failed`, the statement that makes it so also writes one outbox row
(:func:`outbox_insert`, composed into :data:`invoice_pipeline.tables.items.WRITE_ORDER` and the ledger's failure
transitions), so the event exists exactly when the transition committed: a rollback writes neither. The invocation
that committed then publishes that row to EventBridge (:meth:`EventPublisher.publish`) and marks it sent; a row
still unsent after ``OUTBOX_RETRY_SECONDS`` (the put failed, or the function died between the commit and the put)
is published by the next consumer invocation or producer run (:meth:`EventPublisher.publish_stale`). Delivery is
at least once: a receiver deduplicates by ``(order_id, llm, finished_at)``, all three in the event's detail.

This module owns every statement on the outbox; it imports only the database layer and the clients.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from invoice_pipeline.clients import AwsClients, ClientConfig
from invoice_pipeline.observability import logger
from invoice_pipeline.tables.db import Connection, ConnectionPool

EVENT_SOURCE = "invoice-pipeline"
DETAIL_TYPES = {"done": "Invoice extraction done", "failed": "Invoice extraction failed"}
PUT_EVENTS_MAX_ENTRIES = 10  # the PutEvents maximum per call
STALE_BATCH = 100  # rows published per sweep; the next sweep takes the rest
EVENTS_CLIENT = ClientConfig(read_timeout=5, connect_timeout=3, attempts=3)

# The detail of a job row `job` that the transition just returned (its new values). Counts and cost are 0 for a
# failed job that never had any. finished_at is ISO 8601 in UTC with microseconds: with order_id and llm it is the
# deduplication key, so it must be exactly the ledger's value. `error` is the redacted last_error, failed only.
# The line-evidence columns add `doubtful_count` here (the number of the job's lines whose trust is `doubtful`).
_DETAIL = """jsonb_strip_nulls(jsonb_build_object(
        'order_id', job.order_id,
        'llm', job.llm,
        'status', job.status,
        'invoice_count', coalesce(job.invoice_count, 0),
        'item_count', coalesce(job.item_count, 0),
        'cost_usd', coalesce(job.cost_usd, 0),
        'attempts', job.attempts,
        'finished_at', to_char(job.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'error', CASE WHEN job.status = 'failed' THEN job.last_error END
    ))"""

# The columns the transition's RETURNING must give for :func:`outbox_insert`.
JOB_EVENT_COLUMNS = "order_id, llm, status, invoice_count, item_count, cost_usd, attempts, finished_at, last_error"


def outbox_insert(job_cte: str) -> str:
    """SQL: insert the event of each row of the CTE ``job_cte`` (a transition ``RETURNING`` :data:`JOB_EVENT_COLUMNS`)
    into the outbox; returns the new row's ``id``. Composed into the transition's statement: one transaction."""
    return f"""INSERT INTO benchmarking.event_outbox (order_id, llm, detail_type, detail)
    SELECT job.order_id, job.llm,
           CASE job.status WHEN 'done' THEN '{DETAIL_TYPES["done"]}' ELSE '{DETAIL_TYPES["failed"]}' END,
           {_DETAIL}
    FROM {job_cte} AS job
    RETURNING id"""


SELECT_UNSENT = """
SELECT id, detail_type, detail::text FROM benchmarking.event_outbox
WHERE id = ANY(CAST(:ids AS bigint[])) AND sent_at IS NULL
ORDER BY id
"""
# Unsent rows older than the retry delay. SKIP LOCKED: two sweeps at once take different rows.
CLAIM_STALE = """
SELECT id, detail_type, detail::text FROM benchmarking.event_outbox
WHERE sent_at IS NULL AND created_at < now() - make_interval(secs => CAST(:retry_seconds AS double precision))
ORDER BY created_at
LIMIT CAST(:limit AS integer)
FOR UPDATE SKIP LOCKED
"""
MARK_SENT = """
UPDATE benchmarking.event_outbox SET sent_at = now(), publish_attempts = publish_attempts + 1, last_error = NULL
WHERE id = ANY(CAST(:ids AS bigint[]))
"""
MARK_FAILED = """
UPDATE benchmarking.event_outbox SET publish_attempts = publish_attempts + 1, last_error = :error
WHERE id = ANY(CAST(:ids AS bigint[])) AND sent_at IS NULL
"""
COUNT_UNSENT = "SELECT count(*) FROM benchmarking.event_outbox WHERE sent_at IS NULL"


class EventsClient(Protocol):
    """The one EventBridge call the pipeline makes (a boto3 ``events`` client, or a fake in unit tests)."""

    def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class OutboxRow:
    id: int
    detail_type: str
    detail: str  # JSON text, sent as it is


@dataclass(frozen=True)
class Published:
    sent: int = 0
    failed: int = 0


class EventPublisher:
    """Publishes outbox rows to the bus ``bus_name`` with the runtime's ``events`` client (made on first use)."""

    def __init__(self, clients: AwsClients, bus_name: str, retry_seconds: int) -> None:
        self._clients = clients
        self.bus_name = bus_name
        self.retry_seconds = retry_seconds

    def client(self) -> EventsClient:
        client: EventsClient = self._clients.get("events", EVENTS_CLIENT)
        return client

    def publish(self, connection: Connection, ids: Sequence[int]) -> Published:
        """Publish the given rows that are still unsent and mark what the bus accepted. Never raises for the bus:
        a row it did not take stays unsent for the next sweep."""
        if not ids:
            return Published()
        rows = [OutboxRow(*row) for row in connection.run(SELECT_UNSENT, ids=list(ids))]
        return self._put(connection, rows)

    def publish_stale(self, connection: Connection) -> Published:
        """Publish rows left unsent for longer than the retry delay (in one transaction that locks them)."""
        connection.run("BEGIN")
        try:
            rows = [
                OutboxRow(*row)
                for row in connection.run(CLAIM_STALE, retry_seconds=self.retry_seconds, limit=STALE_BATCH)
            ]
            published = self._put(connection, rows)
        except BaseException:
            connection.run("ROLLBACK")
            raise
        connection.run("COMMIT")
        if rows:
            logger.info("stale completion events published", extra={"sent": published.sent, "failed": published.failed})
        return published

    def _entry(self, row: OutboxRow) -> dict[str, Any]:
        bus = self.bus_name
        return {"Source": EVENT_SOURCE, "DetailType": row.detail_type, "Detail": row.detail, "EventBusName": bus}

    def _put(self, connection: Connection, rows: Sequence[OutboxRow]) -> Published:
        sent: list[int] = []
        failed: list[int] = []
        errors: list[str] = []
        for start in range(0, len(rows), PUT_EVENTS_MAX_ENTRIES):
            batch = rows[start : start + PUT_EVENTS_MAX_ENTRIES]
            entries = [self._entry(row) for row in batch]
            try:
                response = self.client().put_events(Entries=entries)
            except Exception as error:  # the bus is unreachable or refuses us: every row of the batch waits
                failed.extend(row.id for row in batch)
                errors.append(f"{type(error).__name__}: {error}")
                continue
            for row, entry in zip(batch, response.get("Entries", []), strict=False):
                if entry.get("EventId"):
                    sent.append(row.id)
                else:
                    failed.append(row.id)
                    errors.append(f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage')}")
            failed.extend(row.id for row in batch[len(response.get("Entries", [])) :])
        if sent:
            connection.run(MARK_SENT, ids=sent)
        if failed:
            error_text = "; ".join(dict.fromkeys(errors))[:1000]
            connection.run(MARK_FAILED, ids=failed, error=error_text)
            logger.warning("completion events not published: left for the next sweep", extra={"error": error_text})
        return Published(sent=len(sent), failed=len(failed))


def publish_stale_events(publisher: EventPublisher, pool: ConnectionPool) -> Published:
    """The sweep a consumer invocation or a producer run ends with; a failure is logged, never raised (the events
    wait for the next sweep, and the caller's own work is already done)."""
    try:
        with pool.connection() as connection:
            return publisher.publish_stale(connection)
    except Exception:
        logger.exception("could not sweep the event outbox")
        return Published()


def publish_now(publisher: EventPublisher, pool: ConnectionPool, outbox_ids: Sequence[int]) -> Published:
    """Publish the events a transition just committed; a failure is logged (the sweep publishes them later)."""
    if not outbox_ids:
        return Published()
    try:
        with pool.connection() as connection:
            return publisher.publish(connection, outbox_ids)
    except Exception:
        logger.exception("could not publish the completion event: the outbox keeps it")
        return Published()


def unsent_count(connection: Connection) -> int:
    return int(connection.run(COUNT_UNSENT)[0][0])


def event_detail(body: str) -> dict[str, Any]:
    """The detail of an event as EventBridge delivers it to a queue target (the demo and the tests read it)."""
    detail: dict[str, Any] = json.loads(body)["detail"]
    return detail
