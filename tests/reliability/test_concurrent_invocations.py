"""Invocations of the consumer running at once in one process each get their own batch result.

The local event-source emulator runs every concurrent execution environment as a thread of one process; a
batch processor shared between them mixed up the batches (records reported failed that had succeeded, and
the other way round, so a failed record could be deleted from the queue and lost).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pg8000.native
import pytest

from local.event_source import fresh_handler
from tests.conftest import SwallowedSqsErrors
from tests.events.builders import sqs_event, sqs_record
from tests.integration.queues import WorkQueue

MODEL = "gpt-4o-2024-11-20"


class Context:
    function_name = "consumer"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:consumer"
    aws_request_id = "concurrent"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@pytest.fixture
def done_jobs(database: str, sql: pg8000.native.Connection, aws: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Orders whose job is already done: their records succeed without S3 or the model."""
    monkeypatch.setenv("ALLOWED_BUCKETS", "invoices")
    monkeypatch.setenv("LLM_MODELS", MODEL)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    order_ids = list(range(1, 41))
    sql.run(
        "INSERT INTO benchmarking.extraction_jobs (order_id, llm, status, attempts) "
        "SELECT id, :llm, 'done', 1 FROM unnest(CAST(:ids AS bigint[])) AS id",
        llm=MODEL,
        ids=order_ids,
    )
    return order_ids


def test_concurrent_invocations_report_exactly_their_own_failed_records(
    done_jobs: list[int], sqs_errors: SwallowedSqsErrors
) -> None:
    queue = WorkQueue()  # the failed records are made visible again on the queue they name
    handler = fresh_handler("consumer")()  # one container's module, shared by the four invocations
    bad_records = {
        worker: [queue.deliver(sqs_record(f"not json {worker}-{n}")) for n in range(worker + 1)] for worker in range(4)
    }
    results: dict[int, tuple[set[str], set[str]]] = {}
    barrier = threading.Barrier(4)

    def invoke(worker: int) -> None:
        good = [sqs_record({"order_id": order_id, "llm": MODEL}) for order_id in done_jobs[worker::4]]
        bad = bad_records[worker]
        records = [record for pair in zip(good, bad + [None] * len(good), strict=False) for record in pair if record]
        expected = {record["messageId"] for record in bad}
        barrier.wait()
        for _ in range(5):
            response = handler(sqs_event(*records), Context())
            reported = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
            results.setdefault(worker, (expected, set()))[1].update(reported ^ expected)

    threads = [threading.Thread(target=invoke, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    wrong = {worker: sorted(mismatch) for worker, (_, mismatch) in results.items() if mismatch}
    assert wrong == {}, f"records reported wrongly: {json.dumps(wrong)[:500]}"
