"""The stack synthesized from the committed cdk.json: every property docs/architecture.md §12 promises."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match

from invoice_pipeline import settings
from stacks import config as stack_config
from stacks.monitoring import CUSTOM_METRICS, MODEL_METRICS
from tests.infrastructure.conftest import ROOT, Synthesized, cfn_lint

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def function(example: Synthesized, handler: str) -> tuple[str, dict[str, Any]]:
    matches = [
        (key, resource)
        for key, resource in example.of_type("AWS::Lambda::Function").items()
        if resource["Properties"].get("Handler") == handler
    ]
    assert len(matches) == 1, f"expected one function with handler {handler}"
    return matches[0]


def environment(example: Synthesized, handler: str) -> dict[str, Any]:
    return function(example, handler)[1]["Properties"]["Environment"]["Variables"]


def queue_keys(example: Synthesized) -> tuple[str, str]:
    """(main queue, its dead-letter queue) logical ids; the priority lane's pair: test_lanes.py."""
    mains = [
        key
        for key, q in example.of_type("AWS::SQS::Queue").items()
        if "RedrivePolicy" in q["Properties"] and str(q["Properties"].get("QueueName", "")).endswith("-work")
    ]
    assert len(mains) == 1
    main = mains[0]
    dlq = example.resources[main]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    return main, dlq


def statements(example: Synthesized) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for key, policy in example.of_type("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            found.append((key, statement))
    for key, role in example.of_type("AWS::IAM::Role").items():
        for inline in role["Properties"].get("Policies", []):
            for statement in inline["PolicyDocument"]["Statement"]:
                found.append((key, statement))
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_policy_statements(example: Synthesized, handler: str) -> list[dict[str, Any]]:
    role = function(example, handler)[1]["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for key, statement in statements(example)
        if key in example.of_type("AWS::IAM::Policy") and {"Ref": role} in example.resources[key]["Properties"]["Roles"]
    ]


# --- queues -------------------------------------------------------------------------------------------


def test_every_queue_is_encrypted_and_refuses_plain_http(example: Synthesized) -> None:
    queues = example.of_type("AWS::SQS::Queue")
    assert len(queues) == 5  # work queue, its DLQ, the priority lane's queue and DLQ, the schedule's DLQ
    for queue in queues.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    for key in queues:
        example.template.has_resource_properties(
            "AWS::SQS::QueuePolicy",
            {
                "Queues": [{"Ref": key}],
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                    )
                },
            },
        )


def test_work_queue_redrives_to_a_dlq_that_keeps_messages_14_days(example: Synthesized) -> None:
    main, dlq = queue_keys(example)
    properties = example.resources[main]["Properties"]
    assert properties["RedrivePolicy"]["maxReceiveCount"] == example.context["maxReceiveCount"] >= 5
    assert example.resources[dlq]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert properties["MessageRetentionPeriod"] < 14 * 24 * 3600


def test_the_dlq_accepts_only_the_work_queue_as_its_source(example: Synthesized) -> None:
    main, dlq = queue_keys(example)
    name = example.resources[main]["Properties"]["QueueName"]
    assert name == f"{example.context['stackName']}-work"
    allow = example.resources[dlq]["Properties"]["RedriveAllowPolicy"]
    assert allow["redrivePermission"] == "byQueue"
    (source,) = allow["sourceQueueArns"]
    # The work queue's ARN, built from its name: a reference to the queue itself would be circular.
    assert source == {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":sqs:", {"Ref": "AWS::Region"}, ":",
                                        {"Ref": "AWS::AccountId"}, f":{name}"]]}  # fmt: skip


def test_the_dlq_and_its_tls_only_policy_survive_a_stack_deletion(example: Synthesized) -> None:
    main, dlq = queue_keys(example)
    assert example.resources[dlq]["DeletionPolicy"] == example.resources[dlq]["UpdateReplacePolicy"] == "Retain"
    (policy,) = [
        p for p in example.of_type("AWS::SQS::QueuePolicy").values() if p["Properties"]["Queues"] == [{"Ref": dlq}]
    ]
    assert policy["DeletionPolicy"] == "Retain"
    assert example.resources[main].get("DeletionPolicy") == "Delete"  # the work queue holds nothing that is lost


