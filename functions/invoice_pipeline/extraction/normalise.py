"""A model's answer -> :class:`ExtractedInvoice`: the one place model output is cleaned, capped and read.

The model's text is not trusted as it comes (docs/architecture.md §9):

- text (description, unit, currency): whitespace runs become one space, other control characters and lone
  surrogates are removed (Postgres refuses NUL in text, and the write would fail on every retry);
- a description keeps at most ``MAX_DESCRIPTION_CHARS`` characters, a unit ``MAX_UNIT_CHARS``;
- the currency is an ISO 4217 code or NULL;
- numbers are plain decimals as printed (:func:`invoice_pipeline.numbers.read_number`): an exponent, a
  hexadecimal number, NaN, infinity or a number out of the columns' range is NULL, never a wrong value.

Every value changed or dropped leaves a :class:`ValidationWarning` on the invoice; the arithmetic checks report
them first and the consumer stores them in ``extraction_jobs.warnings``.
"""

from __future__ import annotations

import re
from decimal import Decimal

from invoice_pipeline.extraction.answer import ModelInvoice
from invoice_pipeline.extraction.base import ExtractedInvoice, ExtractedItem, ValidationWarning
from invoice_pipeline.money import currency_code
from invoice_pipeline.numbers import read_number

MAX_DESCRIPTION_CHARS = 1000
MAX_UNIT_CHARS = 50
QUOTED_CHARS = 40  # of a refused value, in a warning

# C0 and C1 control characters (whitespace among them is collapsed first) and lone UTF-16 surrogates.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_text(value: str | None) -> str | None:
    """``value`` on one line, without control characters; None when nothing printable is left."""
    if value is None:
        return None
    # Whitespace first (a line break separates words), then what is left of the controls (NUL joins them).
    flat = " ".join(_CONTROL.sub("", " ".join(value.split())).split())
    return flat or None


def _has_control_characters(value: str | None) -> bool:
    """Control characters other than whitespace (tabs and line breaks are only collapsed, not reported)."""
    return value is not None and _CONTROL.search(" ".join(value.split())) is not None


class _Normaliser:
    def __init__(self, invoice_index: int) -> None:
        self.invoice_index = invoice_index
        self.warnings: list[ValidationWarning] = []

    def warn(self, code: str, line_no: int | None, text: str) -> None:
        where = f"invoice {self.invoice_index}" + (f" line {line_no}" if line_no is not None else "")
        self.warnings.append(ValidationWarning(code, self.invoice_index, line_no, f"{where}: {text}"))

    def text(self, value: str | None, field: str, line_no: int | None, limit: int) -> str | None:
        cleaned = clean_text(value)
        if _has_control_characters(value):
            self.warn("control_characters", line_no, f"{field} had control characters, removed")
        if cleaned is not None and len(cleaned) > limit:
            self.warn("text_truncated", line_no, f"{field} of {len(cleaned)} characters cut to {limit}")
            cleaned = cleaned[:limit].rstrip()
        return cleaned

    def number(self, value: str | None, field: str, line_no: int | None) -> Decimal | None:
        reading = read_number(value)
        if reading.problem is not None:
            self.warn("unreadable_number", line_no, f"{field} {_quoted(value)} {reading.problem}: stored as NULL")
        return reading.value

    def currency(self, value: str | None) -> str | None:
        cleaned = clean_text(value)
        code = currency_code(cleaned)
        if cleaned is not None and code is None:
            self.warn("unknown_currency", None, f"currency {_quoted(cleaned)} is not an ISO 4217 code: stored as NULL")
        return code


def _quoted(value: str | None) -> str:
    """A refused value, short and printable, for a warning (warnings are stored as JSON text)."""
    cleaned = clean_text(value) or ""
    if len(cleaned) > QUOTED_CHARS:
        return repr(cleaned[:QUOTED_CHARS]) + f"... ({len(cleaned)} characters)"
    return repr(cleaned)


def normalise(answer: ModelInvoice, *, invoice_index: int) -> ExtractedInvoice:
    """The extracted invoice of ``answer``, with a warning for every value cleaned, capped or dropped."""
    normaliser = _Normaliser(invoice_index)
    items = tuple(
        ExtractedItem(
            description=normaliser.text(line.description, "description", line_no, MAX_DESCRIPTION_CHARS),
            quantity=normaliser.number(line.quantity, "quantity", line_no),
            unit=normaliser.text(line.unit, "unit", line_no, MAX_UNIT_CHARS),
            unit_price=normaliser.number(line.unit_price, "unit_price", line_no),
            line_total=normaliser.number(line.line_total, "line_total", line_no),
        )
        for line_no, line in enumerate(answer.items, start=1)
    )
    currency = normaliser.currency(answer.currency)
    printed_total = normaliser.number(answer.printed_total, "printed_total", None)
    return ExtractedInvoice(
        invoice_index=invoice_index,
        currency=currency,
        printed_total=printed_total,
        items=items,
        warnings=tuple(normaliser.warnings),
    )
