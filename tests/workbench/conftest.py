"""Two models on the same sample orders, with ground truth for some: what the workbench tests look at.

Real Postgres (the suite's embedded server), real S3 objects in moto (the sample invoice images), items written
by the consumer's own ``items.write_order`` after a real claim. Model A ("gpt-4o-2024-11-20") returns every
order's lines exactly; model B ("ocr-table-v1") gets order 2's first quantity wrong, misses order 3's last line,
and fails order 5. Orders 1-3 have ground truth; 4 and 5 do not.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import boto3
import pg8000.native
import pytest

from invoice_pipeline.extractor import ExtractedInvoice
from invoice_pipeline.tables import db, items, ledger
from invoices_cli import ground_truth
from local.orders import create_orders_table, insert_orders
from local.runtime import upload_samples
from local.samples import SampleOrder, generate_orders

MODEL_A = "gpt-4o-2024-11-20"
MODEL_B = "ocr-table-v1"
BUCKET = "invoice-images"
TRUTH_ORDERS = (1, 2, 3)
FAILED_B = 5
RESTAURANT_OF = {1: 101, 2: 101, 3: 102, 4: 102, 5: 101}
MODEL_MS = {MODEL_A: (900, 1100, 1000, 1300, 1200), MODEL_B: (200, 400, 300, 500)}


@dataclass(frozen=True)
class TwoModels:
    samples: list[SampleOrder]
    truth: dict[int, list[ExtractedInvoice]]
    predicted: dict[tuple[int, str], list[ExtractedInvoice]]


@functools.cache
def _samples() -> list[SampleOrder]:
    """Drawing the invoices takes seconds: once per session (they are deterministic)."""
    return generate_orders(5, seed=11)


def _model_b(order_id: int, invoices: list[ExtractedInvoice]) -> list[ExtractedInvoice]:
    first = invoices[0]
    lines = list(first.items)
    if order_id == 2:
        lines[0] = dataclasses.replace(lines[0], quantity=(lines[0].quantity or Decimal(0)) + 1)
    if order_id == 3:
        lines = lines[:-1]
    return [dataclasses.replace(first, items=tuple(lines)), *invoices[1:]]


def _claim_and_write(
    connection: pg8000.native.Connection, order_id: int, llm: str, invoices: list[ExtractedInvoice], model_ms: int
) -> None:
    claim = ledger.claim_job(connection, order_id, llm, message_id=f"m-{order_id}-{llm}", lease_seconds=600)
    priced = (
        [
            dataclasses.replace(invoice, input_tokens=1000, output_tokens=100, cost_usd=Decimal("0.01"))
            for invoice in invoices
        ]
        if llm == MODEL_A
        else invoices
    )
    written = items.write_order(connection, order_id, llm, attempt=claim.attempt, invoices=priced, model_ms=model_ms)
    assert written.job_completed


@pytest.fixture
def two_models(database: str, aws: object) -> Iterator[TwoModels]:
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    samples = _samples()
    images = upload_samples(samples, BUCKET)
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    truth = {order_id: [invoice.truth for invoice in order.invoices] for order_id, order in enumerate(samples, 1)}
    predicted: dict[tuple[int, str], list[ExtractedInvoice]] = {}
    with db.pool.connection() as connection:
        create_orders_table(connection)
        insert_orders(
            connection,
            [
                (order_id, RESTAURANT_OF[order_id], images[order_id], now + timedelta(days=order_id))
                for order_id in truth
            ],
        )
        ground_truth.load_ground_truth(connection, {order_id: truth[order_id] for order_id in TRUTH_ORDERS})
        for order_id, invoices in truth.items():
            predicted[(order_id, MODEL_A)] = invoices
            _claim_and_write(connection, order_id, MODEL_A, invoices, MODEL_MS[MODEL_A][order_id - 1])
            if order_id == FAILED_B:
                claim = ledger.claim_job(connection, order_id, MODEL_B, message_id="m-failed", lease_seconds=600)
                ledger.fail_job(
                    connection, order_id, MODEL_B, attempt=claim.attempt, last_error="not an image", message_id=None
                )
                continue
            predicted[(order_id, MODEL_B)] = _model_b(order_id, invoices)
            _claim_and_write(
                connection, order_id, MODEL_B, predicted[(order_id, MODEL_B)], MODEL_MS[MODEL_B][order_id - 1]
            )
        # Validation warnings as the consumer stores them (extraction_jobs.warnings): one order of model B.
        connection.run(
            "UPDATE benchmarking.extraction_jobs SET warnings = CAST(:w AS jsonb) WHERE llm = :llm",
            w="[]",
            llm=MODEL_A,
        )
        connection.run(
            "UPDATE benchmarking.extraction_jobs SET warnings = CAST(:w AS jsonb) WHERE llm = :llm AND status = 'done'",
            w="[]",
            llm=MODEL_B,
        )
        connection.run(
            "UPDATE benchmarking.extraction_jobs SET warnings = CAST(:w AS jsonb) WHERE llm = :llm AND order_id = 2",
            w='[{"code": "line_total_mismatch", "invoice_index": 0, "line_no": 1, "message": "invoice 0 line 1: off"}]',
            llm=MODEL_B,
        )
    db.pool.discard()
    yield TwoModels(samples, truth, predicted)
