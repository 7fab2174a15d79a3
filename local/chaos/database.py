"""The harness's own Postgres connections (named ``chaos-harness``, so the backend killer spares them)."""

from __future__ import annotations

import time

import pg8000.native

from invoice_pipeline.tables import db
from invoice_pipeline.tables.migrations import migrate
from local.postgres import EmbeddedPostgres

APPLICATION_NAME = db.APPLICATION_NAME  # the pipeline's connections, as the backend killer finds them


def connect(dsn: str) -> pg8000.native.Connection:
    params = db.params_from_url(dsn)
    return pg8000.native.Connection(
        user=params.user,
        password=params.password,
        host=params.host,
        port=params.port,
        database=params.database,
        application_name="chaos-harness",
    )


def fresh_database(server: EmbeddedPostgres, name: str) -> str:
    """A new, migrated database on ``server``; returns its DSN."""
    admin = connect(server.dsn)
    try:
        admin.run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.run(f"CREATE DATABASE {name}")
    finally:
        admin.close()
    dsn = server.dsn_for(name)
    connection = connect(dsn)
    try:
        migrate(connection)
    finally:
        connection.close()
    return dsn


def connect_retrying(dsn: str, seconds: float = 15.0) -> pg8000.native.Connection:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return connect(dsn)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
