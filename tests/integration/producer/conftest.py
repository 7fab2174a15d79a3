"""Builders for producer tests: orders in the real database, a queue in moto, settings, a Lambda context."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from invoice_pipeline.settings import ProducerSettings, producer_settings_from
from local.orders import create_orders_table, insert_orders

MODELS = ("gpt-4o-2024-11-20", "ocr-rapid")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class FakeLambdaContext:
    """What Powertools and the handler read from the Lambda context; the clock is under the test's control."""

    remaining_ms: Callable[[], int] = lambda: 900_000
    function_name: str = "producer"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:producer"
    aws_request_id: str = "c0ffee00-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms()


@pytest.fixture
def orders(sql):
    """Create the orders table; returns a loader of ``(id, restaurant_id, invoice_image, created_at)`` rows."""
    create_orders_table(sql)

    def load(rows):
        return insert_orders(sql, rows)

    return load


@pytest.fixture
def queue_url(aws) -> str:
    return boto3.client("sqs").create_queue(QueueName="invoice-jobs")["QueueUrl"]


@pytest.fixture
def producer_env(database, queue_url, monkeypatch) -> dict[str, str]:
    env = {
        "DATABASE_URL": database,
        "DB_SSLMODE": "disable",
        "QUEUE_URL": queue_url,
        "LLM_MODELS": ",".join(MODELS),
        "RESTAURANT_IDS": "*",
        "PRODUCER_PAGE_SIZE": "50",
        "MAX_ORDERS_PER_RUN": "100000",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def make_settings(env: dict[str, str], **overrides: str) -> ProducerSettings:
    return producer_settings_from({**env, **overrides})


def drain(queue_url: str) -> list[dict[str, Any]]:
    """Every message body in the queue (received and deleted)."""
    sqs = boto3.client("sqs")
    bodies: list[dict[str, Any]] = []
    while True:
        response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600)
        messages = response.get("Messages", [])
        if not messages:
            return bodies
        bodies.extend(json.loads(message["Body"]) for message in messages)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )


def ledger(sql) -> dict[tuple[int, str], tuple[str, int, Any]]:
    rows = sql.run("SELECT order_id, llm, status, attempts, enqueued_at FROM benchmarking.extraction_jobs")
    return {(order_id, llm): (status, attempts, enqueued_at) for order_id, llm, status, attempts, enqueued_at in rows}


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def settings_for(producer_env) -> Iterator[Callable[..., ProducerSettings]]:
    yield lambda **overrides: make_settings(producer_env, **overrides)
