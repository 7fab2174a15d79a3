"""Jobs that must never be stranded (issue 12): a crash on the last receive, a record that runs out of time,
and a model key that is rejected. Real handler, real Postgres, moto SQS, the model emulator."""

from __future__ import annotations

import json

import boto3

from invoice_pipeline.flows.enqueue import enqueue_orders
from invoice_pipeline.settings import producer_settings_from
from invoice_pipeline.tables import ledger
from invoice_pipeline.tables.ledger import STALE_PROCESSING_ERROR
from tests.conftest import connect
from tests.events.builders import sqs_record
from tests.integration.consumer.conftest import MODEL, Pipeline, answer
from tests.integration.queues import delayed_messages, hidden_for_seconds

TOMATO = ("Tomato paste", "2", "ctn", "1.250", "2.500")
LEASE = 3600  # both leases in these tests: PROCESSING_LEASE_SECONDS and REQUEUE_LEASE_SECONDS


def produce(database: str, queue_url: str) -> list[dict[str, object]]:
    """One producer run into the queue; returns the bodies it sent."""
    sqs = boto3.client("sqs")
    settings = producer_settings_from(
        {
            "DATABASE_URL": database,
            "DB_SSLMODE": "disable",
            "QUEUE_URL": queue_url,
            "LLM_MODELS": MODEL,
            "RESTAURANT_IDS": "*",
            "REQUEUE_LEASE_SECONDS": str(LEASE),
            "PROCESSING_LEASE_SECONDS": str(LEASE),
        }
    )
    connection = connect(database)
    try:
        enqueue_orders(connection, sqs, settings)
    finally:
        connection.close()
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def test_a_job_left_processing_by_a_crash_on_the_last_receive_is_reenqueued_and_done_once(
    pipeline: Pipeline, database: str
):
    pipeline.add_invoice_order(8001, [(81, answer(TOMATO))])
    pipeline.add_invoice_order(8002, [(82, answer(TOMATO))])
    last = sqs_record({"order_id": 8001, "llm": MODEL}, receive_count=5)
    # The last delivery claimed the job, then its invocation was killed (timeout, out of memory): no failure was
    # recorded and SQS moved the message to the DLQ. Job 8002 crashed too, but its lease ended only recently.
    ledger.claim_job(pipeline.sql, 8001, MODEL, message_id=last["messageId"], lease_seconds=LEASE)
    ledger.claim_job(pipeline.sql, 8002, MODEL, message_id="another", lease_seconds=LEASE)
    pipeline.sql.run("UPDATE benchmarking.extraction_jobs SET started_at = now() - interval '2 hours 1 minute'")
    pipeline.sql.run(
        "UPDATE benchmarking.extraction_jobs SET started_at = now() - interval '90 minutes' WHERE order_id = 8002"
    )

    assert produce(database, pipeline.queue.url) == [{"order_id": 8001, "llm": MODEL}]
    assert pipeline.job(8001)["status"] == "queued" and pipeline.job(8001)["last_error"] == STALE_PROCESSING_ERROR
    assert pipeline.job(8002)["status"] == "processing"
    # Sent once: the claim put it back to `queued` with a fresh enqueued_at.
    assert produce(database, pipeline.queue.url) == []

    assert pipeline.run(sqs_record({"order_id": 8001, "llm": MODEL})) == []
    assert pipeline.job(8001)["status"] == "done" and len(pipeline.items(8001)) == 1

    # The operator redrives the DLQ later: the old message (new id) writes nothing and calls no model.
    requests = pipeline.model.requests
    assert pipeline.run(sqs_record({"order_id": 8001, "llm": MODEL}, receive_count=1)) == []
    assert pipeline.model.requests == requests and len(pipeline.items(8001)) == 1


