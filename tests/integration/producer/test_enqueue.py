"""The producer against real Postgres and moto SQS: exactly once, claims released, limits honoured."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from invoice_pipeline.errors import QueueUnavailableError
from invoice_pipeline.flows.enqueue import enqueue_orders
from tests.conftest import connect
from tests.integration.producer.conftest import MODELS, at, drain, ledger

IMAGE_FORMS = [
    None,
    "",
    "   ",
    "\t\n",
    "\n\r\n  \t",
    "\u00a0\u3000\u2003",  # Unicode spaces are blank too
    "s3://invoices/2026/01/a.jpg",
    "https://invoices.s3.eu-west-1.amazonaws.com/b.png",
    '["s3://invoices/c1.jpg", "s3://invoices/c2.jpg"]',
    "s3://invoices/d1.jpg, s3://invoices/d2.jpg",
    "s3://invoices/e1.jpg\ns3://invoices/e2.jpg",
    "  s3://invoices/padded.jpg \n",
    "not a url at all",  # malformed but not blank: eligible, the consumer fails it permanently
    "[]",
]


def is_blank(image: str | None) -> bool:
    return image is None or not image.strip()


def thousand_orders(seed: int = 7) -> list[tuple[int, int, str | None, datetime]]:
    rng = random.Random(seed)
    return [
        (order_id, rng.randint(1, 6), rng.choice(IMAGE_FORMS), at(rng.randint(0, 60 * 24 * 90)))
        for order_id in range(1, 1001)
    ]


def oldest_jobs(rows, eligible: set[tuple[int, str]], count: int) -> list[tuple[int, str]]:
    """The first ``count`` eligible jobs in the producer's order: (created_at, id), then the LLM_MODELS order."""
    created = {order_id: created_at for order_id, _, _, created_at in rows}
    return sorted(eligible, key=lambda job: (created[job[0]], job[0], MODELS.index(job[1])))[:count]


def test_every_eligible_job_reaches_the_queue_exactly_once_across_runs_and_concurrent_runs(
    orders, sql, database, queue_url, settings_for
):
    rows = thousand_orders()
    orders(rows)
    since = at(60 * 24 * 30)
    listed = {1, 2, 4, 5}
    expected = {
        (order_id, llm)
        for order_id, restaurant_id, image, created_at in rows
        if restaurant_id in listed and created_at >= since and not is_blank(image)
        for llm in MODELS
    }
    assert 300 < len(expected) < 1500  # the mix really has eligible and ineligible orders
    env = {"RESTAURANT_IDS": "1, 2,4,5", "ORDERS_SINCE": since.isoformat(), "PRODUCER_PAGE_SIZE": "17"}

    first = enqueue_orders(sql, boto3.client("sqs"), settings_for(**env, MAX_ORDERS_PER_RUN="150"))
    assert (first.enqueued, first.stopped_because) == (150, "max_orders_per_run")
    first_sent = Counter((body["order_id"], body["llm"]) for body in drain(queue_url))
    assert set(first_sent) == set(oldest_jobs(rows, expected, 150))  # the oldest across the listed restaurants

    # Two runs at once, each with its own connection and client, capped so that they compete for the same rows.
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def concurrent_run() -> None:
        connection = connect(database)
        try:
            barrier.wait()
            results.append(
                enqueue_orders(connection, boto3.client("sqs"), settings_for(**env, MAX_ORDERS_PER_RUN="400"))
            )
        except BaseException as error:
            results.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=concurrent_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)  # a bound on a hang only
    assert not any(thread.is_alive() for thread in threads), "a concurrent run never finished"
    assert len(results) == 2 and all(not isinstance(result, BaseException) for result in results), results
    last = enqueue_orders(sql, boto3.client("sqs"), settings_for(**env))
    again = enqueue_orders(sql, boto3.client("sqs"), settings_for(**env))

    sent = first_sent + Counter((body["order_id"], body["llm"]) for body in drain(queue_url))
    assert set(sent) == expected
    assert max(sent.values()) == 1
    assert first.enqueued + sum(r.enqueued for r in results) + last.enqueued == len(expected)
    assert again.enqueued == 0 and again.stopped_because == "exhausted"
    assert again.skipped == len(expected)  # every scanned job is already queued
    jobs = ledger(sql)
    assert set(jobs) == expected
    assert {(status, attempts) for status, attempts, _ in jobs.values()} == {("queued", 0)}


