"""What the consumer does with one SQS record (docs/architecture.md §6 and §8).

parse the body -> claim the job -> read the order -> fetch and prepare every image (before any model call, so
a bad image costs nothing) -> extract each invoice -> write every item and mark the job `done` in one
statement. Any failure is classified once (:func:`invoice_pipeline.errors.classify`), recorded in the
ledger as the §5 table says, and re-raised so the batch reports the record as failed. Throttling is not a
failure (§10): the model calls are paced by the shared budget (:mod:`invoice_pipeline.budget`), and a throttled
job is handed back through a fresh delayed message while the current record is acknowledged (``_hand_back``).

Permanent failures reach the DLQ within seconds: the record is made visible again at once, and while the job
is `failed` for this very message id each re-delivery fails fast (no S3, no model) until SQS moves the
message to the DLQ. A redriven message has a new id, so it is claimed and processed normally.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from invoice_pipeline import db, items, ledger, orders, urls
from invoice_pipeline.budget import ModelBudgets
from invoice_pipeline.clients import AwsClients, ClientConfig
from invoice_pipeline.errors import (
    AlreadyFailed,
    ClaimLost,
    InvalidMessage,
    JobBusy,
    NotEnoughTime,
    PermanentError,
    Throttled,
    TooManyItems,
    classify,
    describe,
)
from invoice_pipeline.extraction.base import (
    MIN_ATTEMPT_SECONDS,
    ExtractedInvoice,
    Extractor,
    InvoiceImages,
    SourceDocument,
)
from invoice_pipeline.observability import logger, metrics
from invoice_pipeline.settings import ConsumerSettings
from invoice_pipeline.visibility import Record as VisibilityRecord
from invoice_pipeline.visibility import SqsVisibility, backoff_seconds

# Kept back from the invocation's remaining time: the ledger write and the batch response after the model.
WRITE_RESERVE_SECONDS = 15.0
# Fetching and preparing one image rarely takes 2 s; do not start one with less than this left.
MIN_SECONDS_PER_IMAGE = 5.0
# A record is not claimed with less than one image and one model attempt ahead (the extractor makes no shorter
# attempt): it would certainly run out after its claim, costing an attempt for nothing. The stack's config refuses
# a batch whose records cannot all get images and a full model call (stacks/config.py).
MIN_SECONDS_TO_START = MIN_SECONDS_PER_IMAGE + MIN_ATTEMPT_SECONDS
_BIGINT_MAX = 2**63 - 1
MAX_VISIBILITY_SECONDS = 12 * 3600  # the most ChangeMessageVisibility accepts
THROTTLE_JITTER = 0.2  # a throttled job comes back up to 20% after the named wait, not all at the same instant


class JobMessage(BaseModel):
    """The queue message (docs/architecture.md §6); unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    order_id: StrictInt = Field(ge=1, le=_BIGINT_MAX)
    llm: str | None = None


def parse_message(body: str | None, llm_models: tuple[str, ...]) -> tuple[int, str]:
    """(order_id, llm) of a message body, or :class:`InvalidMessage` saying what is wrong."""
    try:
        message = JobMessage.model_validate_json(body or "")
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['msg']}"
            for problem in error.errors(include_url=False)
        )
        raise InvalidMessage(f"invalid message body ({problems})") from None
    llm = message.llm if message.llm is not None else llm_models[0]
    if llm not in llm_models:
        raise InvalidMessage(f"model {llm!r} is not in LLM_MODELS ({', '.join(llm_models)})")
    return message.order_id, llm


class Record(VisibilityRecord, Protocol):
    """What the consumer reads of an SQS record (Powertools' ``SQSRecord`` has it): what a visibility change
    needs, and the message id and attributes."""

    @property
    def message_id(self) -> str: ...

    @property
    def attributes(self) -> Any: ...


class Visibility(Protocol):
    def change(self, record: Any, seconds: int) -> None: ...

    def send_again(self, record: Any, *, delay_seconds: int) -> None: ...


