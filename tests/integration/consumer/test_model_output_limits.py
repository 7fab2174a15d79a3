"""Model output is not trusted as it comes: the real handler, the real SDK against the model emulator, Postgres.

Before the normaliser, a NUL in a description made Postgres refuse the write (SQLSTATE 22021), classified
transient, so the order cost 5 model calls and then failed; "1e308" was stored as 1 and "0x10" as 0.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pg8000.native
import pytest

from invoice_pipeline.errors import classify
from tests.events.builders import sqs_record
from tests.integration.consumer.conftest import MODEL, Pipeline, answer

RICE = ("Rice 5kg", "4", "bag", "3.750", "15.000")


def deliver_until_settled(pipeline: Pipeline, order_id: int, max_receives: int = 5) -> int:
    """Deliver one message the way SQS does (receive 1, 2, ...) until it succeeds; returns the receives used."""
    message = sqs_record({"order_id": order_id, "llm": MODEL})
    for receive in range(1, max_receives + 1):
        message["attributes"]["ApproximateReceiveCount"] = str(receive)
        if pipeline.run(message) == []:
            return receive
    return max_receives


def warnings_of(pipeline: Pipeline, order_id: int) -> list[dict[str, Any]]:
    rows = pipeline.sql.run(
        "SELECT warnings FROM benchmarking.extraction_jobs WHERE order_id = :o AND llm = :l", o=order_id, l=MODEL
    )
    value = rows[0][0]
    return json.loads(value) if isinstance(value, str) else value


def test_a_nul_in_a_description_is_stored_stripped_after_one_model_call(pipeline: Pipeline):
    pipeline.add_invoice_order(8001, [(81, answer(("Tomato\x00 paste", "2", "ctn", "1.250", "2.500"), RICE))])

    assert deliver_until_settled(pipeline, 8001) == 1

    assert pipeline.model.requests == 1
    assert pipeline.job(8001)["status"] == "done"
    assert [row[2] for row in pipeline.items(8001)] == ["Tomato paste", "Rice 5kg"]
    assert [(w["code"], w["line_no"]) for w in warnings_of(pipeline, 8001)] == [("control_characters", 1)]


def test_numbers_that_are_not_plain_decimals_are_stored_as_null_with_a_warning(pipeline: Pipeline):
    lines = [
        ("Huge", "1", "pcs", "2.000", "9" * 200_000),
        ("Exponent", "1", "pcs", "1e308", "1E+5"),
        ("Hex", "0x10", "pcs", "1.000", "16.000"),
    ]
    pipeline.add_invoice_order(8002, [(82, answer(*lines))])

    assert deliver_until_settled(pipeline, 8002) == 1

    assert pipeline.model.requests == 1
    stored = [(row[2], row[3], row[5], row[6]) for row in pipeline.items(8002)]
    assert stored == [
        ("Huge", Decimal(1), Decimal("2.000"), None),
        ("Exponent", Decimal(1), None, None),  # not 1 and 1: never a wrong value
        ("Hex", None, Decimal("1.000"), Decimal("16.000")),  # not 0
    ]
    unreadable = [(w["line_no"], w["message"]) for w in warnings_of(pipeline, 8002) if w["code"] == "unreadable_number"]
    assert [line for line, _ in unreadable] == [1, 2, 2, 3]
    assert "line_total '99999" in unreadable[0][1] and "200000 characters" in unreadable[0][1]
    assert "unit_price '1e308' has an exponent: stored as NULL" in unreadable[1][1]


def test_long_texts_are_capped_and_an_unknown_currency_is_null(pipeline: Pipeline):
    reply = answer(("N" * 5000, "1", "u" * 300, "1.000", "1.000"), currency="K" * 300)
    pipeline.add_invoice_order(8003, [(83, reply)])

    assert deliver_until_settled(pipeline, 8003) == 1

    ((_, _, name, _, unit, _, _, currency),) = pipeline.items(8003)
    assert (len(name), len(unit), currency) == (1000, 50, None)
    codes = [w["code"] for w in warnings_of(pipeline, 8003)]
    assert codes == ["text_truncated", "text_truncated", "unknown_currency"]


def test_more_lines_than_the_cap_fail_the_order_permanently_with_that_reason(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MAX_ITEMS_PER_INVOICE", "3")
    pipeline.add_invoice_order(8004, [(84, answer(RICE, RICE)), (85, answer(RICE, RICE, RICE, RICE))])
    record = sqs_record({"order_id": 8004, "llm": MODEL})

    assert pipeline.run(record) == [record["messageId"]]

    job = pipeline.job(8004)
    assert job["status"] == "failed"
    assert job["last_error"] == "invoice 1 has 4 lines, more than MAX_ITEMS_PER_INVOICE=3"
    assert pipeline.items(8004) == []
    assert pipeline.model.requests == 2  # and no more: the re-deliveries on the way to the DLQ fail fast


def test_every_done_job_stores_its_validation_warnings(pipeline: Pipeline):
    pipeline.add_invoice_order(8005, [(86, answer(RICE))])
    mismatch = ("Oil", "2", "can", "1.500", "4.000")
    pipeline.add_invoice_order(8006, [(87, answer(RICE)), (88, answer(mismatch, currency=None))])

    assert deliver_until_settled(pipeline, 8005) == 1 and deliver_until_settled(pipeline, 8006) == 1

    assert warnings_of(pipeline, 8005) == []  # validated, nothing found (NULL would mean "not validated")
    assert warnings_of(pipeline, 8006) == [
        {
            "code": "line_total_mismatch",
            "invoice_index": 1,
            "line_no": 1,
            "message": "invoice 1 line 1: 2 x 1.500 = 3.00, but the line total is 4.000 (unknown currency, 2 decimals)",
        }
    ]


def test_a_data_exception_from_postgres_is_permanent(sql: pg8000.native.Connection):
    with pytest.raises(pg8000.native.DatabaseError) as refused:
        sql.run("SELECT CAST(:text AS text)", text="nul \x00 inside")
    assert refused.value.args[0]["C"] == "22021"
    assert classify(refused.value) == "permanent"
    with pytest.raises(pg8000.native.DatabaseError) as overflow:
        sql.run("SELECT CAST(:n AS numeric(5, 2))", n="123456")
    assert overflow.value.args[0]["C"] == "22003" and classify(overflow.value) == "permanent"
