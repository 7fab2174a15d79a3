"""The extraction ledger ``benchmarking.extraction_jobs``: the consumer's side of the DESIGN §5 transitions.

One row per ``(order_id, llm)``. Every transition is one statement, guarded so that only the delivery that
holds the claim (its ``attempts`` value) can move the row on; a delivery whose claim was taken over changes
nothing. The success transition lives in :mod:`invoice_pipeline.items` because it is the same statement that
writes the items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from invoice_pipeline.db import Connection

Outcome = Literal["claimed", "done", "busy", "failed"]

# Claim any status but `done`, and `processing` only once its lease ran out. A `failed` row is claimable
# unless it failed permanently for this very message (a re-delivery on its way to the DLQ): a redriven or
# new message has another id and is processed normally. Creates the row for a hand-made message.
# When nothing is claimed the row is read back (same snapshot) so the caller knows why.
CLAIM_JOB = """
WITH claimed AS (
    INSERT INTO benchmarking.extraction_jobs AS job
        (order_id, llm, status, attempts, enqueued_at, started_at, updated_at)
    VALUES (:order_id, :llm, 'processing', 1, now(), now(), now())
    ON CONFLICT (order_id, llm) DO UPDATE
    SET status = 'processing', attempts = job.attempts + 1, started_at = now(), finished_at = NULL,
        failed_message_id = NULL, updated_at = now()
    WHERE job.status = 'queued'
       OR (job.status = 'failed' AND job.failed_message_id IS DISTINCT FROM :message_id)
       OR (job.status = 'processing'
           AND job.started_at < now() - make_interval(secs => CAST(:lease_seconds AS double precision)))
    RETURNING job.attempts
)
SELECT 'claimed', attempts, NULL FROM claimed
UNION ALL
SELECT job.status, job.attempts,
       extract(epoch FROM job.started_at + make_interval(secs => CAST(:lease_seconds AS double precision)) - now())
FROM benchmarking.extraction_jobs AS job
WHERE job.order_id = :order_id AND job.llm = :llm AND NOT EXISTS (SELECT 1 FROM claimed)
"""

REQUEUE_JOB = """
UPDATE benchmarking.extraction_jobs
SET status = 'queued', last_error = :last_error, updated_at = now()
WHERE order_id = :order_id AND llm = :llm AND status = 'processing' AND attempts = :attempt
"""

# The job's message was replaced by a fresh one (handed back): its retention, and so the producer's re-enqueue
# lease, starts again now.
MARK_RESENT = """
UPDATE benchmarking.extraction_jobs
SET enqueued_at = now(), updated_at = now()
WHERE order_id = :order_id AND llm = :llm AND status = 'queued'
"""

FAIL_JOB = """
UPDATE benchmarking.extraction_jobs
SET status = 'failed', last_error = :last_error, finished_at = now(), failed_message_id = :message_id,
    updated_at = now()
WHERE order_id = :order_id AND llm = :llm AND status = 'processing' AND attempts = :attempt
"""


# Throttled (DESIGN §10): back to `queued` with the wait added to the job's total, unless that total passes
# the maximum: then the row stays `processing` for the caller to fail it with that reason. `attempts` keeps
# counting deliveries (it is the claim's guard); `throttles` says how many of them were throttled.
THROTTLE_JOB = """
UPDATE benchmarking.extraction_jobs
SET throttles = throttles + 1, throttled_seconds = throttled_seconds + :wait_seconds,
    status = CASE WHEN throttled_seconds + :wait_seconds > :max_wait_seconds THEN status ELSE 'queued' END,
    last_error = :last_error, updated_at = now()
WHERE order_id = :order_id AND llm = :llm AND status = 'processing' AND attempts = :attempt
RETURNING status, throttled_seconds
"""


@dataclass(frozen=True)
class Claim:
    outcome: Outcome  # "busy" also when a concurrent insert of the same row hid it from this statement
    attempt: int
    lease_left_seconds: float = 0.0  # busy: how long the holder's lease still runs


def claim_job(connection: Connection, order_id: int, llm: str, *, message_id: str, lease_seconds: int) -> Claim:
    rows = connection.run(CLAIM_JOB, order_id=order_id, llm=llm, message_id=message_id, lease_seconds=lease_seconds)
    if not rows:
        return Claim("busy", 0)
    status, attempts, lease_left = rows[0]
    if status == "claimed":
        return Claim("claimed", attempts)
    if status == "done":
        return Claim("done", attempts)
    if status == "failed":
        return Claim("failed", attempts)
    return Claim("busy", attempts, max(0.0, float(lease_left or 0)))  # processing inside its lease


def requeue_job(connection: Connection, order_id: int, llm: str, *, attempt: int, last_error: str) -> bool:
    """Transient failure, not the last receive: back to `queued` at once (the next delivery claims it)."""
    connection.run(REQUEUE_JOB, order_id=order_id, llm=llm, attempt=attempt, last_error=last_error)
    return bool(connection.row_count)


def fail_job(
    connection: Connection, order_id: int, llm: str, *, attempt: int, last_error: str, message_id: str | None
) -> bool:
    """Permanent failure (``message_id`` set: its re-deliveries fail fast) or transient on the last receive."""
    connection.run(FAIL_JOB, order_id=order_id, llm=llm, attempt=attempt, last_error=last_error, message_id=message_id)
    return bool(connection.row_count)


def mark_resent(connection: Connection, order_id: int, llm: str) -> bool:
    """A `queued` job's message was handed back as a fresh message: the producer must not send a second one."""
    connection.run(MARK_RESENT, order_id=order_id, llm=llm)
    return bool(connection.row_count)


@dataclass(frozen=True)
class Throttle:
    requeued: bool  # False: the total wait passed the maximum (or the claim was lost: ``total_seconds`` None)
    total_seconds: float | None


def throttle_job(
    connection: Connection,
    order_id: int,
    llm: str,
    *,
    attempt: int,
    wait_seconds: float,
    max_wait_seconds: float,
    last_error: str,
) -> Throttle:
    """Throttled: `queued` again with the wait counted, unless the job has now waited more than the maximum."""
    rows = connection.run(
        THROTTLE_JOB,
        order_id=order_id,
        llm=llm,
        attempt=attempt,
        wait_seconds=float(wait_seconds),
        max_wait_seconds=float(max_wait_seconds),
        last_error=last_error,
    )
    if not rows:
        return Throttle(False, None)
    status, total = rows[0]
    return Throttle(status == "queued", float(total))
