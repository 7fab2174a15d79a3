"""Migrations on a real server: from empty, re-run, concurrent runs, failure rollback, upgrade of the old table."""

import random
import threading
import time
from decimal import Decimal
from types import SimpleNamespace

import pytest

from invoice_pipeline.tables import migrations
from invoice_pipeline.tables.migrations import Migration, MigrationError, MigrationLimits, available_migrations, migrate
from tests.conftest import connect

OLD_TABLE = """
CREATE SCHEMA benchmarking;
CREATE TABLE benchmarking.invoice_items (
    id serial PRIMARY KEY,
    order_id bigint NOT NULL,
    item_name text,
    qty double precision,
    uom text,
    unit_price double precision,
    net_price double precision,
    llm text,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    CONSTRAINT invoice_items_unique_line UNIQUE (order_id, item_name, qty, uom, unit_price, net_price)
);
"""


def tables(connection):
    rows = connection.run(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'benchmarking' ORDER BY 1"
    )
    return [row[0] for row in rows]


def test_migrations_create_the_schema_from_empty(empty_database):
    connection = connect(empty_database)
    applied = migrate(connection)
    assert applied == [f"{m.version:04d}_{m.name}" for m in available_migrations()]
    assert {"invoice_items", "extraction_jobs", "schema_migrations"} <= set(tables(connection))
    versions = [row[0] for row in connection.run("SELECT version FROM benchmarking.schema_migrations ORDER BY 1")]
    assert versions == [m.version for m in available_migrations()]


def test_running_migrations_twice_changes_nothing(empty_database):
    connection = connect(empty_database)
    migrate(connection)
    before = connection.run("SELECT version, applied_at FROM benchmarking.schema_migrations ORDER BY 1")
    assert migrate(connection) == []
    assert connection.run("SELECT version, applied_at FROM benchmarking.schema_migrations ORDER BY 1") == before


def test_concurrent_runs_apply_each_version_once(empty_database):
    results, errors = [], []

    def run():
        try:
            results.append(migrate(connect(empty_database)))
        except Exception as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(len(applied) for applied in results) == [0, 0, 0, len(available_migrations())]
    rows = connect(empty_database).run("SELECT version, count(*) FROM benchmarking.schema_migrations GROUP BY 1")
    assert all(count == 1 for _, count in rows)


def test_a_failing_migration_rolls_back_whole_and_is_not_recorded(empty_database, monkeypatch):
    connection = connect(empty_database)
    migrate(connection)
    broken = Migration(9999, "broken", "CREATE TABLE benchmarking.half_done (id int); SELECT 1/0;")
    real = available_migrations()
    monkeypatch.setattr(migrations, "available_migrations", lambda: [*real, broken])
    with pytest.raises(MigrationError, match="9999_broken.*division by zero"):
        migrate(connection)
    assert "half_done" not in tables(connection)
    assert connection.run("SELECT count(*) FROM benchmarking.schema_migrations WHERE version = 9999") == [[0]]


def test_upgrade_of_the_old_table_keeps_every_row_and_backfills_the_ledger(empty_database):
    connection = connect(empty_database)
    connection.run(OLD_TABLE)
    rng = random.Random(7)
    models = ["gpt-4o", "gpt-4o-mini", "claude"]
    rows = []
    for order_id in range(1, 121):
        for llm in rng.sample(models, rng.randint(1, 3)):
            for line in range(rng.randint(1, 4)):
                unit = None if rng.random() < 0.2 else rng.choice(["kg", "pcs", "box"])
                price = None if rng.random() < 0.2 else round(rng.uniform(0.1, 99), 3)
                rows.append((order_id, f"item {line} of {order_id}", rng.randint(1, 9), unit, price, price, llm))
    for row in rows:
        connection.run(
            "INSERT INTO benchmarking.invoice_items (order_id, item_name, qty, uom, unit_price, net_price, llm)"
            " VALUES (:o, :n, :q, :u, :p, :t, :l)",
            o=row[0],
            n=row[1],
            q=row[2],
            u=row[3],
            p=row[4],
            t=row[5],
            l=row[6],
        )
    assert len(rows) >= 300
    before = connection.run(
        "SELECT id, order_id, item_name, qty::text, uom, unit_price::numeric::text, net_price::numeric::text, llm,"
        " created_at FROM benchmarking.invoice_items ORDER BY id"
    )

    migrate(connection)

    after = connection.run(
        "SELECT id, order_id, item_name, qty::text, uom, unit_price::text, net_price::text, llm, created_at"
        " FROM benchmarking.invoice_items ORDER BY id"
    )
    assert after == before
    # line_no numbers each (order, model)'s lines by id; invoice_index is 0
    numbered = connection.run(
        "SELECT order_id, llm, array_agg(line_no ORDER BY id), bool_and(invoice_index = 0)"
        " FROM benchmarking.invoice_items GROUP BY 1, 2"
    )
    for _, _, line_numbers, first_invoice in numbered:
        assert line_numbers == list(range(1, len(line_numbers) + 1))
        assert first_invoice
    ledger = connection.run("SELECT order_id, llm, status, item_count FROM benchmarking.extraction_jobs ORDER BY 1, 2")
    expected = sorted({(o, llm) for o, *_, llm in rows})
    assert [(o, llm) for o, llm, _, _ in ledger] == expected
    assert {status for _, _, status, _ in ledger} == {"done"}
    assert sum(count for *_, count in ledger) == len(rows)
    # the old key is gone: a real duplicate line can now be stored; new ids do not collide with old ones
    connection.run(
        "INSERT INTO benchmarking.invoice_items (order_id, item_name, qty, uom, unit_price, net_price, llm,"
        " invoice_index, line_no) VALUES (1, :n, :q, :u, :p, :p, 'new-model', 0, 1), (1, :n, :q, :u, :p, :p,"
        " 'new-model', 0, 2)",
        n=rows[0][1],
        q=rows[0][2],
        u=rows[0][3],
        p=Decimal("1.5"),
    )
    assert connection.run(
        "SELECT min(id) > :m FROM benchmarking.invoice_items WHERE llm = 'new-model'", m=before[-1][0]
    ) == [[True]]


