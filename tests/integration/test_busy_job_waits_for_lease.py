"""A delivery that finds its job held by another comes back when the holder's lease ends.

Shorter backoffs used up every receive while a crashed holder's lease ran, and the message reached the DLQ
with its job still `processing` (seen with the Postgres server restarted during a run).
"""

from __future__ import annotations

from typing import Any

import pg8000.native
import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from invoice_pipeline import settings
from invoice_pipeline.errors import JobBusy
from invoice_pipeline.flows.consume import build_runtime, process_record
from tests.conftest import SwallowedSqsErrors
from tests.events.builders import sqs_record
from tests.integration.queues import WorkQueue, hidden_for_seconds

MODEL = "gpt-4o-2024-11-20"
LEASE_LEFT = 500  # PROCESSING_LEASE_SECONDS (600) less the 100 s the holder has had it
LONGEST_BACKOFF_AT_RECEIVE_2 = 72  # RETRY_BACKOFF_BASE_SECONDS (30) x 2, +20 % jitter


def test_a_busy_job_is_retried_after_the_holders_lease(
    database: str,
    sql: pg8000.native.Connection,
    aws: Any,
    sqs_errors: SwallowedSqsErrors,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALLOWED_BUCKETS", "invoices")
    monkeypatch.setenv("LLM_MODELS", MODEL)
    monkeypatch.setenv("PROCESSING_LEASE_SECONDS", "600")
    sql.run(
        "INSERT INTO benchmarking.extraction_jobs (order_id, llm, status, attempts, started_at) "
        "VALUES (7, :llm, 'processing', 1, now() - interval '100 seconds')",
        llm=MODEL,
    )
    queue = WorkQueue()
    record = queue.deliver(sqs_record({"order_id": 7}, receive_count=2))  # received with a 1800 s visibility
    deps = build_runtime(settings.consumer_settings())
    with pytest.raises(JobBusy):
        process_record(SQSRecord(record), deadline=1e12, deps=deps)
    deps.pool.discard()

    # Back when the lease ends (+1 s), not after a backoff of at most 72 s, nor the queue's 1800 s.
    assert LONGEST_BACKOFF_AT_RECEIVE_2 < hidden_for_seconds(record["receiptHandle"]) <= LEASE_LEFT + 1
    assert queue.depth() == (0, 1, 0)
    status, attempts = sql.run("SELECT status, attempts FROM benchmarking.extraction_jobs WHERE order_id = 7")[0]
    assert (status, attempts) == ("processing", 1)
