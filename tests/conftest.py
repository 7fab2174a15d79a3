"""Fixtures shared by every suite: one real Postgres server and one moto server per test session.

Each test that asks for ``database`` gets a fresh database cloned from a migrated template (a few ms);
``empty_database`` gets one with nothing in it. ``aws`` points boto3 at moto and resets moto afterwards.
``sqs_errors`` fails a test in which the code under test logged an SQS error it swallowed.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Iterator

import pg8000.native
import pytest

from invoice_pipeline.settings import SERVICE_NAME
from invoice_pipeline.tables import db
from invoice_pipeline.tables.migrations import migrate
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


# The SQS calls the consumer makes, as botocore names them in its errors.
_SQS_OPERATION = re.compile(
    r"when calling the (ChangeMessageVisibility|SendMessage|GetQueueUrl|DeleteMessage)\w* operation"
)
_SWALLOWED_SQS_MESSAGES = ("could not change message visibility",)


class SwallowedSqsErrors(logging.Handler):
    """Collects the SQS errors the code under test logged and carried on from (a visibility change that failed, a
    hand-back that SQS refused). Best effort in production, but in a test one means the path the test names did not
    run: a missing queue or a receipt handle SQS never issued used to let throttling tests pass on a broken path."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[str] = []
        self.allowed: set[str] = set()

    def allow(self, operation: str) -> None:
        """The test makes SQS refuse ``operation`` on purpose: its errors are expected, and at least one must occur."""
        self.allowed.add(operation)

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.getMessage()} {getattr(record, 'error', '')}"
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {record.exc_info[1]}"
        if _SQS_OPERATION.search(text) or any(message in text for message in _SWALLOWED_SQS_MESSAGES):
            self.seen.append(text)

    def unexpected(self) -> list[str]:
        return [text for text in self.seen if not any(f"the {op} operation" in text for op in self.allowed)]

    def missing(self) -> list[str]:
        return [op for op in sorted(self.allowed) if not any(f"the {op} operation" in text for text in self.seen)]


@pytest.fixture
def sqs_errors() -> Iterator[SwallowedSqsErrors]:
    """Fails the test when the code under test logged an SQS error and carried on (see :class:`SwallowedSqsErrors`)."""
    collector = SwallowedSqsErrors()
    service_logger = logging.getLogger(SERVICE_NAME)
    service_logger.addHandler(collector)
    try:
        yield collector
    finally:
        service_logger.removeHandler(collector)
    if collector.unexpected():
        pytest.fail("SQS errors logged and swallowed:\n" + "\n".join(collector.unexpected()), pytrace=False)
    if collector.missing():
        pytest.fail(f"SQS was to refuse {', '.join(collector.missing())}, and never did", pytrace=False)
