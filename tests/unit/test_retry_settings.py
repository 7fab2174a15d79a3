"""RETRY_BACKOFF_BASE_SECONDS and MODEL_TIMEOUT_SECONDS: defaults, validation, and their effect."""

from __future__ import annotations

import pytest

from invoice_pipeline.flows.visibility import backoff_seconds
from invoice_pipeline.providers.openai_extractor import request_budget
from invoice_pipeline.settings import ConfigError, consumer_settings_from

BASE_ENV = {"DATABASE_URL": "postgresql://u:p@h/d", "ALLOWED_BUCKETS": "b"}


def test_defaults_are_thirty_seconds_of_backoff_and_two_minutes_per_model_request() -> None:
    settings = consumer_settings_from(BASE_ENV)
    assert settings.retry_backoff_base_seconds == 30
    assert settings.model_timeout_seconds == 120


def test_both_are_read_from_the_environment() -> None:
    settings = consumer_settings_from({**BASE_ENV, "RETRY_BACKOFF_BASE_SECONDS": "1", "MODEL_TIMEOUT_SECONDS": "3"})
    assert settings.retry_backoff_base_seconds == 1
    assert settings.model_timeout_seconds == 3


@pytest.mark.parametrize("name", ["RETRY_BACKOFF_BASE_SECONDS", "MODEL_TIMEOUT_SECONDS"])
@pytest.mark.parametrize("value", ["0", "soon"])
def test_a_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        consumer_settings_from({**BASE_ENV, name: value})


def test_backoff_doubles_from_the_configured_base() -> None:
    assert [backoff_seconds(1, 1), backoff_seconds(2, 1)] == [1, 2]
    assert 6 <= backoff_seconds(4, 1) <= 10  # 8 s +-20 %
    assert 24 <= backoff_seconds(1) <= 36  # the default base


def test_the_model_timeout_caps_each_attempt_but_not_the_retries() -> None:
    assert request_budget(900, max_timeout=3) == (3, 2)
    assert request_budget(900) == (120, 2)
