"""Queue settings for the local stack, read from the CDK app's context in ``cdk.json`` (one source of truth).

The deployed stack and the local demo use the same maxReceiveCount, batch size, batching window and
concurrency. Only time is scaled for the local stack: in AWS the visibility timeout is 6x the consumer's
timeout (12 minutes with the example context), and a record that fails without the consumer resetting its
visibility (a crashed invocation) waits that long. Locally the emulated function timeout and the visibility
timeout are both :data:`LOCAL_VISIBILITY_TIMEOUT_SECONDS` (ratio 1, not 6): the 6x margin in AWS covers
Lambda's own retries of throttled invocations, which the emulator does not make, and a visibility of one
function timeout still never hands a message out twice while it is processed. The timeout stays long enough
for the consumer's time reserves (it refuses to start an image with less than ~20 s left). Failed records do
not wait for it: the consumer makes them visible again itself (at once for permanent errors).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"
VISIBILITY_TO_TIMEOUT_RATIO = 6  # AWS guidance for SQS-triggered functions (FIELD_NOTES, DESIGN §7)
LOCAL_VISIBILITY_TIMEOUT_SECONDS = 60
MAIN_QUEUE_RETENTION_SECONDS = 4 * 24 * 3600

# cdk.json context key -> (QueueSettings field, default when the key is absent)
CONTEXT_KEYS: dict[str, tuple[str, int]] = {
    "consumerTimeoutSeconds": ("consumer_timeout_seconds", 120),
    "maxReceiveCount": ("max_receive_count", 5),
    "batchSize": ("batch_size", 5),
    "maxBatchingWindowSeconds": ("max_batching_window_seconds", 0),
    "consumerReservedConcurrency": ("reserved_concurrency", 10),
    "consumerMaxConcurrency": ("max_concurrency", 10),
    "dlqRetentionDays": ("dlq_retention_days", 14),
}


class StackConfigError(ValueError):
    """cdk.json is missing, not JSON, or holds a value that is not a positive integer."""


@dataclass(frozen=True)
class QueueSettings:
    consumer_timeout_seconds: int
    max_receive_count: int
    batch_size: int
    max_batching_window_seconds: int
    reserved_concurrency: int
    max_concurrency: int
    dlq_retention_days: int
    visibility_timeout_seconds: int = 0  # derived: 6x the consumer timeout unless scaled for the local stack

    def __post_init__(self) -> None:
        if self.visibility_timeout_seconds == 0:
            object.__setattr__(
                self, "visibility_timeout_seconds", VISIBILITY_TO_TIMEOUT_RATIO * self.consumer_timeout_seconds
            )

    @property
    def dlq_retention_seconds(self) -> int:
        return self.dlq_retention_days * 24 * 3600

    def scaled_for_local(self, visibility_timeout_seconds: int = LOCAL_VISIBILITY_TIMEOUT_SECONDS) -> QueueSettings:
        """The same settings with seconds instead of minutes of visibility; the function timeout matches it."""
        return replace(
            self,
            visibility_timeout_seconds=visibility_timeout_seconds,
            consumer_timeout_seconds=visibility_timeout_seconds,
        )


def load_queue_settings(path: Path = CDK_JSON) -> QueueSettings:
    try:
        context: dict[str, Any] = json.loads(path.read_text())["context"]
    except FileNotFoundError:
        raise StackConfigError(f"{path} not found") from None
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise StackConfigError(f"{path} has no valid JSON 'context': {error}") from None
    values: dict[str, int] = {}
    for key, (field, default) in CONTEXT_KEYS.items():
        raw = context.get(key, default)
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < (0 if key == "maxBatchingWindowSeconds" else 1):
            raise StackConfigError(f"cdk.json context {key} must be a positive integer, got {raw!r}")
        values[field] = raw
    settings = QueueSettings(**values)
    if settings.max_concurrency > settings.reserved_concurrency:
        raise StackConfigError(
            "cdk.json context consumerMaxConcurrency must not exceed consumerReservedConcurrency "
            f"({settings.max_concurrency} > {settings.reserved_concurrency})"
        )
    return settings
