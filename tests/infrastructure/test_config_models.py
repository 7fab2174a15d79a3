"""llmModels at synth: the functions' parser of the model list, with the stack's own limits on top."""

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


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("gpt-4o>>gpt-4.1", "has an empty stage"),
        ("gpt-4o>", "cascade of 1 stage"),
        ("a>b>c>d", "at most 3"),
        ("gpt-4o>gpt-4o", "names 'gpt-4o' twice"),
        ("gpt-4o>ocr-table-v1", "offline reader 'ocr-table-v1' after the first stage"),
    ],
)
def test_a_malformed_cascade_is_refused_naming_the_key_and_the_value(value: str, reason: str) -> None:
    with pytest.raises(ContextError) as refused:
        config_with(llmModels=["gpt-4o-2024-11-20", value])
    assert str(refused.value).startswith(f"llmModels: {value!r}")
    assert reason in str(refused.value)


def test_a_cascade_of_remote_models_is_one_entry_whose_stages_get_their_grants() -> None:
    config = config_with(
        llmModels="textract/analyze-expense > bedrock/amazon.nova-lite-v1:0, gpt-4o-2024-11-20",
        openaiSecretArn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:invoice-pipeline/openai-AbCdEf",
    )
    assert config.llm_models == ("textract/analyze-expense>bedrock/amazon.nova-lite-v1:0", "gpt-4o-2024-11-20")
    assert config.providers == {"textract", "bedrock", "openai"}
    assert config.bedrock_model_ids == ("amazon.nova-lite-v1:0",)


def test_a_cascade_starting_with_the_offline_reader_is_accepted() -> None:
    assert config_with(llmModels=["ocr-table-v1 > gpt-4o"]).llm_models == ("ocr-table-v1>gpt-4o",)


def test_a_stage_the_stack_cannot_name_in_a_grant_is_refused() -> None:
    with pytest.raises(ContextError, match=r"llmModels has a malformed entry: 'gpt-4o>gpt 4\.1'"):
        config_with(llmModels="gpt-4o > gpt 4.1")


def test_synth_exits_naming_the_bad_cascade() -> None:
    context = {**example_context(), "llmModels": ["gpt-4o>gpt-4o"]}
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")} | {
        "CDK_CONTEXT_JSON": json.dumps(context),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1
    assert "llmModels: 'gpt-4o>gpt-4o' names 'gpt-4o' twice" in result.stderr
    assert "Traceback" not in result.stderr
