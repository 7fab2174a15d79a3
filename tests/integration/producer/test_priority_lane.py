"""The priority lane: urgent orders (created within PRIORITY_WINDOW_MINUTES) go to PRIORITY_QUEUE_URL, the rest to
QUEUE_URL, each (order, model) exactly once across both queues, also with producers running at once."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from invoice_pipeline.flows.enqueue import enqueue_orders
from tests.conftest import connect
from tests.integration.producer.conftest import MODELS, at, drain

IMAGE = "s3://invoices/x.jpg"


@pytest.fixture
def priority_queue_url(aws) -> str:
    return boto3.client("sqs").create_queue(QueueName="invoice-jobs-priority")["QueueUrl"]


def ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def orders_in(queue_url: str) -> Counter[tuple[int, str]]:
    return Counter((body["order_id"], body["llm"]) for body in drain(queue_url))


def test_orders_created_within_the_window_go_to_the_priority_lane_and_the_rest_to_the_main_queue(
    orders, sql, queue_url, priority_queue_url, settings_for
):
    orders([(1, 1, IMAGE, at(0)), (2, 1, IMAGE, ago(150)), (3, 1, IMAGE, ago(45)), (4, 1, IMAGE, ago(1))])

    summary = enqueue_orders(sql, boto3.client("sqs"), settings_for(PRIORITY_QUEUE_URL=priority_queue_url))

    assert set(orders_in(priority_queue_url)) == {(order, llm) for order in (3, 4) for llm in MODELS}
    assert set(orders_in(queue_url)) == {(order, llm) for order in (1, 2) for llm in MODELS}
    assert (summary.enqueued, summary.priority_enqueued) == (8, 4)


def test_the_window_is_configurable_and_without_a_priority_queue_there_is_no_lane(
    orders, sql, queue_url, priority_queue_url, settings_for
):
    orders([(1, 1, IMAGE, ago(150)), (2, 1, IMAGE, ago(45))])
    sqs = boto3.client("sqs")

    enqueue_orders(sql, sqs, settings_for(PRIORITY_QUEUE_URL=priority_queue_url, PRIORITY_WINDOW_MINUTES="180"))
    assert {order for order, _ in orders_in(priority_queue_url)} == {1, 2}

    orders([(3, 1, IMAGE, ago(5))])
    enqueue_orders(sql, sqs, settings_for())  # PRIORITY_QUEUE_URL unset
    assert {order for order, _ in orders_in(queue_url)} == {3}
    assert orders_in(priority_queue_url) == Counter()


def test_urgent_orders_are_sent_first_even_behind_a_backlog_larger_than_one_run(
    orders, sql, queue_url, priority_queue_url, settings_for
):
    orders([(order_id, 1, IMAGE, at(order_id)) for order_id in range(1, 301)])
    orders([(9001, 1, IMAGE, ago(2)), (9002, 1, IMAGE, ago(1))])
    settings = settings_for(PRIORITY_QUEUE_URL=priority_queue_url, MAX_ORDERS_PER_RUN="20")

    summary = enqueue_orders(sql, boto3.client("sqs"), settings)

    assert summary.enqueued == 20
    assert {order for order, _ in orders_in(priority_queue_url)} == {9001, 9002}
    assert len(orders_in(queue_url)) == 16  # the rest of the run's cap, oldest first


def test_concurrent_producers_send_each_job_exactly_once_across_both_lanes(
    orders, sql, database, queue_url, priority_queue_url, settings_for
):
    rows = [(order_id, 1 + order_id % 3, IMAGE, ago(order_id % 120)) for order_id in range(1, 401)]
    orders(rows)
    urgent = {order_id for order_id, _, _, created_at in rows if created_at > ago(59)}
    assert 50 < len(urgent) < 350
    settings = settings_for(PRIORITY_QUEUE_URL=priority_queue_url, PRODUCER_PAGE_SIZE="23")
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def run() -> None:
        connection = connect(database)
        try:
            barrier.wait()
            enqueue_orders(connection, boto3.client("sqs"), settings)
        except BaseException as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    priority, main = orders_in(priority_queue_url), orders_in(queue_url)
    assert max((priority + main).values()) == 1  # never twice, in one queue or across both
    assert set(priority) | set(main) == {(order_id, llm) for order_id in range(1, 401) for llm in MODELS}
    # An order near the window's edge may age out of it between two runs; every other one is in its lane.
    edge = {order_id for order_id, _, _, created_at in rows if ago(61) < created_at <= ago(59)}
    assert {order for order, _ in priority} - edge == urgent - edge
    assert not {order for order, _ in main} & (urgent - edge)
