"""Producer benchmark: keyset pages stay flat, memory stays bounded, and OFFSET paging is the slow way.

Starts its own embedded Postgres and a moto server (in a child process, so memory figures are the
producer's own), loads N orders in SQL (a quarter with a NULL or blank image, a quarter already `done` in
the ledger, half eligible), builds the index with the same code as `invoices index-orders`, then makes one
producer run that enqueues M messages. Prints, measured side by side in this one run:

- page time of the last pages / the first pages of the run (target <= 1.5: keyset paging stays flat);
- the same page statement at 90 % of the table (inside a rolled-back transaction) / the first pages;
- peak growth of this process's resident memory during the run (target < 50 MB);
- the same page fetched the old script's way (NOT EXISTS + LIMIT/OFFSET) / by keyset (same predicate, same
  rows), at the run's last page and at 90 % of the table;
- with ``--restaurant-ids`` a list: index entries one page reads (EXPLAIN ANALYZE: matches plus entries of
  other restaurants filtered out) and that page's time / the same page for every restaurant (``*``).

moto's SQS slows down as a queue grows, so the sends are spread over 50 moto queues (see
SpreadOverQueues); draining them afterwards checks that every job arrived exactly once.

    .venv/bin/python bench/producer.py [--orders 1000000] [--enqueue 10000] [--restaurant-ids '*' | 1,2,3]
"""

from __future__ import annotations

import argparse
import itertools
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import boto3
import pg8000.native
from botocore.config import Config

from invoice_pipeline import settings
from invoice_pipeline.flows.enqueue import enqueue_orders
from invoice_pipeline.tables import db
from invoice_pipeline.tables.ledger import (
    PAGE_AND_CLAIM_ALL_RESTAURANTS,
    PAGE_AND_CLAIM_LISTED_RESTAURANTS,
    STALE_PROCESSING_ERROR,
)
from invoice_pipeline.tables.migrations import migrate
from invoice_pipeline.tables.orders import FIRST_KEY, ORDER_HAS_IMAGE, create_orders_index
from local.aws import REGION, patched_environment
from local.orders import create_orders_table
from local.postgres import EmbeddedPostgres, free_port, wait_until_accepting

MODEL = "gpt-4o-2024-11-20"
QUEUES = 50
RESTAURANTS = 499  # not a multiple of 4: every restaurant mixes all kinds of orders

# g % 4: 0 has no usable image (NULL or whitespace), 1 is already done, 2 and 3 are eligible.
LOAD_ORDERS = """
INSERT INTO orders (id, restaurant_id, invoice_image, created_at)
SELECT g, g % :restaurants,
       CASE WHEN g % 4 <> 0 THEN 's3://invoices/' || g || '.jpg' WHEN g % 8 = 0 THEN NULL ELSE E' \\t\\n' END,
       timestamptz '2025-01-01' + g * interval '30 seconds'
FROM generate_series(1, :count) AS g
"""
LOAD_DONE_JOBS = """
INSERT INTO benchmarking.extraction_jobs (order_id, llm, status, attempts, enqueued_at, finished_at)
SELECT g, :llm, 'done', 1, now(), now() FROM generate_series(1, :count) AS g WHERE g % 4 = 1
"""
# The producer's restaurant filters (a list binds :restaurant_ids), as in invoice_pipeline.tables.orders.
ALL_RESTAURANTS = "o.restaurant_id IS NOT NULL"
LISTED_RESTAURANTS = "o.restaurant_id = ANY(CAST(:restaurant_ids AS bigint[]))"
# How the old script found work: everything not yet extracted, skipped over with OFFSET.
OLD_PAGE = f"""
SELECT o.id FROM orders AS o
WHERE {{restaurant_filter}} AND {ORDER_HAS_IMAGE}
  AND NOT EXISTS (SELECT 1 FROM benchmarking.extraction_jobs AS j WHERE j.order_id = o.id AND j.llm = :llm)
ORDER BY o.created_at, o.id
LIMIT :page_size OFFSET :offset
"""
# The same pages fetched by keyset: identical predicate and order, a range start instead of OFFSET.
KEYSET_PAGE = f"""
SELECT o.id FROM orders AS o
WHERE {{restaurant_filter}} AND {ORDER_HAS_IMAGE}
  AND (o.created_at, o.id) > (CAST(:after_created_at AS timestamptz), CAST(:after_id AS bigint))
  AND NOT EXISTS (SELECT 1 FROM benchmarking.extraction_jobs AS j WHERE j.order_id = o.id AND j.llm = :llm)
ORDER BY o.created_at, o.id
LIMIT :page_size
"""
KEY_AT = f"""
SELECT o.created_at, o.id FROM orders AS o WHERE {{restaurant_filter}} AND {ORDER_HAS_IMAGE}
ORDER BY o.created_at, o.id LIMIT 1 OFFSET :offset
"""
# Where the old OFFSET of the page after `key` is: the unextracted orders up to and including it.
OFFSET_OF = f"""
SELECT count(*) FROM orders AS o
WHERE {{restaurant_filter}} AND {ORDER_HAS_IMAGE}
  AND (o.created_at, o.id) <= (CAST(:after_created_at AS timestamptz), CAST(:after_id AS bigint))
  AND NOT EXISTS (SELECT 1 FROM benchmarking.extraction_jobs AS j WHERE j.order_id = o.id AND j.llm = :llm)
"""
IMAGE_ORDERS = f"SELECT count(*) FROM orders AS o WHERE {{restaurant_filter}} AND {ORDER_HAS_IMAGE}"


