"""The demo's second row: the model emulator making a vision model's mistakes at the rates it states."""

from __future__ import annotations

import random
from decimal import Decimal

from invoice_pipeline.providers.answer import ModelInvoice
from invoice_pipeline.providers.normalise import normalise
from invoice_pipeline.tables.evidence import line_evidence
from local.demo import demo_models
from local.flawed_model import FLAWED_MODEL, RATES, describe_rates, flawed_answer


def invoices(count: int) -> list[dict]:
    """Invoices of ten lines whose arithmetic holds (quantity 2-9, prices with three decimals)."""
    rng = random.Random(5)
    found = []
    for _ in range(count):
        items = []
        for number in range(10):
            quantity, price = rng.randint(2, 9), Decimal(rng.randint(101, 9999)) / 1000
            items.append(
                {
                    "description": f"Item {number}",
                    "quantity": str(quantity),
                    "unit": "kg",
                    "unit_price": str(price),
                    "line_total": str(quantity * price),
                }
            )
        total = sum(Decimal(item["line_total"]) for item in items)
        found.append({"currency": "KWD", "printed_total": str(total), "items": items})
    return found


def test_mistakes_come_at_the_stated_rates_and_the_checks_catch_them():
    rng = random.Random(1)
    lines = found_doubtful = flawed_lines = 0
    drawn_total: dict[str, int] = {}
    for invoice in invoices(200):
        answer, drawn = flawed_answer(invoice, rng)
        lines += len(invoice["items"])
        for name, count in drawn.items():
            drawn_total[name] = drawn_total.get(name, 0) + count
        read = normalise(ModelInvoice.model_validate(answer), invoice_index=0)
        levels = [found.trust for found in line_evidence(read)]
        found_doubtful += levels.count("doubtful")
        flawed_lines += drawn["misread digit"] + drawn["unit price read as total"]
        assert all(item.page == 1 and item.source_text for item in read.items)
        if drawn["dropped row"]:  # the invoice no longer adds up: none of its lines is verified
            assert "verified" not in levels
    for name, rate in RATES.items():
        assert abs(drawn_total[name] / lines - rate) < 0.02, (name, drawn_total[name], lines)
    # a misread digit or a price read as the total breaks the line's arithmetic (bar a misread trailing zero)
    assert found_doubtful >= 0.8 * flawed_lines
    assert "misread digit 6%" in describe_rates()


def test_the_offline_demo_runs_two_rows_and_says_which_is_not_a_real_model():
    assert demo_models({}, "ocr") == ("ocr-table-v1", FLAWED_MODEL)
    assert demo_models({}, "emulator")[1] == FLAWED_MODEL
    assert demo_models({"LLM_MODELS": "a,b"}, "ocr") == ("a", "b")
    assert demo_models({}, "textract") == ("textract/analyze-expense",)
    assert FLAWED_MODEL.startswith("emulated-")
