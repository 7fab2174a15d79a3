"""Numbers as printed on invoices -> Decimal: the one place a printed number is read.

The model returns every number as the text it read ("1,250.000", "١٢٫٥٠٠", "KWD 3.750", "1.250,00"); the
offline extractor reads the same from table cells. This module turns such text into a Decimal, or None when
there is nothing numeric to read. It never raises on garbage: a line with an unreadable price is still a line,
only without that price. It owns the Arabic-Indic digit table (:func:`ascii_digits`), the thousands and decimal
separators (guessed from the number, or resolved by the document's decimal mark, :func:`document_decimal_mark`),
and two readings: :func:`read_number` takes the first number in a text ("2 pcs" is 2), :func:`parse_amount` only a
text that is one amount written with comma thousands and a decimal point ("12.VV" is none).

Only plain decimals as printed are read. An exponent ("1e308", "1E+5"), a hexadecimal number ("0x10"), NaN or
infinity, or a number with more digits than the items' numeric columns hold (``MAX_WHOLE_DIGITS`` before the
point, ``MAX_FRACTION_DIGITS`` after) is None with the reason (:func:`read_number`), never a wrong value such
as the "1" of "1e308".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

ARABIC_INDIC_DIGITS = "٠١٢٣٤٥٦٧٨٩"  # U+0660..
EXTENDED_ARABIC_INDIC_DIGITS = "۰۱۲۳۴۵۶۷۸۹"  # U+06F0.., Persian and Urdu
# Both digit sets, and the Arabic decimal (٫) and thousands (٬) separators, to their ASCII forms.
_TO_ASCII = str.maketrans(
    {ord(c): str(i) for i, c in enumerate(ARABIC_INDIC_DIGITS)}
    | {ord(c): str(i) for i, c in enumerate(EXTENDED_ARABIC_INDIC_DIGITS)}
    | {0x066B: ".", 0x066C: ","}
)
_MINUS_SIGNS = "\u2212\u2012\u2013\u2014\ufe63\uff0d"
_SPACES = re.compile(r"[\s\u00a0\u202f\u2009\u200f\u200e\u061c']+")
_NUMBER = re.compile(r"[-+]?[0-9.,]*[0-9][0-9.,]*")
_EXPONENT = re.compile(r"[0-9.][eE][-+]?[0-9]")
_HEXADECIMAL = re.compile(r"(?<![0-9.,])0[xX][0-9a-fA-F]")
_NOT_FINITE = re.compile(r"(?<![a-z])(nan|inf|infinity)(?![a-z])", re.IGNORECASE)
_DIGIT = re.compile(r"[0-9]")
# One amount and nothing else: thousands commas in groups of three, a decimal point (parse_amount).
_AMOUNT = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$")
# Dots before groups of three digits, the leading group not 0: thousands where the decimal mark is a comma.
_DOT_THOUSANDS = re.compile(r"[1-9]\d{0,2}(?:\.\d{3})+")
# An amount with two decimals ("1.250,00", "12.50"): its last separator votes for the document's decimal mark.
_TWO_DECIMALS = re.compile(r"[(+-]?\d{1,3}(?:[.,' ]?\d{3})*([.,])\d{2}[)-]?")

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


def ascii_digits(text: str) -> str:
    """``text`` with Arabic-Indic digits and separators replaced by ASCII ones ("١٬٢٥٠٫٥" -> "1,250.5")."""
    return text.translate(_TO_ASCII)


def read_number(text: str | None, *, decimal_mark: str | None = None) -> NumberReading:
    """The plain decimal printed in ``text``, or why there is none (see the module docstring).

    ``decimal_mark``: the document's decimal mark when known. With ``","`` a dot before groups of three digits is
    a thousands separator ("1.250" is 1250 on a German invoice); otherwise the separators are guessed from the
    number alone (``_plain_digits``).
    """
    if text is None:
        return NumberReading(None)
    if len(text) > MAX_NUMBER_TEXT:
        return NumberReading(None, f"is {len(text)} characters long, more than a number as printed")
    cleaned = _SPACES.sub("", ascii_digits(text))
    if _EXPONENT.search(cleaned):
        return NumberReading(None, "has an exponent")
    if _HEXADECIMAL.search(cleaned):
        return NumberReading(None, "is hexadecimal")
    if _NOT_FINITE.search(cleaned):
        return NumberReading(None, "is not a finite number")
    value = _first_number(text, decimal_mark)
    if value is None:
        return NumberReading(None, "is not a plain decimal" if _DIGIT.search(cleaned) else None)
    whole, _, fraction = format(abs(value), "f").partition(".")
    if len(whole.lstrip("0")) > MAX_WHOLE_DIGITS or len(fraction) > MAX_FRACTION_DIGITS:
        return NumberReading(
            None, f"is out of range (at most {MAX_WHOLE_DIGITS} digits before the point, {MAX_FRACTION_DIGITS} after)"
        )
    return NumberReading(value)


def parse_decimal(text: str | None, *, decimal_mark: str | None = None) -> Decimal | None:
    """The plain decimal in ``text``, or None when it is empty or holds no such number (:func:`read_number`)."""
    return read_number(text, decimal_mark=decimal_mark).value


def parse_amount(text: str | None) -> Decimal | None:
    """``text`` as one amount (``"1,250.000"``, ``"١٢.٥٠٠"``, ``"12"``), or None when it is anything else.

    Stricter than :func:`parse_decimal`: nothing but the number (spaces aside), a decimal point, and thousands
    commas only in groups of three, so ``"1,5"`` and ``"12.VV"`` are not read at all (a cell the OCR misread).
    """
    if text is None:
        return None
    cleaned = ascii_digits(text).strip().replace(" ", "").replace("\u00a0", "")
    if not _AMOUNT.match(cleaned):
        return None
    return parse_decimal(cleaned.replace(",", ""))


def document_decimal_mark(words: Iterable[str]) -> str:
    """``","`` when most two-decimal amounts among ``words`` are written 12,50, else ``"."``. An amount with a
    thousands separator too ("1.000,00") says more than one without ("12.30" may be a time of day): three votes."""
    votes: Counter[str] = Counter()
    for word in words:
        text = ascii_digits(word).strip("€$£")
        match = _TWO_DECIMALS.fullmatch(text)
        if match:
            votes[match.group(1)] += 3 if ("," in text and "." in text) else 1
    return "," if votes[","] > votes["."] else "."


def _first_number(text: str, decimal_mark: str | None) -> Decimal | None:
    """The first number in ``text`` with its separators resolved; None when there is none."""
    cleaned = ascii_digits(text)
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
    digits = _plain_digits(number, decimal_mark)
    if digits is None:
        return None
    try:
        return Decimal(sign + digits)
    except InvalidOperation:
        return None


def _plain_digits(number: str, decimal_mark: str | None) -> str | None:
    """Resolve thousands and decimal separators: '1,250.000' -> '1250.000', '1.250,00' -> '1250.00'."""
    number = number.strip(".,")
    if not number:
        return None
    dots, commas = number.count("."), number.count(",")
    if dots and commas:
        mark = "." if number.rfind(".") > number.rfind(",") else ","
        thousands = "," if mark == "." else "."
        if number.count(mark) > 1:
            return None
        return number.replace(thousands, "").replace(mark, ".")
    if commas:
        if decimal_mark == "," and commas == 1:  # the document writes decimals with a comma: "1,250" is 1.250
            whole, fraction = number.split(",")
            return f"{whole or '0'}.{fraction}"
        return _single_separator(number, ",")
    if dots:
        if decimal_mark == "," and _DOT_THOUSANDS.fullmatch(number):
            return number.replace(".", "")
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
