"""Known line items of orders (``benchmarking.ground_truth_items``), the reference accuracy is measured against.

``invoices ground-truth load FILE`` loads it (the demo loads its samples' truth that way); the workbench's review
page saves hand-checked orders the same way. Loading an order replaces whatever truth it had, so a reload never
leaves stale lines behind; the replaced version is kept in ``benchmarking.ground_truth_versions`` (same
transaction), so a mistake can be undone with :func:`restore_ground_truth`.

Saves of one order are serialised (an advisory transaction lock per order), so two of them never both replace the
same version; a save that says which version it replaces (the workbench's editor does) is refused with
:class:`GroundTruthConflict` when another save came first. Values are checked before anything is written
(:func:`check_line`, the normaliser's bounds): what Postgres would refuse is refused here, naming it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from invoice_pipeline.extractor import ExtractedInvoice, ExtractedItem
from invoice_pipeline.providers.normalise import MAX_DESCRIPTION_CHARS, MAX_UNIT_CHARS
from invoice_pipeline.reading.numbers import MAX_FRACTION_DIGITS, MAX_WHOLE_DIGITS
from invoice_pipeline.tables.db import Connection, transaction
from invoice_pipeline.tables.item_columns import ITEM_COLUMNS, NUMBER_COLUMNS, item_columns, item_from_columns

MAX_ORDER_ID = 2**63 - 1  # orders.id is a bigint
MAX_INVOICE_INDEX = 2**31 - 1  # invoice_index is an integer

# One save of an order at a time (released at commit or rollback); the key is a hash of the order's id.
LOCK_ORDER = """
SELECT pg_advisory_xact_lock(hashtextextended('benchmarking.ground_truth_items ' || CAST(:order_id AS text), 0))
"""
# Which version of an order's truth is current: when it was saved and how many lines it has ("" + "/0": none).
SELECT_VERSION_MARKER = """
SELECT coalesce(max(saved_at)::text, '') || '/' || count(*) FROM benchmarking.ground_truth_items
WHERE order_id = :order_id
"""


class GroundTruthInvalid(ValueError):
    """A value of the ground truth is out of range; the message names it."""


class GroundTruthConflict(Exception):
    """The save was based on a version of the order's truth that another save has replaced meanwhile."""


# The current version of each order being replaced, as one JSON array per order (migration 0007).
ARCHIVE_GROUND_TRUTH = """
INSERT INTO benchmarking.ground_truth_versions (order_id, items, saved_by, saved_at, replaced_by)
SELECT order_id,
       jsonb_agg(jsonb_build_object(
           'invoice_index', invoice_index, 'line_no', line_no, 'item_name', item_name, 'qty', qty::text,
           'uom', uom, 'unit_price', unit_price::text, 'net_price', net_price::text, 'currency', currency
       ) ORDER BY invoice_index, line_no),
       max(saved_by), max(saved_at), CAST(:replaced_by AS text)
FROM benchmarking.ground_truth_items
WHERE order_id = ANY(CAST(:order_ids AS bigint[]))
GROUP BY order_id
"""
DELETE_GROUND_TRUTH = "DELETE FROM benchmarking.ground_truth_items WHERE order_id = ANY(CAST(:order_ids AS bigint[]))"
# One statement for all the rows, whatever their number (values travel as arrays, not as a VALUES list).
INSERT_GROUND_TRUTH = """
INSERT INTO benchmarking.ground_truth_items
    (order_id, invoice_index, line_no, item_name, qty, uom, unit_price, net_price, currency, saved_by, saved_at)
SELECT line.*, CAST(:saved_by AS text), now() FROM unnest(
    CAST(:order_ids AS bigint[]), CAST(:invoice_indexes AS integer[]), CAST(:line_nos AS integer[]),
    CAST(:item_name AS text[]), CAST(:qty AS numeric[]), CAST(:uom AS text[]),
    CAST(:unit_price AS numeric[]), CAST(:net_price AS numeric[]), CAST(:currencies AS text[])
) AS line
"""
SELECT_GROUND_TRUTH = """
SELECT order_id, invoice_index, line_no, item_name, qty, uom, unit_price, net_price, currency
FROM benchmarking.ground_truth_items
WHERE order_id = ANY(CAST(:order_ids AS bigint[]))
ORDER BY order_id, invoice_index, line_no
"""
SELECT_SAVED = """
SELECT max(saved_by), max(saved_at) FROM benchmarking.ground_truth_items WHERE order_id = :order_id
"""
SELECT_VERSIONS = """
SELECT id, jsonb_array_length(items), saved_by, saved_at, replaced_by, replaced_at
FROM benchmarking.ground_truth_versions
WHERE order_id = :order_id
ORDER BY id DESC
"""
SELECT_VERSION_ITEMS = "SELECT items FROM benchmarking.ground_truth_versions WHERE order_id = :order_id AND id = :id"


