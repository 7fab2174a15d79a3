"""The producer: page through eligible orders, claim their jobs in the ledger, send them to SQS.

Its contract: docs/architecture.md §7.

One run walks the orders matching ``RESTAURANT_IDS`` and ``ORDERS_SINCE`` whose ``invoice_image`` is not
blank, keyset-paged on ``(created_at, id)``: oldest first across every selected restaurant, so a run capped
by ``MAX_ORDERS_PER_RUN`` works through the backlog by age, never one restaurant after another. That is the
order of the ``orders`` index that ``invoices index-orders`` creates (:mod:`invoice_pipeline.orders`), which
also carries ``restaurant_id`` (``INCLUDE``), so both ``RESTAURANT_IDS=*`` and a list are one ordered index
range scan per page (no sort, no OFFSET); a list is a filter checked on the index entries, so a page reads the
entries of other restaurants between its matches. Without that index every page is a sequential scan:
correct, only slower.

Per page ONE statement (:func:`invoice_pipeline.ledger.claim_page`) reads the page, finds the ``(order_id,
llm)`` pairs that have no ledger row (or a ``queued`` row older than the re-enqueue lease, or a stale
``processing`` row: see ``ledger.STALE_PROCESSING``) and claims them with ``INSERT ... ON CONFLICT DO UPDATE
... WHERE ... RETURNING``; only returned pairs are sent (:mod:`invoice_pipeline.sending`). ``ON CONFLICT``
locks the conflicting row and re-checks the ``WHERE`` on its newest version, so a pair that an overlapping
run has just claimed (fresh ``enqueued_at``) is never claimed twice. Pairs whose message could not be sent
have their claim released (the row deleted if this run created it, its previous ``enqueued_at`` restored
otherwise), so the next run picks them up; nothing stays claimed without a message.

``MAX_ORDERS_PER_RUN`` caps the number of messages sent in one run: one message is one ``(order_id,
llm)`` pair, so with two models 1,000 means at most 1,000 messages (500 orders).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from invoice_pipeline.clients import AwsClients
from invoice_pipeline.db import Connection, ConnectionPool
from invoice_pipeline.ledger import EnqueueClaim, claim_page, release_claims
from invoice_pipeline.observability import logger, metrics
from invoice_pipeline.orders import FIRST_KEY
from invoice_pipeline.sending import SEND_THREADS, SQS_CLIENT, QueueClient, batches, queue_depth, send_batch
from invoice_pipeline.settings import ProducerSettings


@dataclass
class RunSummary:
    """What one run did. Counts of pairs are ``(order_id, llm)`` jobs, i.e. messages."""

    enqueued: int = 0  # messages sent (= jobs claimed and sent)
    scanned: int = 0  # eligible orders read (restaurant, date and a non-blank image match)
    skipped: int = 0  # jobs of scanned orders not sent: done, processing, failed, or queued within the lease
    send_failures: int = 0  # jobs whose message failed after every retry (their claims were released)
    claims_released: int = 0
    pages: int = 0
    queue_depth: int | None = None  # ApproximateNumberOfMessages before the run
    stopped_because: str = "exhausted"  # exhausted | max_orders_per_run | remaining_time | queue_depth | error
    duration_ms: int = 0
    max_orders_per_run: int = 0
    page_ms: list[float] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values.pop("page_ms")
        values["slowest_page_ms"] = round(max(self.page_ms), 1) if self.page_ms else 0.0
        return values


def send_claims(
    connection: Connection,
    sqs: QueueClient,
    queue_url: str,
    claims: Sequence[EnqueueClaim],
    executor: ThreadPoolExecutor,
    sleep: Callable[[float], None],
) -> tuple[int, int, int]:
    """Send a page's claims in parallel batches; release what was not sent. Returns (sent, failed, released).

    If the queue turns out unusable, every claim of the page not sent is released before the error is raised.
    """
    futures = [executor.submit(send_batch, sqs, queue_url, batch, sleep) for batch in batches(claims)]
    sent: list[EnqueueClaim] = []
    failed: list[EnqueueClaim] = []
    error: BaseException | None = None
    for future, batch in zip(futures, batches(claims), strict=True):
        try:
            batch_sent, batch_failed = future.result()
        except BaseException as raised:  # wait for every batch, then release and raise the first error
            error = error or raised
            failed.extend(batch)
            continue
        sent.extend(batch_sent)
        failed.extend(batch_failed)
    released = release_claims(connection, failed)
    if error is not None:
        raise error
    return len(sent), len(failed), released


def enqueue_orders(
    connection: Connection,
    sqs: QueueClient,
    settings: ProducerSettings,
    *,
    remaining_time_ms: Callable[[], int] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RunSummary:
    """One producer run. ``remaining_time_ms`` is the Lambda context's clock (None: no time limit)."""
    started = time.monotonic()
    summary = RunSummary(max_orders_per_run=settings.max_orders_per_run)
    try:
        summary.queue_depth = queue_depth(sqs, settings.queue_url)
        if settings.max_queue_depth is not None and summary.queue_depth > settings.max_queue_depth:
            summary.stopped_because = "queue_depth"
        else:
            _claim_and_send_pages(connection, sqs, settings, summary, remaining_time_ms, sleep)
    except Exception:
        summary.stopped_because = "error"
        summary.duration_ms = round((time.monotonic() - started) * 1000)
        logger.exception("producer run failed; claims not sent were released", extra=summary.as_dict())
        raise
    summary.duration_ms = round((time.monotonic() - started) * 1000)
    logger.info("producer run finished", extra=summary.as_dict())
    return summary


