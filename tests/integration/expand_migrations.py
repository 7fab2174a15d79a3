"""An expand-only migration applied to a database that already holds items and jobs: the rows before and after."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from invoice_pipeline.tables import migrations
from invoice_pipeline.tables.migrations import available_migrations, migrate
from tests.conftest import connect

ITEMS = "SELECT * FROM benchmarking.invoice_items ORDER BY id"
JOBS = "SELECT * FROM benchmarking.extraction_jobs ORDER BY order_id, llm"


@dataclass
class Upgrade:
    connection: Any
    applied: list[str]  # what migrating up to the version applied
    items_before: list[list[Any]]
    jobs_before: list[list[Any]]

    def rows_without(self, sql: str, new_columns: set[str]) -> list[list[Any]]:
        """The rows of ``sql`` now, without the columns the migration added."""
        rows = self.connection.run(sql)
        names = [column["name"] for column in self.connection.columns]
        return [[value for name, value in zip(names, row, strict=True) if name not in new_columns] for row in rows]

    def new_values(self, sql: str, new_columns: list[str]) -> list[list[Any]]:
        """The values of the migration's new columns on the rows of ``sql``."""
        rows = self.connection.run(sql)
        names = [column["name"] for column in self.connection.columns]
        return [[row[names.index(name)] for name in new_columns] for row in rows]


def upgrade_with_rows(database: str, monkeypatch: Any, version: int) -> Upgrade:
    """Migrate to just before ``version``, write two items and their job, then migrate up to ``version`` (later
    migrations add columns of their own)."""
    connection = connect(database)
    everything = available_migrations()
    monkeypatch.setattr(migrations, "available_migrations", lambda: [m for m in everything if m.version < version])
    migrate(connection)
    connection.run(
        "INSERT INTO benchmarking.invoice_items (order_id, llm, invoice_index, line_no, item_name, qty, unit_price,"
        " net_price) VALUES (1, 'm', 0, 1, 'Rice', 2, 3.75, 7.5), (1, 'm', 0, 2, 'Oil', 1, 1, 1)"
    )
    connection.run(
        "INSERT INTO benchmarking.extraction_jobs (order_id, llm, status, item_count) VALUES (1, 'm', 'done', 2)"
    )
    items_before = [list(row) for row in connection.run(ITEMS)]
    jobs_before = [list(row) for row in connection.run(JOBS)]
    monkeypatch.setattr(migrations, "available_migrations", lambda: [m for m in everything if m.version <= version])
    return Upgrade(connection, migrate(connection), items_before, jobs_before)
