"""The ledger's reads (``benchmarking.extraction_jobs``) for the operator, ``local/`` and the workbench.

Part of the ledger's owner with :mod:`invoice_pipeline.tables.ledger`, whose lease rules these reads use: the status
and its stale `processing` listing, the capacity figures, retry-failed, the outcomes ``local/`` checks and the
job rows of the comparison (the report's and the workbench's figures, ``invoices_cli/comparison.py``). Kept
apart from the transitions so that the handlers, which only need those, do not import these result types at cold
start.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from invoice_pipeline.settings import DEFAULT_PROCESSING_LEASE_SECONDS, DEFAULT_REQUEUE_LEASE_SECONDS
from invoice_pipeline.tables.db import Connection, transaction
from invoice_pipeline.tables.ledger import (
    STALE_PROCESSING_SECONDS,
    JobStatus,
    processing_lease_end,
    processing_lease_ended,
)
from invoice_pipeline.tables.orders import ORDERS_OF_RESTAURANTS_AND_DAYS

# --- the operator's reads and retry-failed -------------------------------------------------------------------

JOB_COUNTS_SQL = """
SELECT llm, status, count(*) AS jobs
FROM benchmarking.extraction_jobs
GROUP BY llm, status
ORDER BY llm, status
"""

# Age in seconds of the oldest job waiting in the queue (since enqueue) and of the oldest one being processed.
OLDEST_PENDING_SQL = """
SELECT status,
       extract(epoch FROM now() - min(CASE WHEN status = 'queued' THEN enqueued_at ELSE started_at END))::float8
FROM benchmarking.extraction_jobs
WHERE status IN ('queued', 'processing')
GROUP BY status
"""

# Per model: model tries (attempts), hand-backs for a provider 429 (throttles) and hand-backs to wait for the
# model's budget, which are not attempts (budget_waits, and how long they waited in total).
ACTIVITY_SQL = """
SELECT llm, sum(attempts), sum(throttles), sum(budget_waits), sum(budget_wait_seconds)::float8
FROM benchmarking.extraction_jobs
GROUP BY llm
ORDER BY llm
"""

# Done orders whose validation found something (the consumer stores [] when it found nothing; NULL is a job
# written before validation was stored).
DONE_WITH_WARNINGS_SQL = """
SELECT llm, count(*) AS jobs
FROM benchmarking.extraction_jobs
WHERE status = 'done' AND warnings IS NOT NULL AND warnings <> CAST('[]' AS jsonb)
GROUP BY llm
"""

# `processing` jobs whose claim lease ended: no delivery is working on them (it crashed or timed out). The
# producer re-enqueues each once its lease ended longer ago than the re-enqueue lease (ledger.STALE_PROCESSING).
STALE_PROCESSING_SQL = f"""
SELECT order_id, llm, attempts, last_error,
       extract(epoch FROM now() - started_at)::float8 AS started_seconds_ago,
       extract(epoch FROM {processing_lease_end(STALE_PROCESSING_SECONDS)} - now())::float8 AS requeued_in_seconds,
       count(*) OVER () AS total
FROM benchmarking.extraction_jobs AS job
WHERE status = 'processing'
  AND {processing_lease_ended("CAST(:processing_lease_seconds AS integer)")}
ORDER BY started_at, order_id, llm
LIMIT CAST(:limit AS integer)
"""

FAILED_JOBS_SQL = """
SELECT order_id, llm, attempts, last_error
FROM benchmarking.extraction_jobs
WHERE status = 'failed'
  AND (CAST(:order_id AS bigint) IS NULL OR order_id = CAST(:order_id AS bigint))
  AND (CAST(:llm AS text) IS NULL OR llm = CAST(:llm AS text))
ORDER BY order_id, llm
"""

# A failed job has no items (an order is written whole or not at all), so forgetting its ledger row is all it
# takes for the producer's next run to enqueue it again (the producer sends orders with no ledger row).
DELETE_FAILED_JOBS_SQL = """
DELETE FROM benchmarking.extraction_jobs
WHERE status = 'failed'
  AND (CAST(:order_id AS bigint) IS NULL OR order_id = CAST(:order_id AS bigint))
  AND (CAST(:llm AS text) IS NULL OR llm = CAST(:llm AS text))
RETURNING order_id, llm
"""

STALE_PROCESSING_LISTED = 20


@dataclass(frozen=True)
class StaleJob:
    """A `processing` job past its lease; ``requeued_in_seconds`` <= 0: the producer's next run re-enqueues it."""

    order_id: int
    llm: str
    attempts: int
    last_error: str | None
    started_seconds_ago: float
    requeued_in_seconds: float


@dataclass
class LedgerStatus:
    counts: dict[str, dict[str, int]]  # llm -> status -> jobs
    oldest_queued_seconds: float | None
    oldest_processing_seconds: float | None
    done_with_warnings: dict[str, int] = field(default_factory=dict)  # llm -> done orders with warnings
    stale_processing: list[StaleJob] = field(default_factory=list)  # the oldest STALE_PROCESSING_LISTED
    stale_processing_total: int = 0
    # llm -> {"attempts", "throttles", "budget_waits", "budget_wait_seconds"}
    activity: dict[str, dict[str, float]] = field(default_factory=dict)

    def totals(self) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for statuses in self.counts.values():
            for status, jobs in statuses.items():
                totals[status] += jobs
        return dict(totals)


