"""A producer run ends by publishing completion events left unsent for longer than OUTBOX_RETRY_SECONDS."""

from __future__ import annotations

import json

from invoice_pipeline.flows.enqueue import build_runtime, run_producer
from local.event_sink import create_event_sink, drain_events

INSERT_UNSENT = """
INSERT INTO benchmarking.event_outbox (order_id, llm, detail_type, detail, created_at)
VALUES (:order_id, 'gpt-4o-2024-11-20', 'Invoice extraction done', CAST(:detail AS jsonb),
        now() - make_interval(secs => :age))
"""


def test_a_producer_run_publishes_stale_unsent_events_and_leaves_fresh_ones_to_their_invocation(
    orders, sql, queue_url, settings_for
):
    orders([])
    sink = create_event_sink()
    for order_id, age in ((71, 300), (72, 5)):
        detail = {"order_id": order_id, "llm": "gpt-4o-2024-11-20", "status": "done", "finished_at": "x"}
        sql.run(INSERT_UNSENT, order_id=order_id, detail=json.dumps(detail), age=age)

    run_producer(build_runtime(settings_for(OUTBOX_RETRY_SECONDS="60")))

    assert [event["detail"]["order_id"] for event in drain_events(sink)] == [71]
    sent = dict(sql.run("SELECT order_id, sent_at IS NOT NULL FROM benchmarking.event_outbox ORDER BY order_id"))
    assert sent == {71: True, 72: False}  # the fresh one is its committing invocation's to publish