@pytest.mark.parametrize("restaurant_ids", ["*", "2,3,5,8,9"])
def test_a_capped_run_enqueues_the_oldest_jobs_across_restaurants(orders, sql, queue_url, settings_for, restaurant_ids):
    rng = random.Random(11)
    # Ten restaurants whose dates interleave; many orders share a minute, so the id breaks the tie. The lowest
    # restaurant ids get the newest orders: working restaurant by restaurant would pick a different set.
    rows = []
    for order_id in range(1, 401):
        restaurant_id = rng.randint(1, 10)
        created = at(rng.randint(0, 120) + (10 - restaurant_id) * 15)
        rows.append((order_id, restaurant_id, rng.choice([None, " ", "s3://invoices/x.jpg"]), created))
    rows.append((401, None, "s3://invoices/no-restaurant.jpg", at(0)))  # belongs to no restaurant: never read
    orders(rows)
    listed = None if restaurant_ids == "*" else {int(part) for part in restaurant_ids.split(",")}
    eligible = {
        (order_id, llm)
        for order_id, restaurant_id, image, _ in rows
        if restaurant_id is not None and (listed is None or restaurant_id in listed) and not is_blank(image)
        for llm in MODELS
    }
    cap = 61  # an odd number of messages: the last order gets its first model only
    expected = oldest_jobs(rows, eligible, cap)
    by_restaurant_first = sorted(eligible, key=lambda job: (rows[job[0] - 1][1], rows[job[0] - 1][3], job))[:cap]
    assert len(eligible) > 2 * cap and set(by_restaurant_first) != set(expected)

    summary = enqueue_orders(
        sql,
        boto3.client("sqs"),
        settings_for(RESTAURANT_IDS=restaurant_ids, MAX_ORDERS_PER_RUN=str(cap), PRODUCER_PAGE_SIZE="7"),
    )

    assert (summary.enqueued, summary.stopped_because) == (cap, "max_orders_per_run")
    sent = [(body["order_id"], body["llm"]) for body in drain(queue_url)]
    assert sorted(sent) == sorted(expected)
    assert set(ledger(sql)) == set(expected)
    assert len({rows[order_id - 1][1] for order_id, _ in expected}) >= 3  # the oldest span several restaurants


def test_every_restaurant_with_star_and_message_body_is_exactly_the_contract(orders, sql, queue_url, settings_for):
    orders([(1, 10, "s3://invoices/a.jpg", at(1)), (2, 99, " ", at(2)), (3, None, "s3://invoices/c.jpg", at(3))])

    summary = enqueue_orders(sql, boto3.client("sqs"), settings_for(LLM_MODELS="gpt-4o-2024-11-20"))

    raw = boto3.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert [message["Body"] for message in raw] == ['{"order_id": 1, "llm": "gpt-4o-2024-11-20"}']
    assert (summary.enqueued, summary.scanned, summary.skipped, summary.send_failures) == (1, 1, 0, 0)


class FlakySqs:
    """The real (moto) client, except that chosen orders' entries fail: always, or only the first N times."""

    def __init__(self, failing_orders: set[int], failures_per_entry: int | None = None) -> None:
        self.client = boto3.client("sqs")
        self.failing_orders = failing_orders
        self.failures_per_entry = failures_per_entry
        self.failed_so_far: Counter[str] = Counter()
        self.lock = threading.Lock()

    def get_queue_attributes(self, **kwargs: Any) -> dict[str, Any]:
        return self.client.get_queue_attributes(**kwargs)

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        passing, failed = [], []
        for entry in Entries:
            body = entry["MessageBody"]
            with self.lock:
                fail = self._order_of(body) in self.failing_orders
                if fail and self.failures_per_entry is not None:
                    fail = self.failed_so_far[body] < self.failures_per_entry
                if fail:
                    self.failed_so_far[body] += 1
            (failed if fail else passing).append(entry)
        response: dict[str, Any] = {"Successful": [], "Failed": []}
        if passing:
            response = self.client.send_message_batch(QueueUrl=QueueUrl, Entries=passing)
            response.setdefault("Failed", [])
        response["Failed"] += [
            {"Id": entry["Id"], "SenderFault": False, "Code": "InternalError", "Message": "injected"}
            for entry in failed
        ]
        return response

    @staticmethod
    def _order_of(body: str) -> int:
        return int(body.split('"order_id": ')[1].split(",")[0])


