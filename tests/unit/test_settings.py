from datetime import UTC, datetime

import pytest

from invoice_pipeline.settings import (
    DEFAULT_LLM_MODEL,
    ConfigError,
    consumer_settings_from,
    parse_database,
    producer_settings_from,
)

PRODUCER_ENV = {
    "DATABASE_URL": "postgresql://app:secret@db.example.com:5432/orders",
    "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/invoices",
    "RESTAURANT_IDS": "1, 2,3",
}
CONSUMER_ENV = {"DATABASE_URL": PRODUCER_ENV["DATABASE_URL"], "ALLOWED_BUCKETS": "invoices-a, invoices-b"}


def test_producer_settings_parse_lists_and_defaults():
    settings = producer_settings_from(PRODUCER_ENV)
    assert settings.restaurant_ids == (1, 2, 3)
    assert settings.llm_models == (DEFAULT_LLM_MODEL,)
    assert settings.orders_since is None
    assert settings.database.sslmode == "verify-full"


def test_restaurant_ids_star_means_every_restaurant():
    assert producer_settings_from({**PRODUCER_ENV, "RESTAURANT_IDS": "*"}).restaurant_ids is None


@pytest.mark.parametrize("value", [None, "", "  ", ","])
def test_restaurant_ids_unset_or_empty_is_an_error_never_all(value):
    env = {**PRODUCER_ENV}
    if value is None:
        del env["RESTAURANT_IDS"]
    else:
        env["RESTAURANT_IDS"] = value
    with pytest.raises(ConfigError, match="RESTAURANT_IDS"):
        producer_settings_from(env)


def test_malformed_restaurant_id_is_named():
    with pytest.raises(ConfigError, match="RESTAURANT_IDS.*'x'"):
        producer_settings_from({**PRODUCER_ENV, "RESTAURANT_IDS": "1,x"})


def test_orders_since_date_means_midnight_utc():
    settings = producer_settings_from({**PRODUCER_ENV, "ORDERS_SINCE": "2026-01-15"})
    assert settings.orders_since == datetime(2026, 1, 15, tzinfo=UTC)


def test_orders_since_datetime_keeps_its_offset():
    settings = producer_settings_from({**PRODUCER_ENV, "ORDERS_SINCE": "2026-01-15T10:00:00+02:00"})
    assert settings.orders_since == datetime(2026, 1, 15, 8, tzinfo=UTC)


def test_malformed_orders_since_is_named():
    with pytest.raises(ConfigError, match="ORDERS_SINCE"):
        producer_settings_from({**PRODUCER_ENV, "ORDERS_SINCE": "last tuesday"})


@pytest.mark.parametrize("name", ["QUEUE_URL", "DATABASE_URL"])
def test_missing_producer_variable_is_named(name):
    env = {key: value for key, value in PRODUCER_ENV.items() if key != name}
    with pytest.raises(ConfigError, match=name.split("_")[0]):
        producer_settings_from(env)


def test_malformed_integer_is_named():
    with pytest.raises(ConfigError, match="MAX_ORDERS_PER_RUN"):
        producer_settings_from({**PRODUCER_ENV, "MAX_ORDERS_PER_RUN": "lots"})


def test_consumer_needs_no_queue_url_and_no_openai_key():
    settings = consumer_settings_from(CONSUMER_ENV)
    assert settings.allowed_buckets == frozenset({"invoices-a", "invoices-b"})
    assert settings.max_image_bytes == 20 * 1024 * 1024
    assert settings.provider("openai").api_key is None


def test_llm_models_are_deduplicated_in_order():
    settings = consumer_settings_from({**CONSUMER_ENV, "LLM_MODELS": "b, a, b"})
    assert settings.llm_models == ("b", "a")


def test_consumer_without_allowed_buckets_is_an_error():
    with pytest.raises(ConfigError, match="ALLOWED_BUCKETS"):
        consumer_settings_from({"DATABASE_URL": PRODUCER_ENV["DATABASE_URL"]})


def test_unknown_sslmode_is_named():
    with pytest.raises(ConfigError, match="DB_SSLMODE"):
        parse_database({**PRODUCER_ENV, "DB_SSLMODE": "prefer"})


def test_secrets_do_not_show_in_repr():
    settings = consumer_settings_from({**CONSUMER_ENV, "OPENAI_API_KEY": "sk-test-do-not-print"})
    assert "sk-test-do-not-print" not in repr(settings)
    assert "app:secret" not in repr(settings.database)


