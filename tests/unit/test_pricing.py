"""Prices: each model its own (never a shorter id's), region profiles apart, unknown is unknown, configuration wins."""

from __future__ import annotations

from decimal import Decimal

import pytest

from invoice_pipeline import pricing
from invoice_pipeline.pricing import Price, cost_usd, parse_model_prices, price_for, unpriced
from invoice_pipeline.settings import ConfigError, consumer_settings_from

MILLION = 1_000_000


def test_a_longer_model_id_never_takes_a_shorter_ones_price():
    assert price_for("gpt-5-pro") == Price(Decimal("15.00"), Decimal("120.00"))  # not gpt-5's 1.25 / 10
    assert price_for("gpt-5-pro-2025-10-06") == price_for("gpt-5-pro")  # a dated snapshot is its model
    assert price_for("gpt-4o-mini-2024-07-18") == Price(Decimal("0.15"), Decimal("0.60"))
    assert price_for("gpt-4o-2024-11-20") == Price(Decimal("2.50"), Decimal("10.00"))
    assert price_for("gpt-5-chat-latest") is None  # not a snapshot of gpt-5: no price rather than the wrong one


def test_the_current_models_have_prices():
    assert cost_usd("bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0", MILLION, MILLION) == Decimal("18.00")
    assert cost_usd("bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0", MILLION, MILLION) == Decimal("6.00")
    assert cost_usd("openai/gpt-5-pro", MILLION, 0) == Decimal("15.00")


def test_region_profiles_are_priced_on_their_own():
    us = price_for("bedrock/us.amazon.nova-lite-v1:0")
    eu = price_for("bedrock/eu.amazon.nova-lite-v1:0")
    assert us == price_for("bedrock/amazon.nova-lite-v1:0") == Price(Decimal("0.06"), Decimal("0.24"))
    assert eu is not None and us is not None and eu.input / us.input == Decimal("1.23")
    arn = "bedrock/arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.amazon.nova-lite-v1:0"
    assert price_for(arn) == eu
    assert price_for("bedrock/apac.amazon.nova-pro-v1:0") is None  # no APAC row: unknown, not the US price


def test_an_unknown_model_costs_unknown_and_the_offline_reader_nothing():
    assert cost_usd("someone-elses-model", 5000, 500) is None
    assert cost_usd("ocr-table-v1", 5000, 500) == 0
    assert cost_usd("textract/analyze-expense", 0, 0, pages=3) == Decimal("0.03")
    assert unpriced(["gpt-4o", "mystery-model", "ocr-x", "bedrock/global.amazon.nova-lite-v1:0"]) == [
        "mystery-model",
        "bedrock/global.amazon.nova-lite-v1:0",
    ]


def test_a_configured_price_overrides_the_built_in_one_and_prices_an_unknown_model():
    configured = parse_model_prices(
        '{"gpt-4o-2024-11-20": {"input": 2, "output": 8}, "mystery-model": {"input": "1.5", "output": 6},'
        ' "textract/analyze-expense": {"page": 0.008}}'
    )
    assert cost_usd("gpt-4o-2024-11-20", MILLION, MILLION, configured=configured) == Decimal(10)
    assert cost_usd("openai/mystery-model", MILLION, 0, configured=configured) == Decimal("1.5")
    assert cost_usd("textract/analyze-expense", 0, 0, pages=2, configured=configured) == Decimal("0.016")
    assert unpriced(["mystery-model"], configured) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "not JSON"),
        ("[1]", "JSON object"),
        ('{"m": {"input": 1}}', "both input and output"),
        ('{"m": {"input": -1, "output": 1}}', "number >= 0"),
        ('{"m": {"input": "lots", "output": 1}}', "number >= 0"),
        ('{"m": {"input": 1, "output": 1, "cached": 1}}', "unknown keys"),
    ],
)
def test_malformed_model_prices_are_refused_naming_the_problem(text: str, problem: str):
    with pytest.raises(ValueError, match=problem):
        parse_model_prices(text)


def test_the_consumer_reads_model_prices_and_a_bad_value_names_the_variable():
    env = {"DATABASE_URL": "postgresql://u:p@localhost/db", "ALLOWED_BUCKETS": "b", "LLM_MODELS": "mystery-model"}
    settings = consumer_settings_from({**env, "MODEL_PRICES": '{"mystery-model": {"input": 1, "output": 2}}'})
    assert dict(settings.model_prices) == {"mystery-model": Price(Decimal(1), Decimal(2))}
    with pytest.raises(ConfigError, match="MODEL_PRICES"):
        consumer_settings_from({**env, "MODEL_PRICES": "{"})
    assert pricing.FREE.cost(10, 10, 10) == 0


def test_model_prices_in_cdk_context_reach_the_consumer_as_json_and_a_bad_one_names_the_key():
    import json

    from stacks.config import CDK_JSON, ContextError, PipelineConfig

    context = json.loads(CDK_JSON.read_text())["context"]
    assert PipelineConfig.from_mapping(context).model_prices is None  # {}: the built-in prices only
    context["modelPrices"] = {"mystery-model": {"input": 1.5, "output": 6}}
    configured = PipelineConfig.from_mapping(context).model_prices
    assert configured is not None and dict(parse_model_prices(configured)) == {
        "mystery-model": Price(Decimal("1.5"), Decimal(6))
    }
    context["modelPrices"] = {"mystery-model": {"input": 1.5}}
    with pytest.raises(ContextError, match="modelPrices"):
        PipelineConfig.from_mapping(context)
