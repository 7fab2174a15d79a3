"""A model without a price costs "unknown", never $0: NULL in the ledger with a warning, "unknown" in the report;
a price set in MODEL_PRICES is used instead, without a release."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from invoice_pipeline.pricing import Price
from tests.integration.cli import run_cli
from tests.integration.consumer.conftest import MODEL, Pipeline, answer, sqs_record

TOMATO = ("Tomato paste", "2", "ctn", "4.500", "9.000")
UNPRICED = "mystery-model"


def extract(pipeline: Pipeline, order_id: int, stamp: int, llm: str) -> None:
    pipeline.add_invoice_order(order_id, [(stamp, answer(TOMATO))])
    assert pipeline.run(sqs_record(json.dumps({"order_id": order_id, "llm": llm}))) == []


def warnings_of(pipeline: Pipeline, order_id: int, llm: str) -> list[dict]:
    rows = pipeline.sql.run(
        "SELECT warnings FROM benchmarking.extraction_jobs WHERE order_id = :o AND llm = :l", o=order_id, l=llm
    )
    return list(rows[0][0])


def test_an_unpriced_models_cost_is_unknown_in_the_ledger_and_the_report(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("LLM_MODELS", f"{MODEL},{UNPRICED}")
    pipeline.new_container()
    extract(pipeline, 4201, 71, UNPRICED)
    extract(pipeline, 4202, 72, MODEL)

    job = pipeline.job(4201, UNPRICED)
    assert job["status"] == "done" and job["cost_usd"] is None and job["input_tokens"] > 0
    assert [w["code"] for w in warnings_of(pipeline, 4201, UNPRICED)] == ["price_unknown"]
    assert pipeline.job(4202)["cost_usd"] > 0
    capsys.readouterr()  # the consumer's metric lines

    code, out = run_cli(capsys, "report", "--format", "json")
    rows = {row["llm"]: row for row in json.loads(out)}
    assert code == 0 and rows[UNPRICED]["cost_usd"] == "unknown" == rows[UNPRICED]["cost_per_invoice_usd"]
    assert rows[UNPRICED]["orders_cost_unknown"] == 1 and Decimal(rows[MODEL]["cost_usd"]) > 0
    assert rows[UNPRICED]["attempts"] == 1 and rows[UNPRICED]["budget_waits"] == 0
    code, out = run_cli(capsys, "report")
    assert "cost: unknown   per invoice: unknown" in out


def test_a_configured_price_is_used_without_a_release(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LLM_MODELS", f"{MODEL},{UNPRICED}")
    monkeypatch.setenv(
        "MODEL_PRICES", json.dumps({UNPRICED: {"input": 1, "output": 4}, MODEL: {"input": 0, "output": 0}})
    )
    pipeline.new_container()  # a new container reads the setting
    extract(pipeline, 4203, 73, UNPRICED)
    extract(pipeline, 4204, 74, MODEL)

    job = pipeline.job(4203, UNPRICED)
    expected = Price(Decimal(1), Decimal(4)).cost(job["input_tokens"], job["output_tokens"])
    assert job["cost_usd"] == expected.quantize(Decimal("0.000001")) > 0
    assert warnings_of(pipeline, 4203, UNPRICED) == []
    assert pipeline.job(4204)["cost_usd"] == 0  # the built-in price overridden