class Selection:
    """``RESTAURANT_IDS`` as the benchmark's statements need it: the filter fragment and its parameters."""

    def __init__(self, restaurant_ids: str) -> None:
        self.setting = restaurant_ids
        self.ids = None if restaurant_ids.strip() == "*" else [int(part) for part in restaurant_ids.split(",")]
        self.params: dict[str, Any] = {} if self.ids is None else {"restaurant_ids": self.ids}
        self.page_and_claim = PAGE_AND_CLAIM_ALL_RESTAURANTS if self.ids is None else PAGE_AND_CLAIM_LISTED_RESTAURANTS

    def describe(self) -> str:
        return "*" if self.ids is None else f"{len(self.ids)} of {RESTAURANTS} restaurants"

    def sql(self, template: str) -> str:
        return template.format(restaurant_filter=ALL_RESTAURANTS if self.ids is None else LISTED_RESTAURANTS)


EVERY_RESTAURANT = Selection("*")


def connect(dsn: str) -> pg8000.native.Connection:
    params = db.params_from_url(dsn)
    return pg8000.native.Connection(
        user=params.user, password=params.password, host=params.host, port=params.port, database=params.database
    )


def timed_ms(connection: pg8000.native.Connection, statement: str, repeat: int = 5, **params: Any) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        connection.run(statement, **params)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def page_params(key: tuple[Any, ...], page_size: int) -> dict[str, Any]:
    return {
        **key_params(key),
        "orders_since": "-infinity",
        "page_size": page_size,
        "llms": [MODEL],
        "lease_seconds": 4 * 24 * 3600,
        "processing_lease_seconds": 1800,
        "stale_processing_error": STALE_PROCESSING_ERROR,
        "max_claims": page_size,
        "priority_window_minutes": 60,
    }


def keyset_page_in_rollback(
    connection: pg8000.native.Connection, selection: Selection, key: tuple[Any, ...], page_size: int
) -> float:
    """The producer's page-and-claim statement at ``key``, its claims rolled back (median of 5)."""
    samples = []
    for _ in range(5):
        connection.run("BEGIN")
        started = time.perf_counter()
        connection.run(selection.page_and_claim, **page_params(key, page_size), **selection.params)
        samples.append((time.perf_counter() - started) * 1000)
        connection.run("ROLLBACK")
    return statistics.median(samples)


def index_entries_read(
    connection: pg8000.native.Connection, selection: Selection, key: tuple[Any, ...], page_size: int
) -> tuple[int, int]:
    """(matching orders, entries of other restaurants filtered out) of the page at ``key`` (EXPLAIN ANALYZE)."""
    connection.run("BEGIN")
    try:
        [[plan]] = connection.run(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {selection.page_and_claim}",
            **page_params(key, page_size),
            **selection.params,
        )
    finally:
        connection.run("ROLLBACK")
    nodes, reads = [plan[0]["Plan"]], []
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", []))
        if node.get("Relation Name") == "orders":
            reads.append(node)
    return sum(n["Actual Rows"] for n in reads), sum(n.get("Rows Removed by Filter", 0) for n in reads)


