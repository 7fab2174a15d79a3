"""Known line items of orders (``benchmarking.ground_truth_items``), the reference accuracy is measured against.

The demo loads the truth of its sample invoices here; an operator can load hand-checked orders the same way.
Loading an order replaces whatever truth it had, so a reload never leaves stale lines behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from invoice_pipeline.db import Connection, transaction
from invoice_pipeline.extraction.base import ExtractedInvoice, ExtractedItem

DELETE_GROUND_TRUTH = "DELETE FROM benchmarking.ground_truth_items WHERE order_id = ANY(CAST(:order_ids AS bigint[]))"
# One statement for all the rows, whatever their number (values travel as arrays, not as a VALUES list).
INSERT_GROUND_TRUTH = """
INSERT INTO benchmarking.ground_truth_items
    (order_id, invoice_index, line_no, item_name, qty, uom, unit_price, net_price, currency)
SELECT * FROM unnest(
    CAST(:order_ids AS bigint[]), CAST(:invoice_indexes AS integer[]), CAST(:line_nos AS integer[]),
    CAST(:item_names AS text[]), CAST(:qtys AS numeric[]), CAST(:uoms AS text[]),
    CAST(:unit_prices AS numeric[]), CAST(:net_prices AS numeric[]), CAST(:currencies AS text[])
)
"""
SELECT_GROUND_TRUTH = """
SELECT order_id, invoice_index, line_no, item_name, qty, uom, unit_price, net_price, currency
FROM benchmarking.ground_truth_items
WHERE order_id = ANY(CAST(:order_ids AS bigint[]))
ORDER BY order_id, invoice_index, line_no
"""


def _text(value: Decimal | None) -> str | None:
    # Numbers travel as text and are cast in SQL: exact, and a column of only NULLs still has a type.
    return None if value is None else str(value)


def load_ground_truth(connection: Connection, truth: Mapping[int, Sequence[ExtractedInvoice]]) -> int:
    """Replace the ground truth of every order in ``truth`` (order_id -> its invoices); returns rows written."""
    columns: dict[str, list[object]] = {
        name: []
        for name in (
            "order_ids",
            "invoice_indexes",
            "line_nos",
            "item_names",
            "qtys",
            "uoms",
            "unit_prices",
            "net_prices",
            "currencies",
        )
    }
    for order_id, invoices in truth.items():
        for invoice in invoices:
            for line_no, item in enumerate(invoice.items, start=1):
                columns["order_ids"].append(order_id)
                columns["invoice_indexes"].append(invoice.invoice_index)
                columns["line_nos"].append(line_no)
                columns["item_names"].append(item.description)
                columns["qtys"].append(_text(item.quantity))
                columns["uoms"].append(item.unit)
                columns["unit_prices"].append(_text(item.unit_price))
                columns["net_prices"].append(_text(item.line_total))
                columns["currencies"].append(invoice.currency)
    with transaction(connection):
        connection.run(DELETE_GROUND_TRUTH, order_ids=[*truth])
        if columns["order_ids"]:
            connection.run(INSERT_GROUND_TRUTH, **columns)
    return len(columns["order_ids"])


def read_ground_truth(connection: Connection, order_ids: Iterable[int]) -> dict[int, list[ExtractedInvoice]]:
    """The ground truth of the given orders that have any, as invoices in order (printed totals are not kept)."""
    rows = connection.run(SELECT_GROUND_TRUTH, order_ids=list(order_ids))
    grouped: dict[int, dict[int, list[tuple[ExtractedItem, str | None]]]] = {}
    for order_id, invoice_index, _line_no, name, qty, uom, unit_price, net_price, currency in rows:
        item = ExtractedItem(name, qty, uom, unit_price, net_price)
        grouped.setdefault(order_id, {}).setdefault(invoice_index, []).append((item, currency))
    return {
        order_id: [
            ExtractedInvoice(index, lines[0][1], None, tuple(item for item, _ in lines))
            for index, lines in sorted(invoices.items())
        ]
        for order_id, invoices in grouped.items()
    }
