"""An item's fields under the legacy column names of ``invoice_items`` and ``ground_truth_items``: the one mapping.

The old script named the columns ``item_name, qty, uom, unit_price, net_price``; the code says ``description,
quantity, unit, unit_price, line_total`` (:class:`~invoice_pipeline.extractor.ExtractedItem`). The columns
stay as they are (the table predates this project and others read it); every module that writes or reads them
goes through this mapping, and its SQL lists the columns in :data:`ITEM_COLUMNS` order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from invoice_pipeline.extractor import ExtractedItem

# column -> ExtractedItem field, in the order statements select the columns
ITEM_COLUMNS: dict[str, str] = {
    "item_name": "description",
    "qty": "quantity",
    "uom": "unit",
    "unit_price": "unit_price",
    "net_price": "line_total",
}
NUMBER_COLUMNS = frozenset({"qty", "unit_price", "net_price"})


def item_columns(item: ExtractedItem) -> dict[str, Any]:
    """The item's values by column name, in :data:`ITEM_COLUMNS` order."""
    return {column: getattr(item, field) for column, field in ITEM_COLUMNS.items()}


def item_from_columns(values: Sequence[Any]) -> ExtractedItem:
    """The item of one row's values of the :data:`ITEM_COLUMNS`, in that order."""
    return ExtractedItem(**dict(zip(ITEM_COLUMNS.values(), values, strict=True)))