def test_a_rejected_model_key_never_fails_the_job_and_never_sends_it_to_the_dlq(pipeline: Pipeline, capsys, caplog):
    pipeline.add_invoice_order(8101, [(91, answer(TOMATO))])
    pipeline.model.inject("invalid_api_key")  # every request: the key in the secret is the placeholder
    body = {"order_id": 8101, "llm": MODEL}

    for receive_count in range(1, 5):
        record = sqs_record(body, receive_count=receive_count)
        assert pipeline.run(record) == [record["messageId"]]
        job = pipeline.job(8101)
        assert (job["status"], job["attempts"]) == ("queued", receive_count)
        assert job["last_error"].startswith("AuthenticationError: Error code: 401")

    # Not the last receive: the record fails and stays away for CONFIG_ERROR_BACKOFF_SECONDS (900 s by default), not
    # the queue's 1800 s visibility timeout it was received with.
    assert 840 < hidden_for_seconds(pipeline.delivered[0]["receiptHandle"]) <= 900
    assert pipeline.queue.depth() == (0, 4, 0)
    assert '"ModelCredentialsRejected":[1.0]' in capsys.readouterr().out  # the EMF metric the alarm watches
    assert "model credentials rejected" in [entry.message for entry in caplog.records if entry.levelname == "ERROR"]

    # The last receive: the job is handed back through a fresh, delayed message and this record is acknowledged,
    # so SQS deletes it instead of moving it to the DLQ.
    pipeline.sql.run("UPDATE benchmarking.extraction_jobs SET enqueued_at = now() - interval '3 days'")
    record = sqs_record(body, receive_count=5)
    assert pipeline.run(record) == []
    # The fresh message's retention starts now: the producer's stale-queued rule must not send a second one.
    [[enqueued_seconds_ago]] = pipeline.sql.run(
        "SELECT extract(epoch FROM now() - enqueued_at)::float8 FROM benchmarking.extraction_jobs WHERE order_id = 8101"
    )
    assert enqueued_seconds_ago < 60
    assert pipeline.queue.depth() == (0, 4, 1)  # the four earlier receives still away, and the fresh copy
    assert [(json.loads(m.body), m.delay_seconds) for m in delayed_messages()] == [(body, 900)]
    assert pipeline.job(8101)["status"] == "queued"
    assert pipeline.model.requests == 5 and pipeline.items(8101) == []

    # The operator puts the right key: the fresh message's delivery does the job.
    pipeline.model.clear_faults()
    assert pipeline.run(sqs_record(body)) == []
    assert pipeline.job(8101)["status"] == "done" and len(pipeline.items(8101)) == 1


def test_late_records_of_a_slow_batch_are_handed_back_untouched(pipeline: Pipeline):
    for order_id, stamp in ((8201, 101), (8202, 102), (8203, 103)):
        pipeline.add_invoice_order(order_id, [(stamp, answer(TOMATO))])
        # Earlier deliveries already tried each job twice.
        pipeline.sql.run(
            "INSERT INTO benchmarking.extraction_jobs (order_id, llm, status, attempts, enqueued_at, last_error)"
            " VALUES (:o, :l, 'queued', 2, now(), 'earlier error')",
            o=order_id,
            l=MODEL,
        )
    pipeline.model.inject("latency", seconds=6, stamp=101)  # the first record eats the batch's time
    records = [
        sqs_record({"order_id": 8201, "llm": MODEL}),
        sqs_record({"order_id": 8202, "llm": MODEL}, receive_count=2),
        sqs_record({"order_id": 8203, "llm": MODEL}, receive_count=5),  # its last receive
    ]

    # 33 s: 15 s write reserve + 15 s to start a record (an image and a model attempt) + 3 s to spare.
    # The second record fails untouched and is visible again at once; the third, on its last receive, is handed back
    # through a fresh message and acknowledged (it would otherwise reach the DLQ without having been tried).
    assert pipeline.run(*records, remaining_ms=33_000) == [records[1]["messageId"]]
    assert pipeline.queue.depth() == (2, 0, 0)

    assert pipeline.job(8201)["status"] == "done"
    for order_id in (8202, 8203):
        job = pipeline.job(order_id)
        assert (job["status"], job["attempts"], job["last_error"]) == ("queued", 2, "earlier error")
    assert pipeline.model.requests == 1
