"""Applying the migrations on a connection of its own (the migrate handler, the CLI and the local stack share this)."""

from __future__ import annotations

from contextlib import closing

from invoice_pipeline.settings import DatabaseSettings
from invoice_pipeline.tables.db import connect
from invoice_pipeline.tables.migrations import MigrationLimits, migrate


def migrate_database(database: DatabaseSettings, limits: MigrationLimits | None = None) -> dict[str, object]:
    """Runs once per deploy: the connection is opened for it and closed after, not kept in a pool."""
    with closing(connect(database)) as connection:
        applied = migrate(connection, limits)
    return {"applied": applied, "count": len(applied)}
