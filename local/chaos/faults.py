"""Faults injected from the outside while the real handlers run: nothing in the pipeline is patched.

The model's faults come from the model emulator itself (:mod:`local.model_emulator`); these are the others:
throttled S3 reads (a botocore hook answering with a real ``SlowDown``), Postgres backends terminated and the
server restarted from a background thread, and a consumer that dies after its commit, before the delete.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, Self

import boto3

from local.chaos.database import APPLICATION_NAME, connect
from local.postgres import EmbeddedPostgres


class S3Faults:
    """A botocore hook on the boto3 default session: counts every S3 request, throttles some GetObject calls.

    Installed before the consumer creates its S3 client (clients copy the session's hooks when created), it
    sees exactly what the consumer asks S3 for. A throttled call gets a real S3 ``SlowDown`` response (503),
    so botocore's own retries and the consumer's error classification both run as in AWS.
    """

    def __init__(self, seed: int = 0) -> None:
        self.throttle_rate = 0.0
        self.requests: Counter[str] = Counter()
        self.throttled = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._session: Any = None

    def install(self) -> S3Faults:
        boto3.setup_default_session()
        self._session = boto3.DEFAULT_SESSION
        self._session.events.register("before-send.s3", self._before_send, unique_id="chaos-s3-faults")
        return self

    def uninstall(self) -> None:
        if self._session is not None:
            self._session.events.unregister("before-send.s3", unique_id="chaos-s3-faults")

    def _before_send(self, request: Any, event_name: str = "", **_: Any) -> Any:
        operation = event_name.rsplit(".", 1)[-1]  # before-send.s3.GetObject
        with self._lock:
            self.requests[operation] += 1
            throttle = operation == "GetObject" and self._rng.random() < self.throttle_rate
            if throttle:
                self.throttled += 1
        if not throttle:
            return None
        from botocore.awsrequest import AWSResponse

        body = (
            b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
            b"<Message>Please reduce your request rate (injected).</Message></Error>"
        )
        return AWSResponse(request.url, 503, {"Content-Type": "application/xml"}, _RawBody(body))


class _RawBody:
    """The minimal raw stream AWSResponse reads a body from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data

    def read(self, *_: Any) -> bytes:
        data, self._data = self._data, b""
        return data


class BackgroundFault:
    """A fault injected from a thread for the duration of a ``with`` block; subclasses implement ``_run``."""

    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        raise NotImplementedError


class BackendKiller(BackgroundFault):
    """Terminates the pipeline's Postgres backends (``application_name`` invoice-pipeline) every ``interval`` s."""

    def __init__(self, dsn: str, interval: float = 0.3) -> None:
        self.dsn = dsn
        self.interval = interval
        self.killed = 0
        super().__init__("backend-killer")

    def _run(self) -> None:
        connection = connect(self.dsn)
        try:
            while not self._stop.wait(self.interval):
                rows = connection.run(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name AND pid <> pg_backend_pid()",
                    name=APPLICATION_NAME,
                )
                self.killed += int(rows[0][0])
        finally:
            connection.close()


class ServerRestarter(BackgroundFault):
    """Restarts the Postgres server ``times`` times, ``every`` seconds apart, while the run goes on."""

    def __init__(self, server: EmbeddedPostgres, times: int = 2, every: float = 1.5) -> None:
        self.server, self.times, self.every = server, times, every
        self.restarts = 0
        super().__init__("server-restarter")

    def _run(self) -> None:
        while self.restarts < self.times and not self._stop.wait(self.every):
            self.server.restart()
            self.restarts += 1


class RecordingHandler:
    """Wraps a handler: counts deliveries per message; optionally crashes after the real handler returned.

    A crash after the handler returned is a consumer killed between its commit and the message delete: the
    whole batch comes back after the visibility timeout, and the second delivery must write nothing new.
    With ``crash_every=n`` every n-th batch of first deliveries crashes (the first one included).
    """

    def __init__(self, handler: Callable[[dict[str, Any], Any], Any], *, crash_every: int = 0) -> None:
        self.handler = handler
        self.crash_every = crash_every
        self.crashes = 0
        self.first_batches = 0
        self.deliveries: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        records = event["Records"]
        with self._lock:
            for record in records:
                self.deliveries[record["messageId"]] += 1
            crash = False
            if self.crash_every and all(r["attributes"].get("ApproximateReceiveCount") == "1" for r in records):
                crash = self.first_batches % self.crash_every == 0
                self.first_batches += 1
        response = self.handler(event, context)
        if crash:
            with self._lock:
                self.crashes += 1
            raise RuntimeError("consumer killed after its commit, before the messages were deleted (injected)")
        return response
