"""A handler for `invoices consume` tests: succeeds for every record and records the bodies in toy_sink."""

from __future__ import annotations

from typing import Any

from tests.integration import toy_sink


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    toy_sink.COPIES.add(id(handler))  # each emulated container loads its own copy of this module
    toy_sink.BODIES.extend(record["body"] for record in event["Records"])
    return {"batchItemFailures": []}
