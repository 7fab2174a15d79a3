"""The line-evidence migration on a database that already holds items and jobs: every row kept, the new columns
NULL on them, and the new columns' limits enforced on rows written after."""

import pg8000.native
import pytest

from invoice_pipeline.tables.migrations import migrate
from tests.conftest import connect
from tests.integration.expand_migrations import ITEMS, JOBS, upgrade_with_rows

EVIDENCE = 9


def test_the_migration_keeps_every_row_and_leaves_old_rows_without_evidence(empty_database, monkeypatch):
    upgrade = upgrade_with_rows(empty_database, monkeypatch, EVIDENCE)
    assert [name for name in upgrade.applied if name.startswith("0009")] == ["0009_line_evidence"]
    new = ["page", "bbox", "source_text", "checks", "trust"]
    assert upgrade.rows_without(ITEMS, set(new)) == upgrade.items_before
    assert upgrade.new_values(ITEMS, new) == [[None] * 5, [None] * 5]
    assert upgrade.rows_without(JOBS, {"evidence"}) == upgrade.jobs_before
    assert upgrade.new_values(JOBS, ["evidence"]) == [[None]]
    assert migrate(upgrade.connection) == []


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
