"""The producer: page through eligible orders, claim their jobs in the ledger, send them to SQS.

Its contract: docs/architecture.md §7.

One run walks the orders matching ``RESTAURANT_IDS`` and ``ORDERS_SINCE`` whose ``invoice_image`` is not
blank, keyset-paged on ``(created_at, id)``: oldest first across every selected restaurant, so a run capped
by ``MAX_ORDERS_PER_RUN`` works through the backlog by age, never one restaurant after another. That is the
order of the ``orders`` index that ``invoices index-orders`` creates (:mod:`invoice_pipeline.tables.orders`), which
also carries ``restaurant_id`` (``INCLUDE``), so both ``RESTAURANT_IDS=*`` and a list are one ordered index
range scan per page (no sort, no OFFSET); a list is a filter checked on the index entries, so a page reads the
entries of other restaurants between its matches. Without that index every page is a sequential scan:
correct, only slower.

Per page ONE statement (:func:`invoice_pipeline.tables.ledger.claim_page`) reads the page, finds the ``(order_id,
llm)`` pairs that have no ledger row (or a ``queued`` row older than the re-enqueue lease, or a stale
``processing`` row: see ``ledger.STALE_PROCESSING``) and claims them with ``INSERT ... ON CONFLICT DO UPDATE
... WHERE ... RETURNING``; only returned pairs are sent (:mod:`invoice_pipeline.flows.sending`). ``ON CONFLICT``
locks the conflicting row and re-checks the ``WHERE`` on its newest version, so a pair that an overlapping
run has just claimed (fresh ``enqueued_at``) is never claimed twice. Pairs whose message could not be sent
have their claim released (the row deleted if this run created it, its previous ``enqueued_at`` restored
otherwise), so the next run picks them up; nothing stays claimed without a message.

``MAX_ORDERS_PER_RUN`` caps the number of messages sent in one run: one message is one ``(order_id,
llm)`` pair, so with two models 1,000 means at most 1,000 messages (500 orders).

The priority lane (docs/events-and-lanes.md): with ``PRIORITY_QUEUE_URL`` set, each claim of an urgent order
(:data:`invoice_pipeline.tables.orders.URGENT_ORDER`) is sent there instead of ``QUEUE_URL``. One claim is one message
on one queue, so exactly once per ``(order_id, llm)`` holds across both lanes as it does for one. A run first pages
through the orders created within the priority window (a short index range at the end of the keyset), so a
backlog larger than ``MAX_ORDERS_PER_RUN`` never keeps urgent orders waiting for a later run; then it pages from
the oldest order as before.

On demand (:func:`enqueue_requested`): the named orders only, claimed and sent at once, to the priority lane if
asked; the schedule's restaurant and date filters do not apply.

A scheduled run ends by publishing the completion events that a consumer committed but could not publish
(:mod:`invoice_pipeline.tables.events`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from invoice_pipeline.clients import AwsClients
from invoice_pipeline.flows.sending import SEND_THREADS, SQS_CLIENT, QueueClient, batches, queue_depth, send_batch
from invoice_pipeline.observability import logger, metrics
from invoice_pipeline.settings import ProducerSettings
from invoice_pipeline.tables.db import Connection, ConnectionPool
from invoice_pipeline.tables.events import EventPublisher, publish_stale_events
from invoice_pipeline.tables.ledger import EnqueueClaim, RequestedJob, claim_orders, claim_page, release_claims
from invoice_pipeline.tables.orders import FIRST_KEY


@dataclass
class RunSummary:
    """What one run did. Counts of pairs are ``(order_id, llm)`` jobs, i.e. messages."""

    enqueued: int = 0  # messages sent (= jobs claimed and sent), both lanes
    priority_enqueued: int = 0  # of which to the priority lane
    scanned: int = 0  # eligible orders read (restaurant, date, non-blank image); with a lane, recent ones twice
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
            if settings.priority_queue_url is not None and settings.priority_window_minutes > 0:
                _claim_and_send_pages(
                    connection, sqs, settings, summary, remaining_time_ms, sleep, start=_recent_orders_key(settings)
                )
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
    start: tuple[Any, int] = FIRST_KEY,
) -> None:
    after: tuple[Any, int] = start
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
            for queue_url, claims in lanes(settings, page.claims):
                sent, failed, released = send_claims(connection, sqs, queue_url, claims, executor, sleep)
                summary.enqueued += sent
                summary.priority_enqueued += sent if queue_url == settings.priority_queue_url else 0
                summary.send_failures += failed
                summary.claims_released += released
            if page.last_key is None or page.orders < settings.page_size:
                summary.stopped_because = "exhausted"
                return
            after = page.last_key


# The first pass starts this much before the priority window: the database's clock decides what is urgent, and
# a few seconds of difference between the two clocks must not hide an urgent order from that pass.
RECENT_PASS_SLACK = timedelta(minutes=5)


def _recent_orders_key(settings: ProducerSettings) -> tuple[datetime, int]:
    """The keyset start of the first pass: just before the oldest order the priority window can hold."""
    since = datetime.now(UTC) - timedelta(minutes=settings.priority_window_minutes) - RECENT_PASS_SLACK
    return since, int(FIRST_KEY[1])


def lanes(settings: ProducerSettings, claims: Sequence[EnqueueClaim]) -> list[tuple[str, list[EnqueueClaim]]]:
    """The claims by target queue: urgent ones to the priority lane when there is one, the rest to the main queue."""
    if settings.priority_queue_url is None:
        return [(settings.queue_url, list(claims))] if claims else []
    urgent = [claim for claim in claims if claim.urgent]
    normal = [claim for claim in claims if not claim.urgent]
    groups = ((settings.priority_queue_url, urgent), (settings.queue_url, normal))
    return [(url, group) for url, group in groups if group]


def publish_metrics(summary: RunSummary) -> None:
    """The run's counts as CloudWatch metrics (EMF, flushed by the handler's log_metrics decorator)."""
    metrics.add_metric(name="MessagesEnqueued", unit=MetricUnit.Count, value=summary.enqueued)
    metrics.add_metric(name="PriorityMessagesEnqueued", unit=MetricUnit.Count, value=summary.priority_enqueued)
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
    events: EventPublisher


def build_runtime(settings: ProducerSettings) -> ProducerRuntime:
    clients = AwsClients()
    return ProducerRuntime(
        settings=settings,
        pool=ConnectionPool(lambda: settings.database),
        sqs=clients.get("sqs", SQS_CLIENT),
        events=EventPublisher(clients, settings.events.event_bus_name, settings.events.outbox_retry_seconds),
    )


def run_producer(runtime: ProducerRuntime, remaining_time_ms: Callable[[], int] | None = None) -> RunSummary:
    """One run with the runtime's settings, connection and SQS client (the handler and the CLI)."""
    with runtime.pool.connection() as connection:
        summary = enqueue_orders(connection, runtime.sqs, runtime.settings, remaining_time_ms=remaining_time_ms)
    publish_stale_events(runtime.events, runtime.pool)
    return summary


