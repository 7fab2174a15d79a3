"""The stack grants per provider from the configured models: Bedrock and Textract without OpenAI.

Model names and providers: docs/architecture.md §10.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.infrastructure.conftest import Synthesized, cfn_lint, example_context, synthesize
from tests.infrastructure.test_stack import environment, role_policy_statements

MODELS = [
    "bedrock/anthropic.claude-3-5-haiku-20241022-v1:0",
    "bedrock/us.amazon.nova-pro-v1:0",  # a cross-region inference profile
    "textract/analyze-expense",
]
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def aws_native(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    yield synthesize(
        tmp_path_factory.mktemp("cdk-providers"),
        llmModels=",".join(MODELS),
        bedrockProfileRegions="us-east-1,us-east-2,us-west-2",
    )


def as_list(value):
    return value if isinstance(value, list) else [value]


def statements_with(synth: Synthesized, action: str) -> list[dict]:
    return [s for s in role_policy_statements(synth, "consumer.handler") if action in as_list(s["Action"])]


def arn(parts: list) -> str:
    """A Fn::Join of the partition, region and account pseudo parameters, written out."""
    names = {"AWS::Partition": "aws", "AWS::Region": "REGION", "AWS::AccountId": "ACCOUNT"}
    return "".join(part if isinstance(part, str) else names[part["Ref"]] for part in parts)


def test_bedrock_models_are_granted_invoke_model_exactly_and_a_profile_in_each_region(aws_native: Synthesized):
    (statement,) = statements_with(aws_native, "bedrock:InvokeModel")
    assert as_list(statement["Action"]) == ["bedrock:InvokeModel"]
    resources = {arn(r["Fn::Join"][1]) if isinstance(r, dict) else r for r in as_list(statement["Resource"])}
    assert resources == {
        "arn:aws:bedrock:REGION::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0",
        "arn:aws:bedrock:REGION:ACCOUNT:inference-profile/us.amazon.nova-pro-v1:0",
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0",
        "arn:aws:bedrock:us-east-2::foundation-model/amazon.nova-pro-v1:0",
        "arn:aws:bedrock:us-west-2::foundation-model/amazon.nova-pro-v1:0",
    }


def test_textract_is_granted_analyze_expense_only_and_acknowledged(aws_native: Synthesized):
    (statement,) = statements_with(aws_native, "textract:AnalyzeExpense")
    assert as_list(statement["Action"]) == ["textract:AnalyzeExpense"] and statement["Resource"] == "*"
    reasons = [
        reason
        for path, rules in aws_native.acknowledgments().items()
        if "TextractPolicy" in path
        for reason in rules.values()
    ]
    assert any("AnalyzeExpense" in reason for reason in reasons)


def test_without_an_openai_model_there_is_no_openai_secret_and_no_key_setting(aws_native: Synthesized):
    assert aws_native.of_type("AWS::SecretsManager::Secret") == {}
    consumer = environment(aws_native, "consumer.handler")
    assert "OPENAI_SECRET_ARN" not in consumer and "OPENAI_BASE_URL" not in consumer
    assert consumer["LLM_MODELS"] == ",".join(MODELS)
    assert "OpenAiSecretArn" not in aws_native.template_json.get("Outputs", {})


def test_the_openai_only_example_grants_neither_bedrock_nor_textract(example: Synthesized):
    assert statements_with(example, "bedrock:InvokeModel") == []
    assert statements_with(example, "textract:AnalyzeExpense") == []


def test_a_cross_region_profile_without_its_regions_is_a_context_error_naming_the_key():
    from stacks.config import ContextError, PipelineConfig

    with pytest.raises(ContextError, match="bedrockProfileRegions"):
        PipelineConfig.from_mapping({**example_context(), "llmModels": ["bedrock/eu.amazon.nova-lite-v1:0"]})


def test_cfn_lint_is_clean(aws_native: Synthesized):
    result = cfn_lint(aws_native.template_path)
    assert result.returncode == 0, result.stdout + result.stderr
