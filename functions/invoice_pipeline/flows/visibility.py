"""When SQS shows a failed record again: backoff for transient failures, at once for permanent ones.

It also hands a record back as a fresh message (:meth:`SqsVisibility.send_again`) when the old one must not reach
the DLQ: a configuration error on the last receive, a job that waits for a rate limit.

A failed record would otherwise wait out the queue's whole visibility timeout (6x the function timeout).
Transient failures back off exponentially on ``ApproximateReceiveCount``; permanent ones are made visible
again at once so they use up their receives within seconds and reach the DLQ. Best effort: if the call
fails, SQS still redelivers after the visibility timeout, so the error is only logged.
"""

from __future__ import annotations

import random
import threading
from typing import Any, Protocol

from invoice_pipeline.clients import AwsClients
from invoice_pipeline.observability import logger

BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 900
JITTER = 0.2
MAX_DELAY_SECONDS = 900  # the most SendMessage's DelaySeconds accepts


class Record(Protocol):
    @property
    def body(self) -> str: ...

    @property
    def receipt_handle(self) -> str: ...

    @property
    def event_source_arn(self) -> str: ...


def backoff_seconds(receive_count: int, base_seconds: int = BACKOFF_BASE_SECONDS) -> int:
    """30 s, 60 s, 120 s, ... up to 15 min, with +-20% jitter so a burst of failures does not return at once.

    ``base_seconds`` is ``RETRY_BACKOFF_BASE_SECONDS`` (30 by default; the local stack uses 1 s).
    """
    base = min(BACKOFF_MAX_SECONDS, base_seconds * 2 ** max(0, receive_count - 1))
    return max(1, round(base * random.uniform(1 - JITTER, 1 + JITTER)))  # noqa: S311 (jitter, not security)


def queue_name_and_account(arn: str) -> tuple[str, str]:
    """``arn:aws:sqs:REGION:ACCOUNT:NAME`` -> (NAME, ACCOUNT)."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs":
        raise ValueError(f"not an SQS queue ARN: {arn!r}")
    return parts[5], parts[4]


class SqsVisibility:
    """Changes a record's visibility timeout; the queue URL is looked up once per event source ARN."""

    def __init__(self, clients: AwsClients) -> None:
        self._clients = clients
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()

    def _sqs(self) -> Any:
        return self._clients.get("sqs")

    def _queue_url(self, arn: str) -> str:
        with self._lock:
            if arn not in self._urls:
                name, account = queue_name_and_account(arn)
                self._urls[arn] = self._sqs().get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            return self._urls[arn]

    def change(self, record: Record, seconds: int) -> None:
        try:
            self._sqs().change_message_visibility(
                QueueUrl=self._queue_url(record.event_source_arn),
                ReceiptHandle=record.receipt_handle,
                VisibilityTimeout=seconds,
            )
        except Exception as error:  # best effort: SQS redelivers after the visibility timeout anyway
            logger.warning("could not change message visibility", extra={"error": str(error), "seconds": seconds})

    def send_again(self, record: Record, *, delay_seconds: int) -> None:
        """Put the record's body back on the queue it came from as a new message, visible after ``delay_seconds``
        (at most 15 min): the job is handed back without using up a receive of the current message. Unlike
        :meth:`change` it raises when SQS refuses: the caller must then keep the record."""
        self._sqs().send_message(
            QueueUrl=self._queue_url(record.event_source_arn),
            MessageBody=record.body,
            DelaySeconds=max(0, min(MAX_DELAY_SECONDS, delay_seconds)),
        )
