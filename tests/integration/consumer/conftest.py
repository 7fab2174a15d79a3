"""Fixtures for the consumer: an `orders` table, an S3 bucket and the work queue in moto, the model emulator, and a
batch runner that delivers each record as a real message of that queue (its SQS calls act on a real message).

Every test here fails when the handler logs an SQS error and carries on (``sqs_errors`` in ``tests/conftest.py``)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pg8000.native
import pytest
from PIL import Image

from local.aws import reset_client_caches
from local.event_source import fresh_handler
from local.model_emulator import ModelEmulator
from local.stamp import draw_stamp
from tests.conftest import SwallowedSqsErrors
from tests.events.builders import WORK_QUEUE, sqs_event, sqs_record
from tests.integration.queues import MAX_RECEIVE_COUNT, WorkQueue

BUCKET = "invoices-test"
MODEL = "gpt-4o-2024-11-20"
OTHER_MODEL = "gpt-4.1-mini"

CREATE_ORDERS = """
CREATE TABLE orders (
    id bigint PRIMARY KEY, restaurant_id bigint, invoice_image text, created_at timestamptz DEFAULT now()
)
"""


@dataclass
class LambdaContext:
    remaining_ms: int = 300_000
    function_name: str = "consumer"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:consumer"
    aws_request_id: str = "test-request"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def invoice_image(stamp: int, *, width: int = 1240, height: int = 1754, fmt: str = "PNG") -> bytes:
    page = Image.new("RGB", (width, height), "white")
    draw_stamp(page, stamp, left=40, top=40, unit=4, height=60)
    buffer = io.BytesIO()
    page.save(buffer, format=fmt)
    return buffer.getvalue()


def answer(*lines: tuple[str, str, str, str, str], currency: str | None = "KWD") -> dict[str, Any]:
    return {
        "currency": currency,
        "printed_total": None,
        "items": [
            {"description": d, "quantity": q, "unit": u, "unit_price": p, "line_total": t} for d, q, u, p, t in lines
        ],
    }


class Pipeline:
    """Arrange orders and images, run the real handler on SQS events, read the ledger and items back."""

    def __init__(self, sql: pg8000.native.Connection, s3: Any, model: Any, queue: WorkQueue | None = None) -> None:
        self.sql, self.s3, self.model = sql, s3, model
        self.queue = queue or WorkQueue()
        self.delivered: list[dict[str, Any]] = []  # the records of the last run, as delivered
        self._handler: Any = None

    def new_container(self) -> None:
        """The next run starts a fresh container: a new runtime, with the environment as it is then."""
        self._handler = None

    def put_image(self, key: str, data: bytes) -> str:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=data)
        return f"s3://{BUCKET}/{key}"

    def add_order(self, order_id: int, invoice_image: str | None, restaurant_id: int = 1) -> None:
        self.sql.run(
            "INSERT INTO orders (id, restaurant_id, invoice_image) VALUES (:id, :r, :img)",
            id=order_id,
            r=restaurant_id,
            img=invoice_image,
        )

    def add_invoice_order(self, order_id: int, stamps_and_answers: list[tuple[int, dict[str, Any]]]) -> None:
        urls = []
        for stamp, reply in stamps_and_answers:
            self.model.register(stamp, reply)
            urls.append(self.put_image(f"orders/{order_id}/{stamp}.png", invoice_image(stamp)))
        self.add_order(order_id, json.dumps(urls))

    def run(self, *records: dict[str, Any], remaining_ms: int = 300_000) -> list[str]:
        """Deliver the records through the work queue and invoke the handler; the records it did not report failed
        are deleted from the queue, as the event source does. Returns the message ids in batchItemFailures."""
        if self._handler is None:  # one warm container for the test, started on its first run
            self._handler = fresh_handler("consumer")()
        self.delivered = [self.queue.deliver(record) for record in records]
        response = self._handler(sqs_event(*self.delivered), LambdaContext(remaining_ms=remaining_ms))
        failed = [failure["itemIdentifier"] for failure in response["batchItemFailures"]]
        for record in self.delivered:
            if record["messageId"] not in failed and record["eventSourceARN"].endswith(f":{WORK_QUEUE}"):
                self.queue.acknowledge(record)
        return failed

    def job(self, order_id: int, llm: str = MODEL) -> dict[str, Any] | None:
        rows = self.sql.run(
            "SELECT status, attempts, last_error, invoice_count, item_count, input_tokens, output_tokens, cost_usd,"
            " started_at, finished_at FROM benchmarking.extraction_jobs WHERE order_id = :o AND llm = :l",
            o=order_id,
            l=llm,
        )
        if not rows:
            return None
        names = [column["name"] for column in self.sql.columns]
        return dict(zip(names, rows[0], strict=True))

    def jobs_count(self) -> int:
        return int(self.sql.run("SELECT count(*) FROM benchmarking.extraction_jobs")[0][0])

    def items(self, order_id: int, llm: str = MODEL) -> list[tuple[Any, ...]]:
        rows = self.sql.run(
            "SELECT invoice_index, line_no, item_name, qty, uom, unit_price, net_price, currency"
            " FROM benchmarking.invoice_items WHERE order_id = :o AND llm = :l ORDER BY invoice_index, line_no",
            o=order_id,
            l=llm,
        )
        return [tuple(row) for row in rows]


@pytest.fixture(autouse=True)
def _swallowed_sqs_errors_fail_the_test(sqs_errors: SwallowedSqsErrors) -> SwallowedSqsErrors:
    return sqs_errors


@pytest.fixture
def model() -> Iterator[ModelEmulator]:
    with ModelEmulator() as emulator:
        yield emulator


@pytest.fixture
def pipeline(
    database: str, sql: pg8000.native.Connection, aws: Any, model: ModelEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Pipeline]:
    sql.run(CREATE_ORDERS)
    monkeypatch.setenv("ALLOWED_BUCKETS", f"{BUCKET},another-allowed")
    monkeypatch.setenv("LLM_MODELS", f"{MODEL},{OTHER_MODEL}")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", model.base_url)
    monkeypatch.setenv("MAX_RECEIVE_COUNT", str(MAX_RECEIVE_COUNT))
    monkeypatch.setenv("MAX_IMAGE_BYTES", "2000000")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "InvoicePipelineTest")
    reset_client_caches()
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    yield Pipeline(sql, s3, model)
    reset_client_caches()


__all__ = ["MAX_RECEIVE_COUNT", "MODEL", "OTHER_MODEL", "Pipeline", "answer", "invoice_image", "sqs_record"]
