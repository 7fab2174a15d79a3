"""A done job sent again on purpose (`invoices enqueue --order ID --again`): its old lines stay until the new ones
are written, then the new set replaces them whole, and a second completion event tells the receivers."""

from __future__ import annotations

from invoice_pipeline.tables import db, ledger
from local.event_sink import create_event_sink, drain_events
from tests.integration.consumer.conftest import MODEL, Pipeline, answer, sqs_record

OLD = [("Tomato paste", "2", "can", "1.250", "2.500"), ("Rice", "1", "bag", "3.000", "3.000")]
NEW = [("Tomato paste", "3", "can", "1.250", "3.750")]


def test_a_redone_job_keeps_its_lines_until_the_new_ones_replace_them_in_one_write(pipeline: Pipeline):
    sink = create_event_sink()
    pipeline.add_invoice_order(9101, [(91, answer(*OLD))])
    assert pipeline.run(sqs_record({"order_id": 9101, "llm": MODEL})) == []
    first_finished = pipeline.job(9101)["finished_at"]

    with db.pool.connection() as connection:
        [job, _other_model] = ledger.claim_orders(
            connection,
            [9101],
            [MODEL, "gpt-4.1-mini"],
            again=True,
            urgent=False,
            requeue_lease_seconds=3600,
            processing_lease_seconds=1800,
        )
    assert job.claim is not None and job.previous_status == "done"
    assert pipeline.job(9101)["status"] == "queued"
    assert [row[2] for row in pipeline.items(9101)] == ["Tomato paste", "Rice"]  # kept while it waits

    pipeline.model.register(91, answer(*NEW))
    assert pipeline.run(sqs_record({"order_id": 9101, "llm": MODEL})) == []

    assert [row[2:4] for row in pipeline.items(9101)] == [("Tomato paste", 3)]
    received = drain_events(sink)
    assert [event["detail"]["item_count"] for event in received] == [2, 1]
    assert received[1]["detail"]["finished_at"] != received[0]["detail"]["finished_at"]  # two distinct dedup keys
    assert pipeline.job(9101)["finished_at"] > first_finished
