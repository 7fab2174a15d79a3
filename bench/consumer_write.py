"""Consumer write benchmark, side by side in one run:

writing one order of 3 invoices x 40 items with its ledger row: this design (one statement, unnest arrays)
vs row-by-row inserts in a transaction. Counts database round trips and times both. The cold import of the
handlers is measured by ``bench/cold_start.py``.

Self-contained: starts an embedded Postgres. Run: ``.venv/bin/python bench/consumer_write.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

from invoice_pipeline.extractor import ExtractedInvoice, ExtractedItem  # noqa: E402
from invoice_pipeline.tables import items  # noqa: E402
from invoice_pipeline.tables.db import Connection  # noqa: E402
from invoice_pipeline.tables.item_columns import item_columns  # noqa: E402
from invoice_pipeline.tables.migrations import migrate  # noqa: E402
from local.postgres import EmbeddedPostgres  # noqa: E402
from tests.conftest import connect  # noqa: E402

INVOICES, ITEMS, ORDERS = 3, 40, 30
LLM = "gpt-4o-2024-11-20"

ROW_INSERT = """
INSERT INTO benchmarking.invoice_items
    (order_id, llm, invoice_index, line_no, item_name, qty, uom, unit_price, net_price, currency)
VALUES (:order_id, :llm, :invoice_index, :line_no, :item_name, :qty, :uom, :unit_price, :net_price, :currency)
ON CONFLICT (order_id, llm, invoice_index, line_no) DO NOTHING
"""
ROW_DONE = """
UPDATE benchmarking.extraction_jobs SET status = 'done', finished_at = now(), invoice_count = :invoice_count,
    item_count = :item_count, input_tokens = 0, output_tokens = 0, cost_usd = 0
WHERE order_id = :order_id AND llm = :llm AND status = 'processing' AND attempts = 1
"""
CLAIM = """
INSERT INTO benchmarking.extraction_jobs (order_id, llm, status, attempts, started_at)
VALUES (:o, :l, 'processing', 1, now())
"""


class CountingConnection:
    """Counts statements sent (each ``run`` is one round trip: pg8000 sends parse/bind/execute/sync together)."""

    def __init__(self, connection: Connection) -> None:
        self._connection, self.round_trips = connection, 0

    def run(self, sql: str, **params: object) -> object:
        self.round_trips += 1
        return self._connection.run(sql, **params)

    @property
    def row_count(self) -> int:
        return int(self._connection.row_count)


def order(seed: int) -> list[ExtractedInvoice]:
    return [
        ExtractedInvoice(
            invoice_index=index,
            currency="KWD",
            printed_total=None,
            items=tuple(
                ExtractedItem(
                    f"item {seed}-{index}-{line}", Decimal(line % 7 + 1), "kg", Decimal("1.250"), Decimal("3.750")
                )
                for line in range(ITEMS)
            ),
        )
        for index in range(INVOICES)
    ]


def write_row_by_row(connection: CountingConnection, order_id: int, invoices: list[ExtractedInvoice]) -> None:
    connection.run("BEGIN")
    for invoice in invoices:
        for line_no, item in enumerate(invoice.items, start=1):
            connection.run(
                ROW_INSERT,
                order_id=order_id,
                llm=LLM,
                invoice_index=invoice.invoice_index,
                line_no=line_no,
                **item_columns(item),
                currency=invoice.currency,
            )
    connection.run(
        ROW_DONE,
        order_id=order_id,
        llm=LLM,
        invoice_count=len(invoices),
        item_count=sum(len(i.items) for i in invoices),
    )
    connection.run("COMMIT")


def bench_write(raw: Connection) -> None:
    timings: dict[str, list[float]] = {"one statement": [], "row by row": []}
    trips: dict[str, int] = {}
    for n in range(ORDERS):
        for name, base in (("one statement", 1_000_000), ("row by row", 2_000_000)):
            order_id = base + n
            raw.run(CLAIM, o=order_id, l=LLM)
            counting = CountingConnection(raw)
            invoices = order(n)
            started = time.perf_counter()
            if name == "one statement":
                result = items.write_order(counting, order_id, LLM, attempt=1, invoices=invoices)  # type: ignore[arg-type]
                assert result.job_completed and result.items_written == INVOICES * ITEMS
            else:
                write_row_by_row(counting, order_id, invoices)
            timings[name].append(time.perf_counter() - started)
            trips[name] = counting.round_trips
    fast, slow = statistics.median(timings["one statement"]), statistics.median(timings["row by row"])
    print(f"write one order of {INVOICES} invoices x {ITEMS} items with its ledger row (median of {ORDERS} orders)")
    print(f"  this design (one statement, unnest):  {trips['one statement']:>4} round trips  {fast * 1000:8.2f} ms")
    print(f"  row by row in a transaction:          {trips['row by row']:>4} round trips  {slow * 1000:8.2f} ms")
    print(f"  ratio: {trips['row by row'] / trips['one statement']:.0f}x fewer round trips, {slow / fast:.1f}x faster")


def main() -> int:
    with EmbeddedPostgres() as server:
        raw = connect(server.dsn)
        migrate(raw)
        bench_write(raw)
        raw.close()
    return 0


if __name__ == "__main__":
    from local.logs import bench_logs

    with bench_logs("bench-consumer-write"):
        status = main()
    raise SystemExit(status)
