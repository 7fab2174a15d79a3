"""Each table has one owning module: statements on the ledger and on ``orders`` are written nowhere else."""

from __future__ import annotations

import re
from pathlib import Path

from invoice_pipeline.tables import ledger
from invoice_pipeline.tables.ledger import JobStatus

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("functions", "local", "invoices_cli")
# Text that is not a statement on the table: hostile input the chaos harness stores as data.
HOSTILE_DATA = "local/chaos/data.py"

LEDGER_STATEMENT = re.compile(r"\b(FROM|UPDATE|INTO|JOIN)\s+benchmarking\.extraction_jobs\b")
ORDERS_STATEMENT = re.compile(r"\b(FROM|UPDATE|INTO|JOIN|ON)\s+orders\b(?!/)")


def files_matching(pattern: re.Pattern[str]) -> set[str]:
    found = set()
    for top in SOURCES:
        for path in (ROOT / top).rglob("*.py"):
            if pattern.search(path.read_text(encoding="utf-8")):
                found.add(path.relative_to(ROOT).as_posix())
    return found - {HOSTILE_DATA}


def test_only_the_ledger_module_writes_sql_on_the_ledger() -> None:
    # items.py: the success transition is the statement that writes the items (one transaction, see its docstring).
    # ledger_reads.py: the ledger's reads, apart so that the handlers' cold import does not load them.
    assert files_matching(LEDGER_STATEMENT) == {
        "functions/invoice_pipeline/tables/ledger.py",
        "functions/invoice_pipeline/tables/ledger_reads.py",
        "functions/invoice_pipeline/tables/items.py",
    }


def test_only_the_orders_module_writes_sql_on_orders() -> None:
    # The comparison's job rows join `orders` through the filter orders.py owns; local/orders.py creates the local
    # stand-in of the ordering application's table.
    assert files_matching(ORDERS_STATEMENT) == {
        "functions/invoice_pipeline/tables/orders.py",
        "functions/invoice_pipeline/tables/ledger_reads.py",
        "local/orders.py",
    }


def test_the_lease_rules_are_written_once() -> None:
    domain = ROOT / "functions" / "invoice_pipeline"
    text = "".join(path.read_text(encoding="utf-8") for path in domain.rglob("*.py"))
    assert text.count("job.started_at < now()") == 1
    assert text.count("job.started_at + make_interval") == 1
    assert text.count("coalesce(job.enqueued_at, '-infinity')") == 1
    assert ledger.STALE_PROCESSING in ledger.PAGE_AND_CLAIM_ALL_RESTAURANTS
    assert ledger.QUEUED_LEASE_ENDED in ledger.PAGE_AND_CLAIM_LISTED_RESTAURANTS


def test_job_statuses_are_the_ones_the_table_allows() -> None:
    migration = (ROOT / "functions/invoice_pipeline/migrations/0001_items_and_ledger.sql").read_text(encoding="utf-8")
    allowed = re.search(r"status text NOT NULL CHECK \(status IN \(([^)]*)\)\)", migration)
    assert allowed is not None
    assert {value.strip(" '") for value in allowed.group(1).split(",")} == {status.value for status in JobStatus}
