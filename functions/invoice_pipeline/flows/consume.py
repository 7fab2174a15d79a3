"""What the consumer does with one SQS record (docs/architecture.md §6 and §8).

parse the body -> claim the job -> read the order -> fetch and prepare every image (before any model call, so
a bad image costs nothing) -> extract each invoice -> write every item and mark the job `done` in one
statement. Any failure is classified once (:func:`invoice_pipeline.errors.classify`), recorded in the
ledger as the §5 table says, and re-raised so the batch reports the record as failed. Throttling is not a
failure (§10): the model calls are paced by the shared budget (:mod:`invoice_pipeline.pacing.budget`), and a throttled
job is handed back through a fresh delayed message while the current record is acknowledged (``_hand_back``). A
job whose model's budget has no room yet is not an attempt either: its claim is released without one, the wait is
counted apart, and it is handed back once, delayed until the turn the budget named (``_wait_for_budget``).

Permanent failures reach the DLQ within seconds: the record is made visible again at once, and while the job
is `failed` for this very message id each re-delivery fails fast (no S3, no model) until SQS moves the
message to the DLQ. A redriven message has a new id, so it is claimed and processed normally.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from invoice_pipeline.clients import AwsClients, ClientConfig
from invoice_pipeline.documents import urls
from invoice_pipeline.errors import (
    AlreadyFailed,
    CannotReadHere,
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
from invoice_pipeline.extractor import (
    MIN_ATTEMPT_SECONDS,
    ExtractedInvoice,
    Extractor,
    InvoiceImages,
    SourceDocument,
    ValidationWarning,
)
from invoice_pipeline.flows.visibility import Record as VisibilityRecord
from invoice_pipeline.flows.visibility import SqsVisibility, backoff_seconds
from invoice_pipeline.model_names import CASCADE_SEPARATOR, parse_model_entry
from invoice_pipeline.observability import logger, metrics
from invoice_pipeline.pacing.budget import BudgetExhausted, HeldTurn, ModelBudgets
from invoice_pipeline.providers.normalise import normalise_provenance
from invoice_pipeline.settings import ConsumerSettings
from invoice_pipeline.tables import db, events, items, ledger, orders
from invoice_pipeline.tables.kept_answers import KeptAnswer, answers_from_json, answers_json

if TYPE_CHECKING:  # loaded only for a cascade (its first use): a single model's cold start does not pay for it
    from invoice_pipeline.flows import cascade

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
    """The job's waits for rate limits added up to more than MAX_THROTTLE_WAIT_SECONDS, or it was handed back more
    than MAX_HAND_BACKS_PER_JOB times."""


# Attempts, the first included: a fetch that outlasts the read timeout is tried again.
S3_FETCH = ClientConfig(read_timeout=20, attempts=4)


def image_fetcher(clients: AwsClients) -> Callable[..., bytes]:
    """``fetch(location, max_bytes=...)`` with the runtime's S3 client."""

    def fetch(location: Any, *, max_bytes: int) -> bytes:
        # The image module loads Pillow: on the first record, not at cold start (bench/cold_start.py).
        from invoice_pipeline.documents import images

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
    events: events.EventPublisher  # completion events: published after each `done` or `failed` commit


def build_runtime(settings: ConsumerSettings) -> ConsumerDeps:
    """The consumer's runtime for ``settings``: the connection pool, the AWS clients and the extractors, none of them
    connected yet (each connects on first use)."""
    from invoice_pipeline.providers.registry import Extractors

    clients = AwsClients()
    pool = db.ConnectionPool(lambda: settings.database)
    return ConsumerDeps(
        settings=settings,
        pool=pool,
        fetch_image=image_fetcher(clients),
        extractor_for=Extractors(settings, clients).get,
        visibility=SqsVisibility(clients),
        budgets=ModelBudgets(pool, max_wait_seconds=settings.max_provider_wait_seconds),
        events=events.EventPublisher(clients, settings.events.event_bus_name, settings.events.outbox_retry_seconds),
    )


