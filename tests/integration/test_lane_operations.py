"""The operator commands cover both lanes when PRIORITY_QUEUE_URL is set: status, redrive, pause and resume."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from local.controls import read_controls
from tests.integration.cli import run_cli


@pytest.fixture
def lanes(stack: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("PRIORITY_QUEUE_URL", stack.priority_queue_url)
    return stack


def depth(queue_url: str) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_status_shows_both_lanes_and_their_dlqs(lanes: Any, database: str, capsys: pytest.CaptureFixture[str]) -> None:
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=lanes.queue_url, MessageBody=json.dumps({"order_id": 1}))
    for order_id in (2, 3):
        sqs.send_message(QueueUrl=lanes.priority_queue_url, MessageBody=json.dumps({"order_id": order_id}))
    sqs.send_message(QueueUrl=lanes.priority_dlq_url, MessageBody=json.dumps({"order_id": 4}))

    code, out = run_cli(capsys, "status", "--json")

    status = json.loads(out)
    assert code == 0
    assert status["queue"]["visible"] == 1 and status["dlq"]["visible"] == 0
    assert status["priority_queue"]["visible"] == 2 and status["priority_queue"]["url"] == lanes.priority_queue_url
    assert status["priority_dlq"]["visible"] == 1 and status["priority_dlq"]["url"] == lanes.priority_dlq_url
    code, table = run_cli(capsys, "status")
    assert "priority queue: 2 visible" in table and "priority dlq: 1 visible" in table


def test_redrive_moves_each_dlq_back_to_its_own_lane(lanes: Any, capsys: pytest.CaptureFixture[str]) -> None:
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=lanes.dlq_url, MessageBody=json.dumps({"order_id": 1}))
    for order_id in (2, 3):
        sqs.send_message(QueueUrl=lanes.priority_dlq_url, MessageBody=json.dumps({"order_id": order_id}))

    code, out = run_cli(capsys, "redrive", "--lane", "priority")
    assert code == 0 and "moved 2 message(s)" in out
    assert (depth(lanes.priority_queue_url), depth(lanes.dlq_url)) == (2, 1)

    code, out = run_cli(capsys, "redrive")  # both lanes
    assert code == 0 and "main lane:" in out and "moved 1 message(s)" in out
    assert (depth(lanes.queue_url), depth(lanes.dlq_url), depth(lanes.priority_dlq_url)) == (1, 0, 0)


def test_redrive_of_the_priority_lane_without_one_is_a_usage_error(stack: Any, capsys: pytest.CaptureFixture[str]):
    code, _ = run_cli(capsys, "redrive", "--lane", "priority")
    assert code == 2


def test_pause_and_resume_switch_both_lanes_event_sources(lanes: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "pause")
    assert code == 0 and lanes.priority_queue_url in out
    assert read_controls(lanes.queue_url).paused and read_controls(lanes.priority_queue_url).paused

    code, _ = run_cli(capsys, "resume")
    assert code == 0
    assert not read_controls(lanes.queue_url).paused and not read_controls(lanes.priority_queue_url).paused


def test_pause_on_aws_disables_the_mappings_of_both_lanes(lanes: Any) -> None:
    from botocore.stub import Stubber

    from invoices_cli import controls

    sqs = boto3.client("sqs")
    lambda_client = boto3.client("lambda", region_name="us-east-1")
    function = "arn:aws:lambda:us-east-1:123456789012:function:consumer"
    arns = [
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for url in (lanes.queue_url, lanes.priority_queue_url)
    ]
    uuids = ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"]
    with Stubber(lambda_client) as stub:
        for arn, uuid in zip(arns, uuids, strict=True):
            found = {"EventSourceMappings": [{"UUID": uuid, "FunctionArn": function, "State": "Enabled"}]}
            stub.add_response("list_event_source_mappings", found, {"EventSourceArn": arn})
        for uuid in uuids:
            stub.add_response(
                "update_event_source_mapping", {"UUID": uuid, "State": "Disabling"}, {"UUID": uuid, "Enabled": False}
            )
        lines = controls.set_paused(True, sqs=sqs, lambda_client=lambda_client, local=False)
        stub.assert_no_pending_responses()
    assert [line for line in lines if line.startswith("event source")] == [
        f"event source {uuid} -> {function}: disabled" for uuid in uuids
    ]
