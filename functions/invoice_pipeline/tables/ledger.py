"""The extraction ledger ``benchmarking.extraction_jobs``: its statuses and every transition (docs/architecture.md §5).

One row per ``(order_id, llm)``; this module owns every statement on it, as named constants with bound
parameters. The producer claims pages of jobs (``queued``) and releases the claims it could not send; the
consumer claims a job (``processing``), hands it back (``queued``: requeue, throttle, resent) or fails it;
the operator retries failed jobs and reads the status, the report and the capacity figures; ``local/`` and
the workbench read outcomes.

Every consumer transition is one statement, guarded so that only the delivery that holds the claim (its
``attempts`` value) can move the row on; a delivery whose claim was taken over changes nothing. The success
transition (``done``) is the one statement on this table that lives elsewhere: in
:mod:`invoice_pipeline.tables.items`, because it is the same statement that writes the items (one transaction, one
round trip, nothing written when the claim was lost), so it cannot be split without losing that guarantee.

The two lease rules are written once here and used by every statement that needs them:
:data:`QUEUED_LEASE_ENDED` (a queued job's message is presumed lost) and :func:`processing_lease_ended` (the
delivery that claimed a job is presumed dead).

The reads of the operator, ``local/`` and the workbench, and retry-failed, are in
:mod:`invoice_pipeline.tables.ledger_reads`: the same table's owner, kept apart so that the handlers' cold import does
not build their ten result types (measured: about 7 ms, 4% of the consumer's cold import).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from invoice_pipeline.observability import logger
from invoice_pipeline.settings import ProducerSettings
from invoice_pipeline.tables.db import Connection
from invoice_pipeline.tables.events import JOB_EVENT_COLUMNS, outbox_insert
from invoice_pipeline.tables.orders import (
    ELIGIBLE_PAGE_ALL_RESTAURANTS,
    ELIGIBLE_PAGE_LISTED_RESTAURANTS,
    NO_LOWER_BOUND,
    REQUESTED_ORDERS,
    URGENT_ORDER,
)


class JobStatus(StrEnum):
    """The ledger's statuses (the table's CHECK constraint lists the same four)."""

    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


# --- the lease rules -----------------------------------------------------------------------------------------

# A `queued` job whose message was sent longer ago than the re-enqueue lease (:lease_seconds): its message is
# presumed lost and the producer sends it again.
QUEUED_LEASE_ENDED = """(job.status = 'queued'
           AND coalesce(job.enqueued_at, '-infinity')
               < now() - CAST(:lease_seconds AS integer) * interval '1 second')"""


def processing_lease_end(seconds: str) -> str:
    return f"job.started_at + make_interval(secs => CAST({seconds} AS double precision))"


def processing_lease_ended(seconds: str) -> str:
    """SQL: the `processing` claim of ``job`` is older than ``seconds`` (an SQL expression: a parameter or a sum)."""
    return f"job.started_at < now() - make_interval(secs => CAST({seconds} AS double precision))"


# A `processing` job whose lease ended longer ago than the re-enqueue lease: the delivery that claimed it crashed
# or timed out, and its message is gone (moved to the DLQ, expired) or it would have been claimed again by now.
# Re-sent like a stale `queued` one; the claim puts it back to `queued`, so a zombie holder's write is refused
# (its claim no longer matches) and the next run does not send it again.
STALE_PROCESSING_SECONDS = "CAST(:processing_lease_seconds AS integer) + CAST(:lease_seconds AS integer)"
STALE_PROCESSING = f"(job.status = 'processing' AND {processing_lease_ended(STALE_PROCESSING_SECONDS)})"
STALE_PROCESSING_ERROR = "processing lease ended without a result (crash or timeout): re-enqueued by the producer"

# --- the consumer's transitions ------------------------------------------------------------------------------

Outcome = Literal["claimed", "done", "busy", "failed"]

# Claim any status but `done`, and `processing` only once its lease ran out. A `failed` row is claimable
# unless it failed permanently for this very message (a re-delivery on its way to the DLQ): a redriven or
# new message has another id and is processed normally. Creates the row for a hand-made message.
# When nothing is claimed the row is read back (same snapshot) so the caller knows why. A claim also reads the
# answers kept from the job's earlier deliveries (invoice_pipeline.tables.kept_answers).
CLAIM_JOB = f"""
WITH claimed AS (
    INSERT INTO benchmarking.extraction_jobs AS job
        (order_id, llm, status, attempts, enqueued_at, started_at, updated_at)
    VALUES (:order_id, :llm, 'processing', 1, now(), now(), now())
    ON CONFLICT (order_id, llm) DO UPDATE
    SET status = 'processing', attempts = job.attempts + 1, started_at = now(), finished_at = NULL,
        failed_message_id = NULL, updated_at = now()
    WHERE job.status = 'queued'
       OR (job.status = 'failed' AND job.failed_message_id IS DISTINCT FROM :message_id)
       OR (job.status = 'processing' AND {processing_lease_ended(":lease_seconds")})
    RETURNING job.attempts, job.kept_answers
)
SELECT 'claimed', attempts, NULL, kept_answers FROM claimed
UNION ALL
SELECT job.status, job.attempts, extract(epoch FROM {processing_lease_end(":lease_seconds")} - now()), NULL
FROM benchmarking.extraction_jobs AS job
WHERE job.order_id = :order_id AND job.llm = :llm AND NOT EXISTS (SELECT 1 FROM claimed)
"""

# :kept_answers (NULL: keep what the row has) are the answers of the invoices extracted so far.
REQUEUE_JOB = """
UPDATE benchmarking.extraction_jobs
SET status = 'queued', last_error = :last_error, updated_at = now(),
    kept_answers = coalesce(CAST(:kept_answers AS jsonb), kept_answers)
