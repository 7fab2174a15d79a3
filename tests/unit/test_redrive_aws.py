"""`invoices redrive` against AWS: StartMessageMoveTask and its progress (moto lacks these calls: Stubber)."""

from __future__ import annotations

import argparse
import json

import boto3
import pytest
from botocore.stub import Stubber

from invoices_cli.ops import cmd_redrive
from invoices_cli.queues import QueueError

QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/111122223333/invoice-extraction"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:111122223333:invoice-extraction"
DLQ_URL = "https://sqs.eu-west-1.amazonaws.com/111122223333/invoice-extraction-dlq"
DLQ_ARN = "arn:aws:sqs:eu-west-1:111122223333:invoice-extraction-dlq"


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Stubber:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QUEUE_URL", QUEUE_URL)
    client = boto3.client(
        "sqs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x", endpoint_url=None
    )
    stubber = Stubber(client)
    stubber.add_response(
        "get_queue_attributes",
        {
            "Attributes": {
                "QueueArn": QUEUE_ARN,
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 5}),
            }
        },
        {"QueueUrl": QUEUE_URL, "AttributeNames": ["QueueArn", "RedrivePolicy"]},
    )
    stubber.add_response(
        "get_queue_url",
        {"QueueUrl": DLQ_URL},
        {"QueueName": "invoice-extraction-dlq", "QueueOwnerAWSAccountId": "111122223333"},
    )
    return stubber


def args(**values: object) -> argparse.Namespace:
    return argparse.Namespace(**{"rate": None, "no_wait": False, "poll_seconds": 0.0, **values})


def task(status: str, moved: int, **extra: object) -> dict[str, object]:
    return {
        "Results": [
            {
                "Status": status,
                "SourceArn": DLQ_ARN,
                "ApproximateNumberOfMessagesMoved": moved,
                "ApproximateNumberOfMessagesToMove": 40,
                **extra,
            }
        ]
    }


def test_redrive_starts_a_move_task_and_follows_it_to_completion(
    sqs: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs.add_response("list_message_move_tasks", {"Results": []}, {"SourceArn": DLQ_ARN, "MaxResults": 1})
    sqs.add_response(
        "start_message_move_task",
        {"TaskHandle": "handle-1"},
        {"SourceArn": DLQ_ARN, "DestinationArn": QUEUE_ARN, "MaxNumberOfMessagesPerSecond": 50},
    )
    sqs.add_response("list_message_move_tasks", task("RUNNING", 10), {"SourceArn": DLQ_ARN, "MaxResults": 1})
    sqs.add_response("list_message_move_tasks", task("COMPLETED", 40), {"SourceArn": DLQ_ARN, "MaxResults": 1})
    sleeps: list[float] = []

    with sqs:
        code = cmd_redrive(args(rate=50, poll_seconds=2.0), sqs=sqs.client, sleep=sleeps.append)

    out = capsys.readouterr().out
    assert code == 0
    assert "started message move task handle-1" in out
    assert "RUNNING: 10/40 moved" in out and "redrive completed: 40 message(s) moved" in out
    assert sleeps == [2.0]
    sqs.assert_no_pending_responses()


def test_redrive_refuses_when_a_task_is_already_running(sqs: Stubber) -> None:
    sqs.add_response("list_message_move_tasks", task("RUNNING", 3), {"SourceArn": DLQ_ARN, "MaxResults": 1})

    with sqs, pytest.raises(QueueError, match="already RUNNING"):
        cmd_redrive(args(), sqs=sqs.client, sleep=lambda _: None)


def test_a_failed_move_task_exits_1_with_its_reason(sqs: Stubber, capsys: pytest.CaptureFixture[str]) -> None:
    sqs.add_response("list_message_move_tasks", task("COMPLETED", 5), {"SourceArn": DLQ_ARN, "MaxResults": 1})
    sqs.add_response(
        "start_message_move_task", {"TaskHandle": "h"}, {"SourceArn": DLQ_ARN, "DestinationArn": QUEUE_ARN}
    )
    sqs.add_response(
        "list_message_move_tasks",
        task("FAILED", 2, FailureReason="AccessDenied"),
        {"SourceArn": DLQ_ARN, "MaxResults": 1},
    )

    with sqs:
        code = cmd_redrive(args(), sqs=sqs.client, sleep=lambda _: None)

    assert code == 1 and "redrive ended FAILED: AccessDenied" in capsys.readouterr().err


def test_a_rate_above_the_sqs_limit_is_a_usage_error(sqs: Stubber) -> None:
    from invoice_pipeline.settings import ConfigError

    with pytest.raises(ConfigError, match="--rate"):
        cmd_redrive(args(rate=501), sqs=sqs.client)
