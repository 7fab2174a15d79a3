"""The work queue and its dead-letter queue (docs/architecture.md §12), and the priority lane's pair
(docs/events-and-lanes.md)."""

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
        self.queue = self._work_queue("Queue", config.work_queue_name, self.dead_letter_queue, config)
        # The priority lane (docs/events-and-lanes.md): the same kind of queue with its own DLQ, so a backlog or a
        # redrive on the main lane never delays it.
        self.priority_queue: sqs.Queue | None = None
        self.priority_dead_letter_queue: sqs.Queue | None = None
        if config.priority_lane:
            priority_by_name = sqs.Queue.from_queue_arn(
                self,
                "PriorityQueueByName",
                Stack.of(self).format_arn(service="sqs", resource=config.priority_queue_name),
            )
            self.priority_dead_letter_queue = dead_letter_queue(
                self,
                "PriorityDeadLetterQueue",
                sqs.RedriveAllowPolicy(
                    redrive_permission=sqs.RedrivePermission.BY_QUEUE, source_queues=[priority_by_name]
                ),
            )
            self.priority_dead_letter_queue.apply_removal_policy(RemovalPolicy.RETAIN)
            policy = self.priority_dead_letter_queue.node.find_child("Policy")
            policy.apply_removal_policy(RemovalPolicy.RETAIN)  # type: ignore[attr-defined]
            self.priority_queue = self._work_queue(
                "PriorityQueue", config.priority_queue_name, self.priority_dead_letter_queue, config
            )

    def _work_queue(self, construct_id: str, name: str, dlq: sqs.IQueue, config: PipelineConfig) -> sqs.Queue:
        return sqs.Queue(
            self,
            construct_id,
            queue_name=name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(config.visibility_timeout_seconds),
            retention_period=Duration.seconds(config.queue_retention_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=config.max_receive_count),
        )

    @property
    def work_queues(self) -> list[sqs.Queue]:
        """Every queue the consumer reads: the main queue, then the priority lane's when there is one."""
        return [self.queue] + ([self.priority_queue] if self.priority_queue is not None else [])
