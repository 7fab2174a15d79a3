"""What receives the pipeline's completion events locally: an EventBridge rule on the moto server whose target is an
SQS queue, the same shape as the SQS example in docs/events-and-lanes.md. The demo counts what arrived there; the
tests read each event back."""

from __future__ import annotations

import json
from typing import Any

import boto3

RULE_NAME = "invoice-pipeline-completions"


def create_event_sink(queue_name: str = "invoice-events", *, bus_name: str = "default") -> str:
    """A queue receiving every event of source ``invoice-pipeline`` on ``bus_name``; returns its URL."""
    # Imported here: the domain's logger reads its level when first imported, after the local stack set it.
    from invoice_pipeline.tables.events import EVENT_SOURCE

    sqs = boto3.client("sqs")
    events = boto3.client("events")
    queue_url: str = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name=f"{RULE_NAME}-{queue_name}",
        EventBusName=bus_name,
        EventPattern=json.dumps({"source": [EVENT_SOURCE]}),
        State="ENABLED",
    )
    events.put_targets(Rule=f"{RULE_NAME}-{queue_name}", EventBusName=bus_name, Targets=[{"Id": "sink", "Arn": arn}])
    return queue_url


def drain_events(queue_url: str) -> list[dict[str, Any]]:
    """Every event that reached the sink since the last call (received and deleted), as EventBridge delivers it."""
    sqs = boto3.client("sqs")
    received: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600).get(
            "Messages", []
        )
        if not messages:
            return received
        received.extend(json.loads(message["Body"]) for message in messages)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