def test_visibility_timeout_is_at_least_six_times_the_consumer_timeout(example: Synthesized) -> None:
    main, _ = queue_keys(example)
    visibility = example.resources[main]["Properties"]["VisibilityTimeout"]
    timeout = function(example, "consumer.handler")[1]["Properties"]["Timeout"]
    assert visibility / timeout >= 6


# --- functions ----------------------------------------------------------------------------------------


def test_three_functions_share_one_code_asset_one_layer_arm64_and_python_3_14(example: Synthesized) -> None:
    ours = [
        function(example, handler)[1]["Properties"]
        for handler in ("producer.handler", "consumer.handler", "migrate.handler")
    ]
    assert {p["Runtime"] for p in ours} == {"python3.14"}
    assert all(p["Architectures"] == ["arm64"] for p in ours)
    assert all(p["TracingConfig"] == {"Mode": "Active"} for p in ours)
    assert len({p["Code"]["S3Key"] for p in ours}) == 1
    layers = {str(p["Layers"]) for p in ours}
    assert len(layers) == 1
    example.template.resource_count_is("AWS::Lambda::LayerVersion", 1)
    example.template.has_resource_properties(
        "AWS::Lambda::LayerVersion",
        {"CompatibleArchitectures": ["arm64"], "CompatibleRuntimes": ["python3.14"]},
    )


def test_each_function_logs_to_its_own_log_group_with_retention(example: Synthesized) -> None:
    groups = example.of_type("AWS::Logs::LogGroup")
    for handler in ("producer.handler", "consumer.handler", "migrate.handler"):
        group = function(example, handler)[1]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert groups[group]["Properties"]["RetentionInDays"] == example.context["logRetentionDays"]


def test_functions_carry_the_powertools_environment(example: Synthesized) -> None:
    for handler in ("producer.handler", "consumer.handler", "migrate.handler"):
        env = environment(example, handler)
        assert env["POWERTOOLS_SERVICE_NAME"] == settings.SERVICE_NAME
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == settings.METRICS_NAMESPACE
        assert env["LOG_LEVEL"] == example.context["logLevel"]


def test_stack_names_match_the_functions_settings() -> None:
    assert stack_config.SERVICE_NAME == settings.SERVICE_NAME
    assert stack_config.METRICS_NAMESPACE == settings.METRICS_NAMESPACE
    assert stack_config.DEFAULT_MAX_IMAGE_BYTES == settings.DEFAULT_MAX_IMAGE_BYTES


def _loadable(env: dict[str, Any]) -> dict[str, str]:
    """Template values as a function would see them (references become placeholder strings)."""
    return {name: value if isinstance(value, str) else f"resolved-{name.lower()}" for name, value in env.items()}


def test_each_function_environment_loads_with_the_functions_own_settings(example: Synthesized) -> None:
    producer = settings.producer_settings_from(_loadable(environment(example, "producer.handler")))
    consumer = settings.consumer_settings_from(_loadable(environment(example, "consumer.handler")))
    database = settings.parse_database(_loadable(environment(example, "migrate.handler")))

    assert producer.restaurant_ids == tuple(int(i) for i in example.context["restaurantIds"])
    assert producer.llm_models == consumer.llm_models == tuple(example.context["llmModels"])
    assert consumer.allowed_buckets == frozenset(example.context["allowedBuckets"])
    assert consumer.provider("openai").secret_arn is not None
    for loaded in (producer.database, consumer.database, database):
        assert loaded.db_secret_arn == example.context["dbSecretArn"]
        assert loaded.sslmode == "verify-full"
    assert "OPENAI_SECRET_ARN" not in environment(example, "producer.handler")
    assert "QUEUE_URL" not in environment(example, "consumer.handler")


