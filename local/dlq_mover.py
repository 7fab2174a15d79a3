"""Move messages from a DLQ back to its source queue on the local stack (moto has no StartMessageMoveTask).

Receive, send (body and message attributes), delete only what was sent: a message is never lost, at worst
sent twice (the pipeline is idempotent per order and model). ``rate`` bounds messages per second, like
``MaxNumberOfMessagesPerSecond`` of the AWS redrive.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

BATCH = 10


def move_messages(
    sqs: Any,
    source_url: str,
    destination_url: str,
    *,
    rate: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Move every message now in ``source_url`` to ``destination_url``; returns how many were moved."""
    moved = 0
    started = time.monotonic()
    while True:
        messages = sqs.receive_message(
            QueueUrl=source_url,
            MaxNumberOfMessages=min(BATCH, rate) if rate else BATCH,
            WaitTimeSeconds=0,
            VisibilityTimeout=60,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return moved
        entries = [
            {
                "Id": str(n),
                "MessageBody": message["Body"],
                **({"MessageAttributes": message["MessageAttributes"]} if message.get("MessageAttributes") else {}),
            }
            for n, message in enumerate(messages)
        ]
        response = sqs.send_message_batch(QueueUrl=destination_url, Entries=entries)
        sent = [messages[int(entry["Id"])] for entry in response.get("Successful", [])]
        if sent:
            sqs.delete_message_batch(
                QueueUrl=source_url,
                Entries=[{"Id": str(n), "ReceiptHandle": message["ReceiptHandle"]} for n, message in enumerate(sent)],
            )
        if response.get("Failed"):
            failures = "; ".join(f"{entry.get('Code')}: {entry.get('Message')}" for entry in response["Failed"])
            raise RuntimeError(f"could not send {len(response['Failed'])} message(s) back: {failures}")
        moved += len(sent)
        if on_progress is not None:
            on_progress(moved)
        if rate:
            # Stay at or under `rate` messages per second over the whole move.
            ahead = moved / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
