"""A model's answer -> :class:`ExtractedInvoice`: the one place model output is cleaned, capped and read.

The model's text is not trusted as it comes (docs/architecture.md §9):

- text (description, unit, currency): whitespace runs become one space, other control characters and lone
  surrogates are removed (Postgres refuses NUL in text, and the write would fail on every retry);
- a description keeps at most ``MAX_DESCRIPTION_CHARS`` characters, a unit ``MAX_UNIT_CHARS``;
- the currency is an ISO 4217 code or NULL;
- numbers are plain decimals as printed (:func:`invoice_pipeline.reading.numbers.read_number`): an exponent, a
  hexadecimal number, NaN, infinity or a number out of the columns' range is NULL, never a wrong value.

Where a line was read (DESIGN: line evidence) is checked by :func:`normalise_provenance`, for every provider
(the consumer calls it on each extracted invoice, whoever read it):

- ``page`` is an integer from 1 to the number of pages (or image segments) of the invoice, else NULL;
- ``bbox`` is four finite numbers ``x0, y0, x1, y1``, fractions of the page from its top left: coordinates a
  little outside [0, 1] (up to ``BBOX_SLACK``) are clamped, corners given in the wrong order are swapped, and
  anything else (not four numbers, far outside the page, no area) is NULL;
- ``source_text`` is cleaned like a description and keeps at most ``MAX_SOURCE_TEXT_CHARS`` characters;
- ``confidence`` is a number in [0, 1], else NULL.

Every value changed or dropped leaves a :class:`ValidationWarning` on the invoice; the arithmetic checks report
them first and the consumer stores them in ``extraction_jobs.warnings``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from invoice_pipeline.extractor import ExtractedInvoice, ExtractedItem, ValidationWarning
from invoice_pipeline.providers.answer import ModelInvoice
from invoice_pipeline.reading.money import currency_code
from invoice_pipeline.reading.numbers import read_number

MAX_DESCRIPTION_CHARS = 1000
MAX_UNIT_CHARS = 50
MAX_SOURCE_TEXT_CHARS = 1000
BBOX_SLACK = 0.02  # of the page: a box this far outside it is clamped (rounding, a glyph's overhang)
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

    def page(self, value: object, line_no: int, pages: int) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= pages:
            self.warn(
                "bad_page",
                line_no,
                f"page {_quoted(str(value))} is not a page of this invoice (1-{pages}): stored as NULL",
            )
            return None
        return value

    def bbox(self, value: object, line_no: int) -> tuple[float, float, float, float] | None:
        if value is None:
            return None
        numbers = _four_numbers(value)
        if numbers is None:
            self.warn("bad_bbox", line_no, f"bbox {_quoted(str(value))} is not four numbers: stored as NULL")
            return None
        if any(not -BBOX_SLACK <= number <= 1 + BBOX_SLACK for number in numbers):
            self.warn("bad_bbox", line_no, f"bbox {_quoted(str(value))} lies outside the page: stored as NULL")
            return None
        x0, y0, x1, y1 = (min(1.0, max(0.0, number)) for number in numbers)
        if x0 > x1 or y0 > y1:
            self.warn("bbox_reordered", line_no, "bbox corners given in the wrong order: swapped")
            x0, x1, y0, y1 = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
        if x0 == x1 or y0 == y1:
            self.warn("bad_bbox", line_no, f"bbox {_quoted(str(value))} has no area: stored as NULL")
            return None
        return (round(x0, 5), round(y0, 5), round(x1, 5), round(y1, 5))

    def confidence(self, value: object, line_no: int) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            self.warn("bad_confidence", line_no, f"confidence {_quoted(str(value))} is not in [0, 1]: stored as NULL")
            return None
        return float(value)


def _four_numbers(value: object) -> tuple[float, float, float, float] | None:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or len(value) != 4:
        return None
    numbers: list[float] = []
    for number in value:
        if isinstance(number, bool) or not isinstance(number, int | float | Decimal) or not math.isfinite(number):
            return None
        numbers.append(float(number))
    return numbers[0], numbers[1], numbers[2], numbers[3]


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
            page=line.page,
            bbox=_raw_bbox(line.bbox),
            source_text=line.source_text,
            confidence=line.confidence,
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


def _raw_bbox(value: Any) -> tuple[Any, ...] | None:
    """A reported bbox as a tuple, unchecked (:func:`normalise_provenance` checks it)."""
    return None if value is None else tuple(value)


def normalise_provenance(invoice: ExtractedInvoice, *, pages: int) -> ExtractedInvoice:
    """``invoice`` with every line's page, bbox, source text and confidence checked (module docstring): a bad
    value is normalised or NULL, with a warning added to the invoice; never an error. ``pages``: how many pages
    or image segments the invoice has."""
    normaliser = _Normaliser(invoice.invoice_index)
    items = []
    for line_no, item in enumerate(invoice.items, start=1):
        items.append(
            dataclasses.replace(
                item,
                page=normaliser.page(item.page, line_no, max(pages, 1)),
                bbox=normaliser.bbox(item.bbox, line_no),
                source_text=normaliser.text(item.source_text, "source_text", line_no, MAX_SOURCE_TEXT_CHARS),
                confidence=normaliser.confidence(item.confidence, line_no),
            )
        )
    return dataclasses.replace(invoice, items=tuple(items), warnings=(*invoice.warnings, *normaliser.warnings))
