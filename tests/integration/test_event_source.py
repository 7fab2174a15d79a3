"""The SQS event-source emulator against moto: partial batches, redelivery, the DLQ, concurrency."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any

import boto3
import pytest

from local.event_source import SqsEventSource, queue_depth
from tests.integration.queues import create_queue_with_dlq


def make_queues(max_receive_count: int = 2, visibility: int = 1) -> tuple[str, str]:
    return create_queue_with_dlq("toy", visibility_seconds=visibility, max_receive_count=max_receive_count)


def send(queue_url: str, bodies: list[dict[str, Any]]) -> None:
    sqs = boto3.client("sqs")
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(n), "MessageBody": json.dumps(body)} for n, body in enumerate(bodies[start : start + 10])]
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)


def dlq_bodies(dlq_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    found: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30).get(
            "Messages", []
        )
        if not messages:
            return found
        found.extend(json.loads(message["Body"]) for message in messages)


class ToyHandler:
    """Fails the records whose body asks for it (``fail_times`` deliveries, or always); counts deliveries."""

    def __init__(self, sleep: float = 0.0) -> None:
        self.sleep = sleep
        self.deliveries: Counter[int] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.events.append(event)
            self.contexts.append(context)
        try:
            time.sleep(self.sleep)
            failures = []
            for record in event["Records"]:
                body = json.loads(record["body"])
                with self._lock:
                    self.deliveries[body["n"]] += 1
                    delivery = self.deliveries[body["n"]]
                if body.get("fail") == "always" or delivery <= body.get("fail_times", 0):
                    failures.append({"itemIdentifier": record["messageId"]})
            return {"batchItemFailures": failures}
        finally:
            with self._lock:
                self.in_flight -= 1


def test_partial_batch_deletes_successes_and_redelivers_failures(aws: object) -> None:
    queue_url, dlq_url = make_queues(max_receive_count=3)
    send(queue_url, [{"n": n, "fail_times": 1 if n % 4 == 0 else 0} for n in range(12)])
    handler = ToyHandler()

    stats = SqsEventSource(queue_url, handler, batch_size=5, max_concurrency=2).drain(timeout_seconds=30)

    assert {n: handler.deliveries[n] for n in range(12)} == {n: 2 if n % 4 == 0 else 1 for n in range(12)}
    assert stats.succeeded == 12 and stats.failed == 3 and stats.records == 15
    assert dlq_bodies(dlq_url) == []
    assert queue_depth(boto3.client("sqs"), queue_url).total == 0


def test_poison_message_reaches_the_dlq_after_max_receive_count(aws: object) -> None:
    queue_url, dlq_url = make_queues(max_receive_count=2)
    send(queue_url, [{"n": 0, "fail": "always"}, {"n": 1}, {"n": 2}])
    handler = ToyHandler()

    stats = SqsEventSource(queue_url, handler, batch_size=10, max_concurrency=2).drain(timeout_seconds=30)

    assert handler.deliveries[0] == 2  # received maxReceiveCount times, then moved by the redrive policy
    assert handler.deliveries[1] == handler.deliveries[2] == 1
    assert dlq_bodies(dlq_url) == [{"n": 0, "fail": "always"}]
    assert stats.timed_out is False


def test_an_exception_fails_the_whole_batch(aws: object) -> None:
    queue_url, _ = make_queues(max_receive_count=5)
    send(queue_url, [{"n": n} for n in range(3)])
    calls: list[int] = []

    def flaky(event: dict[str, Any], context: Any) -> None:
        calls.append(len(event["Records"]))
        if len(calls) == 1:
            raise RuntimeError("cold start failed")

    stats = SqsEventSource(queue_url, flaky, batch_size=10, max_concurrency=1).drain(timeout_seconds=30)

    assert sum(calls) == 6  # every record of the failed invocation came back once
    assert stats.handler_errors == 1 and stats.succeeded == 3 and stats.failed == 3
    assert "RuntimeError: cold start failed" in stats.errors


def test_an_invocation_past_the_function_timeout_fails_the_batch(aws: object) -> None:
    queue_url, _ = make_queues(max_receive_count=5)
    send(queue_url, [{"n": 0}])
    remaining: list[int] = []

    def slow_once(event: dict[str, Any], context: Any) -> None:
        remaining.append(context.get_remaining_time_in_millis())
        if len(remaining) == 1:
            time.sleep(0.6)

    stats = SqsEventSource(queue_url, slow_once, function_timeout_seconds=0.5, max_concurrency=1).drain(
        timeout_seconds=30
    )

    assert len(remaining) == 2 and 0 < remaining[0] <= 500
    assert stats.handler_errors == 1 and stats.succeeded == 1


def test_concurrency_never_exceeds_the_limit(aws: object) -> None:
    queue_url, _ = make_queues()
    send(queue_url, [{"n": n} for n in range(24)])
    handler = ToyHandler(sleep=0.15)

    stats = SqsEventSource(queue_url, handler, batch_size=1, max_concurrency=3).drain(timeout_seconds=30)

    assert stats.succeeded == 24 and stats.invocations == 24
    assert handler.max_in_flight == 3  # reached, never exceeded


def test_the_event_has_the_shape_lambda_sends(aws: object) -> None:
    queue_url, _ = make_queues()
    boto3.client("sqs").send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps({"n": 7}),
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "toy"}},
    )
    handler = ToyHandler()

    SqsEventSource(queue_url, handler, function_name="consumer-fn").drain(timeout_seconds=30)

    (record,) = handler.events[0]["Records"]
    assert set(record) == {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert {"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(
        record["attributes"]
    )
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:toy"
    assert record["awsRegion"] == "us-east-1"
    assert record["messageAttributes"]["kind"] == {
        "stringValue": "toy",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    context = handler.contexts[0]
    assert context.function_name == "consumer-fn" and context.aws_request_id


@pytest.mark.parametrize("batch_size", [0])
def test_a_batch_size_below_one_is_refused(aws: object, batch_size: int) -> None:
    queue_url, _ = make_queues()
    with pytest.raises(ValueError, match="batch_size"):
        SqsEventSource(queue_url, ToyHandler(), batch_size=batch_size)


def test_metrics_disabled_locally_never_reach_the_terminal_however_many_invocations_add(
    aws: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Powertools keeps a disabled metric set and prints it once a metric holds 100 values; the event source drops it
    after each invocation, so a long local run shows its figures, not EMF blobs."""
    from invoice_pipeline.observability import metrics

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    queue_url, _ = make_queues(max_receive_count=5)
    send(queue_url, [{"n": n} for n in range(30)])

    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        for _ in range(10):  # 30 invocations x 10 values: three times Powertools' 100
            metrics.add_metric(name="Toy", unit="Count", value=1)
        return {"batchItemFailures": []}

    stats = SqsEventSource(queue_url, handler, batch_size=1).drain(timeout_seconds=30)

    assert stats.succeeded == 30
    assert '"_aws"' not in capsys.readouterr().out
