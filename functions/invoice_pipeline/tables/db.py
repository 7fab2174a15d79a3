"""Postgres connections (pg8000): opened from the settings, reused per warm container, discarded when suspect.

pg8000 leaves a connection out of sync after any exception that is not a ``DatabaseError`` (a broken
socket, a ``struct.error`` past 65,535 parameters, an interrupted read): such a connection is closed and
forgotten, and the next call opens a fresh one.

The settings parse and check ``DATABASE_URL`` when they load (:func:`invoice_pipeline.settings.params_from_url`);
this module connects with the result, and the import runs one way only.
"""

from __future__ import annotations

import select
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pg8000.native import Connection
else:
    Connection = Any  # pg8000 (about 30 ms with its SCRAM and ASN.1 modules) loads on the first connection

from invoice_pipeline.errors import DatabaseConnectError
from invoice_pipeline.settings import ConnectionParams, DatabaseSettings, database_settings, params_from_url

APPLICATION_NAME = "invoice-pipeline"
# Socket timeout once connected: bounds a hung server without cutting off a long migration or report.
QUERY_SOCKET_TIMEOUT_SECONDS = 900.0
# A connection idle for longer than this is probed before use (NAT and proxies drop idle sockets).
PROBE_AFTER_IDLE_SECONDS = 60.0


def params_from_secret(secret_arn: str) -> ConnectionParams:
    from aws_lambda_powertools.utilities import parameters

    value: Any = parameters.get_secret(secret_arn, transform="json", max_age=300)
    try:
        return ConnectionParams(
            host=value["host"],
            port=int(value.get("port", 5432)),
            user=value["username"],
            password=value["password"],
            database=value.get("dbname", "postgres"),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"secret {secret_arn} is not an RDS-format secret (host, port, username, password, dbname)"
        ) from error


def connection_params(settings: DatabaseSettings) -> ConnectionParams:
    if settings.database_url is not None:
        return params_from_url(settings.database_url.get_secret_value())
    assert settings.db_secret_arn is not None
    return params_from_secret(settings.db_secret_arn)


def ssl_context_for(settings: DatabaseSettings) -> ssl.SSLContext | bool:
    """pg8000's ``ssl_context``: False is plain text, True is TLS without verification, a context verifies.

    Never None: pg8000 would then try TLS and silently fall back to plain text.
    """
    if settings.sslmode == "disable":
        return False
    if settings.sslmode == "require":
        return True
    return ssl.create_default_context(cafile=settings.ssl_root_cert)


def connect(settings: DatabaseSettings) -> Connection:
    import pg8000.native

    params = connection_params(settings)
    try:
        connection = pg8000.native.Connection(
            user=params.user,
            password=params.password,
            host=params.host,
            port=params.port,
            database=params.database,
            ssl_context=ssl_context_for(settings),
            timeout=settings.connect_timeout_seconds,
            application_name=APPLICATION_NAME,
            tcp_keepalive=True,
        )
    except (pg8000.native.InterfaceError, pg8000.native.DatabaseError, OSError, ssl.SSLError) as error:
        reason = _describe_connect_error(error)
        raise DatabaseConnectError(f"cannot connect to Postgres at {params.describe()}: {reason}") from None
    sock = getattr(connection, "_usock", None)
    if sock is not None:
        sock.settimeout(QUERY_SOCKET_TIMEOUT_SECONDS)
    return connection


def _describe_connect_error(error: BaseException) -> str:
    import pg8000.native

    if isinstance(error, pg8000.native.DatabaseError) and error.args and isinstance(error.args[0], dict):
        fields = error.args[0]
        return f"{fields.get('M', 'login refused')} ({fields.get('C', '?')})"
    cause = error.__cause__ or error.__context__
    detail = f"{type(error).__name__}: {error}"
    if cause is not None:
        detail += f" ({type(cause).__name__}: {cause})"
    return detail


def closed_by_server(connection: Connection) -> bool:
    """True when an idle connection has something to read: the server's goodbye (backend terminated, server
    restarted or shut down) or the end of the stream. Costs no round trip; a healthy idle connection between
    statements has nothing pending."""
    sock = getattr(connection, "_usock", None)
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):  # closed or invalid descriptor
        return True
    return bool(readable)


class ConnectionPool:
    """At most one connection per thread, reused across invocations of a warm container.

    A Lambda container runs one invocation at a time (one thread); the local event-source emulator runs
    several "containers" as threads of one process, and each must get its own connection.
    """

    def __init__(self, settings_loader: Any) -> None:
        self._settings_loader = settings_loader
        self._local = threading.local()

    @property
    def _connection(self) -> Connection | None:
        return getattr(self._local, "connection", None)

    @_connection.setter
    def _connection(self, connection: Connection | None) -> None:
        self._local.connection = connection

    @property
    def _last_used(self) -> float:
        return float(getattr(self._local, "last_used", 0.0))

    @_last_used.setter
    def _last_used(self, value: float) -> None:
        self._local.last_used = value

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        import pg8000.native

        connection = self._checkout()
        try:
            yield connection
        except pg8000.native.DatabaseError:
            # The server reported an error: the socket is in sync, only an open transaction needs ending.
            self._rollback_or_discard(connection)
            raise
        except BaseException:
            self.discard()
            raise
        finally:
            self._last_used = time.monotonic()

    def _checkout(self) -> Connection:
        if self._connection is not None and closed_by_server(self._connection):
            self.discard()
        if self._connection is not None and time.monotonic() - self._last_used > PROBE_AFTER_IDLE_SECONDS:
            try:
                self._connection.run("SELECT 1")
            except Exception:
                self.discard()
        if self._connection is None:
            self._connection = connect(self._settings_loader())
        return self._connection

    def _rollback_or_discard(self, connection: Connection) -> None:
        try:
            connection.run("ROLLBACK")
        except Exception:
            self.discard()

    def discard(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with suppress(Exception):  # already suspect; closing is best effort
                connection.close()


@contextmanager
def transaction(connection: Connection) -> Iterator[Connection]:
    """BEGIN ... COMMIT, or ROLLBACK on any error (the caller's pool decides whether to keep the connection)."""
    connection.run("BEGIN")
    try:
        yield connection
    except BaseException:
        with suppress(Exception):  # the original error matters more; the pool discards a broken connection
            connection.run("ROLLBACK")
        raise
    connection.run("COMMIT")


# The pool of the operator tools, the local stack and the tests, one per process. No handler uses it: each builds
# its own in its runtime (consume.build_runtime, enqueue.build_runtime).
pool = ConnectionPool(database_settings)
