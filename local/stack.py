"""The stack's storage on the local moto server: the invoice bucket, the queue and its DLQ, the priority lane's queue
and its DLQ (docs/events-and-lanes.md).

Same shape as the CDK stack (docs/architecture.md §12): the DLQ keeps messages 14 days and allows redrive from any
queue; the main queue sends a message to the DLQ after maxReceiveCount receives. Settings come from
``cdk.json`` through :mod:`local.stack_config`, usually scaled to seconds for the local stack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from local.stack_config import QueueSettings


@dataclass(frozen=True)
class LocalStack:
    bucket: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    settings: QueueSettings
    priority_queue_url: str = ""
    priority_dlq_url: str = ""


def queue_arn(sqs: Any, queue_url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def create_local_stack(
    settings: QueueSettings, *, bucket: str = "invoice-images", queue_name: str = "invoice-extraction"
) -> LocalStack:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    sqs = boto3.client("sqs")
    queue_url, dlq_url = _queue_with_dlq(sqs, queue_name, settings)
    priority_url, priority_dlq_url = _queue_with_dlq(sqs, f"{queue_name}-priority", settings)
    return LocalStack(
        bucket,
        queue_url,
        queue_arn(sqs, queue_url),
        dlq_url,
        queue_arn(sqs, dlq_url),
        settings,
        priority_queue_url=priority_url,
        priority_dlq_url=priority_dlq_url,
    )


def _queue_with_dlq(sqs: Any, queue_name: str, settings: QueueSettings) -> tuple[str, str]:
    dlq_url = sqs.create_queue(
        QueueName=f"{queue_name}-dlq",
        Attributes={
            "MessageRetentionPeriod": str(settings.dlq_retention_seconds),
            "SqsManagedSseEnabled": "true",
            "RedriveAllowPolicy": json.dumps({"redrivePermission": "allowAll"}),
        },
    )["QueueUrl"]
    dlq = queue_arn(sqs, dlq_url)
    queue_url = sqs.create_queue(
        QueueName=queue_name,
        Attributes={
            "VisibilityTimeout": str(settings.visibility_timeout_seconds),
            "MessageRetentionPeriod": str(settings.queue_retention_seconds),
            "SqsManagedSseEnabled": "true",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq, "maxReceiveCount": settings.max_receive_count}),
        },
    )["QueueUrl"]
    return queue_url, dlq_url