@dataclass(frozen=True)
class Job:
    order_id: int
    llm: str
    attempt: int
    message_id: str
    receive_count: int
    # invoice_index -> its answer, kept from earlier deliveries and added to as invoices are answered; handed to the
    # ledger when the job goes back to `queued`, so no invoice is billed twice (invoice_pipeline.tables.kept_answers).
    answers: dict[int, KeptAnswer] = field(default_factory=dict)
    # A cascade's stage answers so far (kept with the job when it waits, read back by its next delivery).
    stage_answers: list[cascade.StageAnswer] = field(default_factory=list)


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
    job = Job(order_id, llm, claim.attempt, record.message_id, receive_count, answers_from_json(claim.kept_answers))
    logger.append_keys(attempt=job.attempt)
    try:
        item_count = _extract_and_write(job, deadline, deps)
    except BudgetExhausted as wait:
        _keep_stage_answers(job, deps)
        return _wait_for_budget(job, wait, record, deps)
    except Throttled as error:
        _keep_stage_answers(job, deps)
        if _hand_back(job, error, record, deps):
            return "throttled"
        raise
    except Exception as error:
        if classify(error) != "permanent":
            _keep_stage_answers(job, deps)
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
    if CASCADE_SEPARATOR in job.llm:
        return _extract_cascade(job, [str(location) for location in locations], locations, deadline, deps)
    # The provider prepares the document the way it reads it (model-sized images, or whole pages).
    extractor = deps.extractor_for(job.llm)
    sources = [str(location) for location in locations]
    # An answer is kept for the same invoice only: same position, same location (the order may have changed).
    kept = {index: answer for index, answer in job.answers.items() if sources[index : index + 1] == [answer.source]}
    job.answers.clear()
    job.answers.update(kept)
    to_read = [(index, location) for index, location in enumerate(locations) if index not in kept]
    budgets = deps.budgets
    extracted: list[ExtractedInvoice] = [answer.invoice for answer in kept.values()]
    prepared = []
    reservation = None
    if to_read:
        # The turn in the model's budget comes first: a delivery that must wait for it fetches and prepares nothing.
        with deps.pool.connection() as connection:
            held = ledger.take_held_turn(connection, job.order_id, job.llm, attempt=job.attempt)
        turn = budgets.take_turn(
            job.llm,
            len(to_read),
            deadline=deadline,
            call_seconds=settings.model_timeout_seconds,
            held=None if held is None else HeldTurn(*held),
        )
        try:
            for index, location in to_read:
                _require_time(deadline, MIN_SECONDS_PER_IMAGE, f"fetching image {index}")
                data = deps.fetch_image(location, max_bytes=settings.max_image_bytes)
                segments = extractor.prepare(data, source=str(location))
                document = SourceDocument(data=data, media_type=_media_type(data))
                prepared.append(InvoiceImages(job.order_id, index, segments, document=document))
        except Exception:
            budgets.release(turn)  # no call was made: the turn goes to the next order
            raise
        reservation = budgets.reserve(turn, prepared)
    model_ms = 0.0
    for invoice in prepared:
        assert reservation is not None  # taken above whenever an invoice is to be read
        started = time.perf_counter()
        result = budgets.extract(extractor, invoice, reservation, deadline=deadline)
        result = normalise_provenance(result, pages=len(invoice.segments))
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
        if result.cost_usd is None:
            result = _with_unknown_cost(result, job.llm)
        else:
            metrics.add_metric(name="CostUSD", unit=MetricUnit.NoUnit, value=float(result.cost_usd))
        extracted.append(result)
        job.answers[invoice.invoice_index] = KeptAnswer(sources[invoice.invoice_index], result)
    extracted.sort(key=lambda invoice: invoice.invoice_index)

    with deps.pool.connection() as connection:
        write = items.write_order(
            connection, job.order_id, job.llm, attempt=job.attempt, invoices=extracted, model_ms=round(model_ms)
        )
    if not write.job_completed:
        raise ClaimLost(f"the claim on job ({job.order_id}, {job.llm}) was taken over: nothing written")
    events.publish_now(deps.events, deps.pool, [write.outbox_id] if write.outbox_id is not None else [])
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


