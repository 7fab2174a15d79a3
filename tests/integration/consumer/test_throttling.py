"""Throttling is not a failure: a rate-limited job is handed back, never failed, never in the DLQ.

The failure classes: docs/architecture.md §9.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from tests.events.builders import WORK_QUEUE
from tests.integration.consumer.conftest import MODEL, Pipeline, answer, sqs_record
from tests.integration.queues import delayed_messages

TOMATO = ("Tomato paste", "2", "ctn", "4.500", "9.000")


def queue_with_dlq(max_receive_count: int | None = None) -> tuple[Any, str, str, str]:
    """The work queue the records name (the ``pipeline`` fixture creates it), its ARN and its DLQ;
    ``max_receive_count`` changes its redrive policy."""
    sqs = boto3.client("sqs")
    queue_url = sqs.get_queue_url(QueueName=WORK_QUEUE)["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=f"{WORK_QUEUE}-dlq")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn", "RedrivePolicy"])
    arn = attributes["Attributes"]["QueueArn"]
    if max_receive_count is not None:
        policy = {**json.loads(attributes["Attributes"]["RedrivePolicy"]), "maxReceiveCount": str(max_receive_count)}
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"RedrivePolicy": json.dumps(policy)})
    return sqs, queue_url, arn, dlq_url


def receive(sqs: Any, queue_url: str, arn: str, wait_seconds: float = 60.0) -> dict[str, Any] | None:
    """The next message as a Lambda record, waiting out a delay of a few seconds (the bound only stops a hang)."""
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue_url, AttributeNames=["All"], WaitTimeSeconds=0).get("Messages")
        if messages:
            message = messages[0]
            return sqs_record(
                message["Body"],
                message_id=message["MessageId"],
                queue_arn=arn,
                receipt_handle=message["ReceiptHandle"],
                receive_count=int(message["Attributes"]["ApproximateReceiveCount"]),
            )
        time.sleep(0.2)
    return None


def depth(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesDelayed",
            "ApproximateNumberOfMessagesNotVisible",
        ],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def throttle_state(pipeline: Pipeline, order_id: int) -> tuple[str, int, int, float, str | None]:
    row = pipeline.sql.run(
        "SELECT status, attempts, throttles, throttled_seconds, last_error FROM benchmarking.extraction_jobs"
        " WHERE order_id = :o AND llm = :l",
        o=order_id,
        l=MODEL,
    )[0]
    return row[0], row[1], row[2], float(row[3]), row[4]


def test_a_throttled_job_on_its_last_receive_is_handed_back_not_failed(pipeline: Pipeline):
    sqs, queue_url, arn, dlq_url = queue_with_dlq()
    pipeline.add_invoice_order(4002, [(53, answer(TOMATO))])
    pipeline.model.inject("rate_limit", retry_after=1)
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"order_id": 4002, "llm": MODEL}))
    record = receive(sqs, queue_url, arn)
    assert record is not None
    record["attributes"]["ApproximateReceiveCount"] = "5"  # the last receive SQS allows

    assert pipeline.run(record) == []  # acknowledged (and deleted): this receive cannot reach the DLQ
    status, _, throttles, waited, last_error = throttle_state(pipeline, 4002)
    assert status == "queued" and throttles == 1 and waited >= 1 and "rate limit" in last_error
    # One fresh copy, delayed by the named second plus at most 20 % jitter, rounded up.
    assert pipeline.queue.depth() == (0, 0, 1)
    assert [(json.loads(m.body), m.delay_seconds) for m in delayed_messages()] in (
        [({"order_id": 4002, "llm": MODEL}, 1)],
        [({"order_id": 4002, "llm": MODEL}, 2)],
    )

    again = receive(sqs, queue_url, arn)  # the fresh, delayed copy
    assert again is not None and again["messageId"] != record["messageId"]
    assert json.loads(again["body"]) == {"order_id": 4002, "llm": MODEL}
    assert again["attributes"]["ApproximateReceiveCount"] == "1"
    pipeline.model.clear_faults()
    assert pipeline.run(again) == []
    assert pipeline.job(4002)["status"] == "done" and len(pipeline.items(4002)) == 1
    assert depth(sqs, dlq_url) == 0


def test_throttling_for_longer_than_every_receive_never_reaches_the_dlq(pipeline: Pipeline):
    sqs, queue_url, arn, dlq_url = queue_with_dlq(max_receive_count=2)
    pipeline.add_invoice_order(4010, [(57, answer(TOMATO))])
    pipeline.model.inject("rate_limit", retry_after=0.01)
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"order_id": 4010, "llm": MODEL}))
    for _ in range(4):  # twice maxReceiveCount deliveries, every one throttled
        record = receive(sqs, queue_url, arn)
        assert record is not None
        assert pipeline.run(record) == []  # acknowledged and deleted, a fresh copy sent
    status, attempts, throttles, _, _ = throttle_state(pipeline, 4010)
    assert (status, attempts, throttles) == ("queued", 4, 4)
    assert depth(sqs, dlq_url) == 0 and depth(sqs, queue_url) == 1


def test_a_job_throttled_for_longer_than_the_maximum_fails_with_that_reason(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MAX_THROTTLE_WAIT_SECONDS", "2")
    pipeline.new_container()
    sqs, queue_url, arn, _ = queue_with_dlq()
    pipeline.add_invoice_order(4011, [(58, answer(TOMATO))])
    pipeline.model.inject("rate_limit", retry_after=1.5)
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"order_id": 4011, "llm": MODEL}))
    first = receive(sqs, queue_url, arn)
    assert pipeline.run(first) == []
    second = receive(sqs, queue_url, arn)
    assert pipeline.run(second) == [second["messageId"]]  # failed: on its way to the DLQ like any failure
    status, _, throttles, waited, last_error = throttle_state(pipeline, 4011)
    assert status == "failed" and throttles == 2 and waited > 2
    assert "MAX_THROTTLE_WAIT_SECONDS" in last_error


def test_insufficient_quota_is_not_throttling(pipeline: Pipeline):
    pipeline.add_invoice_order(4012, [(59, answer(TOMATO))])
    pipeline.model.inject("insufficient_quota")
    record = sqs_record({"order_id": 4012, "llm": MODEL})
    assert pipeline.run(record) == [record["messageId"]]
    status, _, throttles, _, _ = throttle_state(pipeline, 4012)
    assert status == "failed" and throttles == 0
