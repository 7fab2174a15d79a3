"""A delivery that finds its job held by another comes back when the holder's lease ends.

Shorter backoffs used up every receive while a crashed holder's lease ran, and the message reached the DLQ
with its job still `processing` (seen with the Postgres server restarted during a run).
"""

from __future__ import annotations

from dataclasses import replace

import pg8000.native
import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from invoice_pipeline import settings
from invoice_pipeline.consume import build_runtime, process_record
from invoice_pipeline.errors import JobBusy
from tests.events.builders import sqs_record
from tests.fakes import RecordedVisibility

MODEL = "gpt-4o-2024-11-20"


def test_a_busy_job_is_retried_after_the_holders_lease(
    database: str, sql: pg8000.native.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLOWED_BUCKETS", "invoices")
    monkeypatch.setenv("LLM_MODELS", MODEL)
    monkeypatch.setenv("PROCESSING_LEASE_SECONDS", "600")
    sql.run(
        "INSERT INTO benchmarking.extraction_jobs (order_id, llm, status, attempts, started_at) "
        "VALUES (7, :llm, 'processing', 1, now() - interval '100 seconds')",
        llm=MODEL,
    )
    visibility = RecordedVisibility()
    deps = replace(build_runtime(settings.consumer_settings()), visibility=visibility)
    pool = deps.pool
    with pytest.raises(JobBusy):
        process_record(SQSRecord(sqs_record({"order_id": 7}, receive_count=2)), deadline=1e12, deps=deps)
    pool.discard()
    assert len(visibility.changes) == 1
    assert 495 <= visibility.changes[0] <= 505  # the 500 s left of the lease, not a 60 s backoff
    status, attempts = sql.run("SELECT status, attempts FROM benchmarking.extraction_jobs WHERE order_id = 7")[0]
    assert (status, attempts) == ("processing", 1)