def _text(value: Decimal | None) -> str | None:
    # Numbers travel as text and are cast in SQL: exact, and a column of only NULLs still has a type.
    return None if value is None else str(value)


def _number_problem(value: Decimal) -> str | None:
    if not value.is_finite():
        return "is not a finite number"
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite
    fraction = max(0, -exponent)
    whole = len(digits) + exponent if value else 0  # 1E+5: 6 digits before the point; 0.05: none
    if whole > MAX_WHOLE_DIGITS:
        return f"has more than {MAX_WHOLE_DIGITS} digits before the point"
    if fraction > MAX_FRACTION_DIGITS:
        return f"has more than {MAX_FRACTION_DIGITS} digits after the point"
    return None


def _text_problem(value: str, longest: int) -> str | None:
    if len(value) > longest:
        return f"is longer than {longest} characters"
    if "\x00" in value:
        return "contains a NUL character"
    return None


TEXT_LIMITS = {"description": MAX_DESCRIPTION_CHARS, "unit": MAX_UNIT_CHARS}


def check_line(item: ExtractedItem, where: str, *, separator: str = " ") -> None:
    """Raise :class:`GroundTruthInvalid` naming ``{where}{separator}{field}`` when a value is out of the normaliser's
    bounds (``separator`` "." names fields as JSON paths, " " as the workbench's form does)."""
    for name in ("quantity", "unit_price", "line_total"):
        number = getattr(item, name)
        problem = None if number is None else _number_problem(number)
        if problem:
            label = name if separator == "." else name.replace("_", " ")
            raise GroundTruthInvalid(f"{where}{separator}{label}: {problem}")
    for name, longest in TEXT_LIMITS.items():
        text = getattr(item, name)
        problem = None if text is None else _text_problem(text, longest)
        if problem:
            raise GroundTruthInvalid(f"{where}{separator}{name}: {problem}")


def check_ground_truth(truth: Mapping[int, Sequence[ExtractedInvoice]]) -> None:
    """Every id and value within bounds, or :class:`GroundTruthInvalid` naming the first that is not."""
    for order_id, invoices in truth.items():
        if not 1 <= order_id <= MAX_ORDER_ID:
            raise GroundTruthInvalid(f"order id {order_id} is out of range (1 to {MAX_ORDER_ID})")
        for invoice in invoices:
            where = f"order {order_id} invoice {invoice.invoice_index}"
            if not 0 <= invoice.invoice_index <= MAX_INVOICE_INDEX:
                raise GroundTruthInvalid(f"{where}: invoice index out of range (0 to {MAX_INVOICE_INDEX})")
            if invoice.currency is not None and _text_problem(invoice.currency, MAX_UNIT_CHARS):
                raise GroundTruthInvalid(f"{where} currency: {_text_problem(invoice.currency, MAX_UNIT_CHARS)}")
            for line_no, item in enumerate(invoice.items, start=1):
                check_line(item, f"{where} line {line_no}")


def version_marker(connection: Connection, order_id: int) -> str:
    """What identifies the order's current truth (an editor sends it back as the version its save replaces)."""
    return str(connection.run(SELECT_VERSION_MARKER, order_id=order_id)[0][0])