class ThrottledTooLong(PermanentError):
    """The job's waits for rate limits added up to more than MAX_THROTTLE_WAIT_SECONDS."""


# Attempts, the first included: a fetch that outlasts the read timeout is tried again.
S3_FETCH = ClientConfig(read_timeout=20, attempts=4)


def image_fetcher(clients: AwsClients) -> Callable[..., bytes]:
    """``fetch(location, max_bytes=...)`` with the runtime's S3 client."""

    def fetch(location: Any, *, max_bytes: int) -> bytes:
        # The image module loads Pillow: on the first record, not at cold start (bench/cold_start.py).
        from invoice_pipeline import images

        return images.fetch_invoice_image(location, max_bytes=max_bytes, client=clients.get("s3", S3_FETCH))

    return fetch


@dataclass
class ConsumerDeps:
    """The consumer's runtime: everything a record needs besides the record. The handler builds it once per container
    (:func:`build_runtime`) and passes it down; tests hand in their own parts."""

    settings: ConsumerSettings
    pool: db.ConnectionPool
    fetch_image: Callable[..., bytes]
    extractor_for: Callable[[str], Extractor]
    visibility: Visibility
    budgets: ModelBudgets


def build_runtime(settings: ConsumerSettings) -> ConsumerDeps:
    """The consumer's runtime for ``settings``: the connection pool, the AWS clients and the extractors, none of them
    connected yet (each connects on first use)."""
    from invoice_pipeline.extraction.registry import Extractors

    clients = AwsClients()
    pool = db.ConnectionPool(lambda: settings.database)
    return ConsumerDeps(
        settings=settings,
        pool=pool,
        fetch_image=image_fetcher(clients),
        extractor_for=Extractors(settings, clients).get,
        visibility=SqsVisibility(clients),
        budgets=ModelBudgets(pool),
    )


@dataclass(frozen=True)
class Job:
    order_id: int
    llm: str
    attempt: int
    message_id: str
    receive_count: int


def process_record(record: Record, *, deadline: float, deps: ConsumerDeps) -> str:
    """Handle one record; returns what happened (``done``, ``already_done``) or raises so it is reported failed.

    ``deadline`` is a ``time.monotonic()`` value by which the record must be finished.
    """
    receive_count = int(record.attributes.get("ApproximateReceiveCount", "1"))
    try:
        order_id, llm = parse_message(record.body, deps.settings.llm_models)
    except InvalidMessage as error:
        # No (order, llm) to record it against: the log and the DLQ keep it.
        logger.error(
            "message rejected",
            extra={"message_id": record.message_id, "receive_count": receive_count, "error": str(error)},
        )
        deps.visibility.change(record, 0)
        raise
    logger.append_keys(order_id=order_id, llm=llm, message_id=record.message_id, receive_count=receive_count)
    try:
        return _process_job(record, order_id, llm, receive_count, deadline, deps)
    finally:
        logger.remove_keys(["order_id", "llm", "message_id", "receive_count", "attempt"])


