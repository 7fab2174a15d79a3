"""The producer (DESIGN §4): page through eligible orders, claim their jobs in the ledger, send them to SQS.

One run walks the orders matching ``RESTAURANT_IDS`` and ``ORDERS_SINCE`` whose ``invoice_image`` is not
blank, keyset-paged on ``(created_at, id)``: oldest first across every selected restaurant, so a run capped
by ``MAX_ORDERS_PER_RUN`` works through the backlog by age, never one restaurant after another. That is the
order of the ``orders`` index that ``invoices index-orders`` creates, which also carries ``restaurant_id``
(``INCLUDE``), so both ``RESTAURANT_IDS=*`` and a list are one ordered index range scan per page (no sort,
no OFFSET); a list is a filter checked on the index entries, so a page reads the entries of other
restaurants between its matches. Without that index every page is a sequential scan: correct, only slower.

Per page ONE statement reads the page, finds the ``(order_id, llm)`` pairs that have no ledger row (or a
``queued`` row older than the re-enqueue lease, or a stale ``processing`` row: see ``STALE_PROCESSING``) and
claims them with ``INSERT ... ON CONFLICT DO UPDATE
... WHERE ... RETURNING``; only returned pairs are sent. ``ON CONFLICT`` locks the conflicting row and
re-checks the ``WHERE`` on its newest version, so a pair that an overlapping run has just claimed (fresh
``enqueued_at``) is never claimed twice. Pairs whose message could not be sent have their claim released
(the row deleted if this run created it, its previous ``enqueued_at`` restored otherwise), so the next run
picks them up; nothing stays claimed without a message.

``MAX_ORDERS_PER_RUN`` caps the number of messages sent in one run: one message is one ``(order_id,
llm)`` pair, so with two models 1,000 means at most 1,000 messages (500 orders).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit
from pg8000.native import DatabaseError

from invoice_pipeline.db import Connection
from invoice_pipeline.errors import QueueUnavailableError
from invoice_pipeline.observability import logger, metrics
from invoice_pipeline.settings import ProducerSettings

# --- SQL on `orders` (owned by the ordering application: we only read it, and index it on request) ----------

# "Blank" (DESIGN §2) is empty or whitespace of any kind: exactly the characters Python's str.isspace()
# accepts, spelled out because Postgres' [[:space:]] only knows ASCII in the C locale. A value with any other
# character is eligible. The index predicate repeats this text verbatim so the planner can match it.
NOT_BLANK_PATTERN = r"[^\s\u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
ORDER_HAS_IMAGE = f"o.invoice_image ~ '{NOT_BLANK_PATTERN}'"

ORDERS_INDEX_NAME = "orders_created_at_id_invoice_idx"
# CONCURRENTLY: the ordering application keeps writing while the index builds. Partial: blank images (a
# large share of real orders) are never read. Keyed on the page order; INCLUDE (restaurant_id) lets the
# restaurant filter be checked on the index entry (index-only scan), without visiting the table.
CREATE_ORDERS_INDEX = f"""
CREATE INDEX CONCURRENTLY IF NOT EXISTS {ORDERS_INDEX_NAME}
ON orders (created_at, id) INCLUDE (restaurant_id)
WHERE invoice_image ~ '{NOT_BLANK_PATTERN}'
"""
# A failed CONCURRENTLY build leaves an INVALID index behind, which IF NOT EXISTS would then keep forever.
ORDERS_INDEX_IS_VALID = "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"
DROP_INVALID_ORDERS_INDEX = f"DROP INDEX CONCURRENTLY IF EXISTS {ORDERS_INDEX_NAME}"

# A `processing` job whose lease ended longer ago than the re-enqueue lease: the delivery that claimed it crashed
# or timed out, and its message is gone (moved to the DLQ, expired) or it would have been claimed again by now.
# Re-sent like a stale `queued` one; the claim puts it back to `queued`, so a zombie holder's write is refused
# (its claim no longer matches) and the next run does not send it again.
STALE_PROCESSING = """job.status = 'processing'
           AND job.started_at < now() - (CAST(:processing_lease_seconds AS integer)
                                         + CAST(:lease_seconds AS integer)) * interval '1 second'"""
STALE_PROCESSING_ERROR = "processing lease ended without a result (crash or timeout): re-enqueued by the producer"

# The page and its claims in one statement. {restaurant_filter} is one of the two fixed fragments below
# (separate statements so each gets its own plan); every value is a bound parameter. Orders without a
# restaurant belong to none: `*` does not select them either.
_PAGE_AND_CLAIM = """
WITH page AS (
    SELECT o.id, o.created_at
    FROM orders AS o
    WHERE {restaurant_filter}
      AND (o.created_at, o.id) > (CAST(:after_created_at AS timestamptz), CAST(:after_id AS bigint))
      AND o.created_at >= CAST(:orders_since AS timestamptz)
      AND {order_has_image}
    ORDER BY o.created_at, o.id
    LIMIT CAST(:page_size AS integer)
),
candidates AS (
    SELECT p.id AS order_id, m.llm, job.order_id IS NULL AS is_new, job.enqueued_at AS previous_enqueued_at,
           row_number() OVER (ORDER BY p.created_at, p.id, m.position) AS position
    FROM page AS p
    CROSS JOIN unnest(CAST(:llms AS text[])) WITH ORDINALITY AS m(llm, position)
    LEFT JOIN benchmarking.extraction_jobs AS job ON job.order_id = p.id AND job.llm = m.llm
    WHERE job.order_id IS NULL
       OR (job.status = 'queued'
           AND coalesce(job.enqueued_at, '-infinity') < now() - CAST(:lease_seconds AS integer) * interval '1 second')
       OR ({stale_processing})
),
chosen AS (
    SELECT * FROM candidates ORDER BY position LIMIT CAST(:max_claims AS integer)
),
claimed AS (
    -- Rows go in (order_id, llm) order so overlapping runs lock them in the same order (no deadlock).
    INSERT INTO benchmarking.extraction_jobs AS job (order_id, llm, status, attempts, enqueued_at, updated_at)
    SELECT order_id, llm, 'queued', 0, now(), now() FROM chosen ORDER BY order_id, llm
    ON CONFLICT (order_id, llm) DO UPDATE SET enqueued_at = now(), updated_at = now(), status = 'queued',
        last_error = CASE WHEN job.status = 'processing' THEN :stale_processing_error ELSE job.last_error END
    WHERE (job.status = 'queued'
           AND coalesce(job.enqueued_at, '-infinity') < now() - CAST(:lease_seconds AS integer) * interval '1 second')
       OR ({stale_processing})
    RETURNING job.order_id, job.llm
),
won AS (
    SELECT chosen.* FROM chosen JOIN claimed USING (order_id, llm)
)
SELECT
    (SELECT count(*) FROM page) AS page_orders,
    last.created_at, last.id,
    (SELECT count(*) FROM candidates) AS candidates,
    (SELECT count(*) FROM chosen) AS chosen,
    now()::text AS claimed_at,
    (SELECT coalesce(array_agg(order_id ORDER BY position), '{{}}') FROM won),
    (SELECT coalesce(array_agg(llm ORDER BY position), '{{}}') FROM won),
    (SELECT coalesce(array_agg(is_new ORDER BY position), '{{}}') FROM won),
    (SELECT coalesce(array_agg(previous_enqueued_at::text ORDER BY position), '{{}}') FROM won)
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT * FROM page ORDER BY created_at DESC, id DESC LIMIT 1
) AS last ON true
"""

PAGE_AND_CLAIM_ALL_RESTAURANTS = _PAGE_AND_CLAIM.format(
    restaurant_filter="o.restaurant_id IS NOT NULL", order_has_image=ORDER_HAS_IMAGE, stale_processing=STALE_PROCESSING
)
PAGE_AND_CLAIM_LISTED_RESTAURANTS = _PAGE_AND_CLAIM.format(
    restaurant_filter="o.restaurant_id = ANY(CAST(:restaurant_ids AS bigint[]))",
    order_has_image=ORDER_HAS_IMAGE,
    stale_processing=STALE_PROCESSING,
)

# --- SQL on the ledger (claims this run could not turn into messages) ---------------------------------------

# Only rows still exactly as this run left them (queued, our enqueued_at) are touched.
RELEASE_CLAIMS = """
WITH released AS (
    SELECT * FROM unnest(
        CAST(:order_ids AS bigint[]), CAST(:llms AS text[]), CAST(:claimed_ats AS timestamptz[]),
        CAST(:previous_enqueued_ats AS timestamptz[]), CAST(:is_new AS boolean[])
    ) AS r(order_id, llm, claimed_at, previous_enqueued_at, is_new)
),
deleted AS (
    DELETE FROM benchmarking.extraction_jobs AS job
    USING released AS r
    WHERE job.order_id = r.order_id AND job.llm = r.llm AND r.is_new
      AND job.status = 'queued' AND job.enqueued_at = r.claimed_at
    RETURNING 1
),
restored AS (
    UPDATE benchmarking.extraction_jobs AS job
    SET enqueued_at = r.previous_enqueued_at, updated_at = now()
    FROM released AS r
    WHERE job.order_id = r.order_id AND job.llm = r.llm AND NOT r.is_new
      AND job.status = 'queued' AND job.enqueued_at = r.claimed_at
    RETURNING 1
)
SELECT (SELECT count(*) FROM deleted) + (SELECT count(*) FROM restored)
"""

# --- the run -------------------------------------------------------------------------------------------------

SEND_BATCH_SIZE = 10  # the SendMessageBatch maximum
SEND_THREADS = 8
SEND_ATTEMPTS = 4  # one send plus three retries of the entries SQS reported as failed
SEND_BACKOFF_SECONDS = 0.2  # doubled after each retry
# Deadlock and serialization failures are retried: overlapping runs can lock the same ledger rows in
# different orders when one releases claims while the other claims (each statement is its own transaction).
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
STATEMENT_ATTEMPTS = 3
# Keyset start: before every real (created_at, id).
FIRST_KEY: tuple[str, int] = ("-infinity", -(2**63))
NO_LOWER_BOUND = "-infinity"


class QueueClient(Protocol):
    """The two SQS calls the producer makes (a boto3 SQS client, or a fake in tests)."""

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]: ...

    def get_queue_attributes(self, *, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Claim:
    order_id: int
    llm: str
    claimed_at: str
    is_new: bool
    previous_enqueued_at: str | None

    def message_body(self) -> str:
        return json.dumps({"order_id": self.order_id, "llm": self.llm})


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


@dataclass(frozen=True)
class Page:
    orders: int
    last_key: tuple[datetime, int] | None
    candidates: int
    claims: list[Claim]


def fetch_and_claim_page(
    connection: Connection,
    settings: ProducerSettings,
    after: tuple[Any, int],
    max_claims: int,
) -> Page:
    """Read the next page of eligible orders after ``after`` and claim up to ``max_claims`` of its jobs."""
    params: dict[str, Any] = {
        "after_created_at": after[0],
        "after_id": after[1],
        "orders_since": settings.orders_since or NO_LOWER_BOUND,
        "page_size": settings.page_size,
        "llms": list(settings.llm_models),
        "lease_seconds": settings.requeue_lease_seconds,
        "processing_lease_seconds": settings.processing_lease_seconds,
        "stale_processing_error": STALE_PROCESSING_ERROR,
        "max_claims": max_claims,
    }
    if settings.restaurant_ids is None:
        statement = PAGE_AND_CLAIM_ALL_RESTAURANTS
    else:
        statement = PAGE_AND_CLAIM_LISTED_RESTAURANTS
        params["restaurant_ids"] = list(settings.restaurant_ids)
    row = run_statement(connection, statement, **params)[0]
    orders, last_created_at, last_id, candidates, _chosen, claimed_at = row[:6]
    order_ids, llms, is_new, previous = row[6:]
    claims = [
        Claim(order_id, llm, claimed_at, new, prev)
        for order_id, llm, new, prev in zip(order_ids, llms, is_new, previous, strict=True)
    ]
    last_key = None if last_id is None else (last_created_at, last_id)
    return Page(orders=orders, last_key=last_key, candidates=candidates, claims=claims)


def release_claims(connection: Connection, claims: Sequence[Claim]) -> int:
    """Undo claims whose message was not sent; returns how many ledger rows were deleted or restored."""
    if not claims:
        return 0
    rows = run_statement(
        connection,
        RELEASE_CLAIMS,
        order_ids=[claim.order_id for claim in claims],
        llms=[claim.llm for claim in claims],
        claimed_ats=[claim.claimed_at for claim in claims],
        previous_enqueued_ats=[claim.previous_enqueued_at for claim in claims],
        is_new=[claim.is_new for claim in claims],
    )
    return int(rows[0][0])


def run_statement(connection: Connection, statement: str, **params: Any) -> Any:
    """One autocommitted statement, run again if Postgres aborted it to break a deadlock."""
    for attempt in range(1, STATEMENT_ATTEMPTS + 1):
        try:
            return connection.run(statement, **params)
        except DatabaseError as error:
            fields = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
            if fields.get("C") not in RETRYABLE_SQLSTATES or attempt == STATEMENT_ATTEMPTS:
                raise
            logger.warning("ledger statement retried", extra={"sqlstate": fields.get("C"), "attempt": attempt})
    raise AssertionError("unreachable")


def queue_depth(sqs: QueueClient, queue_url: str) -> int:
    """ApproximateNumberOfMessages; also proves the queue exists and we may use it before anything is claimed."""
    try:
        response = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    except Exception as error:
        raise QueueUnavailableError(f"cannot read queue {queue_url}: {_describe(error)}") from error
    return int(response["Attributes"]["ApproximateNumberOfMessages"])


def send_batch(
    sqs: QueueClient,
    queue_url: str,
    claims: Sequence[Claim],
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[Claim], list[Claim]]:
    """Send up to ten messages, retrying the entries SQS reports as failed; returns (sent, failed).

    An exception from the call itself (after boto3's own retries of throttling and 5xx) means the queue
    is unusable (wrong URL, missing permission, no network): it is raised as QueueUnavailableError.
    """
    pending = {str(index): claim for index, claim in enumerate(claims)}
    sent: list[Claim] = []
    delay = SEND_BACKOFF_SECONDS
    for attempt in range(SEND_ATTEMPTS):
        if attempt:
            sleep(delay)
            delay *= 2
        entries = [{"Id": entry_id, "MessageBody": claim.message_body()} for entry_id, claim in pending.items()]
        try:
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        except Exception as error:
            raise QueueUnavailableError(f"cannot send to queue {queue_url}: {_describe(error)}") from error
        for entry in response.get("Successful", []):
            sent.append(pending.pop(entry["Id"]))
        if not pending:
            break
        failures = {entry["Id"]: entry for entry in response.get("Failed", [])}
        logger.warning(
            "SendMessageBatch entries failed",
            extra={
                "attempt": attempt + 1,
                "failed": len(pending),
                "codes": sorted({f.get("Code") for f in failures.values()}),
            },
        )
    return sent, list(pending.values())


def _describe(error: BaseException) -> str:
    code = getattr(error, "response", {}).get("Error", {}).get("Code")
    return f"{type(error).__name__}{f' ({code})' if code else ''}: {error}"


def _batches(claims: Sequence[Claim]) -> Iterator[Sequence[Claim]]:
    for start in range(0, len(claims), SEND_BATCH_SIZE):
        yield claims[start : start + SEND_BATCH_SIZE]


def send_claims(
    connection: Connection,
    sqs: QueueClient,
    queue_url: str,
    claims: Sequence[Claim],
    executor: ThreadPoolExecutor,
    sleep: Callable[[float], None],
) -> tuple[int, int, int]:
    """Send a page's claims in parallel batches; release what was not sent. Returns (sent, failed, released).

    If the queue turns out unusable, every claim of the page not sent is released before the error is raised.
    """
    futures = [executor.submit(send_batch, sqs, queue_url, batch, sleep) for batch in _batches(claims)]
    sent: list[Claim] = []
    failed: list[Claim] = []
    error: BaseException | None = None
    for future, batch in zip(futures, _batches(claims), strict=True):
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
            page = fetch_and_claim_page(
                connection, settings, after, max_claims=settings.max_orders_per_run - summary.enqueued
            )
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


def create_orders_index(connection: Connection) -> str:
    """``invoices index-orders``: build the producer's index on ``orders`` without blocking writers.

    Returns what happened: "created", "exists" or "rebuilt" (an invalid leftover of a failed build).
    """
    state = connection.run(ORDERS_INDEX_IS_VALID, name=ORDERS_INDEX_NAME)
    if state and state[0][0]:
        return "exists"
    if state:
        connection.run(DROP_INVALID_ORDERS_INDEX)
    connection.run(CREATE_ORDERS_INDEX)
    return "rebuilt" if state else "created"


def run_producer(remaining_time_ms: Callable[[], int] | None = None) -> RunSummary:
    """One run with the pipeline's own settings, connection and SQS client (the handler and the CLI)."""
    from invoice_pipeline.db import pool
    from invoice_pipeline.settings import producer_settings

    settings = producer_settings()
    with pool.connection() as connection:
        return enqueue_orders(connection, sqs_client(), settings, remaining_time_ms=remaining_time_ms)


def sqs_client() -> QueueClient:
    import boto3
    from botocore.config import Config

    # Enough HTTP connections for every sending thread; boto3's standard retries cover throttling and 5xx.
    config = Config(max_pool_connections=SEND_THREADS * 2, retries={"mode": "standard", "max_attempts": 5})
    client: QueueClient = boto3.client("sqs", config=config)
    return client
