"""The migrate function (run by the deploy's trigger): applies migrations and never outlives its deadline."""

from __future__ import annotations

import pytest

import migrate as migrate_function
from invoice_pipeline.tables import migrations
from invoice_pipeline.tables.migrations import Migration, MigrationError, available_migrations
from tests.integration.producer.conftest import FakeLambdaContext


def test_the_handler_applies_every_pending_migration(empty_database):
    result = migrate_function.handler({}, FakeLambdaContext(remaining_ms=lambda: 120_000))
    assert result["applied"] == [f"{m.version:04d}_{m.name}" for m in available_migrations()]


def test_a_statement_longer_than_the_functions_remaining_time_is_cancelled_by_the_server(empty_database, monkeypatch):
    real = available_migrations()
    monkeypatch.setattr(
        migrations, "available_migrations", lambda: [*real, Migration(9995, "slow", "SELECT pg_sleep(30);")]
    )
    with pytest.raises(MigrationError, match="9995_slow.*statement timeout"):
        # 12 s left: the statement may run 2 s (10 s are kept back), not the 30 s it asks for; the server cancels it
        migrate_function.handler({}, FakeLambdaContext(remaining_ms=lambda: 12_000))