WHERE order_id = :order_id AND llm = :llm AND status = 'processing' AND attempts = :attempt
"""

# The job's message was replaced by a fresh one (handed back): its retention, and so the producer's re-enqueue
# lease, starts again now.
MARK_RESENT = """
UPDATE benchmarking.extraction_jobs
SET enqueued_at = now(), updated_at = now()
WHERE order_id = :order_id AND llm = :llm AND status = 'queued'
"""

# The failure and its completion event (invoice_pipeline.tables.events) in one statement: one transaction.
FAIL_JOB = f"""
WITH job AS (
    UPDATE benchmarking.extraction_jobs
    SET status = 'failed', last_error = :last_error, finished_at = now(), failed_message_id = :message_id,
        kept_answers = NULL, stage_answers = NULL, updated_at = now()
    WHERE order_id = :order_id AND llm = :llm AND status = 'processing' AND attempts = :attempt
    RETURNING {JOB_EVENT_COLUMNS}
), event AS (
    {outbox_insert("job")}
)
SELECT id FROM event
"""


# Throttled: back to `queued` with the wait added to the job's total and the answers extracted so far
# kept, unless the total wait passes the maximum or the job has been handed back :max_hand_backs times already:
# then the row stays `processing` for the caller to fail it with that reason. `attempts` keeps counting deliveries
# (it is the claim's guard); `throttles` says how many of them were throttled (handed back).
THROTTLE_JOB = """
UPDATE benchmarking.extraction_jobs
SET throttles = throttles + 1, throttled_seconds = throttled_seconds + :wait_seconds,
    status = CASE WHEN throttled_seconds + :wait_seconds > :max_wait_seconds OR throttles >= :max_hand_backs
                  THEN status ELSE 'queued' END,
    kept_answers = coalesce(CAST(:kept_answers AS jsonb), kept_answers),
    last_error = :last_error, updated_at = now()
WHERE order_id = :order_id AND llm = :llm AND status = 'processing' AND attempts = :attempt
RETURNING status, throttled_seconds, throttles
"""


# Waiting for the model's budget (not an attempt): the claim is released with `attempts` back to what it was, the
# wait counted apart, and the turn the job is handed back for remembered with the tokens held for it (NULL: the
# tokens were given back; the job reserves again when it returns). The fresh message restarts the re-enqueue lease.
RELEASE_FOR_BUDGET = """
UPDATE benchmarking.extraction_jobs
SET status = 'queued', attempts = attempts - 1, budget_waits = budget_waits + 1,
    budget_wait_seconds = budget_wait_seconds + CAST(:wait_seconds AS double precision),
    budget_held_tokens = CAST(:held_tokens AS integer),
    budget_turn_at = CASE WHEN CAST(:held_tokens AS integer) IS NULL THEN NULL
                          ELSE clock_timestamp() + make_interval(secs => CAST(:turn_seconds AS double precision)) END,
    enqueued_at = now(), updated_at = now()
