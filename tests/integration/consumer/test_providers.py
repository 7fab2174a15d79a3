"""The same contract for every provider (docs/architecture.md §9, §10), through the consumer handler end to end.

Real Postgres, S3 in moto, and each provider's real SDK against its emulator speaking the service's wire protocol:
OpenAI (``local.model_emulator``), Amazon Bedrock Converse and Amazon Textract AnalyzeExpense
(``local.aws_emulators``); plus the offline OCR on a rendered invoice. Each must write the invoice's items, report
tokens and a cost by its own model, and end each of its error classes in the right ledger state: transient ->
``queued`` for a retry, throttled or configuration -> ``queued`` and handed back through a fresh delayed message
(never ``failed``, never the DLQ), permanent -> ``failed``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import boto3
import pytest

from invoice_pipeline.clients import AwsClients
from invoice_pipeline.errors import classify
from invoice_pipeline.extractor import ExtractedItem, InvoiceImages
from invoice_pipeline.providers.registry import Extractors
from invoice_pipeline.settings import consumer_settings
from invoices_cli.accuracy import compare
from local.aws import reset_client_caches
from local.aws_emulators import BedrockEmulator, TextractEmulator
from local.model_emulator import ModelEmulator
from local.samples import generate_invoice
from tests.events.builders import sqs_record
from tests.integration.consumer.conftest import BUCKET, CREATE_ORDERS, Pipeline
from tests.integration.queues import delayed_messages, hidden_for_seconds
from tests.setup_required import require_module

OPENAI_MODEL = "gpt-4o-2024-11-20"
BEDROCK_MODEL = "bedrock/us.anthropic.claude-3-5-haiku-20241022-v1:0"
TEXTRACT_MODEL = "textract/analyze-expense"
OCR_MODEL = "ocr-table-v1"
SAMPLE = generate_invoice("a4_classic", stamp=4242, seed=3, currency="KWD")


@dataclass
class Provider:
    llm: str
    emulator: Any
    env: dict[str, str]


@contextmanager
def provider(name: str) -> Iterator[Provider]:
    if name == "openai":
        with ModelEmulator() as model:
            yield Provider(OPENAI_MODEL, model, {"OPENAI_BASE_URL": model.base_url, "OPENAI_API_KEY": "sk-test"})
    elif name == "bedrock":
        with BedrockEmulator() as runtime:
            yield Provider(BEDROCK_MODEL, runtime, runtime.environment())
    elif name == "textract":
        with TextractEmulator() as service:
            yield Provider(TEXTRACT_MODEL, service, service.environment())
    else:
        require_module("rapidocr", "the OCR extra (requirements-ocr.txt) is not installed")
        yield Provider(OCR_MODEL, None, {})


def arrange(chosen: Provider, sql, monkeypatch) -> Pipeline:
    sql.run(CREATE_ORDERS)
    for name, value in {
        "ALLOWED_BUCKETS": BUCKET,
        "LLM_MODELS": chosen.llm,
        "MAX_RECEIVE_COUNT": "5",
        "MAX_IMAGE_BYTES": "5000000",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "InvoicePipelineTest",
        **chosen.env,
    }.items():
        monkeypatch.setenv(name, value)
    reset_client_caches()
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    return Pipeline(sql, s3, chosen.emulator)


@pytest.fixture
def run(request, database, sql, aws, monkeypatch) -> Iterator[tuple[Pipeline, Provider]]:
    with provider(request.param) as chosen:
        yield arrange(chosen, sql, monkeypatch), chosen
        reset_client_caches()


def add_sample_order(pipeline: Pipeline, order_id: int) -> None:
    if pipeline.model is not None:
        pipeline.model.register(SAMPLE.stamp, SAMPLE.answer)
    pipeline.add_order(order_id, pipeline.put_image(f"orders/{order_id}/{SAMPLE.filename}", SAMPLE.data))


def stored_items(pipeline: Pipeline, order_id: int, llm: str) -> list[ExtractedItem]:
    return [
        ExtractedItem(description=name, quantity=qty, unit=uom, unit_price=price, line_total=net)
        for _, _, name, qty, uom, price, net, _ in pipeline.items(order_id, llm)
    ]


@pytest.mark.parametrize("run", ["openai", "bedrock", "textract", "ocr"], indirect=True)
def test_each_provider_writes_the_invoice_items_with_its_tokens_and_cost(run):
    pipeline, chosen = run
    add_sample_order(pipeline, 501)

    assert pipeline.run(sqs_record({"order_id": 501, "llm": chosen.llm})) == []

    job = pipeline.job(501, chosen.llm)
    assert job["status"] == "done" and job["invoice_count"] == 1
    items = stored_items(pipeline, 501, chosen.llm)
    truth = list(SAMPLE.truth.items)
    if chosen.llm == OCR_MODEL:
        assert compare(truth, items).f1 >= 0.9  # a real reader: the accuracy floor, not perfection
        assert (job["input_tokens"], job["output_tokens"], job["cost_usd"]) == (0, 0, 0)
        return
    if chosen.llm == TEXTRACT_MODEL:
        # Textract has no unit-of-measure field: everything else of every line is read.
        truth = [ExtractedItem(t.description, t.quantity, None, t.unit_price, t.line_total) for t in truth]
        assert (job["input_tokens"], job["output_tokens"]) == (0, 0)
        assert job["cost_usd"] == Decimal("0.010000")  # one page at AnalyzeExpense's published USD 0.01 per page
    elif chosen.llm == BEDROCK_MODEL:
        assert job["input_tokens"] > 1000 and job["output_tokens"] > 0  # an A4 page is about 1,500 image tokens
        # Claude 3.5 Haiku on Bedrock, published on-demand price: USD 0.80 per 1M input tokens, 4.00 per 1M output.
        expected = (Decimal("0.80") * job["input_tokens"] + Decimal("4.00") * job["output_tokens"]) / 10**6
        assert job["cost_usd"] == expected.quantize(Decimal("0.000001")) > 0
    else:
        assert job["input_tokens"] > 1105 and job["output_tokens"] > 0
        expected = (Decimal("2.50") * job["input_tokens"] + Decimal("10.00") * job["output_tokens"]) / 10**6
        assert job["cost_usd"] == expected.quantize(Decimal("0.000001"))
    assert items == truth
    assert pipeline.model.requests_by_stamp == {SAMPLE.stamp: 1}


# provider -> (fault injected, what it is, the job's status afterwards)
ERROR_CONTRACT = {
    "openai": [
        ("rate_limit", "throttled", "queued"),
        ("server_error", "transient", "queued"),
        ("refusal", "permanent", "failed"),
        ("insufficient_quota", "permanent", "failed"),
        ("invalid_api_key", "configuration", "queued"),
    ],
    "bedrock": [
        ("ThrottlingException", "throttled", "queued"),
        ("ServiceUnavailableException", "transient", "queued"),
        ("ModelTimeoutException", "transient", "queued"),
        ("ModelNotReadyException", "transient", "queued"),
        ("ValidationException", "permanent", "failed"),
        ("content_filtered", "permanent", "failed"),
        ("max_tokens", "permanent", "failed"),
        ("AccessDeniedException", "configuration", "queued"),
        ("ResourceNotFoundException", "configuration", "queued"),
    ],
    "textract": [
        ("ProvisionedThroughputExceededException", "throttled", "queued"),
        ("ThrottlingException", "throttled", "queued"),
        ("InternalServerError", "transient", "queued"),
        ("UnsupportedDocumentException", "permanent", "failed"),
        ("BadDocumentException", "permanent", "failed"),
        ("DocumentTooLargeException", "permanent", "failed"),
        ("AccessDeniedException", "configuration", "queued"),
    ],
}
CASES = [
    pytest.param(name, fault, kind, status, id=f"{name}-{fault}")
    for name, rows in ERROR_CONTRACT.items()
    for fault, kind, status in rows
]
# The delay of a throttled job's fresh message: the wait the provider named plus 0-20 % jitter, rounded up, at least
# 1 s. The OpenAI emulator names 10 ms (``retry-after-ms``); the AWS emulators name none, so the wait is the first
# transient backoff, RETRY_BACKOFF_BASE_SECONDS (30) +-20 %: 24-36 s, then the jitter: 24-44 s.
THROTTLE_DELAY_SECONDS = {"openai": range(1, 2), "bedrock": range(24, 45), "textract": range(24, 45)}
CONFIG_ERROR_BACKOFF_SECONDS = 900  # the default; also the most SendMessage's DelaySeconds takes


@pytest.mark.parametrize(("name", "fault", "kind", "status"), CASES)
def test_each_provider_error_maps_to_its_class_and_ends_in_the_right_ledger_state(
    name, fault, kind, status, database, sql, aws, monkeypatch
):
    with provider(name) as chosen:
        pipeline = arrange(chosen, sql, monkeypatch)
        add_sample_order(pipeline, 601)
        chosen.emulator.inject(fault)  # every request, retries included

        # What the provider raises, classified as the consumer does.
        extractor = Extractors(consumer_settings(), AwsClients()).get(chosen.llm)
        prepared = InvoiceImages(601, 0, extractor.prepare(SAMPLE.data, source="sample"))
        with pytest.raises(Exception) as raised:
            extractor.extract(prepared, deadline=time.monotonic() + 60)
        assert classify(raised.value) == kind, raised.value

        # The same failure through the handler, on the first receive.
        body = {"order_id": 601, "llm": chosen.llm}
        message = sqs_record(body)
        failed = pipeline.run(message)
        job = pipeline.job(601, chosen.llm)
        assert pipeline.items(601, chosen.llm) == []
        assert job["status"] == status and job["last_error"], job
        if kind == "throttled":
            # Handed back: this record acknowledged (so it never walks to the DLQ), one fresh delayed copy queued.
            assert failed == []
            assert pipeline.queue.depth() == (0, 0, 1)
            [fresh] = delayed_messages()
            assert json.loads(fresh.body) == body
            assert fresh.delay_seconds in THROTTLE_DELAY_SECONDS[name], fresh
        elif kind == "configuration":
            # Not the last receive: the record fails and stays away CONFIG_ERROR_BACKOFF_SECONDS, not the 1800 s of
            # visibility it was received with.
            assert failed == [message["messageId"]]
            assert pipeline.queue.depth() == (0, 1, 0)
            assert CONFIG_ERROR_BACKOFF_SECONDS - 60 < hidden_for_seconds(pipeline.delivered[0]["receiptHandle"]) <= 900
            # The last receive: acknowledged, and the job handed back through a fresh message delayed as long.
            last = sqs_record(body, receive_count=5)
            assert pipeline.run(last) == []
            assert pipeline.job(601, chosen.llm)["status"] == "queued"
            assert pipeline.queue.depth() == (0, 1, 1)  # the first record still in flight, and the fresh copy
            assert [(json.loads(m.body), m.delay_seconds) for m in delayed_messages()] == [
                (body, CONFIG_ERROR_BACKOFF_SECONDS)
            ]
        else:
            assert failed == [message["messageId"]]
        reset_client_caches()
