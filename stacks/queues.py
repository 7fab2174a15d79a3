"""The work queue and its dead-letter queue (DESIGN §7)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.config import DLQ_RETENTION_DAYS, PipelineConfig


def dead_letter_queue(scope: Construct, construct_id: str) -> sqs.Queue:
    """An encrypted, SSL-only queue that keeps messages 14 days (longer than any source queue keeps them)."""
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(DLQ_RETENTION_DAYS),
    )


class PipelineQueues(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: PipelineConfig) -> None:
        super().__init__(scope, construct_id)
        # The DLQ's redrive allow policy stays at its default (allow all): restricting it to the source
        # queue's ARN makes a circular dependency, and console redrive needs the source queue allowed.
        self.dead_letter_queue = dead_letter_queue(self, "DeadLetterQueue")
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(config.visibility_timeout_seconds),
            retention_period=Duration.seconds(config.queue_retention_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=config.max_receive_count
            ),
        )