def load_ground_truth(
    connection: Connection,
    truth: Mapping[int, Sequence[ExtractedInvoice]],
    *,
    saved_by: str | None = None,
    replaces: Mapping[int, str] | None = None,
) -> int:
    """Replace the ground truth of every order in ``truth`` (order_id -> its invoices); returns rows written.

    One transaction, holding each order's lock: the replaced versions are archived, then deleted, then the new
    lines inserted. ``replaces`` (order_id -> :func:`version_marker` the save was based on): an order whose current
    version is another raises :class:`GroundTruthConflict` and nothing is written.
    """
    check_ground_truth(truth)
    columns: dict[str, list[object]] = {
        name: [] for name in ("order_ids", "invoice_indexes", "line_nos", *ITEM_COLUMNS, "currencies")
    }
    for order_id, invoices in truth.items():
        for invoice in invoices:
            for line_no, item in enumerate(invoice.items, start=1):
                columns["order_ids"].append(order_id)
                columns["invoice_indexes"].append(invoice.invoice_index)
                columns["line_nos"].append(line_no)
                for column, value in item_columns(item).items():
                    columns[column].append(_text(value) if column in NUMBER_COLUMNS else value)
                columns["currencies"].append(invoice.currency)
    with transaction(connection):
        for order_id in sorted(truth):  # one order after another, always in the same order: no deadlock
            connection.run(LOCK_ORDER, order_id=order_id)
        for order_id, based_on in (replaces or {}).items():
            current = version_marker(connection, order_id)
            if current != based_on:
                who, when = saved_by_and_when(connection, order_id)
                raise GroundTruthConflict(
                    f"order {order_id}'s ground truth was saved{f' by {who}' if who else ''}"
                    f"{f' at {when:%Y-%m-%d %H:%M:%S} UTC' if when else ''} after you opened it: reload the page to "
                    "see that version, then save again (nothing was saved)"
                )
        connection.run(ARCHIVE_GROUND_TRUTH, order_ids=[*truth], replaced_by=saved_by)
        connection.run(DELETE_GROUND_TRUTH, order_ids=[*truth])
        if columns["order_ids"]:
            connection.run(INSERT_GROUND_TRUTH, saved_by=saved_by, **columns)
    return len(columns["order_ids"])


def read_ground_truth(connection: Connection, order_ids: Iterable[int]) -> dict[int, list[ExtractedInvoice]]:
    """The ground truth of the given orders that have any, as invoices in order (printed totals are not kept)."""
    rows = connection.run(SELECT_GROUND_TRUTH, order_ids=list(order_ids))
    grouped: dict[int, dict[int, list[tuple[ExtractedItem, str | None]]]] = {}
    for order_id, invoice_index, _line_no, *values, currency in rows:
        item = item_from_columns(values)
        grouped.setdefault(order_id, {}).setdefault(invoice_index, []).append((item, currency))
    return {
        order_id: [
            ExtractedInvoice(index, lines[0][1], None, tuple(item for item, _ in lines))
            for index, lines in sorted(invoices.items())
        ]
        for order_id, invoices in grouped.items()
    }


@dataclass(frozen=True)
class GroundTruthVersion:
    """A replaced version of an order's ground truth (``benchmarking.ground_truth_versions``)."""

    id: int
    lines: int
    saved_by: str | None
    saved_at: datetime | None
    replaced_by: str | None
    replaced_at: datetime


def saved_by_and_when(connection: Connection, order_id: int) -> tuple[str | None, datetime | None]:
    """Who saved the current ground truth of the order and when (both None for truth loaded without a name)."""
    saved_by, saved_at = connection.run(SELECT_SAVED, order_id=order_id)[0]
    return saved_by, saved_at


def ground_truth_versions(connection: Connection, order_id: int) -> list[GroundTruthVersion]:
    """The replaced versions of an order's ground truth, newest first."""
    return [GroundTruthVersion(*row) for row in connection.run(SELECT_VERSIONS, order_id=order_id)]


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def version_lines(connection: Connection, order_id: int, version_id: int) -> list[dict[str, Any]]:
    """The lines of an archived version, in order, as the editor shows them (numbers as text)."""
    rows = connection.run(SELECT_VERSION_ITEMS, order_id=order_id, id=version_id)
    if not rows:
        return []
    lines = sorted(rows[0][0], key=lambda line: (int(line["invoice_index"]), int(line["line_no"])))
    return [
        {
            "invoice_index": int(line["invoice_index"]),
            **{field: line.get(column) or "" for column, field in ITEM_COLUMNS.items()},
        }
        for line in lines
    ]


def restore_ground_truth(connection: Connection, order_id: int, version_id: int, *, saved_by: str | None) -> int:
    """Make an archived version the order's ground truth again (the current one is archived in turn)."""
    rows = connection.run(SELECT_VERSION_ITEMS, order_id=order_id, id=version_id)
    if not rows:
        raise LookupError(f"order {order_id} has no ground truth version {version_id}")
    invoices: dict[int, list[dict[str, Any]]] = {}
    for line in rows[0][0]:
        invoices.setdefault(int(line["invoice_index"]), []).append(line)
    restored = [
        ExtractedInvoice(
            index,
            lines[0]["currency"],
            None,
            tuple(
                item_from_columns(
                    [_decimal(line[column]) if column in NUMBER_COLUMNS else line[column] for column in ITEM_COLUMNS]
                )
                for line in sorted(lines, key=lambda line: int(line["line_no"]))
            ),
        )
        for index, lines in sorted(invoices.items())
    ]
    return load_ground_truth(connection, {order_id: restored}, saved_by=saved_by)
