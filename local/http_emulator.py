"""The HTTP plumbing the provider emulators share: a threaded server on 127.0.0.1 answering with JSON.

:class:`JsonHttpEmulator` starts and stops the server (a context manager), reads each request's body and writes
the reply a subclass computes in :meth:`~JsonHttpEmulator.answer`; what a service puts on the wire (routes, error
bodies, its request-id header) stays in the subclass: :mod:`local.model_emulator` (OpenAI),
:mod:`local.aws_emulators` (Bedrock Converse, Textract AnalyzeExpense).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Self

Reply = tuple[int, dict[str, str], dict[str, Any]]  # (HTTP status, headers, JSON body)


def header(headers: Mapping[str, str], name: str, default: str = "") -> str:
    """The value of header ``name`` in any letter case (HTTP header names are case-insensitive)."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), default)


class JsonHttpEmulator:
    """A ThreadingHTTPServer on 127.0.0.1 (``port``, or a free one) in a daemon thread; subclasses answer."""

    METHODS: ClassVar[tuple[str, ...]] = ("POST",)  # any other method gets http.server's 501, as before the base

    def __init__(self, port: int | None = None) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", port or 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._server.serve_forever, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------------------- what subclasses answer

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        raise NotImplementedError

    def crashed(self, error: Exception) -> Reply:
        """The reply when :meth:`answer` raised: a bug in the double must look like a server error, not hang."""
        raise NotImplementedError

    def reply_headers(self) -> dict[str, str]:
        """Headers every reply starts with (before Content-Length and the reply's own)."""
        return {}

    # ------------------------------------------------------------------------------- serving

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def _serve(self, method: str) -> None:
                if method not in emulator.METHODS:
                    self.send_error(501, f"Unsupported method ({method!r})")
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    status, headers, reply = emulator.answer(method, self.path, dict(self.headers.items()), body)
                except Exception as error:
                    status, headers, reply = emulator.crashed(error)
                payload = json.dumps(reply).encode()
                try:
                    self.send_response(status)
                    for name, value in emulator.reply_headers().items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout fault)
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        return Handler
