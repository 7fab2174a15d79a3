"""Ground truth is reviewed input: who saved it comes from the server, ids and numbers have the normaliser's bounds,
a refused value is a clear 400 / exit 2 naming it, and concurrent saves of one order are serialised, the second
told plainly that it no longer replaces the version it was based on."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pg8000.native
import pytest

from invoice_pipeline.extractor import ExtractedInvoice, ExtractedItem
from invoice_pipeline.tables import db
from invoices_cli import ground_truth
from invoices_cli.main import main
from invoices_cli.workbench.server import running_workbench
from tests.conftest import connect
from tests.workbench.conftest import BUCKET, TwoModels
from tests.workbench.test_workbench_http import Client


@pytest.fixture
def client(two_models: TwoModels, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("ALLOWED_BUCKETS", BUCKET)
    with running_workbench(reviewer="tester") as url:
        parts = urlsplit(url)
        yield Client(parts.hostname or "", parts.port or 80, parts.query.removeprefix("token="))
        db.pool.discard()


LINE = {"invoice_index": "0", "description": "Saffron", "quantity": "2", "unit": "g", "unit_price": "3.5"}


def saved(sql: pg8000.native.Connection, order_id: int) -> list[list[Any]]:
    return sql.run(
        "SELECT invoice_index, line_no, item_name, qty, saved_by FROM benchmarking.ground_truth_items"
        " WHERE order_id = :o ORDER BY 1, 2",
        o=order_id,
    )


def post_line(client: Client, path: str, **fields: str) -> tuple[int, bytes]:
    csrf = client.csrf("/review/4")
    status, _, page = client.request("POST", path, body={**LINE, "line_total": "7", "csrf": csrf, **fields})
    return status, page


def test_the_reviewer_is_the_servers_not_a_form_field(client: Client, sql: pg8000.native.Connection) -> None:
    client.log_in()
    assert post_line(client, "/review/4/save", reviewer="x" * 100_000)[0] == 303
    assert saved(sql, 4)[0][4] == "tester"


@pytest.mark.parametrize(
    ("path", "fields", "named"),
    [
        ("/review/-7/save", {}, b"order id"),
        ("/review/0/save", {}, b"order id"),
        ("/review/9223372036854775808/save", {}, b"order id"),
        ("/review/4/save", {"invoice_index": "3000000000"}, b"invoice"),
        ("/review/4/save", {"quantity": "9" * 5000}, b"quantity"),
        ("/review/4/save", {"unit_price": "1234567890123456"}, b"unit price"),
        ("/review/4/save", {"line_total": "1.12345678901"}, b"line total"),
        ("/review/4/save", {"description": "bad\x00byte"}, b"description"),
        ("/review/4/save", {"unit": "u" * 51}, b"unit"),
    ],
)
def test_out_of_range_input_is_a_400_naming_the_field_and_writes_nothing(
    client: Client, sql: pg8000.native.Connection, path: str, fields: dict[str, str], named: bytes
) -> None:
    client.log_in()
    status, page = post_line(client, path, **fields)
    assert status == 400, page[:300]
    assert named in page
    assert sql.run("SELECT count(*) FROM benchmarking.ground_truth_items WHERE order_id IN (-7, 0, 4)") == [[0]]


def test_a_save_based_on_a_replaced_version_is_a_conflict(client: Client, sql: pg8000.native.Connection) -> None:
    client.log_in()
    status, _, page = client.request("GET", "/review/1")
    replaces = re.search(rb'name="replaces" value="([^"]*)"', page)
    csrf = re.search(rb'name="csrf" value="([^"]+)"', page)
    assert status == 200 and replaces and csrf
    form = {**LINE, "line_total": "7", "csrf": csrf.group(1).decode(), "replaces": replaces.group(1).decode()}
    assert client.request("POST", "/review/1/save", body=form)[0] == 303  # the first reviewer saves
    before = saved(sql, 1)
    status, _, page = client.request("POST", "/review/1/save", body={**form, "description": "Other"})
    assert status == 409 and b"reload" in page  # the second was looking at the version just replaced
    assert saved(sql, 1) == before


def truth(name: str) -> dict[int, list[ExtractedInvoice]]:
    lines = tuple(ExtractedItem(f"{name} {n}", Decimal(n), "kg", None, None) for n in range(1, 4))
    return {4: [ExtractedInvoice(0, None, None, lines)]}


class PausingConnection:
    """The real connection, held after the insert of a save (inside its transaction) until released: the window in
    which a second save of the same order runs."""

    def __init__(self, real: pg8000.native.Connection) -> None:
        self.real, self.inserted, self.release = real, threading.Event(), threading.Event()

    def run(self, statement: str, **params: Any) -> Any:
        rows = self.real.run(statement, **params)
        if statement == ground_truth.INSERT_GROUND_TRUTH:
            self.inserted.set()
            self.release.wait(10)
        return rows


def test_concurrent_saves_of_one_order_are_serialised(database: str, sql: pg8000.native.Connection) -> None:
    first = PausingConnection(connect(database))
    second = connect(database)
    errors: list[BaseException] = []

    def save(connection: Any, name: str) -> None:
        try:
            ground_truth.load_ground_truth(connection, truth(name), saved_by=name)
        except BaseException as error:
            errors.append(error)

    one = threading.Thread(target=save, args=(first, "first"))
    one.start()
    assert first.inserted.wait(10)
    two = threading.Thread(target=save, args=(second, "second"))
    two.start()
    two.join(1.0)  # the second save waits for the first (or, unserialised, races it)
    first.release.set()
    one.join(10)
    two.join(10)
    assert errors == []
    assert [row[2] for row in saved(sql, 4)] == ["second 1", "second 2", "second 3"]
    versions = sql.run("SELECT saved_by, replaced_by FROM benchmarking.ground_truth_versions WHERE order_id = 4")
    assert versions == [["first", "second"]]  # the second replaced the first, which is kept


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ({"order_id": 2**63, "invoices": []}, "order_id"),
        ({"order_id": 4, "invoices": [{"invoice_index": 3_000_000_000, "items": []}]}, "invoice_index"),
        ({"order_id": 4, "invoices": [{"invoice_index": 0, "items": [{"quantity": "1e999999"}]}]}, "quantity"),
        ({"order_id": 4, "invoices": [{"invoice_index": 0, "items": [{"line_total": 1e300}]}]}, "line_total"),
        ({"order_id": 4, "invoices": [{"invoice_index": 0, "items": [{"unit_price": 10**4999}]}]}, "digits"),
        ({"order_id": 4, "invoices": [{"invoice_index": 0, "items": [{"description": "a\x00b"}]}]}, "description"),
    ],
)
def test_the_load_command_refuses_out_of_range_input_with_exit_2_naming_it(
    database: str, sql, tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: dict[str, Any], named: str
) -> None:
    import sys

    sys.set_int_max_str_digits(0)  # only to WRITE the 5,000-digit number into the file
    try:
        text = json.dumps([entry])
    finally:
        sys.set_int_max_str_digits(4300)
    path = tmp_path / "truth.json"
    path.write_text(text)
    assert main(["ground-truth", "load", str(path)]) == 2
    assert named in capsys.readouterr().err
    assert sql.run("SELECT count(*) FROM benchmarking.ground_truth_items") == [[0]]
    db.pool.discard()
