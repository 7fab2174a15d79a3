"""The workbench over plain HTTP: the token guards every request, writes need POST + CSRF, images are allow-listed."""

from __future__ import annotations

import http.client
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import boto3
import pg8000.native
import pytest
from PIL import Image

from invoice_pipeline.tables import db
from invoices_cli.comparison import ComparisonFilter, compare_models
from invoices_cli.workbench.server import running_workbench
from tests.workbench.conftest import BUCKET, MODEL_A, TwoModels


@dataclass
class Client:
    host: str
    port: int
    token: str
    cookie: str = ""

    def request(
        self, method: str, path: str, body: dict[str, object] | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        sent = {"Cookie": self.cookie} if self.cookie else {}
        data = None
        if body is not None:
            data = urlencode(body, doseq=True)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        sent.update(headers or {})
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        result = response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        connection.close()
        return result

    def log_in(self) -> None:
        status, headers, _ = self.request("GET", f"/?token={self.token}")
        assert status == 303 and headers["location"] == "/"
        assert "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
        self.cookie = headers["set-cookie"].split(";")[0]

    def csrf(self, path: str) -> str:
        status, _, page = self.request("GET", path)
        assert status == 200
        found = re.search(rb'name="csrf" value="([^"]+)"', page)
        assert found
        return found.group(1).decode()


@pytest.fixture
def client(two_models: TwoModels, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("ALLOWED_BUCKETS", BUCKET)
    with running_workbench(reviewer="tester") as url:
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1" and parts.query.startswith("token=")
        yield Client(parts.hostname, parts.port or 80, parts.query.removeprefix("token="))
        db.pool.discard()


def test_every_request_without_the_token_is_refused(client: Client) -> None:
    for path in ("/", "/report.json", "/review", "/review/1", "/image/1/0/0", "/nothing-here"):
        assert client.request("GET", path)[0] == 403
    assert client.request("GET", "/?token=not-the-token")[0] == 403
    assert client.request("GET", "/", headers={"Cookie": "workbench_token=guess"})[0] == 403
    assert client.request("POST", "/review/1/save", body={"csrf": "x"})[0] == 403


def test_a_foreign_host_header_is_refused_even_with_the_token(client: Client) -> None:
    client.log_in()
    assert client.request("GET", "/")[0] == 200
    assert client.request("GET", "/", headers={"Host": f"evil.example:{client.port}"})[0] == 403


def test_writes_need_the_csrf_token_and_a_same_origin(client: Client, sql: pg8000.native.Connection) -> None:
    client.log_in()
    csrf = client.csrf("/review/4")
    line = {
        "invoice_index": "0",
        "description": "Saffron",
        "quantity": "2",
        "unit": "g",
        "unit_price": "3.5",
        "line_total": "7.00",
    }
    assert client.request("POST", "/review/4/save", body=line)[0] == 403
    assert client.request("POST", "/review/4/save", body={**line, "csrf": "wrong"})[0] == 403
    cross_site = {"Origin": "http://evil.example"}
    assert client.request("POST", "/review/4/save", body={**line, "csrf": csrf}, headers=cross_site)[0] == 403
    assert client.request("GET", "/review/4/save")[0] == 404  # no write by GET
    assert sql.run("SELECT count(*) FROM benchmarking.ground_truth_items WHERE order_id = 4") == [[0]]

    origin = {"Origin": f"http://127.0.0.1:{client.port}"}
    status, headers, _ = client.request("POST", "/review/4/save", body={**line, "csrf": csrf}, headers=origin)
    assert status == 303 and headers["location"] == "/review/4?saved=1"
    assert sql.run(
        "SELECT item_name, qty, uom, unit_price, net_price, saved_by FROM benchmarking.ground_truth_items "
        "WHERE order_id = 4"
    ) == [["Saffron", 2, "g", 3.5, 7, "tester"]]


def test_an_unreadable_number_is_a_clear_error_and_writes_nothing(
    client: Client, sql: pg8000.native.Connection
) -> None:
    client.log_in()
    csrf = client.csrf("/review/4")
    form = {
        "csrf": csrf,
        "invoice_index": ["0", "0"],
        "description": ["Rice", "Oil"],
        "quantity": ["1", "two"],
        "unit": ["kg", "l"],
        "unit_price": ["1", "2"],
        "line_total": ["1", "4"],
    }
    status, _, page = client.request("POST", "/review/4/save", body=form)
    assert status == 400 and b"line 2 quantity: &#39;two&#39; is not a number" in page
    assert sql.run("SELECT count(*) FROM benchmarking.ground_truth_items WHERE order_id = 4") == [[0]]


def test_report_json_is_the_comparison_of_the_same_filter(client: Client) -> None:
    client.log_in()
    status, headers, body = client.request("GET", "/report.json?restaurant=102&llm=" + MODEL_A)
    assert status == 200 and headers["content-type"] == "application/json"
    with db.pool.connection() as connection:
        expected = compare_models(connection, ComparisonFilter(restaurant_ids=(102,), llms=(MODEL_A,)))
    assert json.loads(body) == expected and expected[0]["orders_done"] == 2
    assert client.request("GET", "/?since=last+week")[0] == 400


def test_images_come_only_from_allowed_buckets(
    client: Client, sql: pg8000.native.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.log_in()
    status, headers, data = client.request("GET", "/image/1/0/0")
    assert status == 200 and headers["content-type"] == "image/jpeg" and data[:3] == b"\xff\xd8\xff"
    sql.run("UPDATE orders SET invoice_image = 's3://someone-elses-bucket/x.png' WHERE id = 4")
    status, _, page = client.request("GET", "/review/4")
    assert status == 200 and b"is not in ALLOWED_BUCKETS" in page
    assert client.request("GET", "/image/4/0/0")[0] == 404


def test_a_save_can_be_undone_from_the_page(client: Client, sql: pg8000.native.Connection) -> None:
    client.log_in()
    before = sql.run(
        "SELECT line_no, item_name, qty FROM benchmarking.ground_truth_items WHERE order_id = 1 ORDER BY 1"
    )
    csrf = client.csrf("/review/1")
    mistake = {
        "csrf": csrf,
        "invoice_index": "0",
        "description": "Oops",
        "quantity": "1",
        "unit": "",
        "unit_price": "",
        "line_total": "1",
    }
    assert client.request("POST", "/review/1/save", body=mistake)[0] == 303

    status, _, page = client.request("GET", "/review/1")
    versions = re.findall(rb'name="version" value="(\d+)"', page)
    assert status == 200 and len(versions) == 1 and b"Oops" in page
    assert client.request("POST", "/review/1/restore", body={"csrf": csrf, "version": versions[0].decode()})[0] == 303

    after = sql.run("SELECT line_no, item_name, qty FROM benchmarking.ground_truth_items WHERE order_id = 1 ORDER BY 1")
    assert after == before
    assert client.request("POST", "/review/1/restore", body={"csrf": csrf, "version": "999999"})[0] == 404


def test_a_pdf_invoice_is_shown_page_by_page(client: Client, sql: pg8000.native.Connection) -> None:
    pages = [Image.new("RGB", (600, 850), colour) for colour in ("white", "lightgray")]
    pdf = io.BytesIO()
    pages[0].save(pdf, format="PDF", save_all=True, append_images=pages[1:])
    boto3.client("s3").put_object(Bucket=BUCKET, Key="orders/4/scan.pdf", Body=pdf.getvalue())
    sql.run("UPDATE orders SET invoice_image = :url WHERE id = 4", url=f"s3://{BUCKET}/orders/4/scan.pdf")
    client.log_in()

    status, _, page = client.request("GET", "/review/4")

    assert status == 200 and page.count(b'src="/image/4/0/') == 2
    for segment in (0, 1):
        status, _, data = client.request("GET", f"/image/4/0/{segment}")
        assert status == 200 and data[:3] == b"\xff\xd8\xff"
