"""Builders for Lambda events, starting from the real-shaped samples in this folder."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).parent
WORK_QUEUE = "invoice-jobs"  # the queue the records of sqs_event.json come from
SYNTHETIC_RECEIPT_HANDLE = "handle-"  # how a receipt handle no queue issued starts


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def sqs_record(
    body: str | dict[str, Any],
    *,
    message_id: str | None = None,
    receive_count: int = 1,
    queue_arn: str | None = None,
    receipt_handle: str | None = None,
) -> dict[str, Any]:
    """One SQS record like the event source mapping delivers; ``body`` dicts are JSON-encoded."""
    record: dict[str, Any] = copy.deepcopy(load_event("sqs_event.json")["Records"][0])
    record["body"] = body if isinstance(body, str) else json.dumps(body)
    record["messageId"] = message_id or str(uuid.uuid4())
    record["receiptHandle"] = receipt_handle or f"{SYNTHETIC_RECEIPT_HANDLE}{uuid.uuid4()}"
    record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    if queue_arn:
        record["eventSourceARN"] = queue_arn
    return record


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}