def test_producer_targets_the_work_queue_and_its_lease_is_the_queue_retention(example: Synthesized) -> None:
    main, _ = queue_keys(example)
    env = environment(example, "producer.handler")
    assert env["QUEUE_URL"] == {"Ref": main}
    assert int(env["REQUEUE_LEASE_SECONDS"]) == example.resources[main]["Properties"]["MessageRetentionPeriod"]


def test_consumer_max_receive_count_matches_the_queue(example: Synthesized) -> None:
    main, _ = queue_keys(example)
    env = environment(example, "consumer.handler")
    assert int(env["MAX_RECEIVE_COUNT"]) == example.resources[main]["Properties"]["RedrivePolicy"]["maxReceiveCount"]


def test_processing_lease_outlasts_an_invocation_but_not_the_visibility_timeout(example: Synthesized) -> None:
    main, _ = queue_keys(example)
    lease = int(environment(example, "consumer.handler")["PROCESSING_LEASE_SECONDS"])
    timeout = function(example, "consumer.handler")[1]["Properties"]["Timeout"]
    assert timeout < lease < example.resources[main]["Properties"]["VisibilityTimeout"]


def test_consumer_event_source_reports_item_failures_within_reserved_concurrency(example: Synthesized) -> None:
    main, _ = queue_keys(example)
    key, consumer = function(example, "consumer.handler")
    reserved = consumer["Properties"]["ReservedConcurrentExecutions"]
    assert reserved == example.context["consumerReservedConcurrency"]
    mappings = [  # the main queue's; the priority lane's is in test_lanes.py
        m["Properties"]
        for m in example.of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [main, "Arn"]}
    ]
    assert len(mappings) == 1
    mapping = mappings[0]
    assert mapping["FunctionName"] == {"Ref": key}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 2 <= mapping["ScalingConfig"]["MaximumConcurrency"] <= reserved
    assert mapping["BatchSize"] == example.context["batchSize"]
    assert mapping["MaximumBatchingWindowInSeconds"] == example.context["maxBatchingWindowSeconds"]


# --- schedule and migrations --------------------------------------------------------------------------


def test_schedule_invokes_the_producer_with_retries_and_its_own_dlq(example: Synthesized) -> None:
    producer, _ = function(example, "producer.handler")
    dlq = Capture()
    example.template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "ScheduleExpression": example.context["scheduleExpression"],
            "Target": {
                "Arn": {"Fn::GetAtt": [producer, "Arn"]},
                "RetryPolicy": {"MaximumRetryAttempts": Match.any_value(), "MaximumEventAgeInSeconds": 3600},
                "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [dlq, "Arn"]}},
            },
        },
    )
    _, work_dlq = queue_keys(example)
    assert dlq.as_string() not in (work_dlq, *queue_keys(example))
    assert example.resources[dlq.as_string()]["Properties"]["SqsManagedSseEnabled"] is True


def test_the_placeholder_key_deploys_the_schedule_paused(example: Synthesized) -> None:
    assert example.context["openaiSecretArn"] is None and example.context["scheduleEnabled"] is None
    example.template.resource_count_is("AWS::SecretsManager::Secret", 1)
    example.template.has_resource_properties("AWS::Scheduler::Schedule", {"State": "DISABLED"})


