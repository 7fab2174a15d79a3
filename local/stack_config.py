"""Queue settings for the local stack: the deployed stack's own numbers, only with time scaled down.

:meth:`stacks.config.PipelineConfig.from_cdk_json` parses ``cdk.json`` exactly as ``cdk synth`` does (same
defaults, bounds and error messages naming the key), so the local stack and the deployed one use the same
maxReceiveCount, batch size, batching window, concurrency, queue retention and 14-day DLQ retention.

Only time is scaled for the local stack: in AWS the visibility timeout is 6x the consumer's timeout (30 minutes
with the committed context), and a record that fails without the consumer resetting its visibility (a crashed
invocation) waits that long. Locally the emulated function timeout and the visibility timeout are both
:data:`LOCAL_VISIBILITY_TIMEOUT_SECONDS` (ratio 1, not 6): the 6x margin in AWS covers Lambda's own retries of
throttled invocations, which the emulator does not make, and a visibility of one function timeout still never
hands a message out twice while it is processed. The timeout stays long enough for the consumer's time reserves
(it refuses to start an image with less than ~20 s left). Failed records do not wait for it: the consumer makes
them visible again itself (at once for permanent errors).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from stacks.config import CDK_JSON, DLQ_RETENTION_DAYS, PipelineConfig

LOCAL_VISIBILITY_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class QueueSettings:
    """The queue and event-source numbers of :class:`PipelineConfig` the local stack builds and polls with."""

    consumer_timeout_seconds: int
    visibility_timeout_seconds: int
    max_receive_count: int
    batch_size: int
    max_batching_window_seconds: int
    reserved_concurrency: int
    max_concurrency: int
    queue_retention_seconds: int

    @classmethod
    def from_config(cls, config: PipelineConfig) -> QueueSettings:
        """The deployed numbers, unscaled: the visibility timeout is the stack's (6x the consumer timeout)."""
        return cls(
            consumer_timeout_seconds=config.consumer_timeout_seconds,
            visibility_timeout_seconds=config.visibility_timeout_seconds,
            max_receive_count=config.max_receive_count,
            batch_size=config.batch_size,
            max_batching_window_seconds=config.max_batching_window_seconds,
            reserved_concurrency=config.consumer_reserved_concurrency,
            max_concurrency=config.consumer_max_concurrency,
            queue_retention_seconds=config.queue_retention_seconds,
        )

    @property
    def dlq_retention_seconds(self) -> int:
        return DLQ_RETENTION_DAYS * 24 * 3600

    def scaled_for_local(self, visibility_timeout_seconds: int = LOCAL_VISIBILITY_TIMEOUT_SECONDS) -> QueueSettings:
        """The same settings with seconds instead of minutes of visibility; the function timeout matches it."""
        return replace(
            self,
            visibility_timeout_seconds=visibility_timeout_seconds,
            consumer_timeout_seconds=visibility_timeout_seconds,
        )


def load_queue_settings(path: Path = CDK_JSON) -> QueueSettings:
    """Parse ``path`` with the stack's parser; a bad value raises :class:`stacks.config.ContextError` naming its key."""
    return QueueSettings.from_config(PipelineConfig.from_cdk_json(path))


def priority_max_concurrency(path: Path = CDK_JSON) -> int | None:
    """The priority lane's event-source maximum concurrency (``priorityMaxConcurrency``); None: no lane."""
    return PipelineConfig.from_cdk_json(path).priority_max_concurrency