WHERE order_id = :order_id AND llm = :llm AND status = 'processing' AND attempts = :attempt
"""

# The turn a claimed job was handed back for: read and cleared in one statement (the holding is used once).
TAKE_HELD_TURN = """
WITH held AS (
    SELECT budget_held_tokens AS tokens,
           extract(epoch FROM budget_turn_at - clock_timestamp())::float8 AS seconds_left
    FROM benchmarking.extraction_jobs
    WHERE order_id = :order_id AND llm = :llm AND status = 'processing' AND attempts = :attempt
      AND budget_held_tokens IS NOT NULL
    FOR UPDATE
)
UPDATE benchmarking.extraction_jobs AS job
SET budget_held_tokens = NULL, budget_turn_at = NULL
FROM held
WHERE job.order_id = :order_id AND job.llm = :llm
RETURNING held.tokens, held.seconds_left
"""


@dataclass(frozen=True)
class Claim:
    outcome: Outcome  # "busy" also when a concurrent insert of the same row hid it from this statement
    attempt: int
    lease_left_seconds: float = 0.0  # busy: how long the holder's lease still runs
    kept_answers: Any = None  # claimed: the answers kept from earlier deliveries (invoice_pipeline.tables.kept_answers)


def claim_job(connection: Connection, order_id: int, llm: str, *, message_id: str, lease_seconds: int) -> Claim:
    rows = connection.run(CLAIM_JOB, order_id=order_id, llm=llm, message_id=message_id, lease_seconds=lease_seconds)
    if not rows:
        return Claim("busy", 0)
    status, attempts, lease_left, kept_answers = rows[0]
    if status == "claimed":
        return Claim("claimed", attempts, kept_answers=kept_answers)
    if status == JobStatus.DONE:
        return Claim("done", attempts)
    if status == JobStatus.FAILED:
        return Claim("failed", attempts)
    return Claim("busy", attempts, max(0.0, float(lease_left or 0)))  # processing inside its lease


def requeue_job(
    connection: Connection,
    order_id: int,
    llm: str,
    *,
    attempt: int,
    last_error: str,
    kept_answers: str | None = None,
) -> bool:
    """Transient failure, not the last receive: back to `queued` at once (the next delivery claims it), keeping
    ``kept_answers`` (JSON, :mod:`invoice_pipeline.tables.kept_answers`) for it."""
    connection.run(
        REQUEUE_JOB, order_id=order_id, llm=llm, attempt=attempt, last_error=last_error, kept_answers=kept_answers
    )
    return bool(connection.row_count)


def fail_job(
    connection: Connection, order_id: int, llm: str, *, attempt: int, last_error: str, message_id: str | None
) -> int | None:
    """Permanent failure (``message_id`` set: its re-deliveries fail fast) or transient on the last receive.

    Returns the outbox id of the job's completion event, to publish now that it committed (None: the claim was
    lost and nothing changed)."""
    rows = connection.run(
        FAIL_JOB, order_id=order_id, llm=llm, attempt=attempt, last_error=last_error, message_id=message_id
    )
    return int(rows[0][0]) if rows else None


def release_for_budget(
    connection: Connection,
    order_id: int,
    llm: str,
    *,
    attempt: int,
    wait_seconds: float,
    held_tokens: int | None,
    turn_seconds: float,
) -> bool:
    """The job waits for its model's budget: `queued` again without the attempt its claim counted, the wait counted
    in ``budget_waits``; ``held_tokens``: what it holds for its turn in ``turn_seconds`` (None: nothing held)."""
    connection.run(
        RELEASE_FOR_BUDGET,
        order_id=order_id,
        llm=llm,
        attempt=attempt,
        wait_seconds=float(wait_seconds),
        held_tokens=held_tokens,
        turn_seconds=float(turn_seconds),
    )
    return bool(connection.row_count)


def take_held_turn(connection: Connection, order_id: int, llm: str, *, attempt: int) -> tuple[int, float] | None:
    """(tokens held, seconds until the turn) of a job handed back for its turn, cleared; None when it holds none."""
    rows = connection.run(TAKE_HELD_TURN, order_id=order_id, llm=llm, attempt=attempt)
    if not rows:
        return None
    tokens, seconds_left = rows[0]
    return int(tokens), float(seconds_left or 0.0)


def mark_resent(connection: Connection, order_id: int, llm: str) -> bool:
    """A `queued` job's message was handed back as a fresh message: the producer must not send a second one."""
    connection.run(MARK_RESENT, order_id=order_id, llm=llm)
    return bool(connection.row_count)


