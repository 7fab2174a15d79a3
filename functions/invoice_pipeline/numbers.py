"""Numbers as printed on invoices -> Decimal.

The model returns every number as the text it read ("1,250.000", "١٢٫٥٠٠", "KWD 3.750", "1.250,00"). This
module turns such text into a Decimal, or None when there is nothing numeric to read. It never raises on
garbage: a line with an unreadable price is still a line, only without that price.

Only plain decimals as printed are read. An exponent ("1e308", "1E+5"), a hexadecimal number ("0x10"), NaN or
infinity, or a number with more digits than the items' numeric columns hold (``MAX_WHOLE_DIGITS`` before the
point, ``MAX_FRACTION_DIGITS`` after) is None with the reason (:func:`read_number`), never a wrong value such
as the "1" of "1e308".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# Arabic-Indic (U+0660..) and Eastern Arabic-Indic / Persian (U+06F0..) digits to ASCII.
_DIGITS = {ord(c): str(i) for i, c in enumerate("٠١٢٣٤٥٦٧٨٩")} | {ord(c): str(i) for i, c in enumerate("۰۱۲۳۴۵۶۷۸۹")}
_ARABIC_DECIMAL = "\u066b"  # ٫
_ARABIC_THOUSANDS = "\u066c"  # ٬
_MINUS_SIGNS = "\u2212\u2012\u2013\u2014\ufe63\uff0d"
_SPACES = re.compile(r"[\s\u00a0\u202f\u2009\u200f\u200e\u061c']+")
_NUMBER = re.compile(r"[-+]?[0-9.,]*[0-9][0-9.,]*")
_EXPONENT = re.compile(r"[0-9.][eE][-+]?[0-9]")
_HEXADECIMAL = re.compile(r"(?<![0-9.,])0[xX][0-9a-fA-F]")
_NOT_FINITE = re.compile(r"(?<![a-z])(nan|inf|infinity)(?![a-z])", re.IGNORECASE)
_DIGIT = re.compile(r"[0-9]")

# What the items' numeric columns are meant to hold: amounts and quantities far beyond any invoice, small
# enough to be stored and checked exactly (Postgres refuses 131,072 digits before the point; the arithmetic
# checks work at a fixed precision).
MAX_WHOLE_DIGITS = 15
MAX_FRACTION_DIGITS = 10
# Longer text cannot be such a number, even with separators and a currency; not scanned at all (the number
# pattern is quadratic on a long run of separators).
MAX_NUMBER_TEXT = 100


@dataclass(frozen=True)
class NumberReading:
    """A printed number read: ``value``, or None with ``problem`` saying why when something numeric was printed
    but is not a plain decimal. Both are None for an empty or non-numeric text ("", "-", "n/a")."""

    value: Decimal | None
    problem: str | None = None


def read_number(text: str | None) -> NumberReading:
    """The plain decimal printed in ``text``, or why there is none (see the module docstring)."""
    if text is None:
        return NumberReading(None)
    if len(text) > MAX_NUMBER_TEXT:
        return NumberReading(None, f"is {len(text)} characters long, more than a number as printed")
    cleaned = _SPACES.sub("", text.translate(_DIGITS))
    if _EXPONENT.search(cleaned):
        return NumberReading(None, "has an exponent")
    if _HEXADECIMAL.search(cleaned):
        return NumberReading(None, "is hexadecimal")
    if _NOT_FINITE.search(cleaned):
        return NumberReading(None, "is not a finite number")
    value = _first_number(text)
    if value is None:
        return NumberReading(None, "is not a plain decimal" if _DIGIT.search(cleaned) else None)
    whole, _, fraction = format(abs(value), "f").partition(".")
    if len(whole.lstrip("0")) > MAX_WHOLE_DIGITS or len(fraction) > MAX_FRACTION_DIGITS:
        return NumberReading(
            None, f"is out of range (at most {MAX_WHOLE_DIGITS} digits before the point, {MAX_FRACTION_DIGITS} after)"
        )
    return NumberReading(value)


def parse_decimal(text: str | None) -> Decimal | None:
    """The plain decimal in ``text``, or None when it is empty or holds no such number (:func:`read_number`)."""
    return read_number(text).value


def _first_number(text: str) -> Decimal | None:
    """The first number in ``text`` with its separators resolved; None when there is none."""
    cleaned = text.translate(_DIGITS).replace(_ARABIC_DECIMAL, ".").replace(_ARABIC_THOUSANDS, ",")
    for sign in _MINUS_SIGNS:
        cleaned = cleaned.replace(sign, "-")
    cleaned = _SPACES.sub("", cleaned)  # "1 250,00", thin spaces, bidi marks; currency codes go with the regex
    negative = cleaned.startswith("(") and cleaned.endswith(")")  # accounting style (3.500)
    match = _NUMBER.search(cleaned)
    if match is None:
        return None
    number = match.group(0)
    sign = ""
    if number[0] in "+-":
        sign, number = ("-" if number[0] == "-" else ""), number[1:]
    elif negative or cleaned[: match.start()].endswith("-"):
        sign = "-"
    digits = _plain_digits(number)
    if digits is None:
        return None
    try:
        return Decimal(sign + digits)
    except InvalidOperation:
        return None


def _plain_digits(number: str) -> str | None:
    """Resolve thousands and decimal separators: '1,250.000' -> '1250.000', '1.250,00' -> '1250.00'."""
    number = number.strip(".,")
    if not number:
        return None
    dots, commas = number.count("."), number.count(",")
    if dots and commas:
        decimal_mark = "." if number.rfind(".") > number.rfind(",") else ","
        thousands = "," if decimal_mark == "." else "."
        if number.count(decimal_mark) > 1:
            return None
        return number.replace(thousands, "").replace(decimal_mark, ".")
    if commas:
        return _single_separator(number, ",")
    if dots:
        return _single_separator(number, ".")
    return number


def _single_separator(number: str, mark: str) -> str | None:
    """One kind of separator: a thousands separator when every group after it has 3 digits and it repeats
    ("1,250,000") or the leading group is not 0 and the only group has 3 digits with a comma ("1,250");
    otherwise a decimal mark ("12.500", "3,75")."""
    parts = number.split(mark)
    if len(parts) > 2:
        if all(len(part) == 3 for part in parts[1:]) and parts[0]:
            return "".join(parts)
        return None
    whole, fraction = parts
    # A dot is the decimal mark on these invoices (KWD prices have 3 decimals: "12.500");
    # a comma with exactly 3 digits after it is a thousands separator ("1,250").
    if mark == "," and len(fraction) == 3 and whole not in ("", "0"):
        return whole + fraction
    return f"{whole or '0'}.{fraction}"
