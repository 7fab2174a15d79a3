"""Arithmetic checks of an extracted invoice: what a careful clerk would verify before trusting it.

Rules (``q`` is one unit of the last place of the invoice's currency: 0.001 for KWD, BHD, OMR, JOD, TND, LYD,
IQD; 1 for JPY, KRW and other currencies without minor units; 0.01 otherwise, also when the currency is unknown):

- ``line_total_mismatch``: a line with quantity, unit price and line total whose ``quantity x unit_price``
  differs from the line total by more than ``q`` (printed totals are rounded half-up, so a difference of
  up to one unit of the last place is rounding, not an error);
- ``missing_line_total``: a line without a line total (it cannot count towards the total);
- ``too_many_decimals``: a line total or printed total with non-zero digits beyond the currency's precision
  (often a misread currency, or a unit price read as the total);
- ``total_mismatch``: the sum of the line totals differs from the printed total by more than
  ``q x max(1, ceil(lines / 2))``, which allows a total computed from unrounded line amounts;
  skipped when a line total is missing or there is no printed total;
- ``no_items``: the invoice has no lines at all.

Before those come the warnings the normaliser left on the invoice (:mod:`invoice_pipeline.providers.normalise`):
``unreadable_number`` (stored as NULL), ``text_truncated``, ``control_characters`` and ``unknown_currency``.

A missing quantity or unit price only skips that line's product check: many invoices print only a total for
single items. Nothing here raises on missing values. Warnings are advisory and never stop an order from being
written; the consumer stores them as JSON in ``extraction_jobs.warnings``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict
from decimal import Decimal, localcontext

from invoice_pipeline.extractor import ExtractedInvoice, ValidationWarning
from invoice_pipeline.reading.money import currency_decimals, quantum, round_money
from invoice_pipeline.reading.numbers import MAX_FRACTION_DIGITS, MAX_WHOLE_DIGITS

# Exact arithmetic for the largest numbers the normaliser lets through: a product of two of them, and sums.
ARITHMETIC_PRECISION = 2 * (MAX_WHOLE_DIGITS + MAX_FRACTION_DIGITS) + 10


def check(invoice: ExtractedInvoice) -> list[ValidationWarning]:
    """Every warning of ``invoice``: what normalising the model's answer changed or dropped, then the arithmetic
    ones in line order, invoice-wide ones last."""
    with localcontext() as context:
        context.prec = ARITHMETIC_PRECISION
        return [*invoice.warnings, *_arithmetic(invoice)]


def _arithmetic(invoice: ExtractedInvoice) -> list[ValidationWarning]:
    places = currency_decimals(invoice.currency)
    unit = quantum(places)
    money_label = f"{invoice.currency or 'unknown currency'}, {places} decimals"
    where = f"invoice {invoice.invoice_index}"
    found: list[ValidationWarning] = []

    def warn(code: str, line_no: int | None, text: str) -> None:
        prefix = f"{where} line {line_no}" if line_no is not None else where
        found.append(ValidationWarning(code, invoice.invoice_index, line_no, f"{prefix}: {text}"))

    for line_no, item in enumerate(invoice.items, start=1):
        if item.line_total is None:
            warn("missing_line_total", line_no, "missing line total")
            continue
        if round_money(item.line_total, places) != item.line_total:
            warn("too_many_decimals", line_no, f"line total {item.line_total} has more decimals than {money_label}")
        if item.quantity is not None and item.unit_price is not None:
            expected = item.quantity * item.unit_price
            if abs(expected - item.line_total) > unit:
                warn(
                    "line_total_mismatch",
                    line_no,
                    f"{item.quantity} x {item.unit_price} = {round_money(expected, places)}, "
                    f"but the line total is {item.line_total} ({money_label})",
                )

    if not invoice.items:
        warn("no_items", None, "no line items")
    printed = invoice.printed_total
    if printed is not None and round_money(printed, places) != printed:
        warn("too_many_decimals", None, f"printed total {printed} has more decimals than {money_label}")
    totals = [item.line_total for item in invoice.items]
    if printed is not None and invoice.items and all(total is not None for total in totals):
        line_sum = sum((total for total in totals if total is not None), Decimal(0))
        tolerance = unit * max(1, math.ceil(len(totals) / 2))
        if abs(line_sum - printed) > tolerance:
            warn(
                "total_mismatch",
                None,
                f"the {len(totals)} line totals add up to {line_sum}, but the printed total is {printed} "
                f"({money_label})",
            )
    return found


def validate(invoice: ExtractedInvoice) -> list[str]:
    """Readable warnings for ``invoice`` (empty when its arithmetic holds), each naming invoice and line."""
    return [warning.message for warning in check(invoice)]


def validate_order(invoices: Iterable[ExtractedInvoice]) -> list[ValidationWarning]:
    """The warnings of every invoice of an order, invoice by invoice."""
    return [warning for invoice in invoices for warning in check(invoice)]


def warnings_json(warnings: Iterable[ValidationWarning]) -> str:
    """The JSON array stored in ``extraction_jobs.warnings``: objects with code, invoice_index, line_no, message."""
    return json.dumps([asdict(warning) for warning in warnings], ensure_ascii=False)
