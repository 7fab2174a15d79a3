"""``invoices workbench``: serve the workbench on loopback with a random access token (docs/architecture.md §13).

The stdlib ``wsgiref`` server with a thread per request (a browser keeps idle pre-connected sockets open, which
would stall a server that handles one connection at a time). Each request uses its own database connection,
closed when it ends. One reviewer at a time needs nothing more: no async framework.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from threading import Thread
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from invoices_cli.settings import workbench_settings
from invoices_cli.workbench.app import Workbench

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # an idle browser socket must not keep the process alive at shutdown


class _QuietHandler(WSGIRequestHandler):
    timeout = 60  # seconds an idle connection may hold its thread

    def log_message(self, format: str, *args: Any) -> None:
        """No access log: request lines would carry the token of the first visit."""


def create_server(host: str, port: int, *, reviewer: str, token: str | None = None) -> tuple[WSGIServer, Workbench]:
    """The server bound to ``host:port`` (0: any free port) and its app; the app answers only this address."""
    holder: dict[str, Workbench] = {}

    def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        return holder["app"](environ, start_response)

    server = make_server(host, port, application, server_class=_Server, handler_class=_QuietHandler)
    bound = server.server_port
    hosts = {f"{host}:{bound}"}
    if host in ("127.0.0.1", "localhost"):
        hosts |= {f"127.0.0.1:{bound}", f"localhost:{bound}"}
    holder["app"] = Workbench(workbench_settings(), hosts=hosts, token=token, reviewer=reviewer)
    return server, holder["app"]


def url_of(server: WSGIServer, host: str, app: Workbench) -> str:
    return f"http://{host}:{server.server_port}/?token={app.token}"


@contextmanager
def running_workbench(host: str = DEFAULT_HOST, port: int = 0, *, reviewer: str = "reviewer") -> Iterator[str]:
    """The workbench served from a background thread; yields its URL (with the token). For tests and the demo."""
    server, app = create_server(host, port, reviewer=reviewer)
    thread = Thread(target=server.serve_forever, name="workbench", daemon=True)
    thread.start()
    try:
        yield url_of(server, host, app)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def cmd_workbench(args: argparse.Namespace) -> int:
    server, app = create_server(args.host, args.port, reviewer=args.reviewer)
    print(f"workbench: {url_of(server, args.host, app)}", flush=True)
    print("(Ctrl-C stops it)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    workbench = sub.add_parser(
        "workbench",
        help="local web app: compare models, review orders and save their ground truth",
        description="Serve the workbench (model comparison, review queue, ground-truth editor) on HOST:PORT and "
        "print `workbench: http://HOST:PORT/?token=TOKEN`. Every request needs that token (it becomes a cookie on "
        "the first visit). Settings as for the other commands: DATABASE_URL or DB_SECRET_ARN, and ALLOWED_BUCKETS "
        "and MAX_IMAGE_BYTES for the invoice images (fetched like the consumer does).",
    )
    workbench.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    workbench.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any)")
    workbench.add_argument(
        "--reviewer", default=_user(), help="name saved with the ground truth (default: your login name)"
    )
    workbench.set_defaults(run=cmd_workbench)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "reviewer"