def test_the_scheduler_role_may_invoke_exactly_the_producer(example: Synthesized) -> None:
    producer, _ = function(example, "producer.handler")
    schedule = next(iter(example.of_type("AWS::Scheduler::Schedule").values()))
    role = schedule["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0]
    invoke = [
        statement
        for key, statement in statements(example)
        if {"Ref": role} in example.resources[key]["Properties"].get("Roles", [])
        and "lambda:InvokeFunction" in as_list(statement["Action"])
    ]
    assert [s["Resource"] for s in invoke] == [{"Fn::GetAtt": [producer, "Arn"]}]  # no `producer:*`


def test_migrations_run_on_deploy_before_the_functions_code_is_updated(example: Synthesized) -> None:
    triggers = example.of_type("Custom::Trigger")
    assert len(triggers) == 1
    trigger_key, trigger = next(iter(triggers.items()))
    migrate, _ = function(example, "migrate.handler")
    version = trigger["Properties"]["HandlerArn"]["Ref"]
    assert example.resources[version]["Properties"]["FunctionName"] == {"Ref": migrate}
    waiting = {function(example, "producer.handler")[0], function(example, "consumer.handler")[0]}
    waiting |= set(example.of_type("AWS::Scheduler::Schedule")) | set(
        example.of_type("AWS::Lambda::EventSourceMapping")
    )
    for key in waiting:
        assert trigger_key in example.resources[key]["DependsOn"], f"{key} must wait for migrations"
    assert not waiting & set(trigger.get("DependsOn", []))


def test_the_migration_triggers_provider_function_logs_with_retention(example: Synthesized) -> None:
    trigger = next(iter(example.of_type("Custom::Trigger").values()))
    provider = example.resources[trigger["Properties"]["ServiceToken"]["Fn::GetAtt"][0]]
    group = provider["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    assert example.resources[group]["Properties"]["RetentionInDays"] == example.context["logRetentionDays"]


# --- secrets and IAM ----------------------------------------------------------------------------------


SCOPED_SERVICES = ("s3:", "sqs:", "secretsmanager:")


def test_no_s3_sqs_or_secrets_statement_allows_every_resource(example: Synthesized) -> None:
    for key, statement in statements(example):
        actions = as_list(statement["Action"])
        if any(action.startswith(SCOPED_SERVICES) for action in actions):
            assert "*" not in as_list(statement["Resource"]), f"{key} grants {actions} on '*'"
        assert "*" not in actions and not any(action.endswith(":*") for action in actions), key


def test_only_the_consumer_reads_s3_and_only_objects_of_allowed_buckets(example: Synthesized) -> None:
    s3_statements = [
        (key, s) for key, s in statements(example) if any(a.startswith("s3:") for a in as_list(s["Action"]))
    ]
    assert len(s3_statements) == 1
    _, statement = s3_statements[0]
    assert statement["Action"] == "s3:GetObject"
    joined = [
        "".join(p if isinstance(p, str) else "arn" for p in r["Fn::Join"][1]) for r in as_list(statement["Resource"])
    ]
    assert sorted(joined) == sorted(f"arn:arn:s3:::{bucket}/*" for bucket in example.context["allowedBuckets"])
    assert statement in role_policy_statements(example, "consumer.handler")


def test_database_secret_is_granted_by_arn_to_every_function(example: Synthesized) -> None:
    for handler in ("producer.handler", "consumer.handler", "migrate.handler"):
        granted = [
            s
            for s in role_policy_statements(example, handler)
            if "secretsmanager:GetSecretValue" in as_list(s["Action"])
        ]
        assert granted and example.context["dbSecretArn"] in as_list(granted[0]["Resource"]), handler


def test_openai_secret_is_created_and_only_the_consumer_may_read_it(example: Synthesized) -> None:
    secrets = example.of_type("AWS::SecretsManager::Secret")
    assert len(secrets) == 1
    secret = {"Ref": next(iter(secrets))}
    assert environment(example, "consumer.handler")["OPENAI_SECRET_ARN"] == secret
    readers = [
        handler
        for handler in ("producer.handler", "consumer.handler", "migrate.handler")
        if any(secret in as_list(s["Resource"]) for s in role_policy_statements(example, handler))
    ]
    assert readers == ["consumer.handler"]


def test_producer_may_send_and_read_queue_attributes_and_consumer_may_consume_and_hand_back(
    example: Synthesized,
) -> None:
    main, _ = queue_keys(example)
    arn = {"Fn::GetAtt": [main, "Arn"]}
    producer = {
        a
        for s in role_policy_statements(example, "producer.handler")
        if arn in as_list(s["Resource"])
        for a in as_list(s["Action"])
    }
    consumer = {
        a
        for s in role_policy_statements(example, "consumer.handler")
        if arn in as_list(s["Resource"])
        for a in as_list(s["Action"])
    }
    assert {"sqs:SendMessage", "sqs:GetQueueAttributes"} <= producer
    assert "sqs:ReceiveMessage" not in producer
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"} <= consumer
    # The consumer sends only to its own queue: a job handed back after a configuration error or a rate limit
    # (docs/architecture.md §9), never to the DLQ.
    assert "sqs:SendMessage" in consumer
    dlq_arn = {"Fn::GetAtt": [queue_keys(example)[1], "Arn"]}
    assert not [s for s in role_policy_statements(example, "consumer.handler") if dlq_arn in as_list(s["Resource"])]


def test_function_roles_have_no_managed_policies_without_a_vpc(example: Synthesized) -> None:
    for handler in ("producer.handler", "consumer.handler", "migrate.handler"):
        role = function(example, handler)[1]["Properties"]["Role"]["Fn::GetAtt"][0]
        assert "ManagedPolicyArns" not in example.resources[role]["Properties"], handler
        assert "VpcConfig" not in function(example, handler)[1]["Properties"]


# --- monitoring and outputs ---------------------------------------------------------------------------


def test_alarms_watch_dlqs_queue_age_and_function_errors_and_notify_the_topic(example: Synthesized) -> None:
    alarms = list(example.of_type("AWS::CloudWatch::Alarm").values())
    topic = next(iter(example.of_type("AWS::SNS::Topic")))
    watched = {(a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms}
    assert watched == {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        (settings.METRICS_NAMESPACE, "ModelCredentialsRejected"),
    }
    assert len(alarms) == 9  # with the priority lane's DLQ and age of oldest message
    visible = [a for a in alarms if a["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"]
    watched_queues = {a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0] for a in visible}
    assert queue_keys(example)[1] in watched_queues and len(watched_queues) == 3
    for alarm in alarms:
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic}]
        assert alarm["Properties"]["AlarmDescription"]


def our_alarms_only(stack_name: str) -> dict[str, Any]:
    alarm_arns = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":cloudwatch:", {"Ref": "AWS::Region"}, ":",
                                    {"Ref": "AWS::AccountId"}, f":alarm:{stack_name}-*"]]}  # fmt: skip
    return {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}, "ArnLike": {"aws:SourceArn": alarm_arns}}


