"""Provider naming (docs/architecture.md §10), provider settings, and each AWS provider's reading of its answer."""

from __future__ import annotations

from decimal import Decimal

import pytest

from invoice_pipeline import model_names
from invoice_pipeline.clients import AwsClients
from invoice_pipeline.errors import ModelRefusal, PermanentError, TransientError
from invoice_pipeline.providers import answer, bedrock, registry, textract
from invoice_pipeline.settings import ConfigError, consumer_settings_from
from local.aws_emulators import analyze_expense_response

ENV = {"DATABASE_URL": "postgresql://u@h/d", "ALLOWED_BUCKETS": "b"}


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("bedrock/anthropic.claude-3-5-haiku-20241022-v1:0", "bedrock"),
        ("bedrock/us.amazon.nova-pro-v1:0", "bedrock"),
        ("textract/analyze-expense", "textract"),
        ("ocr-table-v1", "ocr"),
        ("openai/gpt-4.1-mini", "openai"),
        ("gpt-4o-2024-11-20", "openai"),
        ("llama-3.2-vision", "openai"),  # anything else: an OpenAI-compatible endpoint
    ],
)
def test_model_names_choose_their_provider(model, provider):
    assert model_names.provider_name(model) == provider
    assert provider == registry.provider_for(model).NAME


def test_only_the_providers_of_configured_models_have_settings():
    settings = consumer_settings_from({**ENV, "LLM_MODELS": "bedrock/amazon.nova-lite-v1:0,textract/analyze-expense"})
    assert [name for name, _ in settings.providers] == ["bedrock", "textract"]
    with pytest.raises(ConfigError, match="served by openai"):
        settings.provider("openai")


def test_a_malformed_provider_setting_is_named():
    with pytest.raises(ConfigError, match="BEDROCK_MAX_OUTPUT_TOKENS"):
        consumer_settings_from({**ENV, "LLM_MODELS": "bedrock/amazon.nova-lite-v1:0", "BEDROCK_MAX_OUTPUT_TOKENS": "x"})


def test_an_unknown_textract_model_is_a_configuration_error():
    settings = consumer_settings_from({**ENV, "LLM_MODELS": "textract/analyze-document"})
    with pytest.raises(ConfigError, match="analyze-expense"):
        registry.Extractors(settings, AwsClients()).get("textract/analyze-document")


def test_the_tool_schema_is_the_item_schema_without_references():
    schema = answer.invoice_json_schema()
    assert "$defs" not in schema and "$ref" not in str(schema)
    assert set(schema["properties"]["items"]["items"]["properties"]) == {
        "description",
        "quantity",
        "unit",
        "unit_price",
        "line_total",
        "page",
        "source_text",
    }


def test_inference_profiles_and_arns_name_their_foundation_model():
    assert bedrock.base_model_id("us.anthropic.claude-3-5-haiku-20241022-v1:0") == (
        "anthropic.claude-3-5-haiku-20241022-v1:0"
    )
    arn = "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.amazon.nova-pro-v1:0"
    assert bedrock.base_model_id(arn) == "amazon.nova-pro-v1:0"


