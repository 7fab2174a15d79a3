"""The cascade migration (0012) on a database that already holds items and jobs: every row kept, the new columns
(``invoice_items.stage``, ``extraction_jobs.stage_answers``) NULL on them."""

from invoice_pipeline.tables import migrations
from invoice_pipeline.tables.migrations import available_migrations, migrate
from tests.conftest import connect

CASCADE = 12


def test_the_migration_keeps_every_row_and_leaves_old_rows_without_a_stage(empty_database, monkeypatch):
    connection = connect(empty_database)
    everything = available_migrations()
    monkeypatch.setattr(migrations, "available_migrations", lambda: [m for m in everything if m.version < CASCADE])
    migrate(connection)
    connection.run(
        "INSERT INTO benchmarking.invoice_items (order_id, llm, invoice_index, line_no, item_name, qty, unit_price,"
        " net_price) VALUES (1, 'm', 0, 1, 'Rice', 2, 3.75, 7.5), (1, 'm', 0, 2, 'Oil', 1, 1, 1)"
    )
    connection.run(
        "INSERT INTO benchmarking.extraction_jobs (order_id, llm, status, item_count) VALUES (1, 'm', 'done', 2)"
    )
    before = connection.run("SELECT * FROM benchmarking.invoice_items ORDER BY id")
    jobs_before = connection.run("SELECT * FROM benchmarking.extraction_jobs")

    monkeypatch.setattr(migrations, "available_migrations", lambda: [m for m in everything if m.version <= CASCADE])
    assert [name for name in migrate(connection) if name.startswith("0012")] == ["0012_cascade_stage"]

    after = connection.run("SELECT * FROM benchmarking.invoice_items ORDER BY id")
    names = [column["name"] for column in connection.columns]
    assert [[value for name, value in zip(names, row, strict=True) if name != "stage"] for row in after] == [
        list(row) for row in before
    ]
    assert [row[names.index("stage")] for row in after] == [None, None]
    jobs_after = connection.run("SELECT * FROM benchmarking.extraction_jobs")
    job_names = [column["name"] for column in connection.columns]
    assert [[v for n, v in zip(job_names, row, strict=True) if n != "stage_answers"] for row in jobs_after] == [
        list(row) for row in jobs_before
    ]
    assert connection.run("SELECT stage_answers FROM benchmarking.extraction_jobs") == [[None]]
    assert migrate(connection) == []
