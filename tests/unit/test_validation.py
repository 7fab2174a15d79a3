"""Arithmetic validation of extracted invoices."""

import json
from decimal import Decimal

from invoice_pipeline.extractor import ExtractedInvoice, ExtractedItem
from invoice_pipeline.reading.validation import check, validate, validate_order, warnings_json
from local.samples import generate_orders

D = Decimal


def item(quantity, unit_price, line_total, description="Tomatoes"):
    def number(value):
        return None if value is None else D(value)

    return ExtractedItem(description, number(quantity), "kg", number(unit_price), number(line_total))


def invoice(*items, currency="USD", total=None, index=0):
    return ExtractedInvoice(index, currency, None if total is None else D(total), tuple(items))


def codes(inv):
    return [(warning.code, warning.line_no) for warning in check(inv)]


def test_a_consistent_invoice_has_no_warnings():
    assert validate(invoice(item("2", "1.25", "2.50"), item("3", "0.99", "2.97"), total="5.47")) == []


def test_every_generated_sample_passes():
    for order in generate_orders(6, seed=21):
        for sample in order.invoices:
            assert validate(sample.truth) == [], sample.kind


def test_a_wrong_line_total_is_named_by_invoice_and_line():
    warnings = validate(invoice(item("2", "1.25", "2.50"), item("3", "0.99", "3.97"), total="6.47", index=2))
    assert warnings == ["invoice 2 line 2: 3 x 0.99 = 2.97, but the line total is 3.97 (USD, 2 decimals)"]


def test_rounding_within_one_unit_of_the_last_place_is_accepted():
    # 1.5 x 0.271 = 0.4065 printed as 0.407 (half-up) or even 0.406 (half-down): both are rounding.
    assert codes(invoice(item("1.5", "0.271", "0.407"), currency="KWD")) == []
    assert codes(invoice(item("1.5", "0.271", "0.406"), currency="KWD")) == []
    assert codes(invoice(item("1.5", "0.271", "0.409"), currency="KWD")) == [("line_total_mismatch", 1)]


def test_three_decimal_currencies_are_checked_at_the_fils():
    # 0.005 off is a real error in BHD although it would be rounding in a 2-decimal currency
    assert codes(invoice(item("1", "2.500", "2.505"), currency="BHD")) == [("line_total_mismatch", 1)]
    assert codes(invoice(item("1", "2.500", "2.505"), currency="USD")) == [
        ("too_many_decimals", 1),
    ]


def test_zero_decimal_currencies_are_checked_in_whole_units():
    assert codes(invoice(item("3", "333.5", "1001"), currency="JPY", total="1001")) == []
    assert codes(invoice(item("3", "340", "1001"), currency="JPY")) == [("line_total_mismatch", 1)]
    assert codes(invoice(item("1", "10.5", "10.50"), currency="JPY")) == [("too_many_decimals", 1)]


def test_the_sum_allows_per_line_rounding_but_not_a_real_difference():
    lines = [item("1", "0.333", "0.33") for _ in range(6)]
    assert codes(invoice(*lines, total="1.98")) == []
    assert codes(invoice(*lines, total="2.00")) == []  # computed from unrounded amounts: 6 x 0.333 = 1.998
    assert codes(invoice(*lines, total="2.10")) == [("total_mismatch", None)]
    message = validate(invoice(*lines, total="2.10"))[0]
    assert message == "invoice 0: the 6 line totals add up to 1.98, but the printed total is 2.10 (USD, 2 decimals)"


def test_missing_values_skip_checks_without_crashing():
    inv = invoice(item(None, "1.00", "5.00"), item("2", None, "3.00"), item("2", "1.5", None), item(None, None, None))
    assert codes(inv) == [("missing_line_total", 3), ("missing_line_total", 4)]
    # the sum is not checked while a line total is missing
    assert "total_mismatch" not in {code for code, _ in codes(invoice(item("1", "1", None), total="99"))}


def test_an_empty_invoice_is_reported_and_unknown_currency_means_two_decimals():
    assert codes(invoice(currency=None)) == [("no_items", None)]
    assert validate(invoice(currency=None, total="10.00")) == ["invoice 0: no line items"]
    assert codes(invoice(item("1", "1.005", "1.005"), currency=None)) == [("too_many_decimals", 1)]


def test_a_printed_total_with_too_many_decimals_is_reported():
    assert codes(invoice(item("1", "2", "2.00"), total="2.001")) == [("too_many_decimals", None)]


def test_order_warnings_serialise_for_the_ledger():
    warnings = validate_order([invoice(item("1", "1", "1")), invoice(item("2", "2", "5"), index=1, currency="KWD")])
    stored = json.loads(warnings_json(warnings))
    assert stored == [
        {
            "code": "line_total_mismatch",
            "invoice_index": 1,
            "line_no": 1,
            "message": "invoice 1 line 1: 2 x 2 = 4.000, but the line total is 5 (KWD, 3 decimals)",
        }
    ]
    assert json.loads(warnings_json([])) == []
