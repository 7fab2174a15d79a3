"""The model list (LLM_MODELS, the stack's llmModels): one parser of models and cascades; refusals name the value."""

from __future__ import annotations

import pytest

from invoice_pipeline import model_names
from invoice_pipeline.clients import AwsClients
from invoice_pipeline.errors import ConfigurationError
from invoice_pipeline.model_names import ModelEntry, ModelNameError, parse_model_entry, parse_model_list
from invoice_pipeline.providers.registry import Extractors
from invoice_pipeline.settings import ConfigError, consumer_settings_from, producer_settings_from

CONSUMER_ENV = {"DATABASE_URL": "postgresql://app:secret@db.example.com:5432/orders", "ALLOWED_BUCKETS": "invoices"}
PRODUCER_ENV = {
    "DATABASE_URL": CONSUMER_ENV["DATABASE_URL"],
    "QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/work",
    "RESTAURANT_IDS": "*",
}

# (value, what the refusal says besides the value)
REFUSED = [
    ("ocr-table-v1>>gpt-4o", "has an empty stage"),
    (">gpt-4o>gpt-4.1", "has an empty stage"),
    ("gpt-4o>", "cascade of 1 stage"),
    (" > gpt-4o", "cascade of 1 stage"),
    (">", "cascade of 0 stages"),
    ("a>b>c>d", "has 4 stages: a cascade has at most 3"),
    ("gpt-4o>gpt-4.1>gpt-4o", "names 'gpt-4o' twice"),
    ("gpt-4o > gpt-4o", "names 'gpt-4o' twice"),
    ("gpt-4o>ocr-table-v1", "offline reader 'ocr-table-v1' after the first stage"),
    ("ocr-table-v1>gpt-4o>ocr-rapidocr", "offline reader 'ocr-rapidocr' after the first stage"),
]


def test_a_plain_name_is_an_entry_of_one_stage() -> None:
    entry = parse_model_entry(" gpt-4o-2024-11-20 ")
    assert entry == ModelEntry(("gpt-4o-2024-11-20",))
    assert entry.name == "gpt-4o-2024-11-20"
    assert not entry.is_cascade


def test_a_cascade_drops_the_spaces_around_its_separator_and_keeps_its_order() -> None:
    entry = parse_model_entry("ocr-table-v1 >  gpt-4.1-mini>gpt-4o ")
    assert entry.stages == ("ocr-table-v1", "gpt-4.1-mini", "gpt-4o")
    assert entry.name == "ocr-table-v1>gpt-4.1-mini>gpt-4o"  # what the ledger's llm column stores
    assert entry.is_cascade


def test_a_list_keeps_order_drops_blanks_and_repeats_of_the_same_entry() -> None:
    entries = parse_model_list("gpt-4o, ocr-table-v1 > gpt-4o,, ocr-table-v1>gpt-4o, bedrock/amazon.nova-lite-v1:0")
    assert model_names.model_names(entries) == ("gpt-4o", "ocr-table-v1>gpt-4o", "bedrock/amazon.nova-lite-v1:0")
    assert model_names.stage_names(entries) == ("gpt-4o", "ocr-table-v1", "bedrock/amazon.nova-lite-v1:0")


def test_a_json_list_parses_like_a_comma_list() -> None:
    assert parse_model_list(["a > b", "c"]) == parse_model_list("a>b, c")
    assert parse_model_list("") == ()


@pytest.mark.parametrize(("value", "reason"), REFUSED)
def test_a_malformed_entry_is_refused_naming_the_variable_the_value_and_why(value: str, reason: str) -> None:
    with pytest.raises(ModelNameError) as refused:
        parse_model_list(f"gpt-4o-2024-11-20, {value}", "llmModels")
    message = str(refused.value)
    assert message.startswith(f"llmModels: {value.strip()!r}")
    assert reason in message


@pytest.mark.parametrize(("value", "reason"), REFUSED)
def test_the_functions_settings_refuse_a_malformed_entry_before_anything_runs(value: str, reason: str) -> None:
    for load, env in ((consumer_settings_from, CONSUMER_ENV), (producer_settings_from, PRODUCER_ENV)):
        with pytest.raises(ConfigError) as refused:
            load({**env, "LLM_MODELS": f"gpt-4o, {value}"})  # type: ignore[operator]
        assert str(refused.value).startswith(f"LLM_MODELS: {value.strip()!r}")
        assert reason in str(refused.value)


def test_the_settings_store_a_cascade_as_written_without_spaces() -> None:
    settings = producer_settings_from({**PRODUCER_ENV, "LLM_MODELS": "ocr-table-v1 > gpt-4o, gpt-4o"})
    assert settings.llm_models == ("ocr-table-v1>gpt-4o", "gpt-4o")


def test_the_consumer_reads_the_settings_of_every_stage_provider() -> None:
    settings = consumer_settings_from({**CONSUMER_ENV, "LLM_MODELS": "textract/analyze-expense > bedrock/amazon.nova"})
    assert settings.llm_models == ("textract/analyze-expense>bedrock/amazon.nova",)
    assert [name for name, _ in settings.providers] == ["bedrock", "textract"]
    assert settings.model_entries == (ModelEntry(("textract/analyze-expense", "bedrock/amazon.nova")),)


def test_an_empty_list_is_refused_and_an_unset_one_is_the_default() -> None:
    with pytest.raises(ConfigError, match="LLM_MODELS is empty"):
        consumer_settings_from({**CONSUMER_ENV, "LLM_MODELS": ","})
    assert consumer_settings_from(CONSUMER_ENV).llm_models == ("gpt-4o-2024-11-20",)


def test_a_cascade_is_a_configuration_error_for_the_extractor_until_cascades_run() -> None:
    # Its first stage's provider alone would read every invoice and store the rows under the cascade's name.
    settings = consumer_settings_from({**CONSUMER_ENV, "LLM_MODELS": "ocr-table-v1>gpt-4o"})
    with pytest.raises(ConfigurationError, match="'ocr-table-v1>gpt-4o' is a cascade"):
        Extractors(settings, AwsClients()).get("ocr-table-v1>gpt-4o")


def test_the_provider_table_serves_the_offline_reader_prefix_the_parser_knows() -> None:
    assert model_names.provider_name(f"{model_names.OFFLINE_READER_PREFIX}table-v1") == "ocr"
