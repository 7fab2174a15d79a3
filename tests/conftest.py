"""Fixtures shared by every suite: one real Postgres server and one moto server per test session.

Each test that asks for ``database`` gets a fresh database cloned from a migrated template (a few ms);
``empty_database`` gets one with nothing in it. ``aws`` points boto3 at moto and resets moto afterwards.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pg8000.native
import pytest

from invoice_pipeline import db
from invoice_pipeline.migrations import migrate
from local.aws import MotoServer, reset_client_caches
from local.postgres import EmbeddedPostgres

_counter = itertools.count()
TEMPLATE = "migrated_template"


@pytest.fixture(scope="session")
def postgres() -> Iterator[EmbeddedPostgres]:
    with EmbeddedPostgres() as server:
        admin = _admin(server)
        try:
            admin.run(f"CREATE DATABASE {TEMPLATE}")
            template = connect(server.dsn_for(TEMPLATE))
            migrate(template)
            template.close()
        finally:
            admin.close()
        yield server


def connect(dsn: str) -> pg8000.native.Connection:
    """A plain connection for arranging rows and asserting on them (not the code under test's pool)."""
    params = db.params_from_url(dsn)
    return pg8000.native.Connection(
        user=params.user, password=params.password, host=params.host, port=params.port, database=params.database
    )


def _admin(server: EmbeddedPostgres) -> pg8000.native.Connection:
    return connect(server.dsn)


def _fresh_database(server: EmbeddedPostgres, template: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A new database from ``template``; DATABASE_URL points at it for the code under test, and it is dropped after."""
    name = f"test_{os.getpid()}_{next(_counter)}"
    admin = _admin(server)
    admin.run(f"CREATE DATABASE {name} TEMPLATE {template}")
    try:
        dsn = server.dsn_for(name)
        monkeypatch.setenv("DATABASE_URL", dsn)
        monkeypatch.setenv("DB_SSLMODE", "disable")
        yield dsn
    finally:
        db.pool.discard()
        admin.run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture
def database(postgres: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """DSN of a fresh, migrated database; DATABASE_URL points at it for the code under test."""
    yield from _fresh_database(postgres, TEMPLATE, monkeypatch)


@pytest.fixture
def empty_database(postgres: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """DSN of a fresh database with no schema at all."""
    yield from _fresh_database(postgres, "template0", monkeypatch)


@pytest.fixture
def sql(database: str) -> Iterator[pg8000.native.Connection]:
    """A direct connection to the test database, for arranging rows and asserting on them."""
    connection = connect(database)
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    """boto3 pointed at a clean moto server for this test."""
    for name, value in moto_server.environment().items():
        monkeypatch.setenv(name, value)
    reset_client_caches()
    yield moto_server
    moto_server.reset()
    reset_client_caches()


@pytest.fixture(autouse=True)
def _private_local_controls(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """`invoices pause` on this machine (or in another test) must not pause the event sources of these tests."""
    monkeypatch.setenv("INVOICES_CONTROLS_DIR", str(tmp_path_factory.mktemp("controls")))