# --- on demand -------------------------------------------------------------------------------------------------

MAX_REQUESTED_ORDERS = 1000
_BIGINT_MAX = 2**63 - 1


class InvalidRequest(ValueError):
    """An on-demand request that is not well formed: nothing was claimed."""


def parse_order_ids(values: Any) -> list[int]:
    """The requested order ids, each once, in the request's order; :class:`InvalidRequest` says what is wrong."""
    if not isinstance(values, list) or not values:
        raise InvalidRequest("order_ids must be a non-empty list of integers")
    if len(values) > MAX_REQUESTED_ORDERS:
        raise InvalidRequest(f"at most {MAX_REQUESTED_ORDERS} order ids per request, got {len(values)}")
    ids: list[int] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _BIGINT_MAX:
            raise InvalidRequest(f"order id {value!r} is not a positive integer")
        ids.append(value)
    return list(dict.fromkeys(ids))


# Per requested order: what happened to it (one word per order, the most useful when its models differ).
ENQUEUED, ALREADY_QUEUED, DONE, NO_SUCH_ORDER, BLANK_IMAGE = (
    "enqueued",
    "already queued",
    "done",
    "no such order",
    "blank invoice_image",
)


@dataclass
class RequestResult:
    """What an on-demand request did: per order its result, and per (order, model) the detail."""

    orders: dict[int, str] = field(default_factory=dict)
    jobs: dict[int, dict[str, str]] = field(default_factory=dict)
    lane: str = "main"
    send_failures: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "lane": self.lane,
            "results": [
                {"order_id": order_id, "result": result, "llms": self.jobs.get(order_id, {})}
                for order_id, result in self.orders.items()
            ],
            "send_failures": self.send_failures,
        }


