"""The work queue and its dead-letter queue (docs/architecture.md §12)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.config import DLQ_RETENTION_DAYS, PipelineConfig


def dead_letter_queue(
    scope: Construct, construct_id: str, redrive_allow_policy: sqs.RedriveAllowPolicy | None = None
) -> sqs.Queue:
    """An encrypted, SSL-only queue that keeps messages 14 days (longer than any source queue keeps them)."""
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(DLQ_RETENTION_DAYS),
        redrive_allow_policy=redrive_allow_policy,
    )


class PipelineQueues(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: PipelineConfig) -> None:
        super().__init__(scope, construct_id)
        # The work queue has a fixed name so that its ARN is known without referencing it: the DLQ can then allow
        # exactly this source queue, where a reference would be circular (the queue's redrive policy names the DLQ).
        work_queue = sqs.Queue.from_queue_arn(
            self, "WorkQueueByName", Stack.of(self).format_arn(service="sqs", resource=config.work_queue_name)
        )
        self.dead_letter_queue = dead_letter_queue(
            self,
            "DeadLetterQueue",
            sqs.RedriveAllowPolicy(redrive_permission=sqs.RedrivePermission.BY_QUEUE, source_queues=[work_queue]),
        )
        # Deleting the stack must not delete orders that failed: the DLQ and its TLS-only policy stay behind
        # (docs/operate.md, "After deleting the stack").
        self.dead_letter_queue.apply_removal_policy(RemovalPolicy.RETAIN)
        ssl_only_policy = self.dead_letter_queue.node.find_child("Policy")
        ssl_only_policy.apply_removal_policy(RemovalPolicy.RETAIN)  # type: ignore[attr-defined]
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=config.work_queue_name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(config.visibility_timeout_seconds),
            retention_period=Duration.seconds(config.queue_retention_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=config.max_receive_count
            ),
        )