def test_cloudwatch_may_publish_to_the_topic_and_use_its_key_for_our_alarms_only(example: Synthesized) -> None:
    topic = next(iter(example.of_type("AWS::SNS::Topic")))
    key = example.resources[topic]["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    cloudwatch = {"Service": "cloudwatch.amazonaws.com"}
    (topic_policy,) = example.of_type("AWS::SNS::TopicPolicy").values()
    publish = [s for s in topic_policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert publish == [
        {
            "Sid": "AllowCloudWatchAlarmsToPublish",
            "Effect": "Allow",
            "Principal": cloudwatch,
            "Action": "sns:Publish",
            "Resource": {"Ref": topic},
            "Condition": our_alarms_only(example.context["stackName"]),
        }
    ]
    key_grants = [
        s for s in example.resources[key]["Properties"]["KeyPolicy"]["Statement"] if s["Principal"] == cloudwatch
    ]
    assert len(key_grants) == 1
    assert sorted(as_list(key_grants[0]["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert key_grants[0]["Condition"] == our_alarms_only(example.context["stackName"])


def test_every_alarm_is_named_so_that_the_topic_policy_covers_it(example: Synthesized) -> None:
    for key, alarm in example.of_type("AWS::CloudWatch::Alarm").items():
        assert alarm["Properties"].get("AlarmName", "").startswith(f"{example.context['stackName']}-"), key


def test_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use_and_refuses_plain_http(example: Synthesized) -> None:
    key = Capture()
    example.template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key, "Arn"]}})
    example.template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    example.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )
    example.template.resource_count_is("AWS::SNS::Subscription", 0)  # alarmEmail is null in cdk.json