def ledger_status(
    connection: Connection,
    *,
    processing_lease_seconds: int = DEFAULT_PROCESSING_LEASE_SECONDS,
    requeue_lease_seconds: int = DEFAULT_REQUEUE_LEASE_SECONDS,
) -> LedgerStatus:
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for llm, status, jobs in connection.run(JOB_COUNTS_SQL):
        counts[llm][status] = int(jobs)
    oldest = {status: age for status, age in connection.run(OLDEST_PENDING_SQL)}
    warned = {llm: int(jobs) for llm, jobs in connection.run(DONE_WITH_WARNINGS_SQL)}
    activity = {
        llm: {"attempts": int(tries), "throttles": int(throttles), "budget_waits": int(waits),
              "budget_wait_seconds": round(float(seconds), 1)}
        for llm, tries, throttles, waits, seconds in connection.run(ACTIVITY_SQL)
    }  # fmt: skip
    rows = connection.run(
        STALE_PROCESSING_SQL,
        processing_lease_seconds=processing_lease_seconds,
        lease_seconds=requeue_lease_seconds,
        limit=STALE_PROCESSING_LISTED,
    )
    stale = [StaleJob(*row[:6]) for row in rows]
    total = int(rows[0][6]) if rows else 0
    return LedgerStatus(
        dict(counts),
        oldest.get(JobStatus.QUEUED.value),
        oldest.get(JobStatus.PROCESSING.value),
        done_with_warnings=warned,
        stale_processing=stale,
        stale_processing_total=total,
        activity=activity,
    )


def failed_jobs(connection: Connection, *, order_id: int | None = None, llm: str | None = None) -> list[dict[str, Any]]:
    rows = connection.run(FAILED_JOBS_SQL, order_id=order_id, llm=llm)
    return [
        {"order_id": order, "llm": model, "attempts": attempts, "last_error": error}
        for order, model, attempts, error in rows
    ]


def retry_failed_jobs(connection: Connection, *, order_id: int | None = None, llm: str | None = None) -> int:
    """Forget the failed ledger rows that match, so the producer's next run enqueues those orders again."""
    with transaction(connection):
        return len(connection.run(DELETE_FAILED_JOBS_SQL, order_id=order_id, llm=llm))


# What `invoices capacity` measures per model from its most recent done jobs: tokens and invoices per order and
# the time one order holds a consumer (claim to done, so budget waits and image preparation are included); and
# the backlog (jobs not yet done or failed).
CAPACITY_SQL = """
WITH recent AS (
    SELECT llm, input_tokens + output_tokens AS tokens, invoice_count,
           extract(epoch FROM finished_at - started_at) AS seconds,
           row_number() OVER (PARTITION BY llm ORDER BY finished_at DESC) AS n
    FROM benchmarking.extraction_jobs
    WHERE status = 'done' AND finished_at IS NOT NULL AND started_at IS NOT NULL
)
SELECT coalesce(recent.llm, backlog.llm), count(recent.llm), avg(recent.tokens), avg(recent.invoice_count),
       avg(recent.seconds), coalesce(max(backlog.jobs), 0)
FROM (SELECT * FROM recent WHERE n <= :sample) AS recent
FULL JOIN (
    SELECT llm, count(*) AS jobs FROM benchmarking.extraction_jobs WHERE status IN ('queued', 'processing')
    GROUP BY llm
) AS backlog ON backlog.llm = recent.llm
GROUP BY coalesce(recent.llm, backlog.llm)
ORDER BY 1
"""


@dataclass(frozen=True)
class ModelMeasurements:
    llm: str
    orders_measured: int
    tokens_per_order: float | None
    invoices_per_order: float | None
    seconds_per_order: float | None
    backlog: int


def model_measurements(connection: Connection, *, sample: int = 500) -> list[ModelMeasurements]:
    """Per model, from the ledger: averages over the ``sample`` most recent done jobs, and the backlog."""

    def number(value: Any) -> float | None:
        return None if value is None else float(value)

    return [
        ModelMeasurements(llm, int(count), number(tokens), number(invoices), number(seconds), int(backlog))
        for llm, count, tokens, invoices, seconds, backlog in connection.run(CAPACITY_SQL, sample=sample)
    ]


# --- outcomes, for local/ (demo, chaos, rate limits) and the workbench ----------------------------------------

OUTCOME_COLUMNS = (
    "SELECT order_id, llm, status, last_error, item_count, throttles, warnings, attempts, budget_waits"
    " FROM benchmarking.extraction_jobs"
)
MODEL_OUTCOMES_SQL = OUTCOME_COLUMNS + " WHERE llm = :llm"
ORDER_OUTCOMES_SQL = OUTCOME_COLUMNS + " WHERE order_id = :order_id ORDER BY llm"
MODELS_SQL = "SELECT DISTINCT llm FROM benchmarking.extraction_jobs ORDER BY llm"