def test_entries_that_keep_failing_are_released_and_the_next_run_sends_them(orders, sql, queue_url, settings_for):
    orders([(order_id, 1, f"s3://invoices/{order_id}.jpg", at(order_id)) for order_id in range(1, 61)])
    # A stale queued row that fails again must get its previous enqueued_at back, not be deleted.
    stale = datetime.now(UTC) - timedelta(days=10)
    sql.run(
        "INSERT INTO benchmarking.extraction_jobs (order_id, llm, status, attempts, last_error, enqueued_at) "
        "VALUES (7, :llm, 'queued', 2, 'timeout', :at)",
        llm=MODELS[0],
        at=stale,
    )
    failing = {7, 8, 33}
    sleeps: list[float] = []

    summary = enqueue_orders(sql, FlakySqs(failing), settings_for(), sleep=sleeps.append)

    assert summary.send_failures == len(failing) * len(MODELS)
    assert summary.enqueued == 60 * len(MODELS) - summary.send_failures
    assert summary.claims_released == summary.send_failures
    assert (summary.scanned, summary.skipped) == (60, 0)  # a job that failed to send is not also skipped
    # Two batches held failing entries; each backed off doubling between retries.
    assert sorted(sleeps) == [0.2, 0.2, 0.4, 0.4, 0.8, 0.8]
    jobs = ledger(sql)
    assert {order_id for order_id, _ in jobs} == set(range(1, 61)) - {8, 33}
    assert jobs[(7, MODELS[0])] == ("queued", 2, stale)  # restored: the next run re-claims it as stale
    assert (7, MODELS[1]) not in jobs
    first_batch = Counter((body["order_id"], body["llm"]) for body in drain(queue_url))
    assert {order_id for order_id, _ in first_batch} == set(range(1, 61)) - failing

    later = enqueue_orders(sql, boto3.client("sqs"), settings_for())

    assert later.enqueued == len(failing) * len(MODELS)
    second_batch = Counter((body["order_id"], body["llm"]) for body in drain(queue_url))
    assert {order_id for order_id, _ in second_batch} == failing
    assert not set(first_batch) & set(second_batch)
    assert ledger(sql)[(7, MODELS[0])][1] == 2  # a re-claim keeps the consumer's attempt count


def test_entries_that_fail_once_are_retried_and_sent_in_the_same_run(orders, sql, queue_url, settings_for):
    orders([(order_id, 1, "s3://invoices/x.jpg", at(order_id)) for order_id in range(1, 21)])

    summary = enqueue_orders(sql, FlakySqs({3, 4, 5}, failures_per_entry=1), settings_for(), sleep=lambda _: None)

    assert (summary.enqueued, summary.send_failures, summary.claims_released) == (40, 0, 0)
    assert len(drain(queue_url)) == 40


def test_stale_queued_jobs_are_resent_fresh_ones_are_not_and_finished_ones_never(orders, sql, queue_url, settings_for):
    orders([(order_id, 1, "s3://invoices/x.jpg", at(order_id)) for order_id in range(1, 7)])
    now = datetime.now(UTC)
    llm = MODELS[0]
    for order_id, status, enqueued_at in [
        (1, "queued", now - timedelta(hours=2)),  # older than the one-hour lease below
        (2, "queued", now - timedelta(minutes=5)),
        (3, "failed", now - timedelta(days=30)),
        (4, "done", now - timedelta(days=30)),
        (5, "processing", now - timedelta(days=30)),
    ]:
        sql.run(
            "INSERT INTO benchmarking.extraction_jobs (order_id, llm, status, attempts, enqueued_at) "
            "VALUES (:order_id, :llm, :status, 1, :enqueued_at)",
            order_id=order_id,
            llm=llm,
            status=status,
            enqueued_at=enqueued_at,
        )

    summary = enqueue_orders(sql, boto3.client("sqs"), settings_for(LLM_MODELS=llm, REQUEUE_LEASE_SECONDS="3600"))

    assert sorted(body["order_id"] for body in drain(queue_url)) == [1, 6]
    assert (summary.enqueued, summary.scanned, summary.skipped) == (2, 6, 4)
    jobs = ledger(sql)
    assert jobs[(1, llm)][0] == "queued" and jobs[(1, llm)][2] > now - timedelta(minutes=1)
    assert jobs[(2, llm)][2] < now - timedelta(minutes=4)
    assert [jobs[(order_id, llm)][0] for order_id in (3, 4, 5)] == ["failed", "done", "processing"]
    assert jobs[(6, llm)][:2] == ("queued", 0)