def converse(stop: str, content: list[dict]) -> dict:
    return {"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop}


def test_a_converse_answer_is_the_forced_tool_input():
    tool = {
        "toolUse": {
            "toolUseId": "t",
            "name": bedrock.TOOL_NAME,
            "input": {"currency": "KWD", "printed_total": None, "items": []},
        }
    }
    assert bedrock.read_answer(converse("tool_use", [tool]), invoice_index=0, max_output_tokens=10).currency == "KWD"


@pytest.mark.parametrize(
    ("response", "error", "says"),
    [
        (converse("max_tokens", []), PermanentError, "BEDROCK_MAX_OUTPUT_TOKENS"),
        (converse("content_filtered", [{"text": "blocked"}]), ModelRefusal, "content_filtered"),
        (converse("guardrail_intervened", [{"text": "blocked"}]), ModelRefusal, "guardrail_intervened"),
        (converse("end_turn", [{"text": "here are the items"}]), TransientError, "without the"),
        (
            converse("tool_use", [{"toolUse": {"toolUseId": "t", "name": bedrock.TOOL_NAME, "input": {"items": 3}}}]),
            TransientError,
            "item schema",
        ),
    ],
)
def test_converse_stop_reasons_and_bad_answers_are_named_errors(response, error, says):
    with pytest.raises(error, match=says):
        bedrock.read_answer(response, invoice_index=0, max_output_tokens=512)


def field(kind: str, text: str, currency: str | None = None) -> dict:
    found = {"Type": {"Text": kind, "Confidence": 99.0}, "ValueDetection": {"Text": text, "Confidence": 99.0}}
    if currency:
        found["Currency"] = {"Code": currency}
    return found


def test_textract_line_items_map_to_items_with_the_row_text_as_fallback_description():
    response = {
        "ExpenseDocuments": [
            {
                "ExpenseIndex": 1,
                "SummaryFields": [field("SUBTOTAL", "9.00"), field("TOTAL", "$1,810.46", "USD")],
                "LineItemGroups": [
                    {
                        "LineItems": [
                            {
                                "LineItemExpenseFields": [
                                    field("ITEM", "SONY  VIAO"),
                                    field("QUANTITY", "2 kg"),
                                    field("UNIT_PRICE", "$689.99"),
                                    field("PRICE", "$1,379.98"),
                                    field("EXPENSE_ROW", "SONY VIAO 2 kg $689.99 $1,379.98"),
                                ]
                            },
                            {
                                "LineItemExpenseFields": [
                                    field("EXPENSE_ROW", "APPLE TV V4 $89.99"),
                                    field("PRICE", "89.99"),
                                ]
                            },
                        ]
                    }
                ],
            }
        ]
    }
    items, total, currency = textract.read_response(response)
    assert [(i.description, i.quantity, i.unit, i.unit_price, i.line_total) for i in items] == [
        ("SONY VIAO", Decimal(2), "kg", Decimal("689.99"), Decimal("1379.98")),
        ("APPLE TV V4 $89.99", None, None, None, Decimal("89.99")),
    ]
    assert (total, currency) == (Decimal("1810.46"), "USD")


def test_the_textract_emulator_answer_reads_back_as_the_sample():
    sample = {
        "currency": "KWD",
        "printed_total": "١٢٫٥٠٠",
        "items": [{"description": "بصل", "quantity": "١٠", "unit": "kg", "unit_price": "٠٫٣٥٠", "line_total": "٣٫٥٠٠"}],
    }
    items, total, currency = textract.read_response(analyze_expense_response(sample))
    assert [(i.description, i.quantity, i.unit_price, i.line_total) for i in items] == [
        ("بصل", Decimal(10), Decimal("0.350"), Decimal("3.500"))
    ]
    assert (total, currency) == (Decimal("12.500"), "KWD")


def openai_status_error(status: int, code: str | None, headers: dict[str, str] | None = None):
    import httpx2 as httpx  # the HTTP library of this openai SDK version
    import openai

    request = httpx.Request("POST", "https://api.openai.test/v1/chat/completions")
    response = httpx.Response(status, headers=headers or {}, request=request)
    body = {"message": "emulated", "type": code, "code": code}
    return openai.APIStatusError("emulated", response=response, body=body)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (lambda: openai_status_error(429, "rate_limit_exceeded", {"retry-after-ms": "250"}), "Throttled"),
        (lambda: openai_status_error(429, "insufficient_quota"), "QuotaExhausted"),
        (lambda: openai_status_error(401, "invalid_api_key"), "ConfigurationError"),
        (lambda: openai_status_error(404, "model_not_found"), "ConfigurationError"),
        (lambda: openai_status_error(503, None), "TransientError"),
        (lambda: openai_status_error(400, "invalid_image"), "PermanentError"),
    ],
)
def test_openai_sdk_errors_become_the_projects_types_at_the_provider(error, expected):
    from invoice_pipeline.providers.openai_extractor import translate

    translated = translate(error())
    assert type(translated).__name__ == expected
    if expected == "Throttled":
        assert translated.retry_after_seconds == 0.25