def _with_unknown_cost(result: ExtractedInvoice, llm: str) -> ExtractedInvoice:
    """The model has no price: its cost is recorded as unknown (NULL), with a warning in the ledger row saying so."""
    logger.warning("no price for model: cost recorded as unknown (set MODEL_PRICES)", extra={"model": llm})
    warning = ValidationWarning(
        code="price_unknown",
        invoice_index=result.invoice_index,
        line_no=None,
        message=f"no price for model {llm}: cost unknown (set MODEL_PRICES or the modelPrices context)",
    )
    return dataclasses.replace(result, warnings=(*result.warnings, warning))


def _extract_cascade(job: Job, sources: list[str], locations: list[Any], deadline: float, deps: ConsumerDeps) -> int:
    """A cascade (docs/cascade.md): each stage reads, in one pass over the order, the invoices that have no answer yet;
    an invoice keeps the first answer whose evidence holds (:func:`invoice_pipeline.flows.cascade.accepts`), else the
    last stage's. Answers kept by an earlier delivery of the job are not read again (same invoice, same source)."""
    from invoice_pipeline.flows import cascade

    settings = deps.settings
    stages = parse_model_entry(job.llm).stages
    with deps.pool.connection() as connection:
        kept = cascade.answers_from_json(ledger.read_stage_answers(connection, job.order_id, job.llm), stages)
    job.stage_answers[:] = [
        answer for answer in kept if sources[answer.invoice_index : answer.invoice_index + 1] == [answer.source]
    ]
    with deps.pool.connection() as connection:
        held_turn = ledger.take_held_turn(connection, job.order_id, job.llm, attempt=job.attempt)
    held = None if held_turn is None else HeldTurn(*held_turn)
    fetched: dict[int, bytes] = {}
    model_ms = 0.0
    for position, stage in enumerate(stages):
        waiting = [index for index in range(len(locations)) if _next_stage(job, stages, index) == position]
        if not waiting:
            continue
        extractor = deps.extractor_for(stage)
        prepared = []
        for index in waiting:
            if index not in fetched:
                _require_time(deadline, MIN_SECONDS_PER_IMAGE, f"fetching image {index}")
                fetched[index] = deps.fetch_image(locations[index], max_bytes=settings.max_image_bytes)
            data = fetched[index]
            segments = extractor.prepare(data, source=sources[index])
            document = SourceDocument(data=data, media_type=_media_type(data))
            prepared.append(InvoiceImages(job.order_id, index, segments, document=document))
        turn = deps.budgets.take_turn(
            stage, len(prepared), deadline=deadline, call_seconds=settings.model_timeout_seconds, held=held
        )
        held = None  # a turn held by an earlier delivery is the first waiting stage's (the stage it waited for)
        reservation = deps.budgets.reserve(turn, prepared)
        last_stage = position == len(stages) - 1
        for invoice in prepared:
            started = time.perf_counter()
            try:
                result = deps.budgets.extract(extractor, invoice, reservation, deadline=deadline)
            except CannotReadHere as error:
                if last_stage:
                    raise
                # This stage cannot read such a document here (a scan without the OCR runtime): the next one reads it.
                logger.info("stage cannot read the invoice: passed on", extra={"stage": stage, "error": str(error)})
                result = ExtractedInvoice(invoice.invoice_index, None, None, ())
            result = normalise_provenance(result, pages=len(invoice.segments))
            latency_ms = (time.perf_counter() - started) * 1000
            model_ms += latency_ms
            metrics.add_metric(name="ModelLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
            metrics.add_metric(name="InputTokens", unit=MetricUnit.Count, value=result.input_tokens)
            metrics.add_metric(name="OutputTokens", unit=MetricUnit.Count, value=result.output_tokens)
            if result.cost_usd is None:
                result = _with_unknown_cost(result, stage)
            else:
                metrics.add_metric(name="CostUSD", unit=MetricUnit.NoUnit, value=float(result.cost_usd))
            job.stage_answers.append(
                cascade.StageAnswer(invoice.invoice_index, sources[invoice.invoice_index], stage, result)
            )

    extracted: list[ExtractedInvoice] = []
    answered_by: list[str | None] = []
    for index in range(len(locations)):
        answers = _answers_of(job, index)
        final = cascade.final_answer(answers)
        if len(final.items) > settings.max_items_per_invoice:
            raise TooManyItems(
                f"invoice {index} has {len(final.items)} lines, "
                f"more than MAX_ITEMS_PER_INVOICE={settings.max_items_per_invoice}"
            )
        extracted.append(final)
        answered_by.append(answers[-1].stage)
        metrics.add_metric(name=f"AnsweredByStage{stages.index(answers[-1].stage) + 1}", unit=MetricUnit.Count, value=1)
    with deps.pool.connection() as connection:
        write = items.write_order(
            connection,
            job.order_id,
            job.llm,
            attempt=job.attempt,
            invoices=extracted,
            model_ms=round(model_ms),
            stages=answered_by,
        )
    if not write.job_completed:
        raise ClaimLost(f"the claim on job ({job.order_id}, {job.llm}) was taken over: nothing written")
    logger.info(
        "order extracted",
        extra={
            "invoice_count": len(extracted),
            "item_count": write.item_count,
            "stages": answered_by,
            "input_tokens": sum(invoice.input_tokens for invoice in extracted),
            "output_tokens": sum(invoice.output_tokens for invoice in extracted),
        },
    )
    return write.item_count


def _answers_of(job: Job, index: int) -> list[cascade.StageAnswer]:

    return [answer for answer in job.stage_answers if answer.invoice_index == index]


def _next_stage(job: Job, stages: tuple[str, ...], index: int) -> int | None:
    from invoice_pipeline.flows import cascade

    return cascade.next_stage(stages, _answers_of(job, index))


def _keep_stage_answers(job: Job, deps: ConsumerDeps) -> None:
    """The job waits (it goes back to `queued`): keep what its stages read, so that none reads it again."""
    if not job.stage_answers:
        return
    from invoice_pipeline.flows import cascade

    try:
        with deps.pool.connection() as connection:
            ledger.keep_stage_answers(
                connection,
                job.order_id,
                job.llm,
                attempt=job.attempt,
                stage_answers=cascade.answers_json(job.stage_answers),
            )
    except Exception:  # the next delivery then reads those invoices again: it costs, it loses nothing
        logger.exception("could not keep the cascade's stage answers")


def _media_type(data: bytes) -> str:
    from invoice_pipeline.documents import images

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
    outbox_id: int | None = None
    try:
        with deps.pool.connection() as connection:
            if kind == "permanent" or last_receive:
                # Only a permanent failure marks the message: its re-deliveries then fail fast.
                message_id = job.message_id if kind == "permanent" else None
                outbox_id = ledger.fail_job(
                    connection, job.order_id, job.llm, attempt=job.attempt, last_error=last_error, message_id=message_id
                )
            else:
                _requeue(connection, job, last_error)
    except Exception:
        # The job stays `processing` until its lease runs out; the next delivery after that claims it.
        logger.exception("could not record the failure in the ledger", extra={"error": last_error})
    if outbox_id is not None:
        events.publish_now(deps.events, deps.pool, [outbox_id])
    failed_for_good = kind == "permanent" or last_receive
    if failed_for_good:
        metrics.add_metric(name="OrdersFailed", unit=MetricUnit.Count, value=1)
    log = logger.error if failed_for_good else logger.warning
    log(f"{kind} failure", extra={"error": last_error, "job_failed": failed_for_good})
    # Permanent, or the last receive: visible again at once so SQS moves it to the DLQ within seconds.
    backoff = backoff_seconds(job.receive_count, deps.settings.retry_backoff_base_seconds)
    deps.visibility.change(record, 0 if failed_for_good else backoff)
    return False


def _requeue(connection: db.Connection, job: Job, last_error: str) -> None:
    """Back to `queued` with the reason, keeping the answers of the invoices read so far (not billed again)."""
    ledger.requeue_job(
        connection,
        job.order_id,
        job.llm,
        attempt=job.attempt,
        last_error=last_error,
        kept_answers=answers_json(job.answers),
    )


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
            _requeue(connection, job, last_error)
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
    with the wait counted and the answers of its invoices extracted so far kept, a fresh copy of the message comes
    back after the wait the provider named (plus jitter; at most MAX_PROVIDER_WAIT_SECONDS), and the current record
    is acknowledged (True). Only a total wait above MAX_THROTTLE_WAIT_SECONDS, or more than MAX_HAND_BACKS_PER_JOB
    hand-backs, fails the job. False: it could not be handed back; the record fails and comes back after the wait
    (visibility)."""
    settings = deps.settings
    wait = error.retry_after_seconds
    if wait is None:
        wait = float(backoff_seconds(1, settings.retry_backoff_base_seconds))
    wait = min(wait, settings.max_provider_wait_seconds)  # finite and >= 0 already (Throttled)
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
                max_wait_seconds=settings.max_throttle_wait_seconds,
                max_hand_backs=settings.max_hand_backs_per_job,
                last_error=last_error,
                kept_answers=answers_json(job.answers),
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
        if throttle.total_seconds > settings.max_throttle_wait_seconds:
            bound = f"for {throttle.total_seconds:.0f} s in total, more than MAX_THROTTLE_WAIT_SECONDS "
            bound += f"({settings.max_throttle_wait_seconds})"
        else:
            bound = f"{throttle.hand_backs} times, more than MAX_HAND_BACKS_PER_JOB ({settings.max_hand_backs_per_job})"
        too_long = ThrottledTooLong(f"throttled {bound}; last: {last_error}")
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
    try:  # the fresh message's retention starts now: so does the producer's re-enqueue lease
        with deps.pool.connection() as connection:
            ledger.mark_resent(connection, job.order_id, job.llm)
    except Exception:  # the producer may then send one message more: harmless, claims are idempotent
        logger.exception("could not record the fresh message in the ledger")
    logger.info(
        "throttled: handed back",
        extra={"error": last_error, "delay_seconds": delay, "throttled_seconds": throttle.total_seconds},
    )
    return True


def _wait_for_budget(job: Job, wait: BudgetExhausted, record: Record, deps: ConsumerDeps) -> str:
    """The model's budget has no room for this order before the deadline: not a failure and not an attempt. The claim
    is released without the attempt it counted, the wait is counted in ``budget_waits``, and the job is handed back
    ONCE, as a fresh message delayed until the turn the budget named (holding its tokens for that turn when it is
    near); the current record is acknowledged. If the ledger or SQS refuses, the record fails and comes back after
    the same delay instead."""
    # No jitter: the budget gave each order its own turn. Rounded down (DelaySeconds is whole seconds): the images
    # are prepared while the rest of the turn comes.
    delay = max(1, math.floor(wait.retry_after_seconds or 1.0))
    held_tokens = wait.held_tokens or None
    try:
        with deps.pool.connection() as connection:
            released = ledger.release_for_budget(
                connection,
                job.order_id,
                job.llm,
                attempt=job.attempt,
                wait_seconds=delay,
                held_tokens=held_tokens,
                turn_seconds=wait.turn_seconds,
            )
    except Exception:
        logger.exception("could not release the claim to wait for the budget")
        released = False
    if not released:  # the ledger cannot keep the turn (or the claim was taken over): give the tokens back
        if held_tokens:
            deps.budgets.give_back(job.llm, held_tokens, requests=wait.held_requests)
        deps.visibility.change(record, min(delay, MAX_VISIBILITY_SECONDS))
        raise wait
    try:
        deps.visibility.send_again(record, delay_seconds=delay)
    except Exception as send_error:
        # The job is `queued` (with its turn held); the record itself comes back after the delay (one receive).
        logger.warning("could not hand the job back: the record waits instead", extra={"error": describe(send_error)})
        deps.visibility.change(record, min(delay, MAX_VISIBILITY_SECONDS))
        raise wait from send_error
    metrics.add_metric(name="JobsWaitingForBudget", unit=MetricUnit.Count, value=1)
    logger.info(
        "waiting for the model's budget: handed back without an attempt",
        extra={"delay_seconds": delay, "turn_seconds": round(wait.turn_seconds, 1), "held_tokens": held_tokens},
    )
    return "waiting_for_budget"


def publish_stale_events(deps: ConsumerDeps) -> None:
    """The end of every invocation: completion events an earlier invocation committed but could not publish."""
    events.publish_stale_events(deps.events, deps.pool)


def record_handler(deadline: float, deps: ConsumerDeps) -> Callable[[Record], str]:
    """The per-record function for Powertools' batch processor, bound to this invocation's deadline."""

    def handle(record: Record) -> str:
        return process_record(record, deadline=deadline - WRITE_RESERVE_SECONDS, deps=deps)

    return handle
