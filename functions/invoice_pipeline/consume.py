"""What the consumer does with one SQS record (DESIGN §3 and §5).

parse the body -> claim the job -> read the order -> fetch and prepare every image (before any model call, so
a bad image costs nothing) -> extract each invoice -> write every item and mark the job `done` in one
statement. Any failure is classified once (:func:`invoice_pipeline.errors.classify`), recorded in the
ledger as the §5 table says, and re-raised so the batch reports the record as failed.

Permanent failures reach the DLQ within seconds: the record is made visible again at once, and while the job
is `failed` for this very message id each re-delivery fails fast (no S3, no model) until SQS moves the
message to the DLQ. A redriven message has a new id, so it is claimed and processed normally.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from invoice_pipeline import db, images, items, jobs, orders, urls
from invoice_pipeline.errors import (
    AlreadyFailed,
    ClaimLost,
    InvalidMessage,
    JobBusy,
    NotEnoughTime,
    classify,
    describe,
)
from invoice_pipeline.extraction.base import ExtractedInvoice, Extractor, InvoiceImages
from invoice_pipeline.observability import logger, metrics
from invoice_pipeline.settings import ConsumerSettings, consumer_settings
from invoice_pipeline.visibility import backoff_seconds, visibility

# Kept back from the invocation's remaining time: the ledger write and the batch response after the model.
WRITE_RESERVE_SECONDS = 15.0
# Fetching and preparing one image rarely takes 2 s; do not start one with less than this left.
MIN_SECONDS_PER_IMAGE = 5.0
_BIGINT_MAX = 2**63 - 1
MAX_VISIBILITY_SECONDS = 12 * 3600  # the most ChangeMessageVisibility accepts


class JobMessage(BaseModel):
    """The queue message (DESIGN §3); unknown fields are ignored."""

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


class Record(Protocol):
    """What the consumer reads of an SQS record (Powertools' ``SQSRecord`` has it)."""

    @property
    def message_id(self) -> str: ...

    @property
    def body(self) -> str: ...

    @property
    def receipt_handle(self) -> str: ...

    @property
    def event_source_arn(self) -> str: ...

    @property
    def attributes(self) -> Any: ...


class Visibility(Protocol):
    def change(self, record: Any, seconds: int) -> None: ...


def _default_extractor_for(model: str, settings: ConsumerSettings) -> Extractor:
    from invoice_pipeline.extraction.registry import extractor_for

    return extractor_for(model, settings)


@dataclass
class ConsumerDeps:
    """The consumer's adapters; tests hand in their own, production uses these defaults."""

    settings: ConsumerSettings = field(default_factory=consumer_settings)
    pool: db.ConnectionPool = field(default_factory=lambda: db.pool)
    fetch_image: Callable[..., bytes] = images.fetch_invoice_image
    extractor_for: Callable[[str, ConsumerSettings], Extractor] = _default_extractor_for
    visibility: Visibility = field(default_factory=lambda: visibility)


@dataclass(frozen=True)
class Job:
    order_id: int
    llm: str
    attempt: int
    message_id: str
    receive_count: int


def process_record(record: Record, *, deadline: float, deps: ConsumerDeps | None = None) -> str:
    """Handle one record; returns what happened (``done``, ``already_done``) or raises so it is reported failed.

    ``deadline`` is a ``time.monotonic()`` value by which the record must be finished.
    """
    deps = deps or ConsumerDeps()
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
    try:
        with deps.pool.connection() as connection:
            claim = jobs.claim_job(
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
    except Exception as error:
        _record_failure(job, error, record, deps)
        raise
    metrics.add_metric(name="OrdersDone", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ItemsWritten", unit=MetricUnit.Count, value=item_count)
    return "done"


def _extract_and_write(job: Job, deadline: float, deps: ConsumerDeps) -> int:
    settings = deps.settings
    with deps.pool.connection() as connection:
        invoice_image = orders.read_invoice_image(connection, job.order_id)
    locations = urls.parse_invoice_image(invoice_image, settings.allowed_buckets)
    prepared = []
    for index, location in enumerate(locations):
        _require_time(deadline, MIN_SECONDS_PER_IMAGE, f"fetching image {index}")
        data = deps.fetch_image(location, max_bytes=settings.max_image_bytes)
        segments = images.prepare_invoice(data, source=str(location))
        prepared.append(InvoiceImages(order_id=job.order_id, invoice_index=index, segments=segments))

    extractor = deps.extractor_for(job.llm, settings)
    extracted: list[ExtractedInvoice] = []
    model_ms = 0.0
    for invoice in prepared:
        started = time.perf_counter()
        result = extractor.extract(invoice, deadline=deadline)
        latency_ms = (time.perf_counter() - started) * 1000
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


def _require_time(deadline: float, needed: float, what: str) -> None:
    left = deadline - time.monotonic()
    if left < needed:
        raise NotEnoughTime(f"only {max(left, 0):.0f} s left before the deadline: not {what}")


def _record_failure(job: Job, error: Exception, record: Record, deps: ConsumerDeps) -> None:
    """The §5 failure transitions; the record itself fails either way (the caller re-raises)."""
    kind = classify(error)
    last_error = describe(error)
    last_receive = job.receive_count >= deps.settings.max_receive_count
    try:
        with deps.pool.connection() as connection:
            if kind == "permanent" or last_receive:
                # Only a permanent failure marks the message: its re-deliveries then fail fast.
                message_id = job.message_id if kind == "permanent" else None
                jobs.fail_job(
                    connection, job.order_id, job.llm, attempt=job.attempt, last_error=last_error, message_id=message_id
                )
            else:
                jobs.requeue_job(connection, job.order_id, job.llm, attempt=job.attempt, last_error=last_error)
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


def record_handler(deadline: float, deps: ConsumerDeps | None = None) -> Callable[[Record], str]:
    """The per-record function for Powertools' batch processor, bound to this invocation's deadline."""

    def handle(record: Record) -> str:
        return process_record(record, deadline=deadline - WRITE_RESERVE_SECONDS, deps=deps)

    return handle
