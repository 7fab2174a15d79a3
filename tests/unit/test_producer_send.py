"""Sending one batch: only failed entries are retried, with doubling backoff; a refused call is a queue error."""

from __future__ import annotations

from typing import Any

import pytest

from invoice_pipeline.errors import QueueUnavailableError
from invoice_pipeline.flows.sending import send_batch
from invoice_pipeline.tables.ledger import EnqueueClaim


def claims(count: int) -> list[EnqueueClaim]:
    return [
        EnqueueClaim(order_id, "gpt-4o-2024-11-20", "2026-01-01 00:00:00+00", True, None) for order_id in range(count)
    ]


class ScriptedQueue:
    """Fails the entries of the listed orders on the first ``rounds`` calls; records what it received."""

    def __init__(self, failing: set[int], rounds: int) -> None:
        self.failing, self.rounds, self.calls = failing, rounds, []

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls.append([entry["MessageBody"] for entry in Entries])
        failing_now = len(self.calls) <= self.rounds
        failed = [
            e for e in Entries if failing_now and int(e["MessageBody"].split(": ")[1].split(",")[0]) in self.failing
        ]
        return {
            "Successful": [{"Id": e["Id"], "MessageId": "m"} for e in Entries if e not in failed],
            "Failed": [{"Id": e["Id"], "Code": "ServiceUnavailable", "SenderFault": False} for e in failed],
        }

    def get_queue_attributes(self, **_: Any) -> dict[str, Any]:
        return {"Attributes": {"ApproximateNumberOfMessages": "0"}}


def test_only_failed_entries_are_retried_until_they_pass():
    queue, sleeps = ScriptedQueue({2, 5}, rounds=2), []

    sent, failed = send_batch(queue, "url", claims(10), sleep=sleeps.append)

    assert sorted(claim.order_id for claim in sent) == list(range(10)) and failed == []
    assert [len(call) for call in queue.calls] == [10, 2, 2]
    assert queue.calls[1] == [
        '{"order_id": 2, "llm": "gpt-4o-2024-11-20"}',
        '{"order_id": 5, "llm": "gpt-4o-2024-11-20"}',
    ]
    assert sleeps == [0.2, 0.4]


def test_entries_failing_every_attempt_are_returned_as_failed():
    queue, sleeps = ScriptedQueue({7}, rounds=99), []

    sent, failed = send_batch(queue, "url", claims(10), sleep=sleeps.append)

    assert [claim.order_id for claim in failed] == [7] and len(sent) == 9
    assert sleeps == [0.2, 0.4, 0.8]


class RefusingQueue(ScriptedQueue):
    def send_message_batch(self, **_: Any) -> dict[str, Any]:
        raise PermissionError("no route to the queue")


def test_a_refused_call_raises_a_queue_error_naming_the_queue():
    with pytest.raises(QueueUnavailableError, match="https://sqs.example/123/jobs: PermissionError"):
        send_batch(RefusingQueue(set(), 0), "https://sqs.example/123/jobs", claims(3), sleep=lambda _: None)


class DeadlockingConnection:
    """Answers like pg8000: the first ``deadlocks`` calls fail with SQLSTATE 40P01, then the statement runs."""

    def __init__(self, deadlocks: int) -> None:
        self.deadlocks, self.calls = deadlocks, 0

    def run(self, statement: str, **params: Any) -> list[list[int]]:
        from pg8000.native import DatabaseError

        self.calls += 1
        if self.calls <= self.deadlocks:
            raise DatabaseError({"S": "ERROR", "C": "40P01", "M": "deadlock detected"})
        return [[len(params["order_ids"])]]


def test_a_release_aborted_by_a_deadlock_is_run_again():
    from invoice_pipeline.tables.ledger import release_claims

    connection = DeadlockingConnection(deadlocks=2)

    assert release_claims(connection, claims(4)) == 4  # type: ignore[arg-type]
    assert connection.calls == 3


def test_a_deadlock_that_persists_is_raised():
    from pg8000.native import DatabaseError

    from invoice_pipeline.tables.ledger import release_claims

    with pytest.raises(DatabaseError):
        release_claims(DeadlockingConnection(deadlocks=5), claims(1))  # type: ignore[arg-type]
