"""The producer's entry points: the Lambda handler on a scheduled event, and `invoices enqueue` / `index-orders`."""

from __future__ import annotations

import json
from pathlib import Path

from invoice_pipeline.tables.orders import CREATE_ORDERS_INDEX, NOT_BLANK_PATTERN, ORDERS_INDEX_NAME
from invoices_cli.main import main
from local.event_source import fresh_handler
from tests.integration.producer.conftest import FakeLambdaContext, at, drain, ledger

EVENTS = Path(__file__).resolve().parents[2] / "events"


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_scheduled_event_runs_until_the_remaining_time_margin_and_emits_the_counts(
    orders, sql, queue_url, producer_env, capsys
):
    orders([(order_id, 3, "s3://invoices/x.jpg", at(order_id)) for order_id in range(1, 121)])
    event = json.loads((EVENTS / "scheduled_event.json").read_text())
    clock = iter([120_000, 90_000, 29_000])  # the default margin is 30 s: the third page is never started
    context = FakeLambdaContext(remaining_ms=lambda: next(clock))

    result = fresh_handler("producer")()(event, context)  # a cold container, with this test's settings

    assert result["stopped_because"] == "remaining_time"
    assert (result["pages"], result["scanned"], result["enqueued"]) == (2, 100, 200)
    assert len(drain(queue_url)) == 200
    assert len(ledger(sql)) == 200  # the unstarted page claimed nothing
    emitted = [line for line in json_lines(capsys.readouterr().out) if "_aws" in line]
    assert emitted[-1]["MessagesEnqueued"] == [200.0]
    assert emitted[-1]["OrdersScanned"] == [100.0]
    assert emitted[-1]["SendFailures"] == [0.0]


def test_enqueue_command_runs_the_producer_and_prints_its_summary(orders, queue_url, producer_env, capsys):
    orders([(1, 3, "s3://invoices/x.jpg", at(1)), (2, 3, "\t", at(2))])

    assert main(["enqueue", "--json"]) == 0

    summaries = [line for line in json_lines(capsys.readouterr().out) if "level" not in line]
    assert summaries[-1]["enqueued"] == 2 and summaries[-1]["stopped_because"] == "exhausted"
    assert sorted(body["llm"] for body in drain(queue_url)) == ["gpt-4o-2024-11-20", "ocr-rapid"]


def test_enqueue_command_without_restaurant_ids_is_a_configuration_error(producer_env, monkeypatch, capsys):
    monkeypatch.setenv("RESTAURANT_IDS", " ")

    assert main(["enqueue"]) == 2

    assert "RESTAURANT_IDS" in capsys.readouterr().err


def test_index_orders_creates_the_index_once_and_rebuilds_an_invalid_leftover(orders, sql, database, capsys):
    assert main(["index-orders"]) == 0
    assert main(["index-orders", "--json"]) == 0
    sql.run(
        "UPDATE pg_index SET indisvalid = false WHERE indexrelid = to_regclass(:name)", name=ORDERS_INDEX_NAME
    )  # what a CONCURRENTLY build interrupted half way leaves behind
    assert main(["index-orders", "--json"]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{ORDERS_INDEX_NAME}: created"
    assert [json.loads(line)["outcome"] for line in out[1:]] == ["exists", "rebuilt"]
    definition = sql.run("SELECT indexdef FROM pg_indexes WHERE indexname = :name", name=ORDERS_INDEX_NAME)[0][0]
    assert "(created_at, id) INCLUDE (restaurant_id) WHERE" in definition
    assert sql.run("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:n)", n=ORDERS_INDEX_NAME) == [
        [True]
    ]


def test_index_orders_can_print_its_statement_for_a_change_review(capsys):
    assert main(["index-orders", "--print-sql"]) == 0

    assert capsys.readouterr().out.strip() == CREATE_ORDERS_INDEX.strip() + ";"


WHITESPACE = [chr(code) for code in range(0x110000) if chr(code).isspace()]


BLANK = ["", " \t\n\r\x0b\x0c", "".join(WHITESPACE), *[f" {char}{char}" for char in WHITESPACE]]
# Zero-width space is not whitespace: such a value is malformed, eligible, and rejected by the consumer.
NOT_BLANK = ["s3://invoices/a.jpg", "\n\u3000x\t", "\u200b", "[]"]


def test_blank_means_whitespace_of_any_kind_exactly_as_python_defines_it(sql):
    for value, eligible in [*((value, False) for value in BLANK), *((value, True) for value in NOT_BLANK)]:
        assert sql.run(f"SELECT CAST(:value AS text) ~ '{NOT_BLANK_PATTERN}'", value=value) == [[eligible]], value
        assert bool(value.strip()) is eligible
