"""The consumer handler end to end: real Postgres, S3 in moto, the real OpenAI SDK against the model emulator."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.events.builders import sqs_record
from tests.integration.consumer.conftest import BUCKET, MODEL, OTHER_MODEL, Pipeline, answer, invoice_image

TOMATO = ("Tomato paste", "2", "ctn", "1,250.250", "2,500.500")
ONION = ("بصل", "١٠", "kg", "٠٫٣٥٠", "٣٫٥٠٠")
RICE = ("Rice 5kg", "4", "bag", "3.750", "15.000")


def test_a_multi_invoice_order_is_written_whole_with_its_ledger_row_done(pipeline: Pipeline):
    pipeline.add_invoice_order(1001, [(11, answer(TOMATO, ONION)), (12, answer(RICE, currency=None)), (13, answer())])
    record = sqs_record({"order_id": 1001, "llm": MODEL})

    assert pipeline.run(record) == []

    assert pipeline.items(1001) == [
        (0, 1, "Tomato paste", Decimal(2), "ctn", Decimal("1250.250"), Decimal("2500.500"), "KWD"),
        (0, 2, "بصل", Decimal(10), "kg", Decimal("0.350"), Decimal("3.500"), "KWD"),
        (1, 1, "Rice 5kg", Decimal(4), "bag", Decimal("3.750"), Decimal("15.000"), None),
    ]
    job = pipeline.job(1001)
    assert job is not None
    assert (job["status"], job["attempts"], job["invoice_count"], job["item_count"]) == ("done", 1, 3, 3)
    assert job["last_error"] is None and job["finished_at"] is not None
    # Three A4 pages at 768x1086: 85 + 170 * 2 * 3 = 1105 image tokens each, plus the prompt text.
    assert job["input_tokens"] > 3 * 1105 and job["output_tokens"] > 0
    expected_cost = (Decimal("2.50") * job["input_tokens"] + Decimal("10.00") * job["output_tokens"]) / 10**6
    assert job["cost_usd"] == expected_cost.quantize(Decimal("0.000001"))
    assert pipeline.model.requests_by_stamp == {11: 1, 12: 1, 13: 1}


def test_the_model_time_of_the_order_is_recorded_with_the_done_job(pipeline: Pipeline):
    pipeline.add_invoice_order(1002, [(21, answer(RICE)), (22, answer(TOMATO))])

    assert pipeline.run(sqs_record({"order_id": 1002, "llm": MODEL})) == []

    (model_ms,) = pipeline.sql.run("SELECT model_ms FROM benchmarking.extraction_jobs WHERE order_id = 1002")[0]
    assert model_ms is not None and 0 < model_ms < 60_000  # two emulated model calls, summed


def test_llm_defaults_to_the_first_model_and_another_model_gets_its_own_rows(pipeline: Pipeline):
    pipeline.add_invoice_order(1002, [(21, answer(TOMATO))])
    assert pipeline.run(sqs_record({"order_id": 1002}), sqs_record({"order_id": 1002, "llm": OTHER_MODEL})) == []
    assert len(pipeline.items(1002, MODEL)) == 1 and len(pipeline.items(1002, OTHER_MODEL)) == 1
    assert pipeline.job(1002, OTHER_MODEL)["status"] == "done"


def test_duplicate_delivery_and_redelivery_after_success_write_nothing_new_and_call_no_model(pipeline: Pipeline):
    pipeline.add_invoice_order(1003, [(31, answer(TOMATO, RICE))])
    body = {"order_id": 1003, "llm": MODEL}
    assert pipeline.run(sqs_record(body), sqs_record(body)) == []  # the same order twice in one batch
    assert pipeline.model.requests == 1
    assert pipeline.run(sqs_record(body, receive_count=3)) == []  # redriven later with a new message id
    assert pipeline.model.requests == 1
    assert len(pipeline.items(1003)) == 2
    assert pipeline.job(1003)["attempts"] == 1


def put_order(pipeline: Pipeline, order_id: int, image: str | None) -> None:
    pipeline.add_order(order_id, image)


@pytest.mark.parametrize(
    ("arrange", "says"),
    [
        (lambda p: put_order(p, 2001, "https://evil.example/a.jpg"), "not an S3 URL"),
        (lambda p: put_order(p, 2001, "s3://not-ours/a.jpg"), "not in ALLOWED_BUCKETS"),
        (lambda p: put_order(p, 2001, "http://169.254.169.254/latest/meta-data/"), "not an S3 URL"),
        (lambda p: put_order(p, 2001, "   "), "no invoice_image"),
        (lambda p: put_order(p, 2001, f"s3://{BUCKET}/missing.jpg"), "NoSuchKey"),
        (lambda p: put_order(p, 2001, "s3://another-allowed/a.jpg"), "NoSuchBucket"),
        (
            lambda p: put_order(p, 2001, p.put_image("big.png", b"\x89PNG\r\n\x1a\n" + b"0" * 2_100_000)),
            "more than MAX_IMAGE_BYTES",
        ),
        (lambda p: put_order(p, 2001, p.put_image("note.txt", b"hello, not an invoice")), "not a JPEG, PNG"),
    ],
)
def test_bad_orders_fail_permanently_with_a_readable_error_and_no_model_call(pipeline: Pipeline, arrange, says):
    arrange(pipeline)
    record = sqs_record({"order_id": 2001, "llm": MODEL})
    assert pipeline.run(record) == [record["messageId"]]
    job = pipeline.job(2001)
    assert job["status"] == "failed" and says in job["last_error"]
    assert pipeline.items(2001) == []
    assert pipeline.model.requests == 0


def test_an_unknown_order_gets_a_failed_row_saying_so(pipeline: Pipeline):
    record = sqs_record({"order_id": 404404, "llm": OTHER_MODEL})
    assert pipeline.run(record) == [record["messageId"]]
    job = pipeline.job(404404, OTHER_MODEL)
    assert (job["status"], job["last_error"]) == ("failed", "order not found")


@pytest.mark.parametrize(
    "body", ["not json", '{"llm": "gpt-4o-2024-11-20"}', '{"order_id": "12"}', '{"order_id": 12, "llm": "gpt-2"}']
)
def test_unreadable_messages_fail_and_touch_nothing(pipeline: Pipeline, body: str):
    record = sqs_record(body)
    assert pipeline.run(record) == [record["messageId"]]
    assert pipeline.jobs_count() == 0


def test_a_refusal_is_permanent_and_redeliveries_of_that_message_fail_fast_until_a_redrive(pipeline: Pipeline):
    pipeline.add_invoice_order(3001, [(41, answer(TOMATO))])
    pipeline.model.inject("refusal", times=1)
    record = sqs_record({"order_id": 3001, "llm": MODEL})

    assert pipeline.run(record) == [record["messageId"]]
    job = pipeline.job(3001)
    assert job["status"] == "failed" and "refused" in job["last_error"]

    # SQS shows the same message again (receive 2..5) on its way to the DLQ: no S3, no model, ledger kept.
    pipeline.s3.delete_object(Bucket=BUCKET, Key="orders/3001/41.png")
    again = {**record, "attributes": {**record["attributes"], "ApproximateReceiveCount": "2"}}
    assert pipeline.run(again) == [record["messageId"]]
    assert pipeline.model.requests == 1
    assert pipeline.job(3001) == job

    # An operator redrives it from the DLQ (a new message id): processed normally.
    pipeline.put_image("orders/3001/41.png", invoice_image(41))
    assert pipeline.run(sqs_record({"order_id": 3001, "llm": MODEL})) == []
    assert pipeline.job(3001)["status"] == "done" and pipeline.job(3001)["attempts"] == 2
    assert len(pipeline.items(3001)) == 1


def test_a_transient_failure_on_the_second_invoice_writes_nothing_and_requeues(pipeline: Pipeline):
    pipeline.add_invoice_order(4001, [(51, answer(TOMATO)), (52, answer(RICE))])
    pipeline.model.inject("server_error", times=10, stamp=52)  # more than the SDK's retries
    record = sqs_record({"order_id": 4001, "llm": MODEL})

    assert pipeline.run(record) == [record["messageId"]]
    assert pipeline.items(4001) == []
    job = pipeline.job(4001)
    assert job["status"] == "queued" and "InternalServerError" in job["last_error"]
    assert pipeline.model.requests_for(52) == 3  # the first try and 2 SDK retries

    pipeline.model.clear_faults()
    assert pipeline.run(sqs_record({"order_id": 4001, "llm": MODEL}, receive_count=2)) == []
    assert [row[:3] for row in pipeline.items(4001)] == [(0, 1, "Tomato paste"), (1, 1, "Rice 5kg")]
    assert pipeline.job(4001)["attempts"] == 2


def test_a_transient_failure_on_the_last_allowed_receive_fails_the_job(pipeline: Pipeline):
    pipeline.add_invoice_order(4002, [(53, answer(TOMATO))])
    pipeline.model.inject("server_error")
    record = sqs_record({"order_id": 4002, "llm": MODEL}, receive_count=5)
    assert pipeline.run(record) == [record["messageId"]]
    job = pipeline.job(4002)
    assert job["status"] == "failed" and "InternalServerError" in job["last_error"]


def test_insufficient_quota_is_permanent(pipeline: Pipeline):
    pipeline.add_invoice_order(4003, [(54, answer(TOMATO))])
    pipeline.model.inject("insufficient_quota")
    record = sqs_record({"order_id": 4003, "llm": MODEL})
    assert pipeline.run(record) == [record["messageId"]]
    assert pipeline.job(4003)["status"] == "failed"


def test_a_job_held_inside_its_lease_is_skipped_and_left_unchanged(pipeline: Pipeline):
    pipeline.add_invoice_order(5001, [(61, answer(TOMATO))])
    pipeline.sql.run(
        "INSERT INTO benchmarking.extraction_jobs (order_id, llm, status, attempts, started_at)"
        " VALUES (5001, :llm, 'processing', 1, now() - interval '5 minutes')",
        llm=MODEL,
    )
    before = pipeline.job(5001)
    record = sqs_record({"order_id": 5001, "llm": MODEL})
    assert pipeline.run(record) == [record["messageId"]]
    assert pipeline.job(5001) == before and pipeline.model.requests == 0

    # A holder that died: once the lease has run out, the next delivery takes the job over.
    pipeline.sql.run("UPDATE benchmarking.extraction_jobs SET started_at = now() - interval '2 hours'")
    assert pipeline.run(sqs_record({"order_id": 5001, "llm": MODEL})) == []
    assert pipeline.job(5001)["status"] == "done" and pipeline.job(5001)["attempts"] == 2


def test_a_batch_of_five_with_two_bad_records_reports_exactly_those_two(pipeline: Pipeline):
    for order_id, stamp in ((6001, 71), (6002, 72), (6003, 73)):
        pipeline.add_invoice_order(order_id, [(stamp, answer(TOMATO))])
    pipeline.add_order(6004, "https://example.com/invoice.jpg")
    records = [
        sqs_record({"order_id": 6001}),
        sqs_record("{broken"),
        sqs_record({"order_id": 6002}),
        sqs_record({"order_id": 6004}),
        sqs_record({"order_id": 6003}),
    ]
    assert sorted(pipeline.run(*records)) == sorted([records[1]["messageId"], records[3]["messageId"]])
    assert [pipeline.job(order_id)["status"] for order_id in (6001, 6002, 6003, 6004)] == [
        "done",
        "done",
        "done",
        "failed",
    ]


def test_a_permanent_failure_is_visible_again_at_once_so_it_reaches_the_dlq_quickly(pipeline: Pipeline):
    pipeline.add_order(7001, "s3://not-ours/a.jpg")
    record = sqs_record({"order_id": 7001})

    assert pipeline.run(record) == [record["messageId"]]

    # Received with the queue's 1800 s visibility timeout, and visible again at once.
    assert pipeline.queue.depth() == (1, 0, 0)
