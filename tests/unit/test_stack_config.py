"""The local stack's queue settings come from the stack's own parser: the same numbers, errors and defaults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from local.stack_config import QueueSettings, load_queue_settings
from stacks.config import CDK_JSON, DLQ_RETENTION_DAYS, VISIBILITY_TIMEOUT_FACTOR, ContextError, PipelineConfig

ROOT = Path(__file__).resolve().parents[2]


def committed_context() -> dict[str, Any]:
    return json.loads(CDK_JSON.read_text())["context"]


def write_context(tmp_path: Path, **overrides: Any) -> Path:
    """The committed cdk.json with some context keys changed (None: the key is unset, its default applies)."""
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps({"app": "python app.py", "context": {**committed_context(), **overrides}}))
    return path


def shared_numbers(config: PipelineConfig) -> dict[str, int]:
    """What the stack deploys, by the local setting that must equal it."""
    return {
        "consumer_timeout_seconds": config.consumer_timeout_seconds,
        "visibility_timeout_seconds": config.visibility_timeout_seconds,
        "max_receive_count": config.max_receive_count,
        "batch_size": config.batch_size,
        "max_batching_window_seconds": config.max_batching_window_seconds,
        "reserved_concurrency": config.consumer_reserved_concurrency,
        "max_concurrency": config.consumer_max_concurrency,
        "queue_retention_seconds": config.queue_retention_seconds,
    }


def local_numbers(settings: QueueSettings) -> dict[str, int]:
    """Every local setting: one the stack does not deploy would make the comparison fail."""
    return asdict(settings)


def test_the_cdk_json_is_the_stacks_context_file() -> None:
    assert CDK_JSON == ROOT / "cdk.json"


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="committed"),
        # Every shared key unset: the defaults once differed (consumer timeout 120 vs 300, max concurrency 10 vs
        # "= reserved").
        pytest.param(
            {
                "consumerTimeoutSeconds": None,
                "maxReceiveCount": None,
                "batchSize": None,
                "maxBatchingWindowSeconds": None,
                "consumerReservedConcurrency": 4,
                "consumerMaxConcurrency": None,
                "queueRetentionDays": None,
                "priorityMaxConcurrency": None,
            },
            id="defaults",
        ),
        pytest.param(
            {
                "consumerTimeoutSeconds": 600,
                "maxReceiveCount": 7,
                "batchSize": 3,
                "maxBatchingWindowSeconds": 1,
                "consumerReservedConcurrency": 4,
                "consumerMaxConcurrency": 2,
                "queueRetentionDays": 2,
                "priorityMaxConcurrency": 2,
            },
            id="set",
        ),
    ],
)
def test_local_and_stack_agree_on_every_shared_number(tmp_path: Path, overrides: dict[str, Any]) -> None:
    path = write_context(tmp_path, **overrides)
    stack = shared_numbers(PipelineConfig.from_mapping(json.loads(path.read_text())["context"]))
    assert local_numbers(load_queue_settings(path)) == stack
    assert stack["visibility_timeout_seconds"] == VISIBILITY_TIMEOUT_FACTOR * stack["consumer_timeout_seconds"]
    assert load_queue_settings(path).dlq_retention_seconds == DLQ_RETENTION_DAYS * 24 * 3600 == 14 * 24 * 3600


def test_unset_keys_take_the_stacks_defaults(tmp_path: Path) -> None:
    path = write_context(
        tmp_path,
        consumerTimeoutSeconds=None,
        consumerReservedConcurrency=4,
        consumerMaxConcurrency=None,
        priorityMaxConcurrency=None,
    )
    settings = load_queue_settings(path)
    assert (settings.consumer_timeout_seconds, settings.visibility_timeout_seconds) == (300, 1800)
    assert (settings.reserved_concurrency, settings.max_concurrency) == (4, 4)  # no priority lane: the whole reserve


def test_the_dlq_keeps_14_days_whatever_the_context(tmp_path: Path) -> None:
    """The DLQ's retention is fixed (the SQS maximum; docs/architecture.md §12): `dlqRetentionDays` is not read."""
    assert load_queue_settings(write_context(tmp_path, dlqRetentionDays=1)).dlq_retention_seconds == 14 * 24 * 3600


def test_scaled_for_local_changes_only_time(tmp_path: Path) -> None:
    settings = load_queue_settings(write_context(tmp_path, maxReceiveCount=7, batchSize=2, consumerMaxConcurrency=2))
    local = settings.scaled_for_local(4)
    assert (local.visibility_timeout_seconds, local.consumer_timeout_seconds) == (4, 4)
    unchanged = {"visibility_timeout_seconds", "consumer_timeout_seconds"}
    assert {k: v for k, v in local_numbers(local).items() if k not in unchanged} == {
        k: v for k, v in local_numbers(settings).items() if k not in unchanged
    }
    assert (local.max_receive_count, local.batch_size, local.max_concurrency) == (7, 2, 2)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("maxReceiveCount", "five"),
        ("maxReceiveCount", 4),
        ("maxReceiveCount", True),
        ("batchSize", 0),
        ("batchSize", 11),
        ("maxBatchingWindowSeconds", 301),
        ("consumerTimeoutSeconds", 901),
        ("consumerReservedConcurrency", 1),
        ("consumerMaxConcurrency", 11),
        ("queueRetentionDays", 14),
        ("llmModels", ["ocr-rapidocr"]),
    ],
)
def test_a_bad_value_fails_locally_with_the_stacks_message(tmp_path: Path, key: str, value: Any) -> None:
    with pytest.raises(ContextError, match=key) as stack_error:
        PipelineConfig.from_mapping({**committed_context(), key: value})
    with pytest.raises(ContextError, match=key) as local_error:
        load_queue_settings(write_context(tmp_path, **{key: value}))
    assert str(local_error.value) == str(stack_error.value)


def test_a_missing_or_malformed_cdk_json_is_named(tmp_path: Path) -> None:
    path = tmp_path / "cdk.json"
    with pytest.raises(ContextError, match=f"{path} not found"):
        load_queue_settings(path)
    path.write_text("{not json")
    with pytest.raises(ContextError, match=f"{path} has no valid JSON 'context'"):
        load_queue_settings(path)
    path.write_text(json.dumps({"app": "python app.py"}))
    with pytest.raises(ContextError, match=f"{path} has no valid JSON 'context'"):
        load_queue_settings(path)
    path.write_text(json.dumps({"context": ["batchSize", 5]}))
    with pytest.raises(ContextError, match="'context' must be a JSON object"):
        load_queue_settings(path)


def test_the_local_side_needs_no_cdk_and_works_outside_the_checkout(tmp_path: Path) -> None:
    """The installed `local` package reaches the parser with the CDK libraries unimportable and cwd elsewhere."""
    script = textwrap.dedent(
        """
        import sys

        class NoCdk:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("aws_cdk", "constructs", "cdk_nag", "jsii"):
                    raise ImportError(f"{name} is blocked: the local side must not need the CDK")
                return None

        sys.meta_path.insert(0, NoCdk())
        from local.stack import create_local_stack
        from local.stack_config import load_queue_settings

        settings = load_queue_settings()
        print(settings.max_receive_count, settings.batch_size, settings.visibility_timeout_seconds)
        """
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    settings = load_queue_settings()
    expected = f"{settings.max_receive_count} {settings.batch_size} {settings.visibility_timeout_seconds}"
    assert result.stdout.split() == expected.split()
