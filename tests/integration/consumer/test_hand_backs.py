"""Hand-backs of a throttled job cost nothing twice: an invoice answered before a hand-back is kept
with the job and not billed again, hand-backs per job are bounded, and each fresh message restarts the producer's
re-enqueue lease. Every test drives the designed path on a real queue: the record is acknowledged, the job is
`queued`, exactly one fresh delayed message carries it on."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from tests.integration.consumer.conftest import MODEL, Pipeline, answer, sqs_record
from tests.integration.consumer.test_throttling import depth, queue_with_dlq, receive, throttle_state

TOMATO = ("Tomato paste", "2", "ctn", "4.500", "9.000")
ONION = ("Onion", "5", "kg", "0.300", "1.500")
# OpenAI's answer when one request alone exceeds the model's tokens-per-minute limit: no wait makes it fit.
TOO_LARGE = (
    "Request too large for gpt-4o in organization org-test on tokens per min (TPM): Limit 30000, Requested 45000. "
    "The input or output tokens must be reduced in order to run successfully."
)


def kept_answers(pipeline: Pipeline, order_id: int) -> object:
    return pipeline.sql.run(
        "SELECT kept_answers FROM benchmarking.extraction_jobs WHERE order_id = :o AND llm = :l", o=order_id, l=MODEL
    )[0][0]


def enqueued_at(pipeline: Pipeline, order_id: int) -> datetime:
    return pipeline.sql.run(
        "SELECT enqueued_at FROM benchmarking.extraction_jobs WHERE order_id = :o AND llm = :l", o=order_id, l=MODEL
    )[0][0]


def hand_back(pipeline: Pipeline, sqs, queue_url: str, arn: str, order_id: int) -> dict:
    """Receive the job's one message, run it (throttled), and delete it as Lambda does for an acknowledged record."""
    record = receive(sqs, queue_url, arn)
    assert record is not None, "the job has no live message"
    assert pipeline.run(record) == []  # acknowledged
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"])
    assert throttle_state(pipeline, order_id)[0] == "queued"
    assert depth(sqs, queue_url) == 1  # one fresh, delayed message carries the job on
    return record


def test_an_invoice_answered_before_a_hand_back_is_billed_once(pipeline: Pipeline):
    sqs, queue_url, arn, dlq_url = queue_with_dlq()
    pipeline.add_invoice_order(4101, [(61, answer(TOMATO)), (62, answer(ONION))])
    pipeline.model.inject("rate_limit", stamp=62, retry_after=0.01)  # only the second invoice is throttled
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"order_id": 4101, "llm": MODEL}))

    for _ in range(4):
        hand_back(pipeline, sqs, queue_url, arn, 4101)
    assert pipeline.model.requests_for(61) == 1  # billed once, not once per delivery
    assert kept_answers(pipeline, 4101) is not None

    pipeline.model.clear_faults()
    record = receive(sqs, queue_url, arn)
    assert pipeline.run(record) == []
    assert pipeline.job(4101)["status"] == "done"
    assert [(row[0], row[2]) for row in pipeline.items(4101)] == [(0, "Tomato paste"), (1, "Onion")]
    assert pipeline.model.requests_for(61) == 1
    assert kept_answers(pipeline, 4101) is None  # discarded when the job commits
    assert depth(sqs, dlq_url) == 0


def test_hand_backs_per_job_are_bounded_and_the_kept_answers_discarded(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MAX_HAND_BACKS_PER_JOB", "2")
    pipeline.new_container()
    sqs, queue_url, arn, _ = queue_with_dlq()
    pipeline.add_invoice_order(4102, [(63, answer(TOMATO)), (64, answer(ONION))])
    pipeline.model.inject("rate_limit", stamp=64, retry_after=0.01)
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"order_id": 4102, "llm": MODEL}))
    hand_back(pipeline, sqs, queue_url, arn, 4102)
    hand_back(pipeline, sqs, queue_url, arn, 4102)

    third = receive(sqs, queue_url, arn)
    assert pipeline.run(third) == [third["messageId"]]  # failed: on its way to the DLQ like any failure
    status, _, throttles, _, last_error = throttle_state(pipeline, 4102)
    assert (status, throttles) == ("failed", 3)
    assert "MAX_HAND_BACKS_PER_JOB" in last_error
    assert kept_answers(pipeline, 4102) is None  # discarded when the job fails
    assert pipeline.model.requests_for(63) == 1


def test_a_429_for_a_request_larger_than_the_limit_is_permanent(pipeline: Pipeline):
    pipeline.add_invoice_order(4103, [(65, answer(TOMATO))])
    pipeline.model.inject("rate_limit", message=TOO_LARGE)
    sqs, queue_url, arn, _ = queue_with_dlq()
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"order_id": 4103, "llm": MODEL}))
    record = receive(sqs, queue_url, arn)
    assert pipeline.run(record) == [record["messageId"]]
    status, _, throttles, _, last_error = throttle_state(pipeline, 4103)
    assert (status, throttles) == ("failed", 0)
    assert "Request too large" in last_error


def test_a_throttled_hand_back_restarts_the_re_enqueue_lease(pipeline: Pipeline):
    sqs, queue_url, arn, _ = queue_with_dlq()
    pipeline.add_invoice_order(4104, [(66, answer(TOMATO))])
    pipeline.model.inject("rate_limit", retry_after=0.01)
    pipeline.sql.run(
        "INSERT INTO benchmarking.extraction_jobs (order_id, llm, status, attempts, enqueued_at)"
        " VALUES (4104, :l, 'queued', 0, now() - interval '3 days')",
        l=MODEL,
    )
    sent_long_ago = enqueued_at(pipeline, 4104)
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"order_id": 4104, "llm": MODEL}))
    hand_back(pipeline, sqs, queue_url, arn, 4104)
    # The fresh message lives a whole retention period from now: the producer must not send a second one before.
    refreshed = enqueued_at(pipeline, 4104)
    now = pipeline.sql.run("SELECT now()")[0][0]
    assert refreshed > sent_long_ago and (now - refreshed).total_seconds() < 60


def test_a_transient_failure_keeps_the_answers_for_the_next_delivery(pipeline: Pipeline):
    queue_with_dlq()  # the failed record's visibility change goes to its queue
    pipeline.add_invoice_order(4105, [(67, answer(TOMATO)), (68, answer(ONION))])
    pipeline.model.inject("server_error", stamp=68, retry_after=0.01)  # every attempt, SDK retries included
    record = sqs_record({"order_id": 4105, "llm": MODEL})
    assert pipeline.run(record) == [record["messageId"]]  # failed: SQS retries it
    assert throttle_state(pipeline, 4105)[0] == "queued"
    assert kept_answers(pipeline, 4105) is not None

    pipeline.model.clear_faults()
    record["attributes"]["ApproximateReceiveCount"] = "2"
    assert pipeline.run(record) == []
    assert pipeline.job(4105)["status"] == "done"
    assert pipeline.model.requests_for(67) == 1
