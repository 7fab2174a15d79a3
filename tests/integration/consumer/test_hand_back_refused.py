"""When SQS refuses the fresh message of a hand-back, nothing is lost: the record is reported failed, so SQS keeps it
and shows it again after the wait, and the job stays ``queued``. Per provider, for its throttling answer and for a
configuration error on the last receive (the two hand-backs).

SQS refuses for real: the work queue's MaximumMessageSize is lowered below the message's size after it was received
(the body carries a field the consumer ignores), so SendMessage fails while ChangeMessageVisibility still works.
"""

from __future__ import annotations

import pytest

from tests.conftest import SwallowedSqsErrors
from tests.events.builders import sqs_record
from tests.integration.consumer.conftest import MAX_RECEIVE_COUNT
from tests.integration.consumer.test_providers import (
    CONFIG_ERROR_BACKOFF_SECONDS,
    THROTTLE_DELAY_SECONDS,
    add_sample_order,
    arrange,
    provider,
)
from tests.integration.queues import delayed_messages, hidden_for_seconds

SMALLEST_MAXIMUM_MESSAGE_SIZE = 1024  # the least SQS accepts for the attribute

CASES = [
    pytest.param("openai", "rate_limit", 1, id="openai-throttled"),
    pytest.param("openai", "invalid_api_key", MAX_RECEIVE_COUNT, id="openai-configuration"),
    pytest.param("bedrock", "ThrottlingException", 1, id="bedrock-throttled"),
    pytest.param("bedrock", "AccessDeniedException", MAX_RECEIVE_COUNT, id="bedrock-configuration"),
    pytest.param("textract", "ThrottlingException", 1, id="textract-throttled"),
    pytest.param("textract", "AccessDeniedException", MAX_RECEIVE_COUNT, id="textract-configuration"),
]


@pytest.mark.parametrize(("name", "fault", "receive_count"), CASES)
def test_a_hand_back_that_sqs_refuses_keeps_the_record_and_the_job_queued(
    name, fault, receive_count, database, sql, aws, monkeypatch, sqs_errors: SwallowedSqsErrors
):
    sqs_errors.allow("SendMessage")
    with provider(name) as chosen:
        pipeline = arrange(chosen, sql, monkeypatch)
        add_sample_order(pipeline, 701)
        chosen.emulator.inject(fault)
        body = {"order_id": 701, "llm": chosen.llm, "note": "x" * SMALLEST_MAXIMUM_MESSAGE_SIZE}
        record = pipeline.queue.deliver(sqs_record(body, receive_count=receive_count))
        pipeline.queue.sqs.set_queue_attributes(
            QueueUrl=pipeline.queue.url, Attributes={"MaximumMessageSize": str(SMALLEST_MAXIMUM_MESSAGE_SIZE)}
        )

        assert pipeline.run(record) == [record["messageId"]]  # failed: the event source leaves it in the queue

        job = pipeline.job(701, chosen.llm)
        assert job["status"] == "queued" and job["last_error"], job
        assert pipeline.items(701, chosen.llm) == []
        visible, in_flight, delayed = pipeline.queue.depth()
        assert (visible + in_flight, delayed) == (1, 0) and delayed_messages() == []
        assert pipeline.queue.depth(pipeline.queue.dlq_url) == (0, 0, 0)
        # It comes back after the wait (not the 1800 s visibility timeout it was received with).
        wait = max(THROTTLE_DELAY_SECONDS[name]) if fault == "rate_limit" or "Throttl" in fault else None
        hidden = hidden_for_seconds(record["receiptHandle"])
        if wait is not None:
            assert hidden <= wait
        else:
            assert CONFIG_ERROR_BACKOFF_SECONDS - 60 < hidden <= CONFIG_ERROR_BACKOFF_SECONDS