def start_moto() -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until_accepting("127.0.0.1", port, timeout=30)
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }
    return process, env


def run(orders: int, enqueue: int, page_size: int, selection: Selection) -> dict[str, float]:
    moto, aws_env = start_moto()
    try:
        with EmbeddedPostgres() as postgres, patched_environment(aws_env):
            connection = connect(postgres.dsn)
            started = time.monotonic()
            migrate(connection)
            create_orders_table(connection)
            connection.run(LOAD_ORDERS, restaurants=RESTAURANTS, count=orders)
            connection.run(LOAD_DONE_JOBS, llm=MODEL, count=orders)
            print(f"loaded {orders:,} orders in {time.monotonic() - started:.1f} s", flush=True)
            started = time.monotonic()
            create_orders_index(connection)
            connection.run("VACUUM ANALYZE orders")
            connection.run("VACUUM ANALYZE benchmarking.extraction_jobs")
            print(f"index-orders and VACUUM ANALYZE in {time.monotonic() - started:.1f} s", flush=True)
            return measure(connection, postgres.dsn, enqueue, page_size, selection)
    finally:
        moto.terminate()
        moto.wait(timeout=10)


class SpreadOverQueues:
    """The producer's SQS client for this benchmark: each SendMessageBatch goes to the next of many moto
    queues. moto spends time proportional to a queue's length on every message it accepts, so one queue of
    10,000 would measure moto; the producer's code path is the same, only the URL differs per call."""

    def __init__(self, sqs: Any, queue_urls: list[str]) -> None:
        self.sqs = sqs
        self.queue_urls = queue_urls
        self.calls = itertools.count()

    def get_queue_attributes(self, **kwargs: Any) -> dict[str, Any]:
        return dict(self.sqs.get_queue_attributes(**kwargs))

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        url = self.queue_urls[next(self.calls) % len(self.queue_urls)]
        return dict(self.sqs.send_message_batch(QueueUrl=url, Entries=Entries))

    def drain(self) -> Counter[str]:
        bodies: Counter[str] = Counter()
        for url in self.queue_urls:
            while messages := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                bodies.update(message["Body"] for message in messages)
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
                self.sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        return bodies


class MemorySampler:
    """Samples this process's resident set every 50 ms while the block runs."""

    def __init__(self) -> None:
        self.baseline = self.peak = rss_bytes()
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> MemorySampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.running = False
        self.thread.join()

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.05)


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def key_params(key: tuple[Any, ...]) -> dict[str, Any]:
    """The keyset position ``(created_at, id)`` as the page statements bind it."""
    created_at, order_id = key
    return {"after_created_at": created_at, "after_id": order_id}


def old_and_keyset_ms(
    connection: pg8000.native.Connection, selection: Selection, key: tuple[Any, ...], page_size: int
) -> tuple[float, float]:
    """The page after ``key`` fetched the old way (OFFSET) and by keyset, same predicate, same rows."""
    old_page, keyset_page = selection.sql(OLD_PAGE), selection.sql(KEYSET_PAGE)
    offset = connection.run(selection.sql(OFFSET_OF), llm=MODEL, **key_params(key), **selection.params)[0][0]
    old_params = {"llm": MODEL, "page_size": page_size, "offset": offset, **selection.params}
    new_params = {"llm": MODEL, "page_size": page_size, **key_params(key), **selection.params}
    assert connection.run(old_page, **old_params) == connection.run(keyset_page, **new_params), (
        "the two ways must fetch the same page"
    )
    return timed_ms(connection, old_page, repeat=3, **old_params), timed_ms(connection, keyset_page, **new_params)


