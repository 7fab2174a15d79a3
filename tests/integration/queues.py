"""Queues on moto for the tests that drive SQS themselves (the local stack's queues are ``local.stack``)."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

import boto3

from tests.events.builders import SYNTHETIC_RECEIPT_HANDLE, WORK_QUEUE


def create_queue_with_dlq(name: str, *, visibility_seconds: int, max_receive_count: int) -> tuple[str, str]:
    """Queue ``name`` whose messages move to ``{name}-dlq`` after ``max_receive_count`` receives: both URLs."""
    sqs = boto3.client("sqs")
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_seconds),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}),
        },
    )["QueueUrl"]
    return queue_url, dlq_url


MAX_RECEIVE_COUNT = 5


class WorkQueue:
    """The queue the records name (``tests/events/sqs_event.json``) and its DLQ, on moto."""

    def __init__(self) -> None:
        self.sqs = boto3.client("sqs")
        self.url, self.dlq_url = create_queue_with_dlq(
            WORK_QUEUE, visibility_seconds=1800, max_receive_count=MAX_RECEIVE_COUNT
        )

    def deliver(self, record: dict[str, Any]) -> dict[str, Any]:
        """``record`` as the event source delivers it: its body sent to the queue and received (the receive count
        stays the record's). A record that already carries a handle SQS issued is delivered as it is."""
        if not record["receiptHandle"].startswith(SYNTHETIC_RECEIPT_HANDLE):
            return record
        sent = self.sqs.send_message(QueueUrl=self.url, MessageBody=record["body"])["MessageId"]
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
            assert messages, "a message just sent is not in the queue"
            for message in messages:
                if message["MessageId"] == sent:
                    return {**record, "receiptHandle": message["ReceiptHandle"]}
                # An earlier message made visible again (a permanent failure): back for its next delivery.
                self.sqs.change_message_visibility(
                    QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )

    def acknowledge(self, record: dict[str, Any]) -> None:
        """What the event source does with a record the batch did not report failed."""
        self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=record["receiptHandle"])

    def depth(self, url: str | None = None) -> tuple[int, int, int]:
        """(visible, in flight, delayed) of the queue (or of ``url``)."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url or self.url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
            int(attributes["ApproximateNumberOfMessagesDelayed"]),
        )


@dataclass(frozen=True)
class DelayedMessage:
    body: str
    delay_seconds: int


def _moto_messages() -> list[dict[str, Any]]:
    """moto's record of every message since its last reset (``/moto-api/data.json``, its model dump)."""
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=10) as response:
        return list(json.load(response)["sqs"].get("Message", []))


def delayed_messages() -> list[DelayedMessage]:
    """Every message moto holds back with a ``DelaySeconds``, with that delay as sent (SQS's API does not tell it)."""
    messages = _moto_messages()
    return [
        DelayedMessage(message["body"], round((message["delayed_until"] - message["sent_timestamp"]) / 1000))
        for message in messages
        if message["delayed"]
    ]


def hidden_for_seconds(receipt_handle: str) -> float:
    """How long the message received with ``receipt_handle`` stays invisible from now (its visibility timeout as last
    set, less the time since): tells a visibility change the code made from the one the message was received with."""
    # moto also keeps a snapshot of each message as it answered a receive: the first is the one in the queue.
    message = next(m for m in _moto_messages() if receipt_handle in m["all_receipt_handles"])
    return (message["visible_at"] - time.time() * 1000) / 1000
