"""Applying the migrations with the pipeline's own connection settings (handler and CLI share this)."""

from __future__ import annotations

from invoice_pipeline.db import pool
from invoice_pipeline.migrations import migrate


def migrate_database() -> dict[str, object]:
    with pool.connection() as connection:
        applied = migrate(connection)
    return {"applied": applied, "count": len(applied)}
