"""The per-model report: the ledger's figures (:mod:`invoice_pipeline.ledger_reads`), item counts and accuracy.

Used by the ``invoices report`` command and the local demo's summary. The ledger's own reads (status,
failed jobs, capacity) and retry-failed live in the ledger module.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from pg8000.native import Connection

from invoice_pipeline import ledger_reads

ITEM_COUNTS_SQL = """
SELECT llm, count(*) AS items
FROM benchmarking.invoice_items
WHERE CAST(:llm AS text) IS NULL OR llm = CAST(:llm AS text)
GROUP BY llm
"""

TABLE_EXISTS_SQL = "SELECT to_regclass(:name) IS NOT NULL"

GROUND_TRUTH_SQL = """
SELECT order_id, invoice_index, item_name, qty, uom, unit_price, net_price
FROM benchmarking.ground_truth_items
ORDER BY order_id, invoice_index, line_no
"""

TOP_FAILURE_REASONS = 3


@dataclass
class ModelReport:
    llm: str
    orders_done: int
    orders_failed: int
    orders_pending: int
    invoices: int
    items: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    top_failure_reasons: list[tuple[str, int]] = field(default_factory=list)
    accuracy: dict[str, Any] | None = None  # None where no ground truth or no accuracy module
    orders_with_warnings: int = 0  # done orders whose validation warnings are not empty

    @property
    def cost_per_invoice_usd(self) -> Decimal | None:
        return (self.cost_usd / self.invoices).quantize(Decimal("0.000001")) if self.invoices else None

    def as_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["cost_usd"] = str(self.cost_usd)
        cost_per_invoice = self.cost_per_invoice_usd
        row["cost_per_invoice_usd"] = None if cost_per_invoice is None else str(cost_per_invoice)
        row["top_failure_reasons"] = [{"reason": reason, "jobs": jobs} for reason, jobs in self.top_failure_reasons]
        return row


def model_report(connection: Connection, llm: str | None = None) -> list[ModelReport]:
    items = {model: int(count) for model, count in connection.run(ITEM_COUNTS_SQL, llm=llm)}
    reasons = ledger_reads.failure_reasons(connection, llm, top=TOP_FAILURE_REASONS)
    accuracy = accuracy_by_model(connection)
    return [
        ModelReport(
            llm=totals.llm,
            orders_done=totals.orders_done,
            orders_failed=totals.orders_failed,
            orders_pending=totals.orders_pending,
            invoices=totals.invoices,
            items=items.get(totals.llm, 0),
            input_tokens=totals.input_tokens,
            output_tokens=totals.output_tokens,
            cost_usd=totals.cost_usd,
            top_failure_reasons=reasons.get(totals.llm, []),
            accuracy=accuracy.get(totals.llm),
            orders_with_warnings=totals.orders_with_warnings,
        )
        for totals in ledger_reads.model_totals(connection, llm)
    ]


def table_exists(connection: Connection, qualified_name: str) -> bool:
    return bool(connection.run(TABLE_EXISTS_SQL, name=qualified_name)[0][0])


def accuracy_by_model(connection: Connection) -> dict[str, dict[str, Any]]:
    """Item accuracy per model against ``benchmarking.ground_truth_items`` (done orders with truth only).

    Integration point with ``invoice_pipeline.accuracy`` (``compare(truth, predicted)`` per invoice and
    ``aggregate(scores)``): when that module or the ground-truth table is absent, the report has no accuracy.
    """
    try:
        from invoice_pipeline import accuracy  # type: ignore[attr-defined]
    except ImportError:
        return {}
    if not table_exists(connection, "benchmarking.ground_truth_items"):
        return {}
    from invoice_pipeline.extraction.base import ExtractedItem
    from invoice_pipeline.item_columns import item_from_columns

    truth: dict[tuple[int, int], list[ExtractedItem]] = defaultdict(list)
    for order_id, invoice_index, *values in connection.run(GROUND_TRUTH_SQL):
        truth[(order_id, invoice_index)].append(item_from_columns(values))
    predicted: dict[str, dict[tuple[int, int], list[ExtractedItem]]] = defaultdict(lambda: defaultdict(list))
    for llm, order_id, invoice_index, *values in ledger_reads.items_of_done_jobs_with_truth(connection):
        predicted[llm][(order_id, invoice_index)].append(item_from_columns(values))
    done_orders = ledger_reads.done_jobs_with_truth(connection)

    result: dict[str, dict[str, Any]] = {}
    for llm, orders in done_orders.items():
        scores = [
            accuracy.compare(truth_items, predicted[llm].get(key, []))
            for key, truth_items in truth.items()
            if key[0] in orders
        ]
        if not scores:
            continue
        total = accuracy.aggregate(scores)
        result[llm] = {
            "orders": len(orders),
            "precision": float(total.precision),
            "recall": float(total.recall),
            "f1": float(total.f1),
        }
    return result
