"""The one place a model's answer is cleaned, capped and read into numbers, with a warning for each change."""

from decimal import Decimal

import pytest

from invoice_pipeline.providers.answer import ModelInvoice
from invoice_pipeline.providers.normalise import MAX_DESCRIPTION_CHARS, MAX_UNIT_CHARS, clean_text, normalise
from invoice_pipeline.reading.validation import check


def answer(*lines: dict, currency: str | None = "KWD", printed_total: str | None = None) -> ModelInvoice:
    base = {"description": "Rice", "quantity": "1", "unit": "bag", "unit_price": "3.750", "line_total": "3.750"}
    return ModelInvoice.model_validate(
        {"currency": currency, "printed_total": printed_total, "items": [{**base, **line} for line in lines]}
    )


def codes(invoice) -> list[tuple[str, int | None]]:
    return [(warning.code, warning.line_no) for warning in invoice.warnings]


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("Tomato\x00 paste", "Tomato paste"),
        ("Tomato\n paste\t", "Tomato paste"),
        ("\x07bell\x7f and \x9fC1", "bell and C1"),
        ("half \ud800 surrogate", "half surrogate"),
        ("بصل أحمر", "بصل أحمر"),
        ("\x00\x01", None),
    ],
)
def test_control_characters_are_removed_and_whitespace_collapsed(text, cleaned):
    assert clean_text(text) == cleaned


def test_a_nul_in_a_description_is_stripped_with_a_warning():
    invoice = normalise(answer({"description": "Tomato\x00paste", "unit": "k\x00g"}), invoice_index=2)
    assert (invoice.items[0].description, invoice.items[0].unit) == ("Tomatopaste", "kg")
    assert codes(invoice) == [("control_characters", 1), ("control_characters", 1)]
    assert invoice.warnings[0].message == "invoice 2 line 1: description had control characters, removed"


def test_line_breaks_alone_are_no_warning():
    invoice = normalise(answer({"description": " Tomato\n paste "}), invoice_index=0)
    assert invoice.items[0].description == "Tomato paste" and invoice.warnings == ()


def test_long_texts_are_capped_with_a_warning():
    invoice = normalise(answer({"description": "x" * 5000, "unit": "u" * 300}), invoice_index=0)
    item = invoice.items[0]
    assert len(item.description) == MAX_DESCRIPTION_CHARS and len(item.unit) == MAX_UNIT_CHARS
    assert codes(invoice) == [("text_truncated", 1), ("text_truncated", 1)]
    assert "description of 5000 characters cut to 1000" in invoice.warnings[0].message


@pytest.mark.parametrize(("currency", "code"), [("kwd", "KWD"), (" SAR ", "SAR"), (None, None)])
def test_a_currency_is_an_iso_code(currency, code):
    invoice = normalise(answer({}, currency=currency), invoice_index=0)
    assert invoice.currency == code and invoice.warnings == ()


@pytest.mark.parametrize("currency", ["K" * 300, "KD", "Kuwaiti dinar"])
def test_anything_else_as_currency_is_null_with_a_warning(currency):
    invoice = normalise(answer({}, currency=currency), invoice_index=1)
    assert invoice.currency is None
    assert codes(invoice) == [("unknown_currency", None)]
    assert len(invoice.warnings[0].message) < 200  # the refused value is quoted short


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("line_total", "1e308"),
        ("quantity", "1E+5"),
        ("unit_price", "0x10"),
        ("unit_price", "NaN"),
        ("line_total", "-Infinity"),
        ("line_total", "9" * 200_000),
        ("quantity", "1" * 16),
    ],
)
def test_a_number_that_is_not_a_plain_decimal_is_null_with_a_warning_never_a_wrong_value(field, text):
    invoice = normalise(answer({field: text}), invoice_index=0)
    assert getattr(invoice.items[0], field) is None
    assert ("unreadable_number", 1) in codes(invoice)
    message = next(warning.message for warning in invoice.warnings if warning.code == "unreadable_number")
    assert message.startswith(f"invoice 0 line 1: {field} ") and message.endswith("stored as NULL")
    assert len(message) < 250


def test_a_printed_total_that_is_not_a_plain_decimal_is_an_invoice_warning():
    invoice = normalise(answer({}, printed_total="1e3"), invoice_index=0)
    assert invoice.printed_total is None and codes(invoice) == [("unreadable_number", None)]


def test_validation_reports_the_normaliser_warnings_first_then_the_arithmetic():
    invoice = normalise(answer({"line_total": "1e308"}), invoice_index=0)
    assert [warning.code for warning in check(invoice)] == ["unreadable_number", "missing_line_total"]


def test_the_largest_numbers_let_through_are_checked_exactly():
    big = "9" * 15 + "." + "9" * 10
    invoice = normalise(answer({"quantity": big, "unit_price": big, "line_total": big}), invoice_index=0)
    assert invoice.items[0].quantity == Decimal(big)
    assert [warning.code for warning in check(invoice)] == ["too_many_decimals", "line_total_mismatch"]
