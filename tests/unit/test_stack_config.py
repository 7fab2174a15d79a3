"""Queue settings read from cdk.json context: the same numbers for the stack and the local demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.stack_config import CDK_JSON, StackConfigError, load_queue_settings


def write_context(tmp_path: Path, **context: object) -> Path:
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps({"app": "python app.py", "context": context}))
    return path


def test_the_project_cdk_json_gives_valid_queue_settings() -> None:
    settings = load_queue_settings(CDK_JSON)
    assert settings.max_receive_count >= 5
    assert settings.visibility_timeout_seconds == 6 * settings.consumer_timeout_seconds
    assert settings.max_concurrency <= settings.reserved_concurrency
    assert settings.dlq_retention_seconds == 14 * 24 * 3600


def test_context_values_are_used_and_scaled_for_the_local_stack(tmp_path: Path) -> None:
    path = write_context(
        tmp_path,
        consumerTimeoutSeconds=60,
        maxReceiveCount=7,
        batchSize=3,
        maxBatchingWindowSeconds=1,
        consumerReservedConcurrency=4,
        consumerMaxConcurrency=2,
    )
    settings = load_queue_settings(path)
    assert (settings.visibility_timeout_seconds, settings.max_receive_count, settings.batch_size) == (360, 7, 3)
    local = settings.scaled_for_local(4)
    assert (local.visibility_timeout_seconds, local.consumer_timeout_seconds) == (4, 4)
    assert (local.max_receive_count, local.batch_size, local.max_concurrency) == (7, 3, 2)


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"maxReceiveCount": "5"}, "maxReceiveCount"),
        ({"batchSize": 0}, "batchSize"),
        ({"consumerReservedConcurrency": 2, "consumerMaxConcurrency": 3}, "consumerMaxConcurrency"),
    ],
)
def test_bad_context_values_are_named(tmp_path: Path, context: dict[str, object], message: str) -> None:
    with pytest.raises(StackConfigError, match=message):
        load_queue_settings(write_context(tmp_path, **context))


def test_a_missing_cdk_json_is_named(tmp_path: Path) -> None:
    with pytest.raises(StackConfigError, match="not found"):
        load_queue_settings(tmp_path / "cdk.json")
