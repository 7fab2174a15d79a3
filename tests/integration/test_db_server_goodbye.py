"""A pooled connection the server has closed (backend terminated, server restarted) is replaced before use."""

from __future__ import annotations

import time

import pg8000.native

from invoice_pipeline import settings
from invoice_pipeline.tables import db


def test_a_terminated_backend_is_replaced_without_an_error(database: str, sql: pg8000.native.Connection) -> None:
    pool = db.ConnectionPool(settings.database_settings)
    with pool.connection() as connection:
        first_pid = connection.run("SELECT pg_backend_pid()")[0][0]
    sql.run("SELECT pg_terminate_backend(:pid)", pid=first_pid)
    time.sleep(0.2)  # the server's goodbye reaches the idle socket
    with pool.connection() as connection:
        second_pid = connection.run("SELECT pg_backend_pid()")[0][0]
    assert second_pid != first_pid
    pool.discard()


def test_a_healthy_idle_connection_is_kept(database: str) -> None:
    pool = db.ConnectionPool(settings.database_settings)
    with pool.connection() as connection:
        first_pid = connection.run("SELECT pg_backend_pid()")[0][0]
        assert not db.closed_by_server(connection)
    with pool.connection() as connection:
        assert connection.run("SELECT pg_backend_pid()")[0][0] == first_pid
    pool.discard()
