"""Connections: bounded failures that name the host and never the password; reuse and discard."""

import socket
import time

import pg8000.native
import pytest

from invoice_pipeline import settings
from invoice_pipeline.errors import DatabaseConnectError
from invoice_pipeline.tables import db


def test_wrong_password_names_the_host_and_never_the_password(postgres):
    dsn = f"postgresql://postgres:hunter2-wrong@{postgres.host}:{postgres.port}/postgres"
    with pytest.raises(DatabaseConnectError) as caught:
        db.connect(settings.parse_database({"DATABASE_URL": dsn, "DB_SSLMODE": "disable"}))
    message = str(caught.value)
    assert f"{postgres.host}:{postgres.port}" in message
    assert "password authentication failed" in message
    assert "hunter2" not in message and "hunter2" not in repr(caught.value.__cause__)


def test_server_that_never_answers_fails_within_the_connect_timeout():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    port = silent.getsockname()[1]
    env = {"DATABASE_URL": f"postgresql://u:p@127.0.0.1:{port}/x", "DB_SSLMODE": "disable", "DB_CONNECT_TIMEOUT": "1"}
    started = time.monotonic()
    try:
        with pytest.raises(DatabaseConnectError, match=f"127.0.0.1:{port}"):
            db.connect(settings.parse_database(env))
    finally:
        silent.close()
    # A bound on a hang, not a speed check: under the 10 s default, so DB_CONNECT_TIMEOUT=1 is what ended it.
    assert time.monotonic() - started < 9


def test_closed_port_fails_at_once_with_the_host_named():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"DATABASE_URL": f"postgresql://u:secretpw@127.0.0.1:{port}/x", "DB_SSLMODE": "disable"}
    with pytest.raises(DatabaseConnectError) as caught:
        db.connect(settings.parse_database(env))
    assert f"127.0.0.1:{port}" in str(caught.value) and "secretpw" not in str(caught.value)


def test_verify_full_refuses_a_server_without_tls(postgres):
    # The embedded server has no certificate: verify-full must fail, never fall back to plain text.
    env = {"DATABASE_URL": postgres.dsn, "DB_SSLMODE": "verify-full"}
    with pytest.raises(DatabaseConnectError, match="SSL|ssl"):
        db.connect(settings.parse_database(env))


def test_pool_reuses_one_connection_and_discards_it_after_a_protocol_error(database):
    pool = db.ConnectionPool(settings.database_settings)
    with pool.connection() as first:
        pid = first.run("SELECT pg_backend_pid()")[0][0]
    with pool.connection() as second:
        assert second.run("SELECT pg_backend_pid()")[0][0] == pid
    with pytest.raises(RuntimeError), pool.connection():
        raise RuntimeError("not a DatabaseError: the socket may be out of sync")
    with pool.connection() as third:
        assert third.run("SELECT pg_backend_pid()")[0][0] != pid
    pool.discard()


def test_pool_keeps_the_connection_after_a_server_reported_error(database):
    pool = db.ConnectionPool(settings.database_settings)
    with pool.connection() as connection:
        pid = connection.run("SELECT pg_backend_pid()")[0][0]
    with pytest.raises(pg8000.native.DatabaseError), pool.connection() as connection:
        connection.run("BEGIN")
        connection.run("SELECT 1/0")
    with pool.connection() as connection:
        assert connection.run("SELECT pg_backend_pid()")[0][0] == pid
        assert connection.run("SELECT 1") == [[1]]
    pool.discard()
