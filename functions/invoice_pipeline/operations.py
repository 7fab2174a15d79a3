"""Operator queries over the ledger and the items: status counts, the per-model report, retrying failed jobs.

Used by the ``invoices`` command (``status``, ``report``, ``retry-failed``) and the local demo's summary. All
SQL is here, as named constants with bound parameters.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from pg8000.native import Connection

from invoice_pipeline.db import transaction
from invoice_pipeline.settings import DEFAULT_PROCESSING_LEASE_SECONDS, DEFAULT_REQUEUE_LEASE_SECONDS

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

# Done orders whose validation found something (the consumer stores [] when it found nothing; NULL is a job
# written before validation was stored).
DONE_WITH_WARNINGS_SQL = """
SELECT llm, count(*) AS jobs
FROM benchmarking.extraction_jobs
WHERE status = 'done' AND warnings IS NOT NULL AND warnings <> CAST('[]' AS jsonb)
GROUP BY llm
"""

# `processing` jobs whose claim lease ended: no delivery is working on them (it crashed or timed out). The producer
# re-enqueues each once its lease ended longer ago than the re-enqueue lease (enqueue.STALE_PROCESSING).
STALE_PROCESSING_SQL = """
SELECT order_id, llm, attempts, last_error,
       extract(epoch FROM now() - started_at)::float8 AS started_seconds_ago,
       extract(epoch FROM started_at + (CAST(:processing_lease_seconds AS integer)
                                        + CAST(:requeue_lease_seconds AS integer)) * interval '1 second'
                          - now())::float8 AS requeued_in_seconds,
       count(*) OVER () AS total
FROM benchmarking.extraction_jobs
WHERE status = 'processing'
  AND started_at < now() - CAST(:processing_lease_seconds AS integer) * interval '1 second'
ORDER BY started_at, order_id, llm
LIMIT CAST(:limit AS integer)
"""

MODEL_TOTALS_SQL = """
SELECT llm,
       count(*) FILTER (WHERE status = 'done') AS orders_done,
       count(*) FILTER (WHERE status = 'failed') AS orders_failed,
       count(*) FILTER (WHERE status IN ('queued', 'processing')) AS orders_pending,
       count(*) FILTER (
           WHERE status = 'done' AND warnings IS NOT NULL AND warnings <> CAST('[]' AS jsonb)
       ) AS orders_with_warnings,
       coalesce(sum(invoice_count) FILTER (WHERE status = 'done'), 0) AS invoices,
       coalesce(sum(input_tokens), 0) AS input_tokens,
       coalesce(sum(output_tokens), 0) AS output_tokens,
       coalesce(sum(cost_usd), 0) AS cost_usd
FROM benchmarking.extraction_jobs
WHERE CAST(:llm AS text) IS NULL OR llm = CAST(:llm AS text)
GROUP BY llm
ORDER BY llm
"""

ITEM_COUNTS_SQL = """
SELECT llm, count(*) AS items
FROM benchmarking.invoice_items
WHERE CAST(:llm AS text) IS NULL OR llm = CAST(:llm AS text)
GROUP BY llm
"""

FAILURE_REASONS_SQL = """
SELECT llm, coalesce(last_error, '(no reason recorded)') AS reason, count(*) AS jobs
FROM benchmarking.extraction_jobs
WHERE status = 'failed' AND (CAST(:llm AS text) IS NULL OR llm = CAST(:llm AS text))
GROUP BY llm, reason
ORDER BY llm, jobs DESC, reason
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

TABLE_EXISTS_SQL = "SELECT to_regclass(:name) IS NOT NULL"

GROUND_TRUTH_SQL = """
SELECT order_id, invoice_index, item_name, qty, uom, unit_price, net_price
FROM benchmarking.ground_truth_items
ORDER BY order_id, invoice_index, line_no
"""

# Items of done jobs for orders that have ground truth, per model.
ITEMS_WITH_TRUTH_SQL = """
SELECT i.llm, i.order_id, i.invoice_index, i.item_name, i.qty, i.uom, i.unit_price, i.net_price
FROM benchmarking.invoice_items AS i
JOIN benchmarking.extraction_jobs AS j ON j.order_id = i.order_id AND j.llm = i.llm AND j.status = 'done'
WHERE i.order_id IN (SELECT DISTINCT order_id FROM benchmarking.ground_truth_items)
ORDER BY i.llm, i.order_id, i.invoice_index, i.line_no
"""

DONE_JOBS_WITH_TRUTH_SQL = """
SELECT llm, order_id
FROM benchmarking.extraction_jobs
WHERE status = 'done' AND order_id IN (SELECT DISTINCT order_id FROM benchmarking.ground_truth_items)
"""