def test_upgraded_database_accepts_a_rerun(empty_database):
    connection = connect(empty_database)
    connection.run(OLD_TABLE)
    migrate(connection)
    assert migrate(connection) == []


# A migration that needs an ACCESS EXCLUSIVE lock on a table the running pipeline uses.
ADD_COLUMN = Migration(9998, "add_column", "ALTER TABLE benchmarking.extraction_jobs ADD COLUMN probe text;")
FAST_LIMITS = MigrationLimits(lock_timeout_ms=300, lock_attempts=3, lock_retry_pause_seconds=0.2)


def _with_extra(monkeypatch, *extra):
    real = available_migrations()
    monkeypatch.setattr(migrations, "available_migrations", lambda: [*real, *extra])


def _hold_a_long_transaction(dsn):
    """A consumer-like session in the middle of a transaction that read the ledger (ACCESS SHARE lock)."""
    blocker = connect(dsn)
    blocker.run("BEGIN")
    blocker.run("SELECT count(*) FROM benchmarking.extraction_jobs")
    return blocker


def _migrate_in_background(connection, limits):
    outcome = {}

    def run():
        try:
            outcome["applied"] = migrate(connection, limits)
        except Exception as error:  # asserted by the test
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_migration_blocked_by_a_lock_fails_fast_and_applies_nothing(empty_database, monkeypatch):
    connection = connect(empty_database)
    migrate(connection)
    _with_extra(monkeypatch, ADD_COLUMN)
    blocker = _hold_a_long_transaction(empty_database)
    try:
        thread, outcome = _migrate_in_background(connection, FAST_LIMITS)
        thread.join(timeout=15)
        hung = thread.is_alive()
    finally:
        blocker.run("ROLLBACK")  # lets a hanging migration finish, so the test never leaves it behind
        thread.join(timeout=30)
    assert not hung, "the migration waited for the lock instead of giving up"
    assert isinstance(outcome.get("error"), MigrationError)
    assert "9998_add_column could not take its locks within 300 ms (3 attempts)" in str(outcome["error"])
    check = connect(empty_database)
    assert check.run("SELECT count(*) FROM benchmarking.schema_migrations WHERE version = 9998") == [[0]]
    assert check.run(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'extraction_jobs' AND column_name = 'probe'"
    ) == [[0]]


def test_a_lock_released_between_attempts_lets_the_migration_through(empty_database, monkeypatch):
    connection = connect(empty_database)
    migrate(connection)
    _with_extra(monkeypatch, ADD_COLUMN)
    blocker = _hold_a_long_transaction(empty_database)
    pauses = []

    def pause(seconds):  # the runner's pause between attempts: the long transaction ends during the first one
        pauses.append(seconds)
        if len(pauses) == 1:
            blocker.run("ROLLBACK")
        time.sleep(seconds)

    monkeypatch.setattr(migrations, "time", SimpleNamespace(sleep=pause))
    limits = MigrationLimits(lock_timeout_ms=300, lock_attempts=3, lock_retry_pause_seconds=0.1)
    thread, outcome = _migrate_in_background(connection, limits)
    thread.join(timeout=60)  # a bound on a hang only
    assert outcome.get("applied") == ["9998_add_column"], outcome
    assert pauses == [0.1]  # the first attempt gave up on the lock, the second went through


def test_a_statement_running_past_the_statement_timeout_is_cancelled(empty_database, monkeypatch):
    connection = connect(empty_database)
    migrate(connection)
    _with_extra(monkeypatch, Migration(9997, "slow", "SELECT pg_sleep(5);"))
    # The server cancels it (the message says so); a statement left to run would end without an error.
    with pytest.raises(MigrationError, match="9997_slow failed and was rolled back.*statement timeout"):
        migrate(connection, MigrationLimits(statement_timeout_ms=200))


def test_timeouts_apply_to_the_migration_transaction_only(empty_database, monkeypatch):
    connection = connect(empty_database)
    _with_extra(monkeypatch, Migration(9996, "probe_settings", "CREATE TABLE benchmarking.seen AS "
                                       "SELECT current_setting('lock_timeout') AS lock_timeout, "
                                       "current_setting('statement_timeout') AS statement_timeout;"))  # fmt: skip
    migrate(connection, MigrationLimits(lock_timeout_ms=1234, statement_timeout_ms=56789))
    assert connection.run("SELECT lock_timeout, statement_timeout FROM benchmarking.seen") == [["1234ms", "56789ms"]]
    assert connection.run("SELECT current_setting('lock_timeout'), current_setting('statement_timeout')") == [
        ["0", "0"]
    ]
