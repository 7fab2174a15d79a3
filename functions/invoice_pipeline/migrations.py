"""Versioned SQL migrations of the ``benchmarking`` schema, applied in order under an advisory lock.

Files are ``migrations/NNNN_name.sql``. Each pending one runs in its own transaction together with its row
in ``benchmarking.schema_migrations``, so a failing migration leaves neither its changes nor its version
behind. A session-level advisory lock serialises concurrent runs (two deploys at once): the second waits,
then finds nothing pending.
"""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass
from importlib import resources

from invoice_pipeline.db import Connection, transaction

# Arbitrary constant shared by every runner: pg_advisory_lock takes a bigint key.
ADVISORY_LOCK_KEY = 7_311_402_117
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

CREATE_VERSION_TABLE = """
CREATE SCHEMA IF NOT EXISTS benchmarking;
CREATE TABLE IF NOT EXISTS benchmarking.schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""
SELECT_APPLIED = "SELECT version FROM benchmarking.schema_migrations"
VERSION_TABLE_EXISTS = "SELECT to_regclass('benchmarking.schema_migrations') IS NOT NULL"
INSERT_APPLIED = "INSERT INTO benchmarking.schema_migrations (version, name) VALUES (:version, :name)"


class MigrationError(RuntimeError):
    """A migration failed; it was rolled back whole and not recorded."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    folder = resources.files("invoice_pipeline") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {versions}")
    return found


def migrate(connection: Connection) -> list[str]:
    """Apply every pending migration; returns the names applied (empty when already up to date)."""
    connection.run("SELECT pg_advisory_lock(:key)", key=ADVISORY_LOCK_KEY)
    try:
        # Concurrent CREATE ... IF NOT EXISTS can still collide on the catalog: do it under the lock.
        connection.run(CREATE_VERSION_TABLE)
        applied = {row[0] for row in connection.run(SELECT_APPLIED)}
        done = []
        for migration in available_migrations():
            if migration.version in applied:
                continue
            label = f"{migration.version:04d}_{migration.name}"
            try:
                with transaction(connection):
                    connection.run(migration.sql)
                    connection.run(INSERT_APPLIED, version=migration.version, name=migration.name)
            except Exception as error:
                raise MigrationError(f"migration {label} failed and was rolled back: {error}") from error
            done.append(label)
        return done
    finally:
        with suppress(Exception):  # a broken session releases its advisory locks itself
            connection.run("SELECT pg_advisory_unlock(:key)", key=ADVISORY_LOCK_KEY)


def pending_migrations(connection: Connection) -> list[str]:
    """The migrations not applied to this database yet (``invoices doctor``); reads only, takes no lock."""
    applied: set[int] = set()
    if connection.run(VERSION_TABLE_EXISTS)[0][0]:
        applied = {row[0] for row in connection.run(SELECT_APPLIED)}
    return [f"{m.version:04d}_{m.name}" for m in available_migrations() if m.version not in applied]
