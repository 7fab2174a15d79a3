"""The producer's remaining-time margin: defaulted, validated like every other setting."""

import pytest

from invoice_pipeline.settings import ConfigError, producer_settings_from

ENV = {"DATABASE_URL": "postgresql://u:p@h/d", "QUEUE_URL": "https://sqs/q", "RESTAURANT_IDS": "*"}


def test_time_margin_defaults_to_thirty_seconds_and_can_be_set():
    assert producer_settings_from(ENV).time_margin_seconds == 30
    assert producer_settings_from({**ENV, "PRODUCER_TIME_MARGIN_SECONDS": "90"}).time_margin_seconds == 90


def test_malformed_time_margin_names_the_variable():
    with pytest.raises(ConfigError, match="PRODUCER_TIME_MARGIN_SECONDS"):
        producer_settings_from({**ENV, "PRODUCER_TIME_MARGIN_SECONDS": "soon"})