def test_max_orders_per_run_caps_the_messages_of_each_run(orders, sql, queue_url, settings_for):
    orders([(order_id, 1, "s3://invoices/x.jpg", at(order_id)) for order_id in range(1, 51)])
    capped = settings_for(MAX_ORDERS_PER_RUN="35", PRODUCER_PAGE_SIZE="8")

    runs = [enqueue_orders(sql, boto3.client("sqs"), capped) for _ in range(3)]

    assert [run.enqueued for run in runs] == [35, 35, 30]
    assert [run.stopped_because for run in runs] == ["max_orders_per_run", "max_orders_per_run", "exhausted"]
    assert len(ledger(sql)) == 100
    assert len(set(map(str, drain(queue_url)))) == 100


def test_queue_deeper_than_the_backpressure_threshold_enqueues_nothing(orders, sql, queue_url, settings_for):
    orders([(order_id, 1, "s3://invoices/x.jpg", at(order_id)) for order_id in range(1, 11)])
    sqs = boto3.client("sqs")
    for index in range(6):
        sqs.send_message(QueueUrl=queue_url, MessageBody=f'{{"order_id": {1000 + index}}}')

    held = enqueue_orders(sql, sqs, settings_for(MAX_QUEUE_DEPTH="5"))
    claimed_while_held = ledger(sql)
    allowed = enqueue_orders(sql, sqs, settings_for(MAX_QUEUE_DEPTH="50"))

    assert (held.enqueued, held.stopped_because, held.queue_depth, held.pages) == (0, "queue_depth", 6, 0)
    assert claimed_while_held == {}
    assert (allowed.enqueued, allowed.stopped_because) == (20, "exhausted")


def test_wrong_queue_url_fails_the_run_and_leaves_no_claims(orders, sql, queue_url, settings_for):
    orders([(order_id, 1, "s3://invoices/x.jpg", at(order_id)) for order_id in range(1, 11)])
    wrong = queue_url.rsplit("/", 1)[0] + "/no-such-queue"

    with pytest.raises(QueueUnavailableError, match="no-such-queue"):
        enqueue_orders(sql, boto3.client("sqs"), settings_for(QUEUE_URL=wrong))

    assert ledger(sql) == {}


class QueueThatBreaks:
    """Attributes answer, and the first ``working_calls`` sends go through; then every send is refused."""

    def __init__(self, working_calls: int) -> None:
        self.client = boto3.client("sqs")
        self.calls = 0
        self.lock = threading.Lock()
        self.working_calls = working_calls

    def get_queue_attributes(self, **kwargs: Any) -> dict[str, Any]:
        return self.client.get_queue_attributes(**kwargs)

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        with self.lock:
            self.calls += 1
            broken = self.calls > self.working_calls
        if broken:
            from botocore.exceptions import ClientError

            error = {"Error": {"Code": "AccessDenied", "Message": "not authorized to perform sqs:SendMessage"}}
            raise ClientError(error, "SendMessageBatch")
        return self.client.send_message_batch(**kwargs)


def test_queue_refusing_sends_mid_run_fails_it_and_only_sent_jobs_stay_claimed(orders, sql, queue_url, settings_for):
    orders([(order_id, 1, "s3://invoices/x.jpg", at(order_id)) for order_id in range(1, 101)])

    with pytest.raises(QueueUnavailableError, match="AccessDenied"):
        enqueue_orders(sql, QueueThatBreaks(working_calls=12), settings_for(PRODUCER_PAGE_SIZE="30"))

    sent = {(body["order_id"], body["llm"]) for body in drain(queue_url)}
    assert len(sent) == 120
    assert set(ledger(sql)) == sent
