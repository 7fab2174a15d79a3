"""Waiting for a model's budget is neither a failure nor an attempt: the claim is released without one, the wait is
counted apart, and the job is handed back once, as a fresh message delayed until the turn the budget named."""

from __future__ import annotations

import json

from invoice_pipeline.pacing.budget import Budget, set_budget
from tests.integration.consumer.conftest import MODEL, Pipeline, answer
from tests.integration.consumer.test_throttling import depth, queue_with_dlq, receive

TOMATO = ("Tomato paste", "2", "ctn", "4.500", "9.000")
WINDOW_SECONDS = 4.0
TOKENS_PER_WINDOW = 2000  # 500 tokens a second; one A4 invoice reserves about 2,000 (1,105 image, prompt, answer)


def budget_row(pipeline: Pipeline, order_id: int) -> tuple[str, int, int, float, int | None]:
    row = pipeline.sql.run(
        "SELECT status, attempts, budget_waits, budget_wait_seconds, budget_held_tokens"
        " FROM benchmarking.extraction_jobs WHERE order_id = :o AND llm = :l",
        o=order_id,
        l=MODEL,
    )[0]
    return row[0], row[1], row[2], float(row[3]), row[4]


def budget_level(pipeline: Pipeline) -> float:
    return float(pipeline.sql.run("SELECT tokens FROM benchmarking.model_budgets WHERE llm = :l", l=MODEL)[0][0])


def drain_budget_to(pipeline: Pipeline, tokens: float) -> None:
    set_budget(pipeline.sql, Budget(MODEL, TOKENS_PER_WINDOW, 100, margin=0.0, window_seconds=WINDOW_SECONDS))
    pipeline.sql.run("UPDATE benchmarking.model_budgets SET tokens = :t WHERE llm = :l", t=tokens, l=MODEL)


def test_a_job_waiting_for_its_turn_is_handed_back_once_holding_it_and_then_tried_once(pipeline: Pipeline):
    sqs, queue_url, arn, dlq_url = queue_with_dlq()
    pipeline.add_invoice_order(4101, [(61, answer(TOMATO))])
    drain_budget_to(pipeline, -500)  # the order's turn: about 2,500 tokens away, 5 s (more than a quarter window)
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"order_id": 4101, "llm": MODEL}))
    record = receive(sqs, queue_url, arn)

    assert pipeline.run(record) == []  # acknowledged: the job travels on in a fresh message
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"])
    status, attempts, waits, waited, held = budget_row(pipeline, 4101)
    assert (status, attempts, waits) == ("queued", 0, 1) and 2 <= waited <= 7  # its turn, rounded down
    assert held is not None and held > 1105  # its turn's tokens stay reserved for it
    assert pipeline.model.requests == 0

    again = receive(sqs, queue_url, arn, wait_seconds=10)  # delayed until the turn
    assert again is not None and again["messageId"] != record["messageId"]
    level_before = budget_level(pipeline)
    assert pipeline.run(again) == []
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=again["receiptHandle"])
    status, attempts, waits, _, held = budget_row(pipeline, 4101)
    assert (status, attempts, waits, held) == ("done", 1, 1, None)  # one try, one wait, the turn used
    assert pipeline.model.requests == 1 and len(pipeline.items(4101)) == 1
    assert budget_level(pipeline) >= level_before  # the turn was not reserved a second time
    assert depth(sqs, queue_url) == 0 and depth(sqs, dlq_url) == 0


def test_a_turn_beyond_the_hold_horizon_is_given_back_and_the_job_returns_a_window_before_it(pipeline: Pipeline):
    sqs, queue_url, arn, _ = queue_with_dlq()
    pipeline.add_invoice_order(4102, [(62, answer(TOMATO))])
    drain_budget_to(pipeline, -10_000)  # the turn: about 24 s away, six windows
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"order_id": 4102, "llm": MODEL}))
    record = receive(sqs, queue_url, arn)

    assert pipeline.run(record) == []
    status, attempts, waits, waited, held = budget_row(pipeline, 4102)
    assert (status, attempts, waits, held) == ("queued", 0, 1, None)
    assert 18 <= waited <= 22  # comes back one window (4 s) before its turn, to reserve again
    assert budget_level(pipeline) >= -10_000  # the reservation was given back (kept, it would be about -12,000)
    assert pipeline.model.requests == 0