def _claim_and_send_pages(
    connection: Connection,
    sqs: QueueClient,
    settings: ProducerSettings,
    summary: RunSummary,
    remaining_time_ms: Callable[[], int] | None,
    sleep: Callable[[float], None],
) -> None:
    after: tuple[Any, int] = FIRST_KEY
    with ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="send") as executor:
        while True:
            if summary.enqueued >= settings.max_orders_per_run:
                summary.stopped_because = "max_orders_per_run"
                return
            if remaining_time_ms is not None and remaining_time_ms() < settings.time_margin_seconds * 1000:
                summary.stopped_because = "remaining_time"
                return
            page_started = time.perf_counter()
            page = claim_page(connection, settings, after, max_claims=settings.max_orders_per_run - summary.enqueued)
            summary.page_ms.append((time.perf_counter() - page_started) * 1000)
            summary.pages += 1
            summary.scanned += page.orders
            summary.skipped += page.orders * len(settings.llm_models) - len(page.claims)
            if page.claims:
                sent, failed, released = send_claims(connection, sqs, settings.queue_url, page.claims, executor, sleep)
                summary.enqueued += sent
                summary.send_failures += failed
                summary.claims_released += released
            if page.last_key is None or page.orders < settings.page_size:
                summary.stopped_because = "exhausted"
                return
            after = page.last_key


def publish_metrics(summary: RunSummary) -> None:
    """The run's counts as CloudWatch metrics (EMF, flushed by the handler's log_metrics decorator)."""
    metrics.add_metric(name="MessagesEnqueued", unit=MetricUnit.Count, value=summary.enqueued)
    metrics.add_metric(name="OrdersScanned", unit=MetricUnit.Count, value=summary.scanned)
    metrics.add_metric(name="JobsSkipped", unit=MetricUnit.Count, value=summary.skipped)
    metrics.add_metric(name="SendFailures", unit=MetricUnit.Count, value=summary.send_failures)
    metrics.add_metric(name="ProducerRunDuration", unit=MetricUnit.Milliseconds, value=summary.duration_ms)


@dataclass(frozen=True)
class ProducerRuntime:
    """The producer's runtime: its settings, connection pool and SQS client. The handler builds it once per
    container (:func:`build_runtime`); the CLI builds one per command."""

    settings: ProducerSettings
    pool: ConnectionPool
    sqs: QueueClient


def build_runtime(settings: ProducerSettings) -> ProducerRuntime:
    clients = AwsClients()
    return ProducerRuntime(
        settings=settings,
        pool=ConnectionPool(lambda: settings.database),
        sqs=clients.get("sqs", SQS_CLIENT),
    )


def run_producer(runtime: ProducerRuntime, remaining_time_ms: Callable[[], int] | None = None) -> RunSummary:
    """One run with the runtime's settings, connection and SQS client (the handler and the CLI)."""
    with runtime.pool.connection() as connection:
        return enqueue_orders(connection, runtime.sqs, runtime.settings, remaining_time_ms=remaining_time_ms)
