"""What the provider emulators share: the HTTP plumbing, and the answers and faults a test registers.

:class:`JsonHttpEmulator` starts and stops a threaded server on 127.0.0.1 (a context manager), reads each
request's body and writes the JSON reply a subclass computes in :meth:`~JsonHttpEmulator.answer`.
:class:`ProviderEmulator` adds what a test arranges: the answer registered for each invoice stamp, injected
faults, and counters of requests and fired faults. What a service puts on the wire (routes, error bodies, its
request-id header, its fault kinds) stays in the subclass: :mod:`local.model_emulator` (OpenAI),
:mod:`local.aws_emulators` (Bedrock Converse, Textract AnalyzeExpense).
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Self

Reply = tuple[int, dict[str, str], dict[str, Any]]  # (HTTP status, headers, JSON body)
EMPTY_ANSWER: dict[str, Any] = {"currency": None, "printed_total": None, "items": []}


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


@dataclass
class Fault:
    kind: str
    times: int | None  # None: until cleared (or by rate)
    rate: float | None
    options: dict[str, Any]

    def fires(self, rng: random.Random, stamp: int | None) -> bool:
        if "stamp" in self.options and self.options["stamp"] != stamp:
            return False
        if self.times is not None and self.times <= 0:
            return False
        if self.rate is not None and rng.random() >= self.rate:
            return False
        if self.times is not None:
            self.times -= 1
        return True


class ProviderEmulator(JsonHttpEmulator):
    """Answers registered per invoice stamp (a ``ModelInvoice`` dict; none: :data:`EMPTY_ANSWER`), injected
    faults and request counters; subclasses read the stamp off a request and answer in their service's protocol."""

    def __init__(self, port: int | None = None, *, seed: int = 0) -> None:
        self._answers: dict[int, dict[str, Any]] = {}
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._by_stamp: Counter[int | None] = Counter()
        self._fired: Counter[str] = Counter()
        super().__init__(port)

    def fault_kinds(self) -> tuple[str, ...]:
        raise NotImplementedError

    def register(self, stamp: int, answer: dict[str, Any]) -> None:
        """What the provider answers for the invoice carrying ``stamp`` (a ``ModelInvoice`` JSON dict)."""
        with self._lock:
            self._answers[stamp] = json.loads(json.dumps(answer))

    def inject(self, kind: str, *, times: int | None = None, rate: float | None = None, **options: Any) -> None:
        """Answer the next ``times`` requests (or a ``rate`` fraction of them, or all) with fault ``kind``, one of
        :meth:`fault_kinds`. Option ``stamp``: only requests for that invoice; the others are the subclass's."""
        if kind not in self.fault_kinds():
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(self.fault_kinds())}")
        with self._lock:
            self._faults.append(Fault(kind, times, rate, options))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def requests(self) -> int:
        """Requests received so far (faulted ones included)."""
        with self._lock:
            return sum(self._by_stamp.values())

    def requests_for(self, stamp: int | None) -> int:
        """Requests whose first image carried ``stamp`` (None: no readable stamp)."""
        with self._lock:
            return self._by_stamp[stamp]

    @property
    def requests_by_stamp(self) -> dict[int | None, int]:
        with self._lock:
            return dict(self._by_stamp)

    @property
    def faults_fired(self) -> dict[str, int]:
        """How many requests each fault kind has answered so far."""
        with self._lock:
            return dict(self._fired)

    def _count(self, stamp: int | None) -> None:
        with self._lock:
            self._by_stamp[stamp] += 1

    def _answer_for(self, stamp: int | None) -> dict[str, Any]:
        with self._lock:
            return self._answers.get(stamp, EMPTY_ANSWER) if stamp is not None else EMPTY_ANSWER

    def _next_fault(self, stamp: int | None) -> Fault | None:
        """The first injected fault that fires for this request (counted as fired), if any."""
        with self._lock:
            for fault in self._faults:
                if fault.fires(self._rng, stamp):
                    self._fired[fault.kind] += 1
                    return fault
        return None
