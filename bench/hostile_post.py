"""Hostile POST benchmark: how much memory the workbench holds for a POST it should refuse.

The client sends a POST with a foreign Host, no token and ``Content-Length: -1``, then streams ``BODY_MB`` of form
data and closes. Measured in the server's process with ``tracemalloc``: the peak of memory allocated while that
request is served, and the time until the status line arrives, side by side with an ordinary refused GET. A
server that reads the body before checking the request holds the whole body (several times: bytes, text, parsed
form); one that checks first holds nothing of it and answers before the body is sent.

Self-contained (no database: the request is refused before any query). Run: ``.venv/bin/python bench/hostile_post.py``.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

from invoices_cli.workbench.server import create_server  # noqa: E402

BODY_MB = 50
CHUNK = b"a=" + b"x" * (1024 * 1024 - 2)


def hostile_post(port: int) -> tuple[bytes, float]:
    """(status line, seconds until it arrived) of the hostile POST."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        head = "POST /review/1/save HTTP/1.1\r\nHost: evil.example\r\nContent-Length: -1\r\n\r\n"
        connection.sendall(head.encode())
        try:
            for _ in range(BODY_MB):
                connection.sendall(CHUNK)
            connection.shutdown(socket.SHUT_WR)
        except OSError:  # the server answered and closed without reading: what it should do
            pass
        try:
            status = connection.recv(4096).split(b"\r\n", 1)[0]
        except OSError as error:
            status = f"({type(error).__name__})".encode()
    return status, time.perf_counter() - started


def refused_get(port: int) -> tuple[bytes, float]:
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        connection.sendall(b"GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n")
        status = connection.recv(4096).split(b"\r\n", 1)[0]
    return status, time.perf_counter() - started


def measure(request: object, port: int) -> tuple[bytes, float, float]:
    """(status, seconds, peak MB allocated meanwhile)."""
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    status, seconds = request(port)  # type: ignore[operator]
    time.sleep(0.2)  # the server's thread finishes with the request
    return status, seconds, (tracemalloc.get_traced_memory()[1] - before) / 1e6


def main() -> None:
    server, _ = create_server("127.0.0.1", 0, reviewer="bench")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    tracemalloc.start()
    try:
        rows = [("refused GET", measure(refused_get, server.server_port))]
        rows.append((f"hostile POST, {BODY_MB} MB body", measure(hostile_post, server.server_port)))
    finally:
        tracemalloc.stop()
        server.shutdown()
        server.server_close()
    print(f"{'request':<28} {'status':<28} {'seconds':>8} {'peak MB':>8}")
    for name, (status, seconds, peak) in rows:
        print(f"{name:<28} {status.decode(errors='replace'):<28} {seconds:>8.2f} {peak:>8.1f}")


if __name__ == "__main__":
    main()
