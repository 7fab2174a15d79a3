"""The stack's completion events and priority lane: the bus grant, the second queue and its DLQ, the second event
source mapping of the same consumer, their alarms, and the context rules that keep both lanes within the reserve."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stacks.config import ContextError, PipelineConfig
from tests.infrastructure.conftest import Synthesized, example_context, synthesize
from tests.infrastructure.test_stack import as_list, environment, function, queue_keys, role_policy_statements

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def lanes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    yield synthesize(tmp_path_factory.mktemp("cdk-lanes"), eventBusName="orders-bus")


def priority_keys(example: Synthesized) -> tuple[str, str]:
    (queue,) = [
        key
        for key, q in example.of_type("AWS::SQS::Queue").items()
        if str(q["Properties"].get("QueueName", "")).endswith("-priority")
    ]
    dlq = example.resources[queue]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    return queue, dlq


def mappings(example: Synthesized) -> dict[str, dict[str, Any]]:
    """Event source mappings by the logical id of the queue they read."""
    return {
        m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]: m["Properties"]
        for m in example.of_type("AWS::Lambda::EventSourceMapping").values()
    }


def test_the_functions_may_put_events_on_the_configured_bus_only(lanes: Synthesized) -> None:
    for handler in ("producer.handler", "consumer.handler"):
        puts = [s for s in role_policy_statements(lanes, handler) if "events:PutEvents" in as_list(s["Action"])]
        assert len(puts) == 1, handler
        assert as_list(puts[0]["Action"]) == ["events:PutEvents"]
        (resource,) = as_list(puts[0]["Resource"])
        assert resource["Fn::Join"][1][-1].endswith(":event-bus/orders-bus"), resource
        assert environment(lanes, handler)["EVENT_BUS_NAME"] == "orders-bus"
        assert environment(lanes, handler)["OUTBOX_RETRY_SECONDS"] == "60"
    assert not [
        s for s in role_policy_statements(lanes, "migrate.handler") if "events:PutEvents" in as_list(s["Action"])
    ]


def test_the_priority_lane_is_a_second_queue_with_its_own_dlq_like_the_main_one(lanes: Synthesized) -> None:
    main, main_dlq = queue_keys(lanes)
    queue, dlq = priority_keys(lanes)
    assert dlq != main_dlq
    properties = lanes.resources[queue]["Properties"]
    for name in ("VisibilityTimeout", "MessageRetentionPeriod", "SqsManagedSseEnabled"):
        assert properties[name] == lanes.resources[main]["Properties"][name], name
    assert (
        properties["RedrivePolicy"]["maxReceiveCount"]
        == lanes.resources[main]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    )
    dlq_properties = lanes.resources[dlq]["Properties"]
    assert dlq_properties["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert dlq_properties["RedriveAllowPolicy"]["redrivePermission"] == "byQueue"
    assert "-priority" in str(dlq_properties["RedriveAllowPolicy"]["sourceQueueArns"])
    assert lanes.resources[dlq]["DeletionPolicy"] == "Retain"
    assert environment(lanes, "producer.handler")["PRIORITY_QUEUE_URL"] == {"Ref": queue}
    assert environment(lanes, "producer.handler")["PRIORITY_WINDOW_MINUTES"] == "60"
    assert "PRIORITY_QUEUE_URL" not in environment(lanes, "consumer.handler")


def test_the_same_consumer_reads_both_lanes_through_two_mappings_within_its_reserved_concurrency(
    lanes: Synthesized,
) -> None:
    main, _ = queue_keys(lanes)
    queue, _ = priority_keys(lanes)
    by_queue = mappings(lanes)
    assert set(by_queue) == {main, queue}
    consumer_key, consumer = function(lanes, "consumer.handler")
    reserved = consumer["Properties"]["ReservedConcurrentExecutions"]
    for mapping in by_queue.values():
        assert mapping["FunctionName"] == {"Ref": consumer_key}
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert by_queue[queue]["ScalingConfig"]["MaximumConcurrency"] == lanes.context["priorityMaxConcurrency"]
    assert by_queue[queue]["BatchSize"] == 1 and "MaximumBatchingWindowInSeconds" not in by_queue[queue]
    assert sum(m["ScalingConfig"]["MaximumConcurrency"] for m in by_queue.values()) <= reserved


def test_the_producer_sends_to_both_lanes_and_the_consumer_consumes_and_hands_back_on_both(lanes: Synthesized) -> None:
    queue, dlq = priority_keys(lanes)
    arn, dlq_arn = {"Fn::GetAtt": [queue, "Arn"]}, {"Fn::GetAtt": [dlq, "Arn"]}

    def actions(handler: str, resource: Any) -> set[str]:
        return {
            action
            for s in role_policy_statements(lanes, handler)
            if resource in as_list(s["Resource"])
            for action in as_list(s["Action"])
        }

    assert "sqs:SendMessage" in actions("producer.handler", arn)
    assert "sqs:ReceiveMessage" not in actions("producer.handler", arn)
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:SendMessage"} <= actions("consumer.handler", arn)
    assert not actions("consumer.handler", dlq_arn) and not actions("producer.handler", dlq_arn)


def test_alarms_watch_the_priority_lanes_dlq_and_age_and_the_migration_runs_before_its_mapping(
    lanes: Synthesized,
) -> None:
    queue, dlq = priority_keys(lanes)
    alarms = {a["Properties"]["AlarmName"]: a["Properties"] for a in lanes.of_type("AWS::CloudWatch::Alarm").values()}
    stack = lanes.context["stackName"]
    not_empty = alarms[f"{stack}-PriorityDeadLetterQueueNotEmpty"]
    assert not_empty["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert not_empty["Dimensions"][0]["Value"]["Fn::GetAtt"][0] == dlq
    too_old = alarms[f"{stack}-PriorityOldestMessageTooOld"]
    assert too_old["MetricName"] == "ApproximateAgeOfOldestMessage" and too_old["Threshold"] <= 300
    assert too_old["Dimensions"][0]["Value"]["Fn::GetAtt"][0] == queue
    (trigger,) = lanes.of_type("Custom::Trigger")
    priority_mapping = next(
        key
        for key, m in lanes.of_type("AWS::Lambda::EventSourceMapping").items()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue, "Arn"]}
    )
    assert trigger in lanes.resources[priority_mapping]["DependsOn"]  # it starts only once migrations ran
    outputs = lanes.template_json["Outputs"]
    assert outputs["PriorityQueueUrl"]["Value"] == {"Ref": queue}
    assert outputs["PriorityDeadLetterQueueUrl"]["Value"] == {"Ref": dlq}


def test_without_priority_max_concurrency_there_is_no_lane(tmp_path_factory: pytest.TempPathFactory) -> None:
    example = synthesize(tmp_path_factory.mktemp("cdk-no-lane"), priorityMaxConcurrency=0, consumerMaxConcurrency=None)
    assert len(example.of_type("AWS::Lambda::EventSourceMapping")) == 1
    assert "PRIORITY_QUEUE_URL" not in environment(example, "producer.handler")
    assert not [q for q in example.of_type("AWS::SQS::Queue").values() if "-priority" in str(q["Properties"])]
    (mapping,) = example.of_type("AWS::Lambda::EventSourceMapping").values()
    reserved = function(example, "consumer.handler")[1]["Properties"]["ReservedConcurrentExecutions"]
    assert mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"] == reserved  # the whole reserve again


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"consumerReservedConcurrency": 10, "consumerMaxConcurrency": 9, "priorityMaxConcurrency": 2}, "must be <="),
        ({"priorityMaxConcurrency": 1}, "priorityMaxConcurrency"),
        ({"consumerReservedConcurrency": 4, "consumerMaxConcurrency": None, "priorityMaxConcurrency": 3}, "<="),
        ({"eventBusName": "no spaces allowed"}, "eventBusName"),
        ({"outboxRetrySeconds": 0}, "outboxRetrySeconds"),
    ],
)
def test_lane_and_event_settings_are_checked_at_synth(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ContextError, match=message):
        PipelineConfig.from_mapping({**example_context(), **overrides})
