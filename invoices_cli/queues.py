"""SQS for operators: the queue's DLQ (from its RedrivePolicy) and the AWS redrive task."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from invoice_pipeline.errors import PipelineError

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}  # noqa: S104 - compared, never bound


class QueueError(PipelineError):
    """The queue is misconfigured for the operation (no DLQ, a redrive already running, a failed task)."""


@dataclass(frozen=True)
class QueueRef:
    url: str
    arn: str


def is_local_endpoint(endpoint_url: str | None) -> bool:
    return bool(endpoint_url) and urlsplit(endpoint_url).hostname in LOCAL_HOSTS  # type: ignore[arg-type]


def source_and_dlq(sqs: Any, queue_url: str) -> tuple[QueueRef, QueueRef]:
    """The queue and its dead-letter queue, found through the queue's RedrivePolicy (no extra setting)."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn", "RedrivePolicy"])[
        "Attributes"
    ]
    policy = attributes.get("RedrivePolicy")
    if not policy:
        raise QueueError(f"queue {queue_url} has no RedrivePolicy, so no dead-letter queue")
    dlq_arn = json.loads(policy)["deadLetterTargetArn"]
    _, _, _, _, account, name = dlq_arn.split(":", 5)
    dlq_url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    return QueueRef(queue_url, attributes["QueueArn"]), QueueRef(dlq_url, dlq_arn)


@dataclass(frozen=True)
class MoveTask:
    status: str
    moved: int
    to_move: int | None
    failure_reason: str | None
    task_handle: str | None

    @classmethod
    def from_api(cls, result: dict[str, Any]) -> MoveTask:
        return cls(
            status=result["Status"],
            moved=int(result.get("ApproximateNumberOfMessagesMoved", 0)),
            to_move=result.get("ApproximateNumberOfMessagesToMove"),
            failure_reason=result.get("FailureReason"),
            task_handle=result.get("TaskHandle"),
        )


def latest_move_task(sqs: Any, dlq_arn: str) -> MoveTask | None:
    results = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=1).get("Results", [])
    return MoveTask.from_api(results[0]) if results else None


def start_redrive(sqs: Any, dlq: QueueRef, source: QueueRef, *, rate: int | None) -> str:
    """Start the console's "redrive to source" (StartMessageMoveTask); refuses when one is running already."""
    running = latest_move_task(sqs, dlq.arn)
    if running is not None and running.status in ("RUNNING", "CANCELLING"):
        raise QueueError(
            f"a message move task is already {running.status} on {dlq.arn} "
            f"({running.moved} moved so far); wait for it or cancel it first"
        )
    request: dict[str, Any] = {"SourceArn": dlq.arn, "DestinationArn": source.arn}
    if rate:
        request["MaxNumberOfMessagesPerSecond"] = rate
    return str(sqs.start_message_move_task(**request)["TaskHandle"])


def wait_for_redrive(
    sqs: Any,
    dlq_arn: str,
    *,
    poll_seconds: float = 5.0,
    on_progress: Callable[[MoveTask], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> MoveTask:
    """Poll ListMessageMoveTasks until the newest task is no longer running; returns its final state."""
    while True:
        task = latest_move_task(sqs, dlq_arn)
        if task is None:
            raise QueueError(f"no message move task found for {dlq_arn}")
        if on_progress is not None:
            on_progress(task)
        if task.status not in ("RUNNING", "CANCELLING"):
            return task
        sleep(poll_seconds)
