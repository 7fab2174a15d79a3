"""Reading one order's ``invoice_image`` (the ``orders`` table belongs to the ordering application: read only)."""

from __future__ import annotations

from invoice_pipeline.db import Connection
from invoice_pipeline.errors import OrderNotFound

SELECT_INVOICE_IMAGE = "SELECT invoice_image FROM orders WHERE id = :order_id"


def read_invoice_image(connection: Connection, order_id: int) -> str | None:
    """The order's ``invoice_image`` (may be NULL or blank); :class:`OrderNotFound` when there is no such order."""
    rows = connection.run(SELECT_INVOICE_IMAGE, order_id=order_id)
    if not rows:
        raise OrderNotFound()
    value: str | None = rows[0][0]
    return value
