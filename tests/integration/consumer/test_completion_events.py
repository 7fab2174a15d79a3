"""Completion events: one EventBridge event per `done` or `failed` commit, read back from moto through a rule to an
SQS queue; the outbox keeps what could not be published (a failed put, a function killed after its commit)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from invoice_pipeline.extractor import ExtractedInvoice, ExtractedItem
from invoice_pipeline.tables import db, events, items
from local.event_sink import create_event_sink, drain_events
from tests.integration.consumer.conftest import MODEL, Pipeline, answer, sqs_record

TOMATO = ("Tomato paste", "2", "can", "1.250", "2.500")


class Killed(BaseException):
    """The function dies: Lambda's timeout or an out-of-memory kill ends it where it stands."""


@pytest.fixture
def sink(pipeline: Pipeline) -> str:
    return create_event_sink()


def outbox(pipeline: Pipeline) -> list[dict[str, Any]]:
    rows = pipeline.sql.run(
        "SELECT id, order_id, llm, detail_type, sent_at IS NOT NULL AS sent, publish_attempts, last_error"
        " FROM benchmarking.event_outbox ORDER BY id"
    )
    names = [column["name"] for column in pipeline.sql.columns]
    return [dict(zip(names, row, strict=True)) for row in rows]


def age_outbox(pipeline: Pipeline, seconds: int = 120) -> None:
    pipeline.sql.run(
        "UPDATE benchmarking.event_outbox SET created_at = created_at - make_interval(secs => :s)", s=seconds
    )


def test_a_done_job_publishes_one_event_after_its_commit_with_the_ledger_values(pipeline: Pipeline, sink: str):
    pipeline.add_invoice_order(8001, [(81, answer(TOMATO)), (82, answer(TOMATO, TOMATO))])

    assert pipeline.run(sqs_record({"order_id": 8001, "llm": MODEL})) == []

    received = drain_events(sink)
    assert len(received) == 1
    event = received[0]
    assert (event["source"], event["detail-type"]) == ("invoice-pipeline", "Invoice extraction done")
    job = pipeline.job(8001)
    detail = event["detail"]
    assert detail["order_id"] == 8001 and detail["llm"] == MODEL and detail["status"] == "done"
    assert (detail["invoice_count"], detail["item_count"], detail["attempts"]) == (2, 3, 1)
    assert Decimal(str(detail["cost_usd"])) == job["cost_usd"]
    assert detail["finished_at"] == job["finished_at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # the dedup key's value
    assert "error" not in detail
    assert [row["sent"] for row in outbox(pipeline)] == [True]


def test_a_failed_job_publishes_the_same_redacted_error_as_last_error(pipeline: Pipeline, sink: str):
    pipeline.add_order(8002, "https://example.com/invoice.jpg")  # not an allowed location: permanent

    record = sqs_record({"order_id": 8002, "llm": MODEL})
    assert pipeline.run(record) == [record["messageId"]]

    [event] = drain_events(sink)
    job = pipeline.job(8002)
    assert event["detail-type"] == "Invoice extraction failed"
    assert event["detail"]["status"] == "failed" and event["detail"]["error"] == job["last_error"]
    assert (event["detail"]["invoice_count"], event["detail"]["item_count"]) == (0, 0)


def test_no_event_when_the_transition_rolls_back_or_the_claim_was_lost(pipeline: Pipeline, sink: str):
    pipeline.add_invoice_order(8003, [(83, answer(TOMATO))])
    pipeline.sql.run(
        "INSERT INTO benchmarking.extraction_jobs (order_id, llm, status, attempts, started_at)"
        " VALUES (8003, :llm, 'processing', 1, now())",
        llm=MODEL,
    )
    invoice = ExtractedInvoice(0, "KWD", None, (ExtractedItem("Tomato", Decimal(1), "can", Decimal(1), Decimal(1)),))
    with db.pool.connection() as connection:
        with pytest.raises(RuntimeError), db.transaction(connection):
            assert items.write_order(connection, 8003, MODEL, attempt=1, invoices=[invoice]).outbox_id is not None
            raise RuntimeError("the transaction rolls back")
        lost = items.write_order(connection, 8003, MODEL, attempt=7, invoices=[invoice])  # another delivery's claim

    assert lost.job_completed is False and lost.outbox_id is None
    assert outbox(pipeline) == [] and pipeline.job(8003)["status"] == "processing"
    age_outbox(pipeline)
    pipeline.run(sqs_record("{not json"))  # an invocation ends with a sweep: there is nothing to publish
    assert drain_events(sink) == []


def test_a_function_killed_between_commit_and_put_has_exactly_that_event_published_by_the_next_invocation(
    pipeline: Pipeline, sink: str, monkeypatch: pytest.MonkeyPatch
):
    pipeline.add_invoice_order(8004, [(84, answer(TOMATO))])
    pipeline.add_invoice_order(8005, [(85, answer(TOMATO))])

    def killed(*args: Any) -> None:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(events, "publish_now", killed)
        with pytest.raises(Killed):
            pipeline.run(sqs_record({"order_id": 8004, "llm": MODEL}))
    assert pipeline.job(8004)["status"] == "done"  # committed before the kill
    assert [(row["order_id"], row["sent"]) for row in outbox(pipeline)] == [(8004, False)]
    assert drain_events(sink) == []

    # The next invocation (a new container) publishes it once the retry delay has passed, besides its own event.
    pipeline.new_container()
    assert pipeline.run(sqs_record({"order_id": 8005, "llm": MODEL})) == []
    assert sorted(e["detail"]["order_id"] for e in drain_events(sink)) == [8005]  # not yet: under the retry delay
    age_outbox(pipeline)
    assert pipeline.run(sqs_record({"order_id": 8005, "llm": MODEL})) == []  # already done: acknowledged
    [event] = drain_events(sink)
    job = pipeline.job(8004)
    assert event["detail"]["order_id"] == 8004
    assert event["detail"]["finished_at"] == job["finished_at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert all(row["sent"] for row in outbox(pipeline))
    pipeline.run(sqs_record({"order_id": 8005, "llm": MODEL}))
    assert drain_events(sink) == []  # published once


def test_a_put_the_bus_refuses_leaves_the_row_for_the_next_run(
    pipeline: Pipeline, sink: str, monkeypatch: pytest.MonkeyPatch
):
    pipeline.add_invoice_order(8006, [(86, answer(TOMATO))])
    monkeypatch.setenv("EVENT_BUS_NAME", "no-such-bus")

    assert pipeline.run(sqs_record({"order_id": 8006, "llm": MODEL})) == []  # the job is done all the same

    [row] = outbox(pipeline)
    assert pipeline.job(8006)["status"] == "done"
    assert (row["sent"], row["publish_attempts"]) == (False, 1) and row["last_error"]
    assert drain_events(sink) == []

    monkeypatch.setenv("EVENT_BUS_NAME", "default")
    pipeline.new_container()
    age_outbox(pipeline)
    pipeline.run(sqs_record({"order_id": 8006, "llm": MODEL}))
    [event] = drain_events(sink)
    assert event["detail"]["order_id"] == 8006
    assert [row["sent"] for row in outbox(pipeline)] == [True]