def test_dashboard_shows_the_custom_metrics_contract(example: Synthesized) -> None:
    dashboards = example.of_type("AWS::CloudWatch::Dashboard")
    assert len(dashboards) == 1
    body = json.dumps(next(iter(dashboards.values()))["Properties"]["DashboardBody"])
    names = [metric.name for metric in CUSTOM_METRICS]
    assert names == ["Enqueued", "OrdersDone", "OrdersFailed", "ItemsWritten", "InputTokens", "OutputTokens",
                     "CostUSD", "ModelLatency", "ModelCredentialsRejected", "JobsThrottled"]  # fmt: skip
    for name in names:
        assert f'\\"{name}\\"' in body, name
    assert settings.METRICS_NAMESPACE in body and settings.SERVICE_NAME in body
    assert "ApproximateNumberOfMessagesVisible" in body
    for llm in example.context["llmModels"]:
        assert f"Tokens per minute, used vs budget: {llm}" in body
    for metric in MODEL_METRICS:
        assert f'\\"{metric.name}\\"' in body, metric.name


def test_the_operators_pages_document_every_custom_metric_and_alarm(example: Synthesized) -> None:
    # docs/operate.md, and the pages it links to (the priority lane's alarms are in docs/events-and-lanes.md).
    operate = "".join(path.read_text() for path in sorted((ROOT / "docs").glob("*.md")))
    for metric in CUSTOM_METRICS + MODEL_METRICS:
        assert f"`{metric.name}`" in operate, metric.name
    for alarm in example.stack.monitoring.alarms:
        assert f"`{alarm}`" in operate, alarm


def test_outputs_give_operators_the_queues_redrive_link_functions_and_dashboard(example: Synthesized) -> None:
    outputs = example.template_json["Outputs"]
    for name in ("QueueUrl", "DeadLetterQueueUrl", "DeadLetterQueueConsole", "ProducerFunctionName",
                 "ConsumerFunctionName", "MigrateFunctionName", "DashboardUrl"):  # fmt: skip
        assert name in outputs, name
    _, dlq = queue_keys(example)
    assert outputs["DeadLetterQueueUrl"]["Value"] == {"Ref": dlq}
    assert "sqs/v3/home" in str(outputs["DeadLetterQueueConsole"]["Value"])


# --- cdk-nag and cfn-lint -----------------------------------------------------------------------------


def test_every_cdk_nag_acknowledgment_gives_a_reason(example: Synthesized) -> None:
    acknowledged = example.acknowledgments()
    rules = [rule for by_rule in acknowledged.values() for rule in by_rule]
    assert rules, "the fixture synthesized with AwsSolutionsChecks, so some findings are acknowledged"
    for path, by_rule in acknowledged.items():
        for rule, reason in by_rule.items():
            assert rule.startswith("AwsSolutions::"), (path, rule)
            assert len(reason.split()) >= 8, f"{path} {rule}: the reason must explain, not just exist"


def test_cfn_lint_passes_on_the_synthesized_template(example: Synthesized) -> None:
    result = cfn_lint(example.template_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_functions_asset_holds_what_the_handlers_run_and_no_operator_module(example: Synthesized) -> None:
    from tests.unit.test_lambda_asset import (
        HANDLERS,
        SHARED_WITH_LOCAL,
        import_graph,
        python_modules,
        reached_by_handlers,
    )

    keys = {
        function(example, f"{name}.handler")[1]["Properties"]["Code"]["S3Key"]
        for name in ("producer", "consumer", "migrate")
    }
    assert len(keys) == 1  # one code asset for the three handlers
    asset = example.template_path.parent / f"asset.{keys.pop().removesuffix('.zip')}"  # what cdk deploy zips
    shipped = python_modules(asset)

    handlers = {handler.removeprefix("functions.") for handler in HANDLERS}
    assert shipped == handlers | (reached_by_handlers(import_graph()) - set(HANDLERS)) | set(SHARED_WITH_LOCAL)
    assert not any(module.startswith(("invoices_cli", "local")) for module in shipped)