TOP_FAILURE_REASONS = 3


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
    rows = connection.run(
        STALE_PROCESSING_SQL,
        processing_lease_seconds=processing_lease_seconds,
        requeue_lease_seconds=requeue_lease_seconds,
        limit=STALE_PROCESSING_LISTED,
    )
    stale = [StaleJob(*row[:6]) for row in rows]
    total = int(rows[0][6]) if rows else 0
    return LedgerStatus(
        dict(counts),
        oldest.get("queued"),
        oldest.get("processing"),
        done_with_warnings=warned,
        stale_processing=stale,
        stale_processing_total=total,
    )


@dataclass
class ModelReport:
    llm: str
    orders_done: int
    orders_failed: int
    orders_pending: int
    invoices: int
    items: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    top_failure_reasons: list[tuple[str, int]] = field(default_factory=list)
    accuracy: dict[str, Any] | None = None  # None where no ground truth or no accuracy module
    orders_with_warnings: int = 0  # done orders whose validation warnings are not empty

    @property
    def cost_per_invoice_usd(self) -> Decimal | None:
        return (self.cost_usd / self.invoices).quantize(Decimal("0.000001")) if self.invoices else None

    def as_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["cost_usd"] = str(self.cost_usd)
        cost_per_invoice = self.cost_per_invoice_usd
        row["cost_per_invoice_usd"] = None if cost_per_invoice is None else str(cost_per_invoice)
        row["top_failure_reasons"] = [{"reason": reason, "jobs": jobs} for reason, jobs in self.top_failure_reasons]
        return row


def model_report(connection: Connection, llm: str | None = None) -> list[ModelReport]:
    items = {model: int(count) for model, count in connection.run(ITEM_COUNTS_SQL, llm=llm)}
    reasons: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for model, reason, jobs in connection.run(FAILURE_REASONS_SQL, llm=llm):
        if len(reasons[model]) < TOP_FAILURE_REASONS:
            reasons[model].append((reason, int(jobs)))
    accuracy = accuracy_by_model(connection)
    reports = []
    for row in connection.run(MODEL_TOTALS_SQL, llm=llm):
        model, done, failed, pending, warned, invoices, input_tokens, output_tokens, cost = row
        reports.append(
            ModelReport(
                llm=model,
                orders_done=int(done),
                orders_failed=int(failed),
                orders_pending=int(pending),
                invoices=int(invoices),
                items=items.get(model, 0),
                input_tokens=int(input_tokens),
                output_tokens=int(output_tokens),
                cost_usd=Decimal(cost),
                top_failure_reasons=reasons.get(model, []),
                accuracy=accuracy.get(model),
                orders_with_warnings=int(warned),
            )
        )
    return reports


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


def table_exists(connection: Connection, qualified_name: str) -> bool:
    return bool(connection.run(TABLE_EXISTS_SQL, name=qualified_name)[0][0])


def accuracy_by_model(connection: Connection) -> dict[str, dict[str, Any]]:
    """Item accuracy per model against ``benchmarking.ground_truth_items`` (done orders with truth only).

    Integration point with ``invoice_pipeline.accuracy`` (``compare(truth, predicted)`` per invoice and
    ``aggregate(scores)``): when that module or the ground-truth table is absent, the report has no accuracy.
    """
    try:
        from invoice_pipeline import accuracy  # type: ignore[attr-defined]
    except ImportError:
        return {}
    if not table_exists(connection, "benchmarking.ground_truth_items"):
        return {}
    from invoice_pipeline.extraction.base import ExtractedItem
    from invoice_pipeline.item_columns import item_from_columns

    truth: dict[tuple[int, int], list[ExtractedItem]] = defaultdict(list)
    for order_id, invoice_index, *values in connection.run(GROUND_TRUTH_SQL):
        truth[(order_id, invoice_index)].append(item_from_columns(values))
    predicted: dict[str, dict[tuple[int, int], list[ExtractedItem]]] = defaultdict(lambda: defaultdict(list))
    for llm, order_id, invoice_index, *values in connection.run(ITEMS_WITH_TRUTH_SQL):
        predicted[llm][(order_id, invoice_index)].append(item_from_columns(values))
    done_orders: dict[str, set[int]] = defaultdict(set)
    for llm, order_id in connection.run(DONE_JOBS_WITH_TRUTH_SQL):
        done_orders[llm].add(order_id)

    result: dict[str, dict[str, Any]] = {}
    for llm, orders in done_orders.items():
        scores = [
            accuracy.compare(truth_items, predicted[llm].get(key, []))
            for key, truth_items in truth.items()
            if key[0] in orders
        ]
        if not scores:
            continue
        total = accuracy.aggregate(scores)
        result[llm] = {
            "orders": len(orders),
            "precision": float(total.precision),
            "recall": float(total.recall),
            "f1": float(total.f1),
        }
    return result


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
