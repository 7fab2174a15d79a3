"""Queues on moto for the tests that drive SQS themselves (the local stack's queues are ``local.stack``)."""

from __future__ import annotations

import json

import boto3


def create_queue_with_dlq(name: str, *, visibility_seconds: int, max_receive_count: int) -> tuple[str, str]:
    """Queue ``name`` whose messages move to ``{name}-dlq`` after ``max_receive_count`` receives: both URLs."""
    sqs = boto3.client("sqs")
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_seconds),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}),
        },
    )["QueueUrl"]
    return queue_url, dlq_url
