"""The calibration table of ``bench/real_documents.py``: trust level x fully right, per set and pass."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from bench.trust_calibration import Calibrations
from invoice_pipeline.extractor import ExtractedInvoice, ExtractedItem

# the scorer's interface (the set's score.py): pairs by equal description here
SCORE = SimpleNamespace(
    FIELDS=("quantity", "unit_price", "line_total"),
    match_lines=lambda expected, predicted: [
        (i, j) for i, e in enumerate(expected) for j, p in enumerate(predicted) if e["description"] == p["description"]
    ],
    num_eq=lambda a, b: a is not None and b is not None and Decimal(a) == Decimal(b),
)


def line(description: str, quantity: str | None, price: str | None, total: str) -> ExtractedItem:
    number = lambda text: None if text is None else Decimal(text)  # noqa: E731
    return ExtractedItem(description, number(quantity), None, number(price), Decimal(total))


def test_the_table_counts_each_level_right_and_wrong_and_the_targets():
    truth = {
        "items": [
            {"description": d, "quantity": q, "unit_price": p, "line_total": t}
            for d, q, p, t in (("Rice", "2", "3.75", "7.50"), ("Oil", "1", "2.00", "2.00"), ("Salt", "1", "1", "1"))
        ]
    }
    read = ExtractedInvoice(
        0,
        "EUR",
        Decimal("10.50"),
        (line("Rice", "2", "3.75", "7.50"), line("Oil", "1", "2.50", "2.00"), line("Fee", None, None, "1.00")),
    )
    calibrations = Calibrations()
    calibrations.add("set", "pdf", SCORE, truth, read, "doc")
    calibrations.add("set", "receipt", SCORE, {"items": None, "item_count": 3}, read, "receipt")  # no line labels
    [(key, table)] = calibrations.by_key.items()
    assert key == ("set", "pdf")
    # Rice: verified and right; Oil: arithmetic fails -> doubtful, wrong; Fee: only a total, the invoice adds up
    assert dict(table.counts) == {("verified", True): 1, ("doubtful", False): 1, ("plausible", False): 1}
    assert (table.labelled, table.missed) == (3, 1)
    assert (table.verified_precision(), table.verified_coverage(), table.doubtful_share_of_wrong()) == (1.0, 1 / 3, 0.5)
    printed = "\n".join(table.table("set pdf"))
    assert "verified fully right 1.000 (target >= 0.99), verified covers 0.333" in printed
