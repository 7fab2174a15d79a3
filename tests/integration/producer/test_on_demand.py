"""On demand: `invoices enqueue --order ID ...` and the producer invoked with {"order_ids": [...]}, on each ledger
state; malformed requests claim nothing."""

from __future__ import annotations

import json

import boto3
import pytest

from invoice_pipeline.flows.enqueue import InvalidRequest, build_runtime, enqueue_requested
from invoices_cli.main import main
from local.event_source import fresh_handler
from tests.integration.cli import run_cli
from tests.integration.producer.conftest import MODELS, FakeLambdaContext, at, drain, ledger

IMAGE = "s3://invoices/x.jpg"
GPT, OCR = MODELS


@pytest.fixture
def priority_queue_url(aws, monkeypatch) -> str:
    url = boto3.client("sqs").create_queue(QueueName="invoice-jobs-priority")["QueueUrl"]
    monkeypatch.setenv("PRIORITY_QUEUE_URL", url)
    return url


def set_job(sql, order_id: int, llm: str, status: str, *, minutes_ago: int = 1) -> None:
    sql.run(
        "INSERT INTO benchmarking.extraction_jobs (order_id, llm, status, attempts, enqueued_at, started_at,"
        " finished_at) VALUES (:o, :l, :s, 1, now() - make_interval(mins => :m), now() - make_interval(mins => :m),"
        " CASE WHEN :s IN ('done', 'failed') THEN now() END)",
        o=order_id,
        l=llm,
        s=status,
        m=minutes_ago,
    )


def both(sql, order_id: int, status: str) -> None:
    for llm in MODELS:
        set_job(sql, order_id, llm, status)


@pytest.fixture
def ledger_states(orders, sql):
    """Order 1 has no job, 2 is queued, 3 processing, 4 done (with items), 5 failed, 6 blank; 99 does not exist."""
    orders([(order_id, 7, IMAGE if order_id != 6 else " \n", at(order_id)) for order_id in range(1, 7)])
    for order_id, status in ((2, "queued"), (3, "processing"), (4, "done"), (5, "failed")):
        both(sql, order_id, status)
    sql.run(
        "INSERT INTO benchmarking.invoice_items (order_id, llm, invoice_index, line_no, item_name)"
        " VALUES (4, :l, 0, 1, 'old line')",
        l=GPT,
    )


def test_each_ledger_state_gets_its_result_and_only_claimable_jobs_are_sent(
    ledger_states, sql, queue_url, producer_env, capsys
):
    code, out = run_cli(capsys, "enqueue", "--json", *[f"--order={i}" for i in (1, 2, 3, 4, 5, 6, 99, 1)])

    assert code == 0
    results = {line["order_id"]: line["result"] for line in json.loads(out.splitlines()[-1])["results"]}
    assert results == {
        1: "enqueued",
        2: "already queued",
        3: "already queued",
        4: "done",
        5: "enqueued",
        6: "blank invoice_image",
        99: "no such order",
    }
    sent = sorted((body["order_id"], body["llm"]) for body in drain(queue_url))
    assert sent == sorted((order_id, llm) for order_id in (1, 5) for llm in MODELS)  # each once
    jobs = ledger(sql)
    assert {jobs[(order_id, GPT)][0] for order_id in (1, 5)} == {"queued"}
    assert jobs[(4, GPT)][0] == "done" and (6, GPT) not in jobs and (99, GPT) not in jobs


def test_again_sends_a_done_order_once_more_and_keeps_its_items_until_new_ones_are_written(
    ledger_states, sql, queue_url, producer_env, capsys
):
    code, out = run_cli(capsys, "enqueue", "--order", "4", "--again")

    assert code == 0 and "order 4: enqueued" in out
    assert sorted(body["llm"] for body in drain(queue_url)) == sorted(MODELS)
    assert ledger(sql)[(4, GPT)][0] == "queued"
    assert sql.run("SELECT item_name FROM benchmarking.invoice_items WHERE order_id = 4") == [["old line"]]
    code, out = run_cli(capsys, "enqueue", "--order", "4", "--again")
    assert "order 4: already queued" in out and drain(queue_url) == []


def test_priority_sends_to_the_priority_lane_and_a_job_queued_on_the_main_lane_is_not_sent_twice(
    ledger_states, sql, queue_url, priority_queue_url, producer_env, capsys
):
    code, out = run_cli(capsys, "enqueue", "--order", "1", "--order", "2", "--priority")

    assert code == 0 and "order 1: enqueued" in out and "order 2: already queued" in out
    assert sorted((body["order_id"], body["llm"]) for body in drain(priority_queue_url)) == [(1, GPT), (1, OCR)]
    assert drain(queue_url) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--order", "12", "--order", "twelve"], "'twelve' is not a positive integer"),
        (["--order", "0"], "0 is not a positive integer"),
        ([f"--order={i}" for i in range(1, 1002)], "at most 1000 order ids"),
        (["--order", "1", "--priority"], "PRIORITY_QUEUE_URL is not set"),
    ],
)
def test_malformed_input_exits_2_and_claims_nothing(ledger_states, sql, queue_url, producer_env, capsys, argv, message):
    before = ledger(sql)

    code = main(["enqueue", *argv])

    assert code == 2 and message in capsys.readouterr().err
    assert ledger(sql) == before and drain(queue_url) == []


def test_the_producer_invoked_with_order_ids_does_that_and_no_scheduled_run(orders, sql, queue_url, producer_env):
    orders([(1, 7, IMAGE, at(1)), (2, 7, IMAGE, at(2))])
    handler = fresh_handler("producer")()

    result = handler({"order_ids": [2], "priority": False}, FakeLambdaContext())

    assert result["results"] == [{"order_id": 2, "result": "enqueued", "llms": {GPT: "enqueued", OCR: "enqueued"}}]
    assert sorted(body["order_id"] for body in drain(queue_url)) == [2, 2]  # order 1 is eligible but not named
    with pytest.raises(InvalidRequest, match="priority must be true or false"):
        handler({"order_ids": [1], "priority": "yes"}, FakeLambdaContext())
    assert set(ledger(sql)) == {(2, GPT), (2, OCR)}


def test_a_failed_send_releases_the_claim_and_restores_a_done_job(ledger_states, sql, producer_env, monkeypatch):
    monkeypatch.setenv("QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/no-such-queue")
    from invoice_pipeline.settings import producer_settings

    result = enqueue_requested(build_runtime(producer_settings()), [1, 4], again=True, sleep=lambda _: None)

    assert result.orders == {1: "send failed", 4: "send failed"}
    jobs = ledger(sql)
    assert (1, GPT) not in jobs and jobs[(4, GPT)][0] == "done"
