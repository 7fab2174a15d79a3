"""Versioned SQL migrations of the ``benchmarking`` schema, applied in order under an advisory lock.

Files are ``migrations/NNNN_name.sql``. Each pending one runs in its own transaction together with its row
in ``benchmarking.schema_migrations``, so a failing migration leaves neither its changes nor its version
behind. A session-level advisory lock serialises concurrent runs (two deploys at once): the second waits,
then finds nothing pending.

Migrations run while the previous code still serves traffic (docs/deploy.md, "Migrations on deploy"), so each
transaction sets ``lock_timeout`` and ``statement_timeout`` locally: a migration queued behind a long
transaction would otherwise hold its place in the lock queue and block every query of the pipeline behind
it, and a statement that outlives the migrate function would go on holding its locks on the server.
"""

from __future__ import annotations

import re
import time
from contextlib import suppress
from dataclasses import dataclass
from importlib import resources

from pg8000.native import DatabaseError

from invoice_pipeline.tables.db import Connection, transaction

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
# set_config(..., true) is SET LOCAL with bound values: it ends with the migration's transaction.
SET_TIMEOUTS = (
    "SELECT set_config('lock_timeout', :lock_timeout, true), set_config('statement_timeout', :statement_timeout, true)"
)

# Longest wait for a lock, per statement: short, because while a migration waits for an ACCESS EXCLUSIVE lock,
# every query of the running functions on that table queues behind it.
LOCK_TIMEOUT_MS = 5_000
# A lock timeout is retried (a long transaction may just be finishing), then the deploy fails with nothing applied.
LOCK_ATTEMPTS = 3
LOCK_RETRY_PAUSE_SECONDS = 2.0
# Longest statement when run by hand (`invoices migrate`); the migrate function stays within its own deadline.
STATEMENT_TIMEOUT_MS = 15 * 60 * 1000
# Kept back from the function's deadline so the server cancels a statement before Lambda kills the caller.
DEADLINE_MARGIN_MS = 10_000
MIN_STATEMENT_TIMEOUT_MS = 1_000
LOCK_NOT_AVAILABLE = "55P03"


class MigrationError(RuntimeError):
    """A migration failed; it was rolled back whole and not recorded."""


@dataclass(frozen=True)
class MigrationLimits:
    """Timeouts each migration transaction runs under."""

    lock_timeout_ms: int = LOCK_TIMEOUT_MS
    statement_timeout_ms: int = STATEMENT_TIMEOUT_MS
    lock_attempts: int = LOCK_ATTEMPTS
    lock_retry_pause_seconds: float = LOCK_RETRY_PAUSE_SECONDS

    @classmethod
    def within(cls, remaining_ms: int) -> MigrationLimits:
        """Limits for a caller that is killed after ``remaining_ms`` (the migrate function)."""
        statement = min(STATEMENT_TIMEOUT_MS, max(MIN_STATEMENT_TIMEOUT_MS, remaining_ms - DEADLINE_MARGIN_MS))
        return cls(statement_timeout_ms=statement)


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


def migrate(connection: Connection, limits: MigrationLimits | None = None) -> list[str]:
    """Apply every pending migration; returns the names applied (empty when already up to date)."""
    limits = limits or MigrationLimits()
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
            _apply(connection, migration, label, limits)
            done.append(label)
        return done
    finally:
        with suppress(Exception):  # a broken session releases its advisory locks itself
            connection.run("SELECT pg_advisory_unlock(:key)", key=ADVISORY_LOCK_KEY)


def _apply(connection: Connection, migration: Migration, label: str, limits: MigrationLimits) -> None:
    for attempt in range(1, limits.lock_attempts + 1):
        try:
            with transaction(connection):
                connection.run(
                    SET_TIMEOUTS,
                    lock_timeout=f"{limits.lock_timeout_ms}ms",
                    statement_timeout=f"{limits.statement_timeout_ms}ms",
                )
                connection.run(migration.sql)
                connection.run(INSERT_APPLIED, version=migration.version, name=migration.name)
            return
        except DatabaseError as error:
            if _sqlstate(error) != LOCK_NOT_AVAILABLE:
                raise MigrationError(f"migration {label} failed and was rolled back: {error}") from error
            if attempt == limits.lock_attempts:
                raise MigrationError(
                    f"migration {label} could not take its locks within {limits.lock_timeout_ms} ms "
                    f"({limits.lock_attempts} attempts) and was rolled back: a long transaction holds them; "
                    "rerun the deploy (or `invoices migrate`) when it has ended"
                ) from error
            time.sleep(limits.lock_retry_pause_seconds * attempt)
        except Exception as error:
            raise MigrationError(f"migration {label} failed and was rolled back: {error}") from error


def _sqlstate(error: DatabaseError) -> str | None:
    fields = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
    return fields.get("C")


def pending_migrations(connection: Connection) -> list[str]:
    """The migrations not applied to this database yet (``invoices doctor``); reads only, takes no lock."""
    applied: set[int] = set()
    if connection.run(VERSION_TABLE_EXISTS)[0][0]:
        applied = {row[0] for row in connection.run(SELECT_APPLIED)}
    return [f"{m.version:04d}_{m.name}" for m in available_migrations() if m.version not in applied]
