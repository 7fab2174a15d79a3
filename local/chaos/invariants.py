"""The promises a chaos run checks (docs/architecture.md §1 and §5), over the ledger, the items and the DLQ.

Every eligible ``(order, model)`` ends ``done`` with exactly its known items, or ``failed`` with a reason and
its message in the DLQ; no item is written twice; the ledger's ``item_count`` equals the rows in
``invoice_items``; after the redrive only the unrecoverable orders are still failed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pg8000.native

from invoice_pipeline.tables import ledger_reads
from local.chaos.data import MODEL, ChaosOrder

ITEMS_SQL = """
SELECT order_id, invoice_index, line_no, item_name, qty, uom, unit_price, net_price
FROM benchmarking.invoice_items WHERE llm = :llm ORDER BY order_id, invoice_index, line_no
"""
DUPLICATE_KEYS_SQL = """
SELECT coalesce(sum(n - 1), 0) FROM (
    SELECT count(*) AS n FROM benchmarking.invoice_items GROUP BY order_id, llm, invoice_index, line_no
) AS lines
"""
TABLES_SQL = """
SELECT count(*) FROM pg_tables
WHERE (schemaname, tablename) IN (('public', 'orders'), ('benchmarking', 'invoice_items'),
                                  ('benchmarking', 'extraction_jobs'))
"""


@dataclass
class Check:
    """What the invariants found: counts, and one line per violation."""

    dlq: int = 0
    done: int = 0
    failed: int = 0
    duplicates: int = 0
    lost: int = 0
    wrong: int = 0
    half_written: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Ledger:
    """What the database holds for the chaos model: jobs and item rows by order, duplicate keys, tables."""

    jobs: dict[int, tuple[str, str | None, int | None]]
    rows: dict[int, list[tuple[Any, ...]]]
    duplicate_keys: int
    tables: int


def read_ledger(connection: pg8000.native.Connection) -> Ledger:
    jobs = {
        order_id: (job.status, job.last_error, job.item_count)
        for order_id, job in ledger_reads.model_outcomes(connection, MODEL).items()
    }
    rows: dict[int, list[tuple[Any, ...]]] = {}
    for order_id, *row in connection.run(ITEMS_SQL, llm=MODEL):
        rows.setdefault(order_id, []).append(tuple(row))
    duplicate_keys = int(connection.run(DUPLICATE_KEYS_SQL)[0][0])
    tables = int(connection.run(TABLES_SQL)[0][0])
    return Ledger(jobs, rows, duplicate_keys, tables)


def check_invariants(
    ledger: Ledger,
    orders: Mapping[int, ChaosOrder],
    dlq: list[str],
    *,
    unrecoverable: frozenset[int] | set[int] = frozenset(),
    final: bool = False,
) -> Check:
    """The invariants over ``orders`` given the ledger and the DLQ's bodies (see :class:`Check`)."""
    jobs, rows = ledger.jobs, ledger.rows
    dlq_jobs = Counter(_job_of(body) for body in dlq)
    check = Check(dlq=len(dlq), duplicates=ledger.duplicate_keys)
    if ledger.tables != 3:
        check.problems.append(f"expected orders, invoice_items and extraction_jobs to exist, found {ledger.tables}")
    for order_id, order in sorted(orders.items()):
        status, error, item_count = jobs.get(order_id, ("missing", None, None))
        stored = rows.get(order_id, [])
        expected = [
            (t.invoice_index, t.line_no, t.item_name, t.qty, t.uom, t.unit_price, t.net_price) for t in order.truth
        ]
        if status == "done":
            check.done += 1
            check.duplicates += max(0, len(stored) - len(expected))
            if stored != expected:
                check.wrong += 1
                check.problems.append(f"order {order_id}: items differ from the truth: {stored} != {expected}")
            if item_count != len(stored):
                check.half_written += 1
                check.problems.append(f"order {order_id}: item_count {item_count} but {len(stored)} rows")
            if final and order_id in unrecoverable:
                check.problems.append(f"order {order_id} should have failed for good but is done")
        elif status == "failed" and error and dlq_jobs[(order_id, MODEL)] >= 1:
            check.failed += 1
            if stored:
                check.half_written += 1
                check.problems.append(f"order {order_id} failed but has {len(stored)} item rows")
            if final and order_id not in unrecoverable:
                check.lost += 1
                check.problems.append(f"order {order_id} is recoverable but still failed after the redrive: {error}")
        else:
            check.lost += 1
            where = "in the DLQ" if dlq_jobs[(order_id, MODEL)] else "not in the DLQ"
            check.problems.append(f"order {order_id} ended {status} ({error}), message {where}")
    if check.duplicates:
        check.problems.append(f"{check.duplicates} duplicated item row(s)")
    return check


def _job_of(body: str) -> tuple[int, str]:
    """(order_id, llm) of a message body; (-1, "") when it names none."""
    try:
        message = json.loads(body)
        return int(message["order_id"]), str(message.get("llm") or MODEL)
    except (ValueError, KeyError, TypeError, AttributeError):
        return -1, ""
