"""The ordering application's ``orders`` table, as tests, benchmarks and the demo need it (docs/architecture.md §4).

The real table belongs to another application; here we create a stand-in with the columns the pipeline
reads (plus one it ignores, as the real table has many) and load rows in one round trip with ``unnest``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from pg8000.native import Connection

CREATE_ORDERS_TABLE = """
CREATE TABLE IF NOT EXISTS orders (
    id bigint PRIMARY KEY,
    restaurant_id bigint,
    invoice_image text,
    created_at timestamptz,
    status text NOT NULL DEFAULT 'delivered'
)
"""

INSERT_ORDERS = """
INSERT INTO orders (id, restaurant_id, invoice_image, created_at)
SELECT * FROM unnest(
    CAST(:ids AS bigint[]), CAST(:restaurant_ids AS bigint[]), CAST(:invoice_images AS text[]),
    CAST(:created_ats AS timestamptz[])
)
"""

# Rows per statement: unnest stays fast at this size and the parameter count stays at four.
INSERT_CHUNK = 50_000


class Order(NamedTuple):
    id: int
    restaurant_id: int | None
    invoice_image: str | None
    created_at: datetime | None


def create_orders_table(connection: Connection) -> None:
    connection.run(CREATE_ORDERS_TABLE)


def insert_orders(connection: Connection, rows: Iterable[Order | Sequence[object]]) -> int:
    """Insert ``(id, restaurant_id, invoice_image, created_at)`` rows; returns how many were inserted."""
    batch: list[Order] = []
    count = 0
    for row in rows:
        batch.append(Order(*row))
        if len(batch) == INSERT_CHUNK:
            count += _insert_batch(connection, batch)
            batch = []
    if batch:
        count += _insert_batch(connection, batch)
    return count


def _insert_batch(connection: Connection, batch: list[Order]) -> int:
    connection.run(
        INSERT_ORDERS,
        ids=[row.id for row in batch],
        restaurant_ids=[row.restaurant_id for row in batch],
        invoice_images=[row.invoice_image for row in batch],
        # As text: pg8000 cannot infer an array type from a list whose first element is None.
        created_ats=[None if row.created_at is None else row.created_at.isoformat() for row in batch],
    )
    return len(batch)
