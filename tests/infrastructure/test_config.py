"""Context validation: a bad value fails before any resource is built, naming the context key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from stacks.config import ContextError, PipelineConfig
from tests.infrastructure.conftest import ROOT, example_context


def config_with(**overrides: Any) -> PipelineConfig:
    return PipelineConfig.from_mapping({**example_context(), **overrides})


def test_the_committed_context_is_valid() -> None:
    config = config_with()
    assert config.max_receive_count >= 5
    assert config.consumer_max_concurrency <= config.consumer_reserved_concurrency
    assert config.database.vpc is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("scheduleExpression", "every 5 minutes"),
        ("scheduleExpression", None),
        ("restaurantIds", "12,abc"),
        ("restaurantIds", ["*", "3"]),
        ("restaurantIds", []),
        ("ordersSince", "yesterday"),
        ("allowedBuckets", ["Not_A_Bucket"]),
        ("llmModels", ""),
        ("consumerReservedConcurrency", "ten"),
        ("consumerReservedConcurrency", 1),
        ("batchSize", 11),
        ("maxBatchingWindowSeconds", 301),
        ("consumerTimeoutSeconds", 901),
        ("maxReceiveCount", 4),
        ("maxReceiveCount", True),
        ("queueRetentionDays", 14),
        ("dbSecretArn", "arn:aws:s3:::not-a-secret"),
        ("dbSecretArn", None),
        ("dbSslMode", "prefer"),
        ("openaiSecretArn", "my-key"),
        ("openaiBaseUrl", "http://plain-http.example.com/v1"),
        ("alarmEmail", "not-an-address"),
        ("logRetentionDays", 31),
        ("logLevel", "TRACE"),
        ("scheduleEnabled", "sometimes"),
        ("securityGroupId", "sg-0123456789abcdef0"),
        ("account", "12345"),
        ("llmModels", ["gpt-4o-2024-11-20", "ocr-rapidocr"]),
        ("stackName", "S" + "x" * 75),  # the work queue's name, `<stackName>-work`, would exceed SQS's 80
    ],
)
def test_a_bad_value_names_its_key(key: str, value: Any) -> None:
    with pytest.raises(ContextError, match=key):
        config_with(**{key: value})


def test_max_concurrency_above_reserved_concurrency_is_refused() -> None:
    with pytest.raises(ContextError, match="consumerMaxConcurrency"):
        config_with(consumerReservedConcurrency=5, consumerMaxConcurrency=6)


def test_a_vpc_needs_subnets_zones_and_a_security_group() -> None:
    vpc = {"vpcId": "vpc-0123456789abcdef0"}
    with pytest.raises(ContextError, match="subnetIds"):
        config_with(**vpc)
    with pytest.raises(ContextError, match="availabilityZones"):
        config_with(**vpc, subnetIds=["subnet-0123456789abcdef0"], availabilityZones=[])
    with pytest.raises(ContextError, match="securityGroupId"):
        config_with(**vpc, subnetIds=["subnet-0123456789abcdef0"], availabilityZones=["eu-west-1a"])


def test_context_from_the_command_line_arrives_as_strings() -> None:
    config = config_with(
        restaurantIds="*", llmModels="gpt-4o-2024-11-20, gpt-4.1", batchSize="10", modelTimeoutSeconds="20"
    )
    assert config.restaurant_ids == ("*",)
    assert config.llm_models == ("gpt-4o-2024-11-20", "gpt-4.1")
    assert config.batch_size == 10


def test_app_py_exits_with_the_bad_key_and_never_reaches_aws() -> None:
    context = {**example_context(), "consumerReservedConcurrency": "lots"}
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")} | {
        "CDK_CONTEXT_JSON": json.dumps(context),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1
    assert "consumerReservedConcurrency" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_offline_model_is_refused_with_the_key_and_the_names_available() -> None:
    with pytest.raises(ContextError, match=r"llmModels: 'ocr-rapidocr' names the offline reader .*ocr-table-v1"):
        config_with(llmModels="gpt-4o-2024-11-20,ocr-rapidocr")


def test_the_offline_reader_deploys_alone_and_as_a_cascade_first_stage() -> None:
    config = config_with(llmModels="ocr-table-v1, ocr-table-v1>gpt-4o-2024-11-20")
    assert config.llm_models == ("ocr-table-v1", "ocr-table-v1>gpt-4o-2024-11-20")
    assert config.providers == {"ocr", "openai"}


OPENAI_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:invoice-pipeline/openai"


@pytest.mark.parametrize(
    ("openai_secret", "schedule_enabled", "expected"),
    [
        (None, None, False),  # the stack creates a placeholder key: paused until the real key is in
        (OPENAI_SECRET, None, True),  # an existing key: running
        (None, "true", True),  # the operator put the key in and says so
        (OPENAI_SECRET, "false", False),
    ],
)
def test_the_schedule_runs_by_default_only_with_an_existing_key(
    openai_secret: str | None, schedule_enabled: str | None, expected: bool
) -> None:
    config = config_with(openaiSecretArn=openai_secret, scheduleEnabled=schedule_enabled)
    assert config.schedule_enabled is expected


def test_the_schedule_runs_by_default_when_no_model_needs_an_openai_key() -> None:
    config = config_with(openaiSecretArn=None, scheduleEnabled=None, llmModels="textract/analyze-expense")
    assert config.schedule_enabled is True


def test_the_work_queue_is_named_after_the_stack_within_sqs_limits() -> None:
    longest = "S" + "x" * 74
    assert config_with(stackName=longest).work_queue_name == f"{longest}-work"
    assert len(config_with(stackName=longest).work_queue_name) == 80


def test_a_batch_whose_model_calls_cannot_fit_the_consumer_timeout_is_refused() -> None:
    # 5 records x (120 s model call + 5 s images) + 15 s reserve = 640 s: the last records would never start.
    with pytest.raises(ContextError, match=r"batchSize 5 .* 640 s does not fit consumerTimeoutSeconds 300.*at most 2"):
        config_with(batchSize=5, modelTimeoutSeconds=120, consumerTimeoutSeconds=300)
    assert config_with(batchSize=5, modelTimeoutSeconds=120, consumerTimeoutSeconds=640).batch_size == 5
    assert config_with(batchSize=5, modelTimeoutSeconds=50, consumerTimeoutSeconds=300).model_timeout_seconds == 50
