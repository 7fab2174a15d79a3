"""The workbench's pure parts: the editor form, the page filter, arithmetic marks, the plots."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest

from invoice_pipeline.extractor import ExtractedInvoice, ExtractedItem
from invoices_cli.workbench import plots
from invoices_cli.workbench.app import BadRequest, arithmetic_marks, parse_filter, parse_ground_truth_form


def form(*lines: tuple[str, str, str, str, str, str], **extra: list[str]) -> dict[str, list[str]]:
    names = ("invoice_index", "description", "quantity", "unit", "unit_price", "line_total")
    return {name: [line[position] for line in lines] for position, name in enumerate(names)} | extra


def test_editor_lines_become_invoices_in_order_and_blank_lines_are_dropped() -> None:
    parsed = parse_ground_truth_form(
        form(
            ("1", "Lemons", "2", "kg", "1.5", "3.00"),
            ("0", "Rice", "1", "", "", "4"),
            ("0", "", "", "", "", ""),
            ("0", "Oil", "", "l", "", ""),
            currency_0=["KWD"],
        )
    )
    assert [(invoice.invoice_index, invoice.currency) for invoice in parsed] == [(0, "KWD"), (1, None)]
    assert parsed[0].items == (
        ExtractedItem("Rice", Decimal(1), None, None, Decimal(4)),
        ExtractedItem("Oil", None, "l", None, None),
    )
    assert parsed[1].items[0].line_total == Decimal("3.00")


@pytest.mark.parametrize(
    ("quantity", "message"),
    [("two", "line 1 quantity: 'two' is not a number"), ("1e9", "not a plain decimal"), ("NaN", "not a plain")],
)
def test_an_unreadable_number_names_the_line_and_field(quantity: str, message: str) -> None:
    with pytest.raises(BadRequest, match=re.escape(message)):
        parse_ground_truth_form(form(("0", "Rice", quantity, "kg", "1", "1")))


def test_misaligned_form_fields_are_refused() -> None:
    broken = form(("0", "Rice", "1", "kg", "1", "1"))
    broken["unit"] = []
    with pytest.raises(BadRequest, match="do not line up"):
        parse_ground_truth_form(broken)


def test_the_filter_reads_restaurants_dates_and_models() -> None:
    scope = parse_filter({"restaurant": ["7", ""], "since": ["2026-11-01"], "until": [""], "llm": ["a", "b"]})
    assert (scope.restaurant_ids, scope.since, scope.until, scope.llms) == ((7,), date(2026, 11, 1), None, ("a", "b"))
    with pytest.raises(BadRequest, match="restaurant must be an id"):
        parse_filter({"restaurant": ["x"]})


def test_lines_that_break_arithmetic_are_marked() -> None:
    invoice = ExtractedInvoice(
        0,
        "USD",
        None,
        (
            ExtractedItem("Rice", Decimal(2), "kg", Decimal("1.50"), Decimal("3.00")),
            ExtractedItem("Oil", Decimal(2), "l", Decimal("4.00"), Decimal("9.00")),
            ExtractedItem("Salt", Decimal(1), "kg", Decimal("1.00"), None),
        ),
    )
    marks = arithmetic_marks([invoice])
    assert set(marks) == {(0, 2), (0, 3)} and "2 x 4.00" in marks[(0, 2)]


def test_plots_are_svg_with_escaped_labels_and_no_external_reference() -> None:
    row = {
        "llm": "<b>model</b>",
        "cost_per_invoice_usd": "0.010000",
        "accuracy_f1": 0.9,
        "agreement_f1": {"other": 0.75},
        "agreement_orders": 3,
        "items_per_invoice": {"0": 0, "1-4": 3},
    }
    other = {**row, "llm": "other", "agreement_f1": {"<b>model</b>": 0.75}}
    for svg in (plots.accuracy_vs_cost([row]), plots.agreement_matrix([row, other]), plots.items_per_invoice([row])):
        assert svg.startswith("<svg") and "<b>" not in svg and "&lt;b&gt;" in svg
        assert set(re.findall(r"https?://[^'\"]+", svg)) == {"http://www.w3.org/2000/svg"}
    assert "0.750" in plots.agreement_matrix([row, other])
    assert "needs at least two models" in plots.agreement_matrix([row])
