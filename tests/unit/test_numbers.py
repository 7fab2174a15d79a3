from decimal import Decimal

import pytest

from invoice_pipeline.numbers import parse_decimal


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12.500", "12.500"),
        ("1,250.000", "1250.000"),
        ("1.250,00", "1250.00"),
        ("1 250,50", "1250.50"),
        ("1,250,000", "1250000"),
        ("1.250.000", "1250000"),
        ("3,75", "3.75"),
        ("0,500", "0.500"),
        ("1,250", "1250"),
        ("١٢٫٥٠٠", "12.500"),
        ("١٬٢٥٠٫٠٠٠", "1250.000"),
        ("۱۲۳٫۴", "123.4"),
        ("KWD 3.750", "3.750"),
        ("3.750 د.ك", "3.750"),
        ("$12.00", "12.00"),
        ("SAR 1,000", "1000"),
        ("-2", "-2"),
        ("−2.5", "-2.5"),
        ("(3.500)", "-3.500"),
        ("2 pcs", "2"),
        ("7", "7"),
    ],
)
def test_printed_numbers_become_decimals(text, expected):
    assert parse_decimal(text) == Decimal(expected)


@pytest.mark.parametrize("text", [None, "", "   ", "-", "abc", "N/A", ".", ",", "1,2,3", "1.2.3,4,5"])
def test_empty_or_garbage_is_none_not_a_crash(text):
    assert parse_decimal(text) is None


def test_scale_of_printed_decimals_is_kept():
    assert str(parse_decimal("3.500")) == "3.500"
