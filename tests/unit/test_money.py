"""Currency codes and precision."""

from decimal import Decimal

import pytest

from invoice_pipeline.reading.money import (
    ISO_4217_CODES,
    THREE_DECIMAL_CURRENCIES,
    ZERO_DECIMAL_CURRENCIES,
    currency_code,
    currency_decimals,
    round_money,
)


@pytest.mark.parametrize(
    ("currency", "places"),
    [
        ("KWD", 3),
        ("bhd", 3),
        ("OMR", 3),
        ("JOD", 3),
        ("TND", 3),
        ("LYD", 3),
        ("JPY", 0),
        ("KRW", 0),
        ("USD", 2),
        ("EUR", 2),
        ("XYZ", 2),
        (None, 2),
        ("", 2),
    ],
)
def test_currency_decimals(currency, places):
    assert currency_decimals(currency) == places


def test_round_money_rounds_half_up():
    assert round_money(Decimal("2.0005"), 3) == Decimal("2.001")
    assert round_money(Decimal("2.5"), 0) == Decimal("3")
    assert round_money(Decimal("0.125"), 2) == Decimal("0.13")


@pytest.mark.parametrize(("text", "code"), [("KWD", "KWD"), (" kwd ", "KWD"), ("usd", "USD"), ("EUR", "EUR")])
def test_iso_4217_codes_are_recognised(text, code):
    assert currency_code(text) == code


@pytest.mark.parametrize("text", [None, "", "KD", "US$", "XXX", "XAU", "ABC", "K" * 300, "KWD KWD"])
def test_anything_else_is_not_a_currency_code(text):
    assert currency_code(text) is None


def test_every_currency_with_special_decimals_is_an_iso_code():
    assert THREE_DECIMAL_CURRENCIES <= ISO_4217_CODES and ZERO_DECIMAL_CURRENCIES <= ISO_4217_CODES