@dataclass(frozen=True)
class Throttle:
    requeued: bool  # False: a maximum was passed (or the claim was lost: ``total_seconds`` None)
    total_seconds: float | None
    hand_backs: int = 0  # throttled deliveries of the job, this one included


def throttle_job(
    connection: Connection,
    order_id: int,
    llm: str,
    *,
    attempt: int,
    wait_seconds: float,
    max_wait_seconds: float,
    max_hand_backs: int,
    last_error: str,
    kept_answers: str | None = None,
) -> Throttle:
    """Throttled: `queued` again with the wait counted and ``kept_answers`` kept, unless the job has now waited more
    than the maximum or been handed back more than ``max_hand_backs`` times."""
    rows = connection.run(
        THROTTLE_JOB,
        order_id=order_id,
        llm=llm,
        attempt=attempt,
        wait_seconds=float(wait_seconds),
        max_wait_seconds=float(max_wait_seconds),
        max_hand_backs=int(max_hand_backs),
        last_error=last_error,
        kept_answers=kept_answers,
    )
    if not rows:
        return Throttle(False, None)
    status, total, hand_backs = rows[0]
    return Throttle(status == JobStatus.QUEUED, float(total), int(hand_backs))


# A cascade's stage answers so far (invoice_pipeline.flows.cascade), kept while the job waits; only by the claim's
# holder.
KEEP_STAGE_ANSWERS = """
UPDATE benchmarking.extraction_jobs
SET stage_answers = CAST(:stage_answers AS jsonb), updated_at = now()
WHERE order_id = :order_id AND llm = :llm AND status = 'processing' AND attempts = :attempt
"""
READ_STAGE_ANSWERS = """
SELECT stage_answers FROM benchmarking.extraction_jobs WHERE order_id = :order_id AND llm = :llm
"""


def keep_stage_answers(connection: Connection, order_id: int, llm: str, *, attempt: int, stage_answers: str) -> bool:
    """Keep a cascade's stage answers (JSON) with the job it still holds, for the job's next delivery."""
    connection.run(KEEP_STAGE_ANSWERS, order_id=order_id, llm=llm, attempt=attempt, stage_answers=stage_answers)
    return bool(connection.row_count)


def read_stage_answers(connection: Connection, order_id: int, llm: str) -> Any:
    """The stage answers kept for the job (parsed JSON, None when there are none)."""
    rows = connection.run(READ_STAGE_ANSWERS, order_id=order_id, llm=llm)
    return rows[0][0] if rows else None


# --- the producer's transitions ------------------------------------------------------------------------------

# The page and its claims in one statement: the page of eligible orders (invoice_pipeline.tables.orders), the
# (order_id, llm) pairs that have no ledger row, a stale `queued` row or a stale `processing` row, claimed with
# INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING; only returned pairs are sent. ON CONFLICT locks the
# conflicting row and re-checks the WHERE on its newest version, so a pair that an overlapping run has just
# claimed (fresh enqueued_at) is never claimed twice. Every value is a bound parameter.
_PAGE_AND_CLAIM = """
WITH page AS ({eligible_page}),
candidates AS (
    SELECT p.id AS order_id, m.llm, job.order_id IS NULL AS is_new, job.enqueued_at AS previous_enqueued_at,
           row_number() OVER (ORDER BY p.created_at, p.id, m.position) AS position, {urgent_order} AS urgent
    FROM page AS p
    CROSS JOIN unnest(CAST(:llms AS text[])) WITH ORDINALITY AS m(llm, position)
    LEFT JOIN benchmarking.extraction_jobs AS job ON job.order_id = p.id AND job.llm = m.llm
    WHERE job.order_id IS NULL
       OR {queued_lease_ended}
       OR {stale_processing}
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
    WHERE {queued_lease_ended}
       OR {stale_processing}
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
    (SELECT coalesce(array_agg(previous_enqueued_at::text ORDER BY position), '{{}}') FROM won),
    (SELECT coalesce(array_agg(urgent ORDER BY position), '{{}}') FROM won)
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT * FROM page ORDER BY created_at DESC, id DESC LIMIT 1
) AS last ON true
"""

