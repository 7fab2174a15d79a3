"""Each handler builds its runtime once per container and passes it down; containers share nothing via the domain."""

from __future__ import annotations

import pytest

from invoice_pipeline.clients import AwsClients, ClientConfig
from invoice_pipeline.flows.consume import build_runtime
from invoice_pipeline.providers.registry import Extractors
from invoice_pipeline.settings import consumer_settings_from
from local.event_source import fresh_handler

ENV = {
    "DATABASE_URL": "postgresql://u:p@db.internal/d",
    "ALLOWED_BUCKETS": "invoices",
    "LLM_MODELS": "gpt-4o,ocr-table-v1",
    "OPENAI_API_KEY": "sk-unit",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def test_a_container_builds_its_runtime_once_and_another_container_builds_its_own(
    environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_container = fresh_handler("consumer", "runtime")()
    runtime = first_container()
    assert first_container() is runtime  # warm invocations reuse it

    monkeypatch.setenv("MAX_IMAGE_BYTES", "1234")
    second = fresh_handler("consumer", "runtime")()()
    assert second is not runtime and second.pool is not runtime.pool
    assert second.settings.max_image_bytes == 1234  # a new container reads the environment as it is then
    assert first_container().settings.max_image_bytes != 1234  # a warm one keeps what it started with


def test_the_producer_runtime_is_built_once_per_container(environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/invoices-work")
    monkeypatch.setenv("RESTAURANT_IDS", "1,2")
    runtime = fresh_handler("producer", "runtime")()
    assert runtime() is runtime()
    assert runtime().settings.queue_url.endswith("/invoices-work")


def test_extractors_are_made_once_per_model_within_a_runtime_and_not_shared_between_runtimes() -> None:
    settings = consumer_settings_from(ENV)
    extractors = Extractors(settings, AwsClients())
    assert extractors.get("gpt-4o") is extractors.get("gpt-4o")
    assert extractors.get("gpt-4o") is not extractors.get("ocr-table-v1")
    assert Extractors(settings, AwsClients()).get("gpt-4o") is not extractors.get("gpt-4o")


def test_aws_clients_are_kept_per_service_and_configuration(environment: None) -> None:
    clients = AwsClients()
    assert clients.get("sqs") is clients.get("sqs")
    assert clients.get("sqs") is not clients.get("sqs", ClientConfig(read_timeout=5))
    assert clients.get("sqs") is not AwsClients().get("sqs")


def test_a_runtime_connects_nothing_until_a_record_needs_it(environment: None) -> None:
    deps = build_runtime(consumer_settings_from(ENV))  # db.internal does not resolve: building must not connect
    assert deps.settings.llm_models == ("gpt-4o", "ocr-table-v1")