@dataclass(frozen=True)
class JobOutcome:
    """Where one job stands: its status, why it failed, what it wrote and the warnings stored with it."""

    order_id: int
    llm: str
    status: str
    last_error: str | None
    item_count: int | None
    throttles: int
    warnings: Any  # the stored JSON (a list once validated; NULL before validation was stored)
    attempts: int = 0  # claims that went on to try the model (waits for the budget are not attempts)
    budget_waits: int = 0  # times the job was handed back to wait for its model's budget


def model_outcomes(connection: Connection, llm: str) -> dict[int, JobOutcome]:
    """Every job of one model, by order."""
    return {row[0]: JobOutcome(*row) for row in connection.run(MODEL_OUTCOMES_SQL, llm=llm)}


def order_outcomes(connection: Connection, order_id: int) -> dict[str, JobOutcome]:
    """Every job of one order, by model (in model order)."""
    return {row[1]: JobOutcome(*row) for row in connection.run(ORDER_OUTCOMES_SQL, order_id=order_id)}


def models(connection: Connection) -> list[str]:
    """Every model with a job in the ledger."""
    return [row[0] for row in connection.run(MODELS_SQL)]


# --- the jobs the comparison and the workbench's report are computed from -------------------------------------

_JOB_COLUMNS = """
SELECT j.order_id, j.llm, j.status, j.invoice_count, j.input_tokens, j.output_tokens, j.cost_usd, j.model_ms,
       CASE jsonb_typeof(j.warnings) WHEN 'array' THEN jsonb_array_length(j.warnings) END AS warning_count,
       j.last_error, j.attempts, j.throttles, j.budget_waits
FROM benchmarking.extraction_jobs AS j
"""
# Without a restaurant or date filter the ordering app's table is not read at all (it may not exist locally).
JOBS_SQL = (
    _JOB_COLUMNS
    + """
WHERE CAST(:llms AS text[]) IS NULL OR j.llm = ANY(CAST(:llms AS text[]))
"""
)
JOBS_OF_ORDERS_SQL = (
    _JOB_COLUMNS
    + """
JOIN orders AS o ON o.id = j.order_id
WHERE (CAST(:llms AS text[]) IS NULL OR j.llm = ANY(CAST(:llms AS text[])))
  AND """
    + ORDERS_OF_RESTAURANTS_AND_DAYS
)


@dataclass(frozen=True)
class JobRow:
    order_id: int
    llm: str
    status: str
    invoice_count: int | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: Decimal | None
    model_ms: int | None
    warning_count: int | None  # None: not validated
    last_error: str | None
    attempts: int = 0  # model tries (waits for the budget are not attempts)
    throttles: int = 0  # hand-backs for a provider 429
    budget_waits: int = 0  # hand-backs to wait for the model's budget


def _list(value: Sequence[Any] | None) -> list[Any] | None:
    return None if value is None else list(value)


def _job(row: list[Any]) -> JobRow:
    order_id, llm, status, invoice_count, input_tokens, output_tokens, cost, model_ms, warning_count, last_error = row[
        :10
    ]
    attempts, throttles, budget_waits = row[10:13]
    return JobRow(
        int(order_id),
        llm,
        status,
        invoice_count,
        input_tokens,
        output_tokens,
        None if cost is None else Decimal(cost),
        None if model_ms is None else int(model_ms),
        None if warning_count is None else int(warning_count),
        last_error,
        int(attempts),
        int(throttles),
        int(budget_waits),
    )


def job_rows(
    connection: Connection,
    *,
    llms: Sequence[str] | None,
    restaurant_ids: Sequence[int] | None,
    since: date | None,
    before: date | None,
    reads_orders: bool,
) -> list[JobRow]:
    """The jobs of the given models (None: all); ``reads_orders``: only those of orders matching the filters."""
    if not reads_orders:
        return [_job(row) for row in connection.run(JOBS_SQL, llms=_list(llms))]
    rows = connection.run(
        JOBS_OF_ORDERS_SQL,
        llms=_list(llms),
        restaurant_ids=_list(restaurant_ids),
        since=None if since is None else since.isoformat(),
        before=None if before is None else before.isoformat(),
    )
    return [_job(row) for row in rows]


INVOICE_EVIDENCE = """
SELECT order_id, llm, evidence
FROM benchmarking.extraction_jobs
WHERE status = 'done' AND evidence IS NOT NULL AND llm = ANY(CAST(:llms AS text[]))
"""


def invoice_evidence(connection: Connection, llms: Sequence[str]) -> dict[tuple[int, str], list[dict[str, Any]]]:
    """(order_id, llm) -> the per-invoice evidence stored with its done job (:mod:`invoice_pipeline.tables.evidence`);
    jobs written before it existed have none."""
    rows = connection.run(INVOICE_EVIDENCE, llms=list(llms)) if llms else []
    return {(order_id, llm): list(found or []) for order_id, llm, found in rows}
