"""The `invoices` operator commands against real Postgres and moto: status, report, retry-failed, redrive, consume."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

import boto3
import pg8000.native
import pytest

from invoices_cli.main import main
from tests.integration import toy_sink
from tests.integration.cli import run_cli

INSERT_JOB = """
INSERT INTO benchmarking.extraction_jobs
    (order_id, llm, status, attempts, last_error, enqueued_at, started_at, invoice_count, item_count,
     input_tokens, output_tokens, cost_usd)
VALUES (:order_id, :llm, :status, 1, :error, now() - make_interval(secs => :age), now() - make_interval(secs => :age),
        :invoices, :items, :input_tokens, :output_tokens, :cost)
"""
INSERT_ITEM = """
INSERT INTO benchmarking.invoice_items
    (order_id, llm, invoice_index, line_no, item_name, qty, uom, unit_price, net_price)
VALUES (:order_id, :llm, 0, :line_no, 'Tomatoes', 2, 'kg', 1.250, 2.500)
"""


def add_job(sql: pg8000.native.Connection, order_id: int, llm: str, status: str, **values: Any) -> None:
    row = {"error": None, "age": 0, "invoices": None, "items": None, "input_tokens": None, "output_tokens": None}
    row.update(values)
    row.setdefault("cost", None)
    sql.run(INSERT_JOB, order_id=order_id, llm=llm, status=status, **row)
    for line_no in range(1, (row["items"] or 0) + 1 if status == "done" else 1):
        sql.run(INSERT_ITEM, order_id=order_id, llm=llm, line_no=line_no)


@pytest.fixture
def ledger(sql: pg8000.native.Connection) -> pg8000.native.Connection:
    add_job(sql, 1, "gpt-4o", "done", invoices=2, items=3, input_tokens=1000, output_tokens=200, cost="0.010000")
    add_job(sql, 2, "gpt-4o", "done", invoices=1, items=2, input_tokens=500, output_tokens=100, cost="0.005000")
    add_job(sql, 3, "gpt-4o", "failed", error="object s3://b/k not found")
    add_job(sql, 4, "gpt-4o", "failed", error="object s3://b/k not found")
    add_job(sql, 5, "gpt-4o", "failed", error="not an image")
    add_job(sql, 6, "gpt-4o", "queued", age=600)
    add_job(sql, 3, "ocr-table-v1", "failed", error="not an image")
    add_job(sql, 7, "ocr-table-v1", "processing", age=30)
    return sql


def test_status_counts_jobs_and_queue_depths(
    ledger: pg8000.native.Connection, stack: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = boto3.client("sqs")
    for n in range(3):
        sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps({"order_id": n}))
    sqs.send_message(QueueUrl=stack.dlq_url, MessageBody=json.dumps({"order_id": 9}))
    sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=1, VisibilityTimeout=60)

    code, out = run_cli(capsys, "status", "--json")

    status = json.loads(out)
    assert code == 0
    assert status["jobs"] == {
        "gpt-4o": {"done": 2, "failed": 3, "queued": 1},
        "ocr-table-v1": {"failed": 1, "processing": 1},
    }
    assert status["totals"] == {"done": 2, "failed": 4, "queued": 1, "processing": 1}
    assert 590 <= status["oldest_queued_seconds"] <= 700 and 25 <= status["oldest_processing_seconds"] <= 120
    assert (status["queue"]["visible"], status["queue"]["in_flight"]) == (2, 1)
    assert status["dlq"]["visible"] == 1 and status["dlq"]["url"] == stack.dlq_url

    code, table = run_cli(capsys, "status")
    assert code == 0 and "oldest queued: 10 min" in table and "dlq: 1 visible, 0 in flight" in table


def test_status_without_queue_url_shows_the_ledger(
    ledger: pg8000.native.Connection, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("QUEUE_URL", raising=False)
    code, out = run_cli(capsys, "status")
    assert code == 0 and "queue: QUEUE_URL not set" in out


def test_status_lists_processing_jobs_past_their_lease_and_when_the_producer_resends_them(
    ledger: pg8000.native.Connection, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("QUEUE_URL", raising=False)
    monkeypatch.setenv("PROCESSING_LEASE_SECONDS", "3600")
    monkeypatch.setenv("REQUEUE_LEASE_SECONDS", "3600")
    add_job(ledger, 8, "gpt-4o", "processing", age=3 * 3600, error="TimeoutError: timed out")  # due now
    add_job(ledger, 9, "gpt-4o", "processing", age=90 * 60)  # lease ended, re-sent in about 30 min

    code, out = run_cli(capsys, "status", "--json")

    stale = json.loads(out)["stale_processing"]
    assert code == 0 and [(job["order_id"], job["attempts"]) for job in stale] == [(8, 1), (9, 1)]
    assert stale[0]["requeued_in_seconds"] < 0 < stale[1]["requeued_in_seconds"] <= 1800
    code, table = run_cli(capsys, "status")
    assert "stale processing: 2 job(s) past their lease" in table
    assert "order 8 gpt-4o: started 3.0 h ago, attempts 1, re-enqueued next producer run" in table
    assert "order 9 gpt-4o: started 90 min ago, attempts 1, re-enqueued in 30 min" in table


def test_report_per_model_in_every_format(ledger: pg8000.native.Connection, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "report", "--format", "json")
    assert code == 0
    rows = {row["llm"]: row for row in json.loads(out)}
    gpt = rows["gpt-4o"]
    assert (gpt["orders_done"], gpt["orders_failed"], gpt["orders_pending"]) == (2, 3, 1)
    assert (gpt["invoices"], gpt["items"], gpt["input_tokens"], gpt["output_tokens"]) == (3, 5, 1500, 300)
    assert Decimal(gpt["cost_usd"]) == Decimal("0.015") and gpt["cost_per_invoice_usd"] == "0.005000"
    assert gpt["top_failure_reasons"] == [
        {"reason": "object s3://b/k not found", "jobs": 2},
        {"reason": "not an image", "jobs": 1},
    ]
    assert rows["ocr-table-v1"]["orders_failed"] == 1 and rows["ocr-table-v1"]["cost_per_invoice_usd"] is None

    code, out = run_cli(capsys, "report", "--format", "csv", "--llm", "gpt-4o")
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert row["items"] == "5" and row["top_failure_reasons"] == "object s3://b/k not found (2); not an image (1)"

    code, out = run_cli(capsys, "report")
    assert "orders: 2 done, 3 failed, 1 pending" in out and "failed x2: object s3://b/k not found" in out


def test_retry_failed_resets_only_the_matching_failed_jobs(
    ledger: pg8000.native.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_cli(capsys, "retry-failed", "--order", "3", "--llm", "gpt-4o", "--dry-run")
    assert code == 0 and "1 failed job(s) would be reset" in out
    assert ledger.run("SELECT count(*) FROM benchmarking.extraction_jobs WHERE status = 'failed'")[0][0] == 4

    code, out = run_cli(capsys, "retry-failed", "--llm", "gpt-4o")
    assert code == 0 and "reset 3 failed job(s)" in out
    remaining = ledger.run("SELECT order_id, llm, status FROM benchmarking.extraction_jobs ORDER BY llm, order_id")
    assert remaining == [
        [1, "gpt-4o", "done"],
        [2, "gpt-4o", "done"],
        [6, "gpt-4o", "queued"],
        [3, "ocr-table-v1", "failed"],
        [7, "ocr-table-v1", "processing"],
    ]
    assert ledger.run("SELECT count(*) FROM benchmarking.invoice_items")[0][0] == 5


def test_redrive_on_the_local_stack_moves_the_dlq_back(stack: Any, capsys: pytest.CaptureFixture[str]) -> None:
    sqs = boto3.client("sqs")
    bodies = [json.dumps({"order_id": n}) for n in range(13)]
    for body in bodies:
        sqs.send_message(
            QueueUrl=stack.dlq_url,
            MessageBody=body,
            MessageAttributes={"origin": {"DataType": "String", "StringValue": "test"}},
        )

    code, out = run_cli(capsys, "redrive", "--rate", "100")

    assert code == 0 and "local mover" in out and "moved 13 message(s)" in out
    moved = []
    while messages := sqs.receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60, MessageAttributeNames=["All"]
    ).get("Messages"):
        moved.extend(messages)
    assert sorted(message["Body"] for message in moved) == sorted(bodies)
    assert all(message["MessageAttributes"]["origin"]["StringValue"] == "test" for message in moved)
    assert (
        sqs.get_queue_attributes(QueueUrl=stack.dlq_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        == "0"
    )


def test_consume_runs_a_handler_until_the_queue_is_idle(
    stack: Any, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = boto3.client("sqs")
    for n in range(7):
        sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps({"order_id": n}))
    toy_sink.BODIES.clear()
    toy_sink.COPIES.clear()

    code, out = run_cli(
        capsys,
        "consume",
        "--until-idle",
        "--batch-size",
        "3",
        "--concurrency",
        "2",
        "--handler",
        "tests.integration.toy_consumer:handler",
    )

    assert code == 0
    assert json.loads(out)["succeeded"] == 7
    assert sorted(json.loads(body)["order_id"] for body in toy_sink.BODIES) == list(range(7))
    assert len(toy_sink.COPIES) == 2  # one module copy per concurrent worker, like one per Lambda container


def test_consume_refuses_a_bad_handler_spec(stack: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["consume", "--handler", "no-colon"]) == 2
    assert "module:function" in capsys.readouterr().err


def test_status_and_report_count_done_orders_with_validation_warnings_per_model(
    ledger: pg8000.native.Connection, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    warning = [{"code": "total_mismatch", "invoice_index": 0, "line_no": None, "message": "invoice 0: ..."}]
    set_warnings = "UPDATE benchmarking.extraction_jobs SET warnings = CAST(:w AS jsonb) WHERE order_id = :o"
    ledger.run(set_warnings, w=json.dumps(warning), o=1)
    ledger.run(set_warnings, w="[]", o=2)  # validated, nothing found
    add_job(ledger, 8, "ocr-table-v1", "done", invoices=1, items=1)  # written before warnings were stored: NULL
    monkeypatch.delenv("QUEUE_URL", raising=False)

    code, out = run_cli(capsys, "status", "--json")
    assert code == 0 and json.loads(out)["done_with_warnings"] == {"gpt-4o": 1}
    code, out = run_cli(capsys, "status")
    assert "done orders with validation warnings: gpt-4o 1" in out

    code, out = run_cli(capsys, "report", "--format", "json")
    assert {row["llm"]: row["orders_with_warnings"] for row in json.loads(out)} == {"gpt-4o": 1, "ocr-table-v1": 0}
    code, out = run_cli(capsys, "report", "--format", "csv")
    assert [row["orders_with_warnings"] for row in csv.DictReader(io.StringIO(out))] == ["1", "0"]
    code, out = run_cli(capsys, "report", "--llm", "gpt-4o")
    assert "orders: 2 done, 3 failed, 1 pending, 1 done with validation warnings" in out
