from decimal import Decimal

import pytest

from invoice_pipeline.reading.numbers import (
    NumberReading,
    ascii_digits,
    document_decimal_mark,
    parse_amount,
    parse_decimal,
    read_number,
)


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


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("1e308", "has an exponent"),
        ("1E+5", "has an exponent"),
        ("2.5e-3", "has an exponent"),
        ("0x10", "is hexadecimal"),
        ("-0XFF", "is hexadecimal"),
        ("NaN", "is not a finite number"),
        ("-inf", "is not a finite number"),
        ("Infinity", "is not a finite number"),
        ("1" * 16, "is out of range"),
        ("0.00000000001", "is out of range"),
        ("9" * 200_000, "is 200000 characters long"),
        ("." * 50_000 + "1", "is 50001 characters long"),
        ("1,2,3", "is not a plain decimal"),
    ],
)
def test_a_number_that_is_not_a_plain_decimal_is_none_with_the_reason_never_a_wrong_value(text, problem):
    reading = read_number(text)
    assert reading.value is None and reading.problem is not None and reading.problem.startswith(problem)
    assert parse_decimal(text) is None


@pytest.mark.parametrize(
    ("text", "expected"), [("1" * 15, "1" * 15), ("0.0000000001", "0.0000000001"), ("10x12", "10")]
)
def test_plain_decimals_at_the_edge_of_the_range_are_read(text, expected):
    assert read_number(text) == NumberReading(Decimal(expected))


@pytest.mark.parametrize("text", [None, "", "-", "n/a", "Infant formula"])
def test_text_without_a_number_is_none_without_a_problem(text):
    assert read_number(text) == NumberReading(None)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1,250.000", Decimal("1250.000")),
        ("١٢.٥٠٠", Decimal("12.500")),
        ("۱۲٫۵", Decimal("12.5")),
        ("12", Decimal(12)),
        (" 3.5 ", Decimal("3.5")),
        ("-4.00", Decimal("-4.00")),
        ("1,5", None),
        ("abc", None),
        ("", None),
        (None, None),
        ("1.2.3", None),
    ],
)
def test_parse_amount(text, value):
    assert parse_amount(text) == value


def test_ascii_digits_keeps_other_text():
    assert ascii_digits("Total ١٬٢٥٠٫٥ KWD") == "Total 1,250.5 KWD"


def test_parse_amount_keeps_to_the_range_of_the_items_columns():
    assert parse_amount("1" * 15) == Decimal("1" * 15)
    assert parse_amount("1" * 20) is None
    assert parse_amount("0." + "1" * 11) is None


@pytest.mark.parametrize(
    ("text", "guessed", "comma_document"),
    [
        ("1.250", "1.250", "1250"),
        ("1.250.000", "1250000", "1250000"),
        ("(1.250)", "-1.250", "-1250"),
        ("0.500", "0.500", "0.500"),
        ("1250.500", "1250.500", "1250.500"),
        ("12.50", "12.50", "12.50"),
        ("1.250,50", "1250.50", "1250.50"),
        ("3,75", "3.75", "3.75"),
        ("1,250", "1250", "1.250"),  # a comma before three digits: thousands, unless the document's decimal mark
        ("1,250,000", "1250000", "1250000"),
    ],
)
def test_the_documents_decimal_mark_decides_a_dot_before_three_digits(text, guessed, comma_document):
    assert parse_decimal(text) == Decimal(guessed)
    assert parse_decimal(text, decimal_mark=".") == Decimal(guessed)
    assert parse_decimal(text, decimal_mark=",") == Decimal(comma_document)


@pytest.mark.parametrize(
    ("words", "mark"),
    [
        (["Summe", "1.250,00", "12,50", "3.75"], ","),
        (["Total", "1,250.00", "12.50", "3,75"], "."),
        (["٣٫٥٠", "١٢٫٥٠", "€9,90"], "."),
        (["€9,90", "12,50"], ","),
        (["12", "1.250"], "."),
        ([], "."),
    ],
)
def test_the_document_decimal_mark_is_the_one_most_two_decimal_amounts_use(words, mark):
    assert document_decimal_mark(words) == mark
