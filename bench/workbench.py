"""Workbench benchmark: how long the comparison page's numbers and the review queue take as the ledger grows.

Two models on N orders of 12 lines each (model B differs on every fifth order), ground truth for every tenth order,
generated in SQL. For N = 1,000 and 10,000 it times, side by side in one run:

1. ``compare_models`` (the comparison page and ``invoices report``) with the agreement sample capped at
   ``AGREEMENT_MAX_ORDERS`` (the shipped setting) and uncapped (every order both models finished), each cold
   (first page load of a process: every order compared) and warm (next load: comparisons remembered);
2. ``review_queue`` (the review page's queue and its "next order"), warm.

Self-contained: starts an embedded Postgres. Run: ``.venv/bin/python bench/workbench.py``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

from invoice_pipeline.tables.migrations import migrate  # noqa: E402
from invoices_cli import comparison  # noqa: E402
from local.postgres import EmbeddedPostgres  # noqa: E402
from tests.conftest import connect  # noqa: E402

SIZES = (1_000, 10_000)
MODELS = ["model-a", "model-b"]

SEED_JOBS = """
INSERT INTO benchmarking.extraction_jobs
    (order_id, llm, status, attempts, invoice_count, item_count, input_tokens, output_tokens, cost_usd, model_ms,
     warnings)
SELECT o, m, 'done', 1, 1, 12, 1000, 100, 0.01, 500 + (o * 37) % 700, '[]'::jsonb
FROM generate_series(1, CAST(:n AS integer)) AS o, unnest(CAST(:models AS text[])) AS m
"""
SEED_ITEMS = """
INSERT INTO benchmarking.invoice_items
    (order_id, llm, invoice_index, line_no, item_name, qty, uom, unit_price, net_price)
SELECT o, m, 0, l,
       'Product ' || ((o * 7 + l * 13) % 500) || CASE WHEN m = 'model-b' AND o % 5 = 0 AND l = 1 THEN ' misread'
                                                   ELSE ' grade A' END,
       l, 'kg', 1.5, 1.5 * l
FROM generate_series(1, CAST(:n AS integer)) AS o, unnest(CAST(:models AS text[])) AS m, generate_series(1, 12) AS l
"""
SEED_TRUTH = """
INSERT INTO benchmarking.ground_truth_items
    (order_id, invoice_index, line_no, item_name, qty, uom, unit_price, net_price)
SELECT order_id, invoice_index, line_no, item_name, qty, uom, unit_price, net_price
FROM benchmarking.invoice_items WHERE llm = 'model-a' AND order_id % 10 = 0
"""
RESET = "TRUNCATE benchmarking.extraction_jobs, benchmarking.invoice_items, benchmarking.ground_truth_items"


def timed(action: Callable[[], object], repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    with EmbeddedPostgres() as server:
        connection = connect(server.dsn)
        migrate(connection)
        print(
            f"{'orders':>8} {'capped cold':>12} {'capped warm':>12} {'uncapped cold':>14} {'unc/cap':>8} "
            f"{'cold/warm':>8} {'queue warm':>12}"
        )
        scope = comparison.ComparisonFilter()
        for size in SIZES:
            connection.run(RESET)
            connection.run(SEED_JOBS, n=size, models=MODELS)
            connection.run(SEED_ITEMS, n=size, models=MODELS)
            connection.run(SEED_TRUTH)
            comparison.compare_lines.cache_clear()
            capped_cold = timed(lambda: comparison.compare_models(connection, scope), repeat=1)
            capped_warm = timed(lambda: comparison.compare_models(connection, scope))
            queue = timed(lambda: comparison.review_queue(comparison.load_comparison_data(connection, scope)))
            shipped = comparison.AGREEMENT_MAX_ORDERS
            comparison.AGREEMENT_MAX_ORDERS = size
            comparison.compare_lines.cache_clear()
            try:
                uncapped = timed(lambda: comparison.compare_models(connection, scope), repeat=1)
            finally:
                comparison.AGREEMENT_MAX_ORDERS = shipped
            print(
                f"{size:>8} {capped_cold:>10.2f} s {capped_warm:>10.2f} s {uncapped:>12.2f} s "
                f"{uncapped / capped_cold:>7.1f}x {capped_cold / capped_warm:>7.1f}x {queue:>10.2f} s",
                flush=True,
            )
        connection.close()
    return 0


if __name__ == "__main__":
    from local.logs import bench_logs

    with bench_logs("bench-workbench"):
        status = main()
    raise SystemExit(status)