def _job_result(job: RequestedJob, sent: set[tuple[int, str]]) -> str:
    if job.claim is not None:
        return ENQUEUED if (job.order_id, job.llm) in sent else "send failed"
    return DONE if job.previous_status == "done" else ALREADY_QUEUED


def _order_result(job_results: list[str]) -> str:
    for result in (ENQUEUED, "send failed", ALREADY_QUEUED):
        if result in job_results:
            return result
    return DONE


def enqueue_requested(
    runtime: ProducerRuntime,
    order_ids: Any,
    *,
    priority: Any = False,
    again: Any = False,
    sleep: Callable[[float], None] = time.sleep,
) -> RequestResult:
    """Claim and send the named orders now. A malformed request raises :class:`InvalidRequest` before any claim."""
    settings = runtime.settings
    ids = parse_order_ids(order_ids)
    for name, flag in (("priority", priority), ("again", again)):
        if not isinstance(flag, bool):
            raise InvalidRequest(f"{name} must be true or false, got {flag!r}")
    if priority and settings.priority_queue_url is None:
        raise InvalidRequest("priority asked, but there is no priority lane (PRIORITY_QUEUE_URL is not set)")
    queue_url = settings.priority_queue_url if priority and settings.priority_queue_url else settings.queue_url
    with runtime.pool.connection() as connection:
        jobs = claim_orders(
            connection,
            ids,
            settings.llm_models,
            again=again,
            urgent=priority,
            requeue_lease_seconds=settings.requeue_lease_seconds,
            processing_lease_seconds=settings.processing_lease_seconds,
        )
        claims = [job.claim for job in jobs if job.claim is not None]
        sent: set[tuple[int, str]] = set()
        result = RequestResult(lane="priority" if priority else "main")
        if claims:
            with ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="send") as executor:
                futures = [
                    executor.submit(send_batch, runtime.sqs, queue_url, batch, sleep) for batch in batches(claims)
                ]
                failed: list[EnqueueClaim] = []
                for future, batch in zip(futures, batches(claims), strict=True):
                    try:
                        batch_sent, batch_failed = future.result()
                    except Exception:
                        logger.exception("on-demand send failed: claims released")
                        batch_sent, batch_failed = [], list(batch)
                    sent.update((claim.order_id, claim.llm) for claim in batch_sent)
                    failed.extend(batch_failed)
            release_claims(connection, failed)
            result.send_failures = len(failed)
    for job in jobs:
        if not job.found:
            result.orders[job.order_id] = NO_SUCH_ORDER
        elif not job.has_image:
            result.orders[job.order_id] = BLANK_IMAGE
        else:
            result.jobs.setdefault(job.order_id, {})[job.llm] = _job_result(job, sent)
    for order_id, job_results in result.jobs.items():
        result.orders[order_id] = _order_result(list(job_results.values()))
    result.orders = {order_id: result.orders[order_id] for order_id in ids}
    logger.info("on-demand request", extra={"lane": result.lane, "orders": len(ids), "sent": len(sent)})
    return result
