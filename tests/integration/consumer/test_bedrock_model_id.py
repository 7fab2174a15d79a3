"""Bedrock answers a wrong model id with a ValidationException: a configuration error (the job waits for a human).
Only the service's own sentence counts: the same words elsewhere in a message (where a request's text can be
echoed) leave the error what it is, permanent for that invoice."""

from __future__ import annotations

import time

import pytest

from invoice_pipeline.clients import AwsClients
from invoice_pipeline.errors import classify
from invoice_pipeline.extractor import InvoiceImages
from invoice_pipeline.providers.registry import Extractors
from invoice_pipeline.settings import consumer_settings
from tests.integration.consumer.test_providers import SAMPLE, arrange, provider


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("The provided model identifier is invalid.", "configuration"),
        (
            "Invocation of model ID anthropic.claude-3-5-haiku-20241022-v1:0 with on-demand throughput isn't "
            "supported. Retry your request with the ID or ARN of an inference profile that contains this model.",
            "configuration",
        ),
        (
            "Malformed input request: #/messages/0/content/0/text: 'The provided model identifier is invalid.'",
            "permanent",
        ),
        (
            "Input is too long for requested model. Text: please use an inference profile with on-demand throughput",
            "permanent",
        ),
    ],
)
def test_only_the_services_own_sentence_makes_a_validation_error_a_configuration_error(
    message: str, kind: str, database: str, sql, aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    with provider("bedrock") as chosen:
        arrange(chosen, sql, monkeypatch)
        chosen.emulator.inject("ValidationException", message=message)
        extractor = Extractors(consumer_settings(), AwsClients()).get(chosen.llm)
        invoice = InvoiceImages(1, 0, extractor.prepare(SAMPLE.data, source="sample"))
        with pytest.raises(Exception) as raised:
            extractor.extract(invoice, deadline=time.monotonic() + 60)
        assert classify(raised.value) == kind, raised.value
