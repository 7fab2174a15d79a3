"""The line-evidence migration on a database that already holds items and jobs: every row kept, the new columns
NULL on them, and the new columns' limits enforced on rows written after."""

import pg8000.native
import pytest

from invoice_pipeline.tables import migrations
from invoice_pipeline.tables.migrations import available_migrations, migrate
from tests.conftest import connect

EVIDENCE = 9


def test_the_migration_keeps_every_row_and_leaves_old_rows_without_evidence(empty_database, monkeypatch):
    connection = connect(empty_database)
    everything = available_migrations()
    monkeypatch.setattr(migrations, "available_migrations", lambda: [m for m in everything if m.version < EVIDENCE])
    migrate(connection)
    connection.run(
        "INSERT INTO benchmarking.invoice_items (order_id, llm, invoice_index, line_no, item_name, qty, unit_price,"
        " net_price) VALUES (1, 'm', 0, 1, 'Rice', 2, 3.75, 7.5), (1, 'm', 0, 2, 'Oil', 1, 1, 1)"
    )
    connection.run(
        "INSERT INTO benchmarking.extraction_jobs (order_id, llm, status, item_count) VALUES (1, 'm', 'done', 2)"
    )
    before = connection.run("SELECT * FROM benchmarking.invoice_items ORDER BY id")
    jobs_before = connection.run("SELECT order_id, llm, status, item_count FROM benchmarking.extraction_jobs")

    # Up to this migration: later ones add columns of their own.
    monkeypatch.setattr(migrations, "available_migrations", lambda: [m for m in everything if m.version <= EVIDENCE])
    assert [name for name in migrate(connection) if name.startswith("0009")] == ["0009_line_evidence"]

    after = connection.run("SELECT * FROM benchmarking.invoice_items ORDER BY id")
    names = [column["name"] for column in connection.columns]
    new = ["page", "bbox", "source_text", "checks", "trust"]
    assert [[value for name, value in zip(names, row, strict=True) if name not in new] for row in after] == [
        list(row) for row in before
    ]
    assert [[row[names.index(name)] for name in new] for row in after] == [[None] * 5, [None] * 5]
    assert connection.run("SELECT order_id, llm, status, item_count FROM benchmarking.extraction_jobs") == jobs_before
    assert connection.run("SELECT evidence FROM benchmarking.extraction_jobs") == [[None]]
    assert migrate(connection) == []


@pytest.mark.parametrize(
    "values",
    ["page => 0", "bbox => '[0, 0, 1]'", "trust => 'certain'", "source_text => repeat('x', 1001)", "checks => '[]'"],
)
def test_the_new_columns_refuse_what_the_normaliser_never_writes(empty_database, values):
    connection = connect(empty_database)
    migrate(connection)
    column, value = values.split(" => ")
    with pytest.raises(pg8000.native.DatabaseError, match="invoice_items_evidence_check"):
        connection.run(
            f"INSERT INTO benchmarking.invoice_items (order_id, llm, invoice_index, line_no, {column})"
            f" VALUES (1, 'm', 0, 1, {value})"
        )
