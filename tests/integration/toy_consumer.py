"""A handler for `invoices consume` tests: succeeds for every record and remembers the bodies."""

from __future__ import annotations

from typing import Any

BODIES: list[str] = []


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    BODIES.extend(record["body"] for record in event["Records"])
    return {"batchItemFailures": []}
