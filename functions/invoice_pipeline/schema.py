"""Applying the migrations with the pipeline's own connection settings (handler and CLI share this)."""

from __future__ import annotations

from invoice_pipeline.db import pool
from invoice_pipeline.migrations import MigrationLimits, migrate


def migrate_database(limits: MigrationLimits | None = None) -> dict[str, object]:
    with pool.connection() as connection:
        applied = migrate(connection, limits)
    return {"applied": applied, "count": len(applied)}