def _process_job(
    record: Record, order_id: int, llm: str, receive_count: int, deadline: float, deps: ConsumerDeps
) -> str:
    left = deadline - time.monotonic()
    if left < MIN_SECONDS_TO_START:
        return _hand_back_untouched(record, left, receive_count, deps)
    try:
        with deps.pool.connection() as connection:
            claim = ledger.claim_job(
                connection,
                order_id,
                llm,
                message_id=record.message_id,
                lease_seconds=deps.settings.processing_lease_seconds,
            )
    except Exception as error:
        # Nothing claimed, nothing to record: back off like any transient failure instead of waiting out the
        # queue's whole visibility timeout (6x the function timeout), which would use up receives slowly.
        logger.warning("could not claim the job", extra={"error": describe(error)})
        deps.visibility.change(record, backoff_seconds(receive_count, deps.settings.retry_backoff_base_seconds))
        raise
    if claim.outcome == "done":
        logger.info("job already done: acknowledged without extracting")
        return "already_done"
    if claim.outcome == "busy":
        # Come back when the holder's lease ends, not sooner: a holder that crashed (timeout, lost connection)
        # leaves the job `processing` until then, and shorter backoffs would use up every receive meanwhile
        # and send the message to the DLQ with the job still `processing`.
        backoff = backoff_seconds(receive_count, deps.settings.retry_backoff_base_seconds)
        wait = max(backoff, math.ceil(claim.lease_left_seconds) + 1)
        deps.visibility.change(record, min(wait, MAX_VISIBILITY_SECONDS))
        raise JobBusy(f"job ({order_id}, {llm}) is being processed by another delivery")
    if claim.outcome == "failed":
        deps.visibility.change(record, 0)
        raise AlreadyFailed(f"job ({order_id}, {llm}) already failed permanently for this message")
    job = Job(order_id, llm, claim.attempt, record.message_id, receive_count)
    logger.append_keys(attempt=job.attempt)
    try:
        item_count = _extract_and_write(job, deadline, deps)
    except Throttled as error:
        if _hand_back(job, error, record, deps):
            return "throttled"
        raise
    except Exception as error:
        if _record_failure(job, error, record, deps):
            return "handed_back"  # a fresh message carries the job on; this record is acknowledged
        raise
    metrics.add_metric(name="OrdersDone", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ItemsWritten", unit=MetricUnit.Count, value=item_count)
    return "done"


def _hand_back_untouched(record: Record, left: float, receive_count: int, deps: ConsumerDeps) -> str:
    """A record that cannot start before the deadline is not claimed (no attempt, the ledger untouched;
    docs/architecture.md §9) and returns at once, for an invocation with time to spare. On the last receive it is
    handed back through a fresh message instead, so a record never reaches the DLQ without having been tried."""
    logger.info("not enough time left to start: record handed back untouched", extra={"seconds_left": round(left)})
    if receive_count >= deps.settings.max_receive_count:
        try:
            deps.visibility.send_again(record, delay_seconds=0)
            return "handed_back"
        except Exception:
            logger.exception("could not hand the record back through a fresh message")
    deps.visibility.change(record, 0)
    raise NotEnoughTime(f"only {max(left, 0):.0f} s left before the deadline: record not started")


def _extract_and_write(job: Job, deadline: float, deps: ConsumerDeps) -> int:
    settings = deps.settings
    with deps.pool.connection() as connection:
        invoice_image = orders.read_invoice_image(connection, job.order_id)
    locations = urls.parse_invoice_image(invoice_image, settings.allowed_buckets)
    # The provider prepares the document the way it reads it (model-sized images, or whole pages).
    extractor = deps.extractor_for(job.llm)
    prepared = []
    for index, location in enumerate(locations):
        _require_time(deadline, MIN_SECONDS_PER_IMAGE, f"fetching image {index}")
        data = deps.fetch_image(location, max_bytes=settings.max_image_bytes)
        segments = extractor.prepare(data, source=str(location))
        document = SourceDocument(data=data, media_type=_media_type(data))
        prepared.append(InvoiceImages(job.order_id, index, segments, document=document))

    budgets = deps.budgets
    reservation = budgets.reserve(job.llm, prepared, deadline=deadline, call_seconds=settings.model_timeout_seconds)
    extracted: list[ExtractedInvoice] = []
    model_ms = 0.0
    for invoice in prepared:
        started = time.perf_counter()
        result = budgets.extract(extractor, invoice, reservation, deadline=deadline)
        latency_ms = (time.perf_counter() - started) * 1000
        if len(result.items) > settings.max_items_per_invoice:
            raise TooManyItems(
                f"invoice {invoice.invoice_index} has {len(result.items)} lines, "
                f"more than MAX_ITEMS_PER_INVOICE={settings.max_items_per_invoice}"
            )
        model_ms += latency_ms
        metrics.add_metric(name="ModelLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
        metrics.add_metric(name="InputTokens", unit=MetricUnit.Count, value=result.input_tokens)
        metrics.add_metric(name="OutputTokens", unit=MetricUnit.Count, value=result.output_tokens)
        metrics.add_metric(name="CostUSD", unit=MetricUnit.NoUnit, value=float(result.cost_usd))
        extracted.append(result)

    with deps.pool.connection() as connection:
        write = items.write_order(
            connection, job.order_id, job.llm, attempt=job.attempt, invoices=extracted, model_ms=round(model_ms)
        )
    if not write.job_completed:
        raise ClaimLost(f"the claim on job ({job.order_id}, {job.llm}) was taken over: nothing written")
    logger.info(
        "order extracted",
        extra={
            "invoice_count": len(extracted),
            "item_count": write.item_count,
            "input_tokens": sum(invoice.input_tokens for invoice in extracted),
            "output_tokens": sum(invoice.output_tokens for invoice in extracted),
        },
    )
    return write.item_count


def _media_type(data: bytes) -> str:
    from invoice_pipeline import images

    return images.media_type(data)


def _require_time(deadline: float, needed: float, what: str) -> None:
    left = deadline - time.monotonic()
    if left < needed:
        raise NotEnoughTime(f"only {max(left, 0):.0f} s left before the deadline: not {what}")


def _record_failure(job: Job, error: Exception, record: Record, deps: ConsumerDeps) -> bool:
    """The §5 and §10 failure transitions. True when the record was handed back through a fresh message (the
    caller then acknowledges it); otherwise the record fails (the caller re-raises)."""
    kind = classify(error)
    if kind == "configuration":
        return _record_configuration_error(job, error, record, deps)
    last_error = describe(error)
    last_receive = job.receive_count >= deps.settings.max_receive_count
    try:
        with deps.pool.connection() as connection:
            if kind == "permanent" or last_receive:
                # Only a permanent failure marks the message: its re-deliveries then fail fast.
                message_id = job.message_id if kind == "permanent" else None
                ledger.fail_job(
                    connection, job.order_id, job.llm, attempt=job.attempt, last_error=last_error, message_id=message_id
                )
            else:
                ledger.requeue_job(connection, job.order_id, job.llm, attempt=job.attempt, last_error=last_error)
    except Exception:
        # The job stays `processing` until its lease runs out; the next delivery after that claims it.
        logger.exception("could not record the failure in the ledger", extra={"error": last_error})
    failed_for_good = kind == "permanent" or last_receive
    if failed_for_good:
        metrics.add_metric(name="OrdersFailed", unit=MetricUnit.Count, value=1)
    log = logger.error if failed_for_good else logger.warning
    log(f"{kind} failure", extra={"error": last_error, "job_failed": failed_for_good})
    # Permanent, or the last receive: visible again at once so SQS moves it to the DLQ within seconds.
    backoff = backoff_seconds(job.receive_count, deps.settings.retry_backoff_base_seconds)
    deps.visibility.change(record, 0 if failed_for_good else backoff)
    return False


def _record_configuration_error(job: Job, error: Exception, record: Record, deps: ConsumerDeps) -> bool:
    """The deployment is wrong (key rejected, model not enabled), not the order (docs/architecture.md §9), so
    the job is never `failed` for it: it goes back to `queued` with the reason and the record returns after
    CONFIG_ERROR_BACKOFF_SECONDS. On the last receive SQS would move the message to the DLQ, so the job is
    handed back through a fresh message on the same queue instead; only if that send fails does the message
    reach the DLQ, and the producer then re-enqueues the `queued` job after REQUEUE_LEASE_SECONDS."""
    last_error = describe(error)
    backoff = deps.settings.config_error_backoff_seconds
    try:
        with deps.pool.connection() as connection:
            ledger.requeue_job(connection, job.order_id, job.llm, attempt=job.attempt, last_error=last_error)
    except Exception:
        logger.exception("could not record the failure in the ledger", extra={"error": last_error})
    metrics.add_metric(name="ModelCredentialsRejected", unit=MetricUnit.Count, value=1)
    logger.error("model credentials rejected", extra={"error": last_error, "job_failed": False})
    if job.receive_count >= deps.settings.max_receive_count:
        try:
            deps.visibility.send_again(record, delay_seconds=backoff)
        except Exception:
            logger.exception("could not hand the job back: the message goes to the DLQ, the job stays queued")
        else:
            logger.warning("last receive: job handed back through a fresh message", extra={"delay_seconds": backoff})
            try:
                with deps.pool.connection() as connection:
                    ledger.mark_resent(connection, job.order_id, job.llm)
            except Exception:  # the producer may then send one message more: harmless, claims are idempotent
                logger.exception("could not record the fresh message in the ledger")
            return True
    deps.visibility.change(record, min(backoff, MAX_VISIBILITY_SECONDS))
    return False


def _hand_back(job: Job, error: Throttled, record: Record, deps: ConsumerDeps) -> bool:
    """Throttled (docs/architecture.md §9): neither a failure nor a used-up receive. The job goes back to `queued`
    with the wait counted, a fresh copy of the message comes back after the wait the provider named (plus jitter),
    and the current record is acknowledged (True). Only a total wait above MAX_THROTTLE_WAIT_SECONDS fails the job.
    False: it could not be handed back; the record fails and comes back after the wait (visibility)."""
    wait = error.retry_after_seconds
    if wait is None:
        wait = float(backoff_seconds(1, deps.settings.retry_backoff_base_seconds))
    delay = max(1, math.ceil(wait * random.uniform(1.0, 1.0 + THROTTLE_JITTER)))  # noqa: S311 (jitter)
    last_error = describe(error)
    try:
        with deps.pool.connection() as connection:
            throttle = ledger.throttle_job(
                connection,
                job.order_id,
                job.llm,
                attempt=job.attempt,
                wait_seconds=delay,
                max_wait_seconds=deps.settings.max_throttle_wait_seconds,
                last_error=last_error,
            )
    except Exception:
        logger.exception("could not record the throttled wait in the ledger", extra={"error": last_error})
        deps.visibility.change(record, min(delay, MAX_VISIBILITY_SECONDS))
        return False
    if throttle.total_seconds is None:  # the claim was taken over: its new holder owns the job
        logger.warning("throttled, and the claim was lost", extra={"error": last_error})
        deps.visibility.change(record, min(delay, MAX_VISIBILITY_SECONDS))
        return False
    if not throttle.requeued:
        too_long = ThrottledTooLong(
            f"throttled for {throttle.total_seconds:.0f} s in total, more than MAX_THROTTLE_WAIT_SECONDS "
            f"({deps.settings.max_throttle_wait_seconds}); last: {last_error}"
        )
        _record_failure(job, too_long, record, deps)
        raise too_long from error
    metrics.add_metric(name="JobsThrottled", unit=MetricUnit.Count, value=1)
    try:
        deps.visibility.send_again(record, delay_seconds=delay)
    except Exception as send_error:
        # The job is `queued`; the record itself comes back after the wait (this uses up one receive).
        logger.warning("could not hand the job back: the record waits instead", extra={"error": describe(send_error)})
        deps.visibility.change(record, min(delay, MAX_VISIBILITY_SECONDS))
        return False
    logger.info(
        "throttled: handed back",
        extra={"error": last_error, "delay_seconds": delay, "throttled_seconds": throttle.total_seconds},
    )
    return True


def record_handler(deadline: float, deps: ConsumerDeps) -> Callable[[Record], str]:
    """The per-record function for Powertools' batch processor, bound to this invocation's deadline."""

    def handle(record: Record) -> str:
        return process_record(record, deadline=deadline - WRITE_RESERVE_SECONDS, deps=deps)

    return handle