PAGE_AND_CLAIM_ALL_RESTAURANTS = _PAGE_AND_CLAIM.format(
    eligible_page=ELIGIBLE_PAGE_ALL_RESTAURANTS,
    queued_lease_ended=QUEUED_LEASE_ENDED,
    stale_processing=STALE_PROCESSING,
    urgent_order=URGENT_ORDER,
)
PAGE_AND_CLAIM_LISTED_RESTAURANTS = _PAGE_AND_CLAIM.format(
    eligible_page=ELIGIBLE_PAGE_LISTED_RESTAURANTS,
    queued_lease_ended=QUEUED_LEASE_ENDED,
    stale_processing=STALE_PROCESSING,
    urgent_order=URGENT_ORDER,
)

# Claims the producer could not turn into messages: only rows still exactly as its run left them (queued, its
# enqueued_at) are touched; a row it created is deleted, an older one gets its previous enqueued_at back (and its
# status, when an on-demand request had claimed a `done` or `failed` job).
RELEASE_CLAIMS = """
WITH released AS (
    SELECT * FROM unnest(
        CAST(:order_ids AS bigint[]), CAST(:llms AS text[]), CAST(:claimed_ats AS timestamptz[]),
        CAST(:previous_enqueued_ats AS timestamptz[]), CAST(:is_new AS boolean[]), CAST(:previous_statuses AS text[])
    ) AS r(order_id, llm, claimed_at, previous_enqueued_at, is_new, previous_status)
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
    SET enqueued_at = r.previous_enqueued_at, updated_at = now(),
        status = CASE WHEN r.previous_status IN ('done', 'failed') THEN r.previous_status ELSE job.status END
    FROM released AS r
    WHERE job.order_id = r.order_id AND job.llm = r.llm AND NOT r.is_new
      AND job.status = 'queued' AND job.enqueued_at = r.claimed_at
    RETURNING 1
)
SELECT (SELECT count(*) FROM deleted) + (SELECT count(*) FROM restored)
"""

# Deadlock and serialization failures are retried: overlapping runs can lock the same ledger rows in
# different orders when one releases claims while the other claims (each statement is its own transaction).
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
STATEMENT_ATTEMPTS = 3


@dataclass(frozen=True)
class EnqueueClaim:
    """A job the producer claimed (``queued``, ``enqueued_at`` = ``claimed_at``) and must now send."""

    order_id: int
    llm: str
    claimed_at: str
    is_new: bool
    previous_enqueued_at: str | None
    urgent: bool = False  # goes to the priority lane, when there is one
    previous_status: str | None = None  # on demand: a `done` or `failed` job sent again

    def message_body(self) -> str:
        return json.dumps({"order_id": self.order_id, "llm": self.llm})


@dataclass(frozen=True)
class Page:
    orders: int
    last_key: tuple[datetime, int] | None
    candidates: int
    claims: list[EnqueueClaim]


def claim_page(connection: Connection, settings: ProducerSettings, after: tuple[Any, int], max_claims: int) -> Page:
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
        "priority_window_minutes": settings.priority_window_minutes,
    }
    if settings.restaurant_ids is None:
        statement = PAGE_AND_CLAIM_ALL_RESTAURANTS
    else:
        statement = PAGE_AND_CLAIM_LISTED_RESTAURANTS
        params["restaurant_ids"] = list(settings.restaurant_ids)
    row = run_statement(connection, statement, **params)[0]
    orders, last_created_at, last_id, candidates, _chosen, claimed_at = row[:6]
    order_ids, llms, is_new, previous, urgent = row[6:]
    claims = [
        EnqueueClaim(order_id, llm, claimed_at, new, prev, bool(rush))
        for order_id, llm, new, prev, rush in zip(order_ids, llms, is_new, previous, urgent, strict=True)
    ]
    last_key = None if last_id is None else (last_created_at, last_id)
    return Page(orders=orders, last_key=last_key, candidates=candidates, claims=claims)


def release_claims(connection: Connection, claims: Sequence[EnqueueClaim]) -> int:
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
        previous_statuses=[claim.previous_status for claim in claims],
    )
    return int(rows[0][0])


# --- on demand: named orders, claimed now ----------------------------------------------------------------------