def test_max_items_per_invoice_defaults_to_500_and_is_validated():
    assert consumer_settings_from(CONSUMER_ENV).max_items_per_invoice == 500
    assert consumer_settings_from({**CONSUMER_ENV, "MAX_ITEMS_PER_INVOICE": "40"}).max_items_per_invoice == 40
    with pytest.raises(ConfigError, match="MAX_ITEMS_PER_INVOICE must be >= 1"):
        consumer_settings_from({**CONSUMER_ENV, "MAX_ITEMS_PER_INVOICE": "0"})
    with pytest.raises(ConfigError, match="MAX_ITEMS_PER_INVOICE must be an integer"):
        consumer_settings_from({**CONSUMER_ENV, "MAX_ITEMS_PER_INVOICE": "lots"})


def test_the_maximum_throttle_wait_defaults_to_six_hours_and_a_bad_value_is_named():
    assert consumer_settings_from(CONSUMER_ENV).max_throttle_wait_seconds == 6 * 3600
    assert consumer_settings_from({**CONSUMER_ENV, "MAX_THROTTLE_WAIT_SECONDS": "600"}).max_throttle_wait_seconds == 600
    with pytest.raises(ConfigError, match="MAX_THROTTLE_WAIT_SECONDS"):
        consumer_settings_from({**CONSUMER_ENV, "MAX_THROTTLE_WAIT_SECONDS": "soon"})


def test_pause_and_resume_find_the_schedule_by_name():
    from invoices_cli.settings import operator_settings_from

    settings = operator_settings_from({"SCHEDULE_NAME": "invoice-producer"})
    assert (settings.schedule_name, settings.schedule_group) == ("invoice-producer", "default")


def test_only_the_given_variables_are_read_by_their_documented_names(monkeypatch):
    monkeypatch.setenv("QUEUE_URL", "https://sqs.example/from-the-process")
    env = {key: value for key, value in PRODUCER_ENV.items() if key != "QUEUE_URL"}
    with pytest.raises(ConfigError, match="QUEUE_URL is not set"):
        producer_settings_from({**env, "queue_url": "https://sqs.example/spelled-like-the-field"})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DB_CONNECT_TIMEOUT", "1.5", "DB_CONNECT_TIMEOUT must be an integer, got '1.5'"),
        ("DB_CONNECT_TIMEOUT", "0", "DB_CONNECT_TIMEOUT must be >= 1, got 0"),
        ("DB_SSLMODE", "prefer", "DB_SSLMODE must be verify-full, require or disable, got 'prefer'"),
        ("MODEL_TIMEOUT_SECONDS", "fast", "MODEL_TIMEOUT_SECONDS must be an integer, got 'fast'"),
        ("PROCESSING_LEASE_SECONDS", "59", "PROCESSING_LEASE_SECONDS must be >= 60, got 59"),
        ("CONFIG_ERROR_BACKOFF_SECONDS", "43201", "CONFIG_ERROR_BACKOFF_SECONDS must be <= 43200"),
        ("BEDROCK_MAX_OUTPUT_TOKENS", "10", "BEDROCK_MAX_OUTPUT_TOKENS must be >= 256, got 10"),
    ],
)
def test_each_malformed_consumer_variable_is_named_with_its_value(name, value, message):
    env = {**CONSUMER_ENV, "LLM_MODELS": "gpt-4o-2024-11-20,bedrock/anthropic.claude-3-5-sonnet", name: value}
    with pytest.raises(ConfigError) as error:
        consumer_settings_from(env)
    assert str(error.value).startswith(message)


def test_blank_values_count_as_unset_and_values_are_stripped():
    settings = consumer_settings_from({**CONSUMER_ENV, "MAX_IMAGE_BYTES": "  ", "MAX_RECEIVE_COUNT": " 3 "})
    assert (settings.max_image_bytes, settings.max_receive_count) == (20 * 1024 * 1024, 3)
    assert producer_settings_from({**PRODUCER_ENV, "MAX_QUEUE_DEPTH": " "}).max_queue_depth is None


def test_a_malformed_dsn_is_named_without_quoting_the_password():
    with pytest.raises(ConfigError, match="DATABASE_URL") as error:
        parse_database({"DATABASE_URL": "postgresql://app:pa#ss@db.example.com:5432/orders"})
    assert "pa#ss" not in str(error.value)
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_the_database_url_wins_over_the_secret_and_the_openai_key_over_its_secret():
    database = parse_database({**PRODUCER_ENV, "DB_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:db"})
    assert database.db_secret_arn is None
    key_secret = "arn:aws:secretsmanager:us-east-1:1:secret:k"
    env = {**CONSUMER_ENV, "OPENAI_API_KEY": "sk-test", "OPENAI_SECRET_ARN": key_secret}
    assert consumer_settings_from(env).provider("openai").secret_arn is None
