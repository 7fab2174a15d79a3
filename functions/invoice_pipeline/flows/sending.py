"""Sending messages to the work queue: ``SendMessageBatch`` with retries of the entries SQS reports as failed.

The producer's run (:mod:`invoice_pipeline.flows.enqueue`) sends the jobs it claimed through this module; what was
not sent comes back to it, so it can release those claims in the ledger.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from invoice_pipeline.clients import ClientConfig
from invoice_pipeline.errors import QueueUnavailableError
from invoice_pipeline.observability import logger

SEND_BATCH_SIZE = 10  # the SendMessageBatch maximum
SEND_THREADS = 8
SEND_ATTEMPTS = 4  # one send plus three retries of the entries SQS reported as failed
SEND_BACKOFF_SECONDS = 0.2  # doubled after each retry


class QueueClient(Protocol):
    """The two SQS calls the producer makes (a boto3 SQS client, or a fake in tests)."""

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]: ...

    def get_queue_attributes(self, *, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]: ...


class Message(Protocol):
    def message_body(self) -> str: ...


MessageT = TypeVar("MessageT", bound=Message)


def queue_depth(sqs: QueueClient, queue_url: str) -> int:
    """ApproximateNumberOfMessages; also proves the queue exists and we may use it before anything is claimed."""
    try:
        response = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    except Exception as error:
        raise QueueUnavailableError(f"cannot read queue {queue_url}: {_describe(error)}") from error
    return int(response["Attributes"]["ApproximateNumberOfMessages"])


def send_batch(
    sqs: QueueClient,
    queue_url: str,
    messages: Sequence[MessageT],
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[MessageT], list[MessageT]]:
    """Send up to ten messages, retrying the entries SQS reports as failed; returns (sent, failed).

    An exception from the call itself (after boto3's own retries of throttling and 5xx) means the queue
    is unusable (wrong URL, missing permission, no network): it is raised as QueueUnavailableError.
    """
    pending = {str(index): message for index, message in enumerate(messages)}
    sent: list[MessageT] = []
    delay = SEND_BACKOFF_SECONDS
    for attempt in range(SEND_ATTEMPTS):
        if attempt:
            sleep(delay)
            delay *= 2
        entries = [{"Id": entry_id, "MessageBody": message.message_body()} for entry_id, message in pending.items()]
        try:
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        except Exception as error:
            raise QueueUnavailableError(f"cannot send to queue {queue_url}: {_describe(error)}") from error
        for entry in response.get("Successful", []):
            sent.append(pending.pop(entry["Id"]))
        if not pending:
            break
        failures = {entry["Id"]: entry for entry in response.get("Failed", [])}
        logger.warning(
            "SendMessageBatch entries failed",
            extra={
                "attempt": attempt + 1,
                "failed": len(pending),
                "codes": sorted({f.get("Code") for f in failures.values()}),
            },
        )
    return sent, list(pending.values())


def batches(messages: Sequence[MessageT]) -> Iterator[Sequence[MessageT]]:
    """The messages in SendMessageBatch-sized slices, in order."""
    for start in range(0, len(messages), SEND_BATCH_SIZE):
        yield messages[start : start + SEND_BATCH_SIZE]


def _describe(error: BaseException) -> str:
    code = getattr(error, "response", {}).get("Error", {}).get("Code")
    return f"{type(error).__name__}{f' ({code})' if code else ''}: {error}"


# Enough HTTP connections for every sending thread; boto3's standard retries cover throttling and 5xx.
SQS_CLIENT = ClientConfig(attempts=6, max_pool_connections=SEND_THREADS * 2)