# The jobs of the named orders (invoice_pipeline.tables.orders.REQUESTED_ORDERS), claimed like a page's: a job without a
# row, a stale `queued` or `processing` one, a `failed` one (an explicit request retries it), and a `done` one only
# when :again. Orders that do not exist or have a blank invoice_image claim nothing. One row per requested
# (order, model), in the request's order, with the job's status before the claim (NULL: no row) and whether this
# statement claimed it; a job another claimer took in the meantime is simply not claimed here.
CLAIM_ORDERS = f"""
WITH requested AS ({REQUESTED_ORDERS}),
pairs AS (
    SELECT r.order_id, r.position, r.found, r.has_image, m.llm, m.position AS llm_position,
           job.status AS previous_status, job.order_id IS NULL AS is_new, job.enqueued_at AS previous_enqueued_at,
           (job.order_id IS NULL OR job.status = 'failed' OR (job.status = 'done' AND CAST(:again AS boolean))
            OR {QUEUED_LEASE_ENDED} OR {STALE_PROCESSING}) AS claimable
    FROM requested AS r
    CROSS JOIN unnest(CAST(:llms AS text[])) WITH ORDINALITY AS m(llm, position)
    LEFT JOIN benchmarking.extraction_jobs AS job ON job.order_id = r.order_id AND job.llm = m.llm
),
claimed AS (
    INSERT INTO benchmarking.extraction_jobs AS job (order_id, llm, status, attempts, enqueued_at, updated_at)
    SELECT order_id, llm, 'queued', 0, now(), now() FROM pairs WHERE has_image AND claimable ORDER BY order_id, llm
    ON CONFLICT (order_id, llm) DO UPDATE SET enqueued_at = now(), updated_at = now(), status = 'queued',
        last_error = CASE WHEN job.status = 'processing' THEN :stale_processing_error ELSE job.last_error END
    WHERE job.status = 'failed' OR (job.status = 'done' AND CAST(:again AS boolean))
       OR {QUEUED_LEASE_ENDED} OR {STALE_PROCESSING}
    RETURNING job.order_id, job.llm
)
SELECT p.order_id, p.found, p.has_image, p.llm, p.previous_status, p.is_new, p.previous_enqueued_at::text,
       c.order_id IS NOT NULL AS claimed, now()::text
FROM pairs AS p LEFT JOIN claimed AS c USING (order_id, llm)
ORDER BY p.position, p.llm_position
"""


@dataclass(frozen=True)
class RequestedJob:
    """One (order, model) of an on-demand request: ``claim`` is set when this request claimed it."""

    order_id: int
    llm: str
    found: bool
    has_image: bool
    previous_status: str | None
    claim: EnqueueClaim | None


def claim_orders(
    connection: Connection,
    order_ids: Sequence[int],
    llms: Sequence[str],
    *,
    again: bool,
    urgent: bool,
    requeue_lease_seconds: int,
    processing_lease_seconds: int,
) -> list[RequestedJob]:
    """Claim the jobs of the named orders now (``invoices enqueue --order``, the producer's on-demand event)."""
    rows = run_statement(
        connection,
        CLAIM_ORDERS,
        order_ids=list(order_ids),
        llms=list(llms),
        again=again,
        lease_seconds=requeue_lease_seconds,
        processing_lease_seconds=processing_lease_seconds,
        stale_processing_error=STALE_PROCESSING_ERROR,
    )
    jobs = []
    for order_id, found, has_image, llm, previous_status, is_new, previous_enqueued_at, claimed, claimed_at in rows:
        claim = (
            EnqueueClaim(order_id, llm, claimed_at, is_new, previous_enqueued_at, urgent, previous_status)
            if claimed
            else None
        )
        jobs.append(RequestedJob(order_id, llm, found, has_image, previous_status, claim))
    return jobs


def run_statement(connection: Connection, statement: str, **params: Any) -> Any:
    """One autocommitted statement, run again if Postgres aborted it to break a deadlock."""
    from pg8000.native import DatabaseError  # loaded with the connection already; not at cold start (db.py)

    for attempt in range(1, STATEMENT_ATTEMPTS + 1):
        try:
            return connection.run(statement, **params)
        except DatabaseError as error:
            fields = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
            if fields.get("C") not in RETRYABLE_SQLSTATES or attempt == STATEMENT_ATTEMPTS:
                raise
            logger.warning("ledger statement retried", extra={"sqlstate": fields.get("C"), "attempt": attempt})
    raise AssertionError("unreachable")
