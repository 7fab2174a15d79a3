"""The workbench against a hostile client: nothing is read before the request is known to be allowed, it listens on
loopback unless told otherwise, and its cookie belongs to its port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from invoice_pipeline.tables import db
from invoices_cli.main import main
from invoices_cli.workbench.app import MAX_FORM_BYTES
from invoices_cli.workbench.server import create_server, running_workbench
from tests.workbench.conftest import BUCKET, TwoModels
from tests.workbench.test_workbench_http import Client


@pytest.fixture
def client(two_models: TwoModels, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("ALLOWED_BUCKETS", BUCKET)
    with running_workbench(reviewer="tester") as url:
        parts = urlsplit(url)
        yield Client(parts.hostname or "", parts.port or 80, parts.query.removeprefix("token="))
        db.pool.discard()


def raw_post(client: Client, headers: dict[str, str], body: bytes) -> bytes:
    """Send a POST's head and ``body`` WITHOUT closing the connection, and return the status line: the server must
    answer from what it has, not wait for the end of a body that never ends."""
    with socket.create_connection((client.host, client.port), timeout=10) as connection:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        connection.sendall(f"POST /review/1/save HTTP/1.1\r\n{head}\r\n".encode() + body)
        return connection.recv(4096).split(b"\r\n", 1)[0]


def test_a_post_from_a_foreign_host_without_a_token_is_refused_before_its_body_is_read(client: Client) -> None:
    headers = {"Host": "evil.example", "Content-Length": "-1", "Content-Type": "application/x-www-form-urlencoded"}
    assert raw_post(client, headers, b"x" * 1_000_000) == b"HTTP/1.0 403 Forbidden"


def test_a_post_without_the_token_is_refused_before_its_body_is_read(client: Client) -> None:
    headers = {"Host": f"127.0.0.1:{client.port}", "Content-Length": str(MAX_FORM_BYTES)}
    assert raw_post(client, headers, b"csrf=x&") == b"HTTP/1.0 403 Forbidden"


def test_a_negative_or_oversized_length_is_refused_without_reading(client: Client) -> None:
    client.log_in()
    allowed = {"Host": f"127.0.0.1:{client.port}", "Cookie": client.cookie}
    assert raw_post(client, {**allowed, "Content-Length": "-1"}, b"x" * 100_000) == b"HTTP/1.0 400 Bad Request"
    too_long = {**allowed, "Content-Length": str(MAX_FORM_BYTES + 1)}
    assert raw_post(client, too_long, b"csrf=x") == b"HTTP/1.0 413 Request Entity Too Large"


def test_the_cookie_is_named_after_the_port(client: Client) -> None:
    client.log_in()
    assert client.cookie.startswith(f"workbench_token_{client.port}=")
    other_port = f"workbench_token_{client.port + 1}={client.cookie.split('=', 1)[1]}"
    assert client.request("GET", "/", headers={"Cookie": other_port})[0] == 403


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.com"])
def test_a_non_loopback_address_is_refused_unless_allowed(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="--allow-remote"):
        create_server(host, 0, reviewer="tester")
    assert main(["workbench", "--host", host, "--port", "0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


def test_loopback_addresses_are_served(database: str) -> None:
    for host in ("127.0.0.1", "localhost", "127.0.0.2"):
        server, _ = create_server(host, 0, reviewer="tester")
        server.server_close()


def test_a_remote_address_is_served_when_allowed_and_said_loudly(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server, app = create_server("0.0.0.0", 0, reviewer="tester", allow_remote=True)
    server.server_close()
    assert "plain HTTP" in capsys.readouterr().err
    assert f"0.0.0.0:{server.server_port}" in app.hosts