def measure(
    connection: pg8000.native.Connection, dsn: str, enqueue: int, page_size: int, selection: Selection
) -> dict[str, float]:
    image_orders = connection.run(selection.sql(IMAGE_ORDERS), **selection.params)[0][0]
    key_at = selection.sql(KEY_AT)
    deep_key = tuple(connection.run(key_at, offset=int(image_orders * 0.9), **selection.params)[0])
    start_rolled_back = keyset_page_in_rollback(connection, selection, FIRST_KEY, page_size)
    deep_rolled_back = keyset_page_in_rollback(connection, selection, deep_key, page_size)

    sqs = boto3.client("sqs", config=Config(max_pool_connections=32))
    queue_urls = [sqs.create_queue(QueueName=f"bench-jobs-{index}")["QueueUrl"] for index in range(QUEUES)]
    queue_url = queue_urls[0]
    env = {
        "DATABASE_URL": dsn,
        "DB_SSLMODE": "disable",
        "QUEUE_URL": queue_url,
        "LLM_MODELS": MODEL,
        "RESTAURANT_IDS": selection.setting,
        "MAX_ORDERS_PER_RUN": str(enqueue),
        "PRODUCER_PAGE_SIZE": str(page_size),
    }
    producer_settings = settings.producer_settings_from(env)
    queues = SpreadOverQueues(sqs, queue_urls)
    with MemorySampler() as memory:
        summary = enqueue_orders(connection, queues, producer_settings)
    assert summary.enqueued == enqueue, summary
    bodies = queues.drain()
    assert len(bodies) == enqueue and max(bodies.values()) == 1, "each job exactly once"
    growth_mb = (memory.peak - memory.baseline) / 2**20

    # The first page also prepares the statement: compare the next three with the last three.
    pages = summary.page_ms
    first, last = statistics.median(pages[1:4] or pages[:1]), statistics.median(pages[-3:])
    # The old way from the state the run started in, at the run's last page and at 90 % of the table.
    connection.run("DELETE FROM benchmarking.extraction_jobs WHERE status = 'queued'")
    last_key = tuple(connection.run(key_at, offset=(summary.pages - 1) * page_size - 1, **selection.params)[0])
    old_last, keyset_last = old_and_keyset_ms(connection, selection, last_key, page_size)
    old_deep, keyset_deep = old_and_keyset_ms(connection, selection, deep_key, page_size)
    matches, filtered_out = index_entries_read(connection, selection, last_key, page_size)
    this_page = keyset_page_in_rollback(connection, selection, last_key, page_size)
    every_restaurant_page = keyset_page_in_rollback(connection, EVERY_RESTAURANT, last_key, page_size)

    figures = {
        "last_over_first": last / first,
        "deep_over_start": deep_rolled_back / start_rolled_back,
        "rss_growth_mb": growth_mb,
        "old_over_keyset_last": old_last / keyset_last,
        "old_over_keyset_deep": old_deep / keyset_deep,
        "entries_read_per_page": matches + filtered_out,
        "page_over_every_restaurant_page": this_page / every_restaurant_page,
    }
    print(
        f"run: {summary.enqueued:,} messages (each exactly once in the queue) in {summary.duration_ms / 1000:.1f} s, "
        f"{summary.pages} pages of {page_size} orders (scanned {summary.scanned:,}, skipped {summary.skipped:,})\n"
        f"page statement (fetch + claim), last / first pages of the run (median of 3): {last:.1f} / {first:.1f} ms"
        f" = {figures['last_over_first']:.2f}  (target <= 1.5)\n"
        f"page statement at 90 % of the table / at its start (rolled back): {deep_rolled_back:.1f} / "
        f"{start_rolled_back:.1f} ms = {figures['deep_over_start']:.2f}\n"
        f"peak memory growth of the run (resident set): {growth_mb:.1f} MB  (target < 50 MB)\n"
        f"same page, old way (NOT EXISTS + OFFSET) / keyset, at the run's last page: {old_last:.1f} / "
        f"{keyset_last:.1f} ms = {figures['old_over_keyset_last']:.1f}x\n"
        f"same page, old way / keyset, at 90 % of the table: {old_deep:.1f} / {keyset_deep:.1f} ms = "
        f"{figures['old_over_keyset_deep']:.0f}x\n"
        f"RESTAURANT_IDS={selection.describe()}: the run's last page (again, rolled back) read "
        f"{matches + filtered_out:,} index entries ({matches:,} matching, {filtered_out:,} of other restaurants "
        f"filtered out); its page statement / the same for every restaurant (rolled back): {this_page:.1f} / "
        f"{every_restaurant_page:.1f} ms = {figures['page_over_every_restaurant_page']:.2f}",
        flush=True,
    )
    return figures


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--enqueue", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--restaurant-ids", default="*", help=f"RESTAURANT_IDS: '*' or a list of 0..{RESTAURANTS - 1}")
    args = parser.parse_args(argv)
    return run(args.orders, args.enqueue, args.page_size, Selection(args.restaurant_ids))


if __name__ == "__main__":
    from local.logs import bench_logs

    with bench_logs("bench-producer"):
        main()
