"""Line evidence: the checks each extracted line and invoice passes, and how far to trust each line.

The one owner of the checks' names, of the trust function and of the per-invoice evidence stored in
``extraction_jobs.evidence`` (written with the items by :mod:`invoice_pipeline.tables.items`, read back by
:func:`invoice_pipeline.tables.ledger_reads.invoice_evidence`: the ledger's statements stay with the ledger's
modules); ``docs/trust.md`` explains them with the measured calibration.

Per line (``invoice_items.checks``, ``{"passed": [...], "failed": [...]}``; a check that cannot be made is in
neither list):

- ``numbers_present``: quantity, unit price and line total were all read;
- ``arithmetic``: quantity x unit price = line total within one unit of the currency's last place, or less a
  discount printed on the row as a percentage (made only when the three are present);
- ``printed``: each number read appears in the row as printed (``source_text``; made only where it exists);
- ``clean_description``: the description carries no other column's value (a date, a long article number, the
  line's own quantity, unit price or line total, or an amount with decimals when the line lacks a quantity or
  unit price: its columns were probably read into the name);
- ``agreement``: every other model's lines for the same order hold a line with this description (else this line
  total) and the same numbers; made where another model wrote the order, both ways: the model that writes
  second checks its lines and updates the first model's (two models writing the same order at the same moment
  do not see each other);
- ``invoice_total``: the invoice's line totals add up to the total it prints for its lines (the completeness
  check: a missing or extra row shows here): the printed total read, or where the reader has the page's rows,
  an amount printed below the last line (the net total above taxes); made only where either exists;
- ``row_count``: as many lines as the reader saw rows that look like items (made only where the reader
  counted them).

Trust (:func:`trust`), from the checks alone:

- ``verified``: ``arithmetic`` and ``invoice_total`` passed, and no check failed but ``clean_description`` (an
  advisory check: a date or article number beside the name does not make the numbers wrong);
- ``doubtful``: ``arithmetic``, ``printed`` or ``agreement`` failed; or the line has no line total; or it lacks
  a quantity or unit price (``numbers_present`` failed) and either its description is not clean or its invoice
  does not confirm it (``invoice_total`` did not pass, or ``row_count`` failed);
- ``plausible``: everything else (nothing contradicts the line, but not enough confirms it).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from invoice_pipeline.extractor import ExtractedInvoice, ExtractedItem
from invoice_pipeline.reading.money import currency_decimals, quantum
from invoice_pipeline.reading.numbers import ascii_digits, parse_decimal
from invoice_pipeline.reading.validation import ARITHMETIC_PRECISION
from invoice_pipeline.tables.db import Connection

TRUST_LEVELS = ("verified", "plausible", "doubtful")
LINE_CHECKS = (
    "numbers_present",
    "arithmetic",
    "printed",
    "clean_description",
    "agreement",
    "invoice_total",
    "row_count",
)
DOUBT = frozenset({"arithmetic", "printed", "agreement"})
ADVISORY = frozenset({"clean_description"})
REQUIRED_FOR_VERIFIED = frozenset({"arithmetic", "invoice_total"})

_NUMBER_TOKEN = re.compile(r"[-(]?\d(?:[\d.,'\u00a0\u202f]*\d)?")
_DATE = re.compile(r"\b\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})\b|\b\d{4}-\d{2}-\d{2}\b")
_ARTICLE_NUMBER = re.compile(r"(?:^|\s)(?:[A-Za-z]{0,4}[-/]?)?\d{5,}(?:[-/]\d+)*(?=\s|$)")


@dataclass(frozen=True)
class LineEvidence:
    passed: tuple[str, ...]
    failed: tuple[str, ...]
    trust: str

    def checks_json(self) -> str:
        return json.dumps({"passed": list(self.passed), "failed": list(self.failed)})


@dataclass(frozen=True)
class InvoiceEvidence:
    """What the whole invoice says about its lines (stored per invoice in ``extraction_jobs.evidence``)."""

    invoice_index: int
    line_count: int
    line_sum: Decimal | None  # None when a line has no line total
    printed_total: Decimal | None
    item_rows: int | None  # rows that look like items, where the reader counted them
    passed: tuple[str, ...]
    failed: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """The invoice-level checks that could be made all passed (the review queue's "incomplete" is the rest)."""
        return not self.failed

    def as_json(self) -> dict[str, Any]:
        return {
            "invoice_index": self.invoice_index,
            "line_count": self.line_count,
            "line_sum": _plain(self.line_sum),
            "printed_total": _plain(self.printed_total),
            "item_rows": self.item_rows,
            "passed": list(self.passed),
            "failed": list(self.failed),
        }


def trust(passed: Iterable[str], failed: Iterable[str], *, has_line_total: bool = True) -> str:
    """The trust level of a line from the names of the checks it passed and failed (module docstring)."""
    passed_set, failed_set = set(passed), set(failed)
    if failed_set & DOUBT or not has_line_total:
        return "doubtful"
    invoice_confirms = "invoice_total" in passed_set and "row_count" not in failed_set
    if "numbers_present" in failed_set and (not invoice_confirms or "clean_description" in failed_set):
        return "doubtful"
    if passed_set >= REQUIRED_FOR_VERIFIED and not failed_set - ADVISORY:
        return "verified"
    return "plausible"


_SPLIT_GROUP = re.compile(r"(?<=\d) (?=\d{3}(?!\d))|(?<=\d) (?=[.,]\d)")


def compact_numbers(text: str) -> str:
    """``text`` with numbers split by a reader joined again: "27 946,00" and "27946 ,00" -> "27946,00"."""
    return _SPLIT_GROUP.sub("", ascii_digits(text))


def printed_numbers(text: str | None) -> set[Decimal]:
    """Every value a number printed in ``text`` can stand for (both decimal marks, thousands groups a reader split
    with a space joined or not; signs dropped)."""
    found: set[Decimal] = set()
    if not text:
        return found
    plain = ascii_digits(text)
    for token in [*_NUMBER_TOKEN.findall(plain), *_NUMBER_TOKEN.findall(compact_numbers(plain))]:
        token = token.strip("-(")
        for mark in (".", ","):
            value = parse_decimal(token, decimal_mark=mark)
            if value is not None:
                found.add(abs(value))
        for part in re.split(r"[\s\u00a0\u202f]+", token):  # "2 12,50": separate numbers, not one
            for mark in (".", ","):
                value = parse_decimal(part, decimal_mark=mark)
                if value is not None:
                    found.add(abs(value))
    return found


def _in(value: Decimal, numbers: set[Decimal]) -> bool:
    return any(abs(abs(value) - number) <= Decimal("0.0000001") for number in numbers)


_AMOUNT_IN_TEXT = re.compile(r"\d[.,]\d{2}(?!\d)")
_PERCENT = re.compile(r"(\d{1,2}(?:[.,]\d+)?)\s*%")


def _adds_up(quantity: Decimal, price: Decimal, total: Decimal, item: ExtractedItem, unit: Decimal) -> bool:
    """quantity x price = total, or so less a percentage printed on the row (a line discount)."""
    product = quantity * price
    if abs(product - total) <= unit:
        return True
    for match in _PERCENT.finditer(ascii_digits(item.source_text or "")):
        rate = Decimal(match.group(1).replace(",", "."))
        if 0 < rate < 100 and abs(product * (100 - rate) / 100 - total) <= unit:
            return True
    return False


def _description_clean(item: ExtractedItem) -> bool:
    description = ascii_digits(item.description or "")
    if _DATE.search(description) or _ARTICLE_NUMBER.search(description):
        return False
    if (item.quantity is None or item.unit_price is None) and _AMOUNT_IN_TEXT.search(compact_numbers(description)):
        return False
    words = description.split()
    edge = {words[0], words[-1]} if words else set()
    values = [v for v in (item.quantity, item.unit_price, item.line_total) if v is not None and v != 0]
    for word in edge:
        if not re.fullmatch(r"[\d.,]+", word):
            continue
        numbers = printed_numbers(word)
        if any(_in(value, numbers) for value in values) and any(c in word for c in ".,"):
            return False
    return True


def _same_numbers(item: ExtractedItem, other: ExtractedItem) -> bool:
    return all(
        (a is None and b is None) or (a is not None and b is not None and a == b)
        for a, b in (
            (item.quantity, other.quantity),
            (item.unit_price, other.unit_price),
            (item.line_total, other.line_total),
        )
    )


def _key(text: str | None) -> str:
    return re.sub(r"\W+", " ", (text or "").casefold()).strip()


def invoice_evidence(invoice: ExtractedInvoice) -> InvoiceEvidence:
    """The invoice-level checks of ``invoice``: its lines' sum against its printed total, its row count."""
    places = currency_decimals(invoice.currency)
    unit = quantum(places)
    totals = [item.line_total for item in invoice.items]
    line_sum = sum((t for t in totals if t is not None), Decimal(0)) if all(t is not None for t in totals) else None
    passed: list[str] = []
    failed: list[str] = []
    printed = invoice.printed_total
    below = invoice.amounts_below or frozenset()
    if (printed is not None or below) and invoice.items:
        tolerance = unit * max(1, math.ceil(len(totals) / 2))
        ok = line_sum is not None and any(
            abs(abs(line_sum) - abs(amount)) <= tolerance
            for amount in ({printed} if printed is not None else set()) | below
        )
        (passed if ok else failed).append("invoice_total")
    if invoice.item_rows is not None:
        (passed if invoice.item_rows == len(invoice.items) else failed).append("row_count")
    return InvoiceEvidence(
        invoice.invoice_index, len(invoice.items), line_sum, printed, invoice.item_rows, tuple(passed), tuple(failed)
    )


def line_evidence(
    invoice: ExtractedInvoice,
    others: Sequence[Sequence[ExtractedItem]] = (),
    *,
    invoice_checks: InvoiceEvidence | None = None,
) -> list[LineEvidence]:
    """The checks and trust of each line of ``invoice``, in order. ``others``: the lines other models read from
    the same invoice (one sequence per model), for the agreement check."""
    whole = invoice_checks or invoice_evidence(invoice)
    unit = quantum(currency_decimals(invoice.currency))
    result = []
    with localcontext() as context:
        context.prec = ARITHMETIC_PRECISION
        for item in invoice.items:
            passed: list[str] = []
            failed: list[str] = []

            def record(name: str, ok: bool, passed: list[str] = passed, failed: list[str] = failed) -> None:
                (passed if ok else failed).append(name)

            numbers = (item.quantity, item.unit_price, item.line_total)
            present = all(value is not None for value in numbers)
            record("numbers_present", present)
            if item.quantity is not None and item.unit_price is not None and item.line_total is not None:
                try:
                    record("arithmetic", _adds_up(item.quantity, item.unit_price, item.line_total, item, unit))
                except InvalidOperation:
                    record("arithmetic", False)
            if item.source_text:
                seen = printed_numbers(item.source_text)
                read = [value for value in numbers if value is not None]
                if read:
                    record("printed", all(_in(value, seen) for value in read))
            if item.description:
                record("clean_description", _description_clean(item))
            if others:
                record("agreement", _agrees(item, others))
            for name in whole.passed:
                passed.append(name)
            for name in whole.failed:
                failed.append(name)
            level = trust(passed, failed, has_line_total=item.line_total is not None)
            result.append(LineEvidence(tuple(passed), tuple(failed), level))
    return result


def _agrees(item: ExtractedItem, others: Sequence[Sequence[ExtractedItem]]) -> bool:
    """Every other model has a line with this description (loosely) and the same numbers."""
    key = _key(item.description)
    for lines in others:
        candidates = [other for other in lines if _key(other.description) == key] or [
            other for other in lines if other.line_total == item.line_total and other.line_total is not None
        ]
        if not any(_same_numbers(item, other) for other in candidates):
            return False
    return True


def order_evidence(
    invoices: Sequence[ExtractedInvoice], others: Mapping[int, Sequence[Sequence[ExtractedItem]]] | None = None
) -> tuple[list[list[LineEvidence]], list[InvoiceEvidence]]:
    """Per invoice of an order: its lines' evidence and its own. ``others``: invoice_index -> other models' lines."""
    lines: list[list[LineEvidence]] = []
    wholes: list[InvoiceEvidence] = []
    for invoice in invoices:
        whole = invoice_evidence(invoice)
        wholes.append(whole)
        lines.append(line_evidence(invoice, (others or {}).get(invoice.invoice_index, ()), invoice_checks=whole))
    return lines, wholes


@dataclass(frozen=True)
class StoredOtherLine:
    """A line another model stored for the same order, with its checks, for the agreement check both ways."""

    llm: str
    invoice_index: int
    line_no: int
    item: ExtractedItem
    passed: tuple[str, ...]
    failed: tuple[str, ...]


def agreement_updates(
    invoices: Sequence[ExtractedInvoice], others: Sequence[StoredOtherLine]
) -> list[tuple[StoredOtherLine, LineEvidence]]:
    """The other models' lines whose checks change now that this model's lines exist: ``agreement`` with them
    (failed stays failed: the check passes only when every model agrees), and the trust that follows. Lines
    written before checks existed (no checks at all) are left as they are."""
    mine = {invoice.invoice_index: invoice.items for invoice in invoices}
    changed = []
    for other in others:
        if not other.passed and not other.failed:
            continue
        agrees = _agrees(other.item, [mine.get(other.invoice_index, ())])
        passed = [name for name in other.passed if name != "agreement"]
        failed = [name for name in other.failed if name != "agreement"]
        if "agreement" in other.failed or not agrees:
            failed.append("agreement")
        else:
            passed.append("agreement")
        if (tuple(passed), tuple(failed)) == (other.passed, other.failed):
            continue
        level = trust(passed, failed, has_line_total=other.item.line_total is not None)
        changed.append((other, LineEvidence(tuple(passed), tuple(failed), level)))
    return changed


def evidence_json(wholes: Iterable[InvoiceEvidence]) -> str:
    """The JSON array stored in ``extraction_jobs.evidence``: one object per invoice."""
    return json.dumps([whole.as_json() for whole in wholes])


def _plain(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


# ---- reads (the report, the workbench and the review queue) ----------------------------------------------------

TRUST_COUNTS = """
SELECT order_id, llm, coalesce(trust, 'unknown'), count(*)
FROM benchmarking.invoice_items
WHERE llm = ANY(CAST(:llms AS text[]))
GROUP BY order_id, llm, 3
"""
LINE_TRUST = """
SELECT order_id, llm, invoice_index, trust, checks
FROM benchmarking.invoice_items
WHERE order_id = ANY(CAST(:order_ids AS bigint[])) AND llm = ANY(CAST(:llms AS text[]))
ORDER BY order_id, llm, invoice_index, line_no
"""


@dataclass(frozen=True)
class StoredLine:
    trust: str | None  # None: written before lines had a trust level
    failed: tuple[str, ...]


def trust_counts(connection: Connection, llms: Sequence[str]) -> dict[tuple[int, str], dict[str, int]]:
    """(order_id, llm) -> lines per trust level (``unknown`` for lines written before trust existed)."""
    found: dict[tuple[int, str], dict[str, int]] = {}
    for order_id, llm, level, count in connection.run(TRUST_COUNTS, llms=list(llms)):
        found.setdefault((order_id, llm), {})[level] = int(count)
    return found


def stored_lines(
    connection: Connection, order_ids: Sequence[int], llms: Sequence[str]
) -> dict[tuple[int, str, int], list[StoredLine]]:
    """(order_id, llm, invoice_index) -> each line's trust and failed checks, in line order."""
    found: dict[tuple[int, str, int], list[StoredLine]] = {}
    if not order_ids or not llms:
        return found
    for order_id, llm, invoice_index, level, checks in connection.run(
        LINE_TRUST, order_ids=list(order_ids), llms=list(llms)
    ):
        failed = tuple((checks or {}).get("failed") or ()) if isinstance(checks, dict) else ()
        found.setdefault((order_id, llm, invoice_index), []).append(StoredLine(level, failed))
    return found


ORDER_LINE_EVIDENCE = """
SELECT llm, invoice_index, line_no, trust, checks, page, bbox, source_text
FROM benchmarking.invoice_items
WHERE order_id = :order_id
ORDER BY llm, invoice_index, line_no
"""


@dataclass(frozen=True)
class ShownLine:
    """One stored line's evidence as the review page shows it."""

    trust: str | None
    passed: tuple[str, ...]
    failed: tuple[str, ...]
    page: int | None
    bbox: tuple[float, ...] | None
    source_text: str | None


def order_line_evidence(connection: Connection, order_id: int) -> dict[tuple[str, int, int], ShownLine]:
    """(llm, invoice_index, line_no) -> the line's trust, checks and where it was read, for one order."""
    found = {}
    for llm, invoice_index, line_no, level, checks, page, bbox, source_text in connection.run(
        ORDER_LINE_EVIDENCE, order_id=order_id
    ):
        checks = checks if isinstance(checks, dict) else {}
        box = tuple(float(value) for value in bbox) if isinstance(bbox, list) and len(bbox) == 4 else None
        found[(llm, invoice_index, line_no)] = ShownLine(
            level, tuple(checks.get("passed") or ()), tuple(checks.get("failed") or ()), page, box, source_text
        )
    return found
