"""Chaos runs of the local pipeline: faults injected while the real handlers run, then the promises checked.

The promises (DESIGN §3-§5): every eligible ``(order, model)`` ends ``done`` with exactly its known items, or
``failed`` with a reason and its message in the DLQ; no item is written twice; the ledger's ``item_count``
equals the rows in ``invoice_items``; and once the faults stop, a DLQ redrive brings every recoverable order
to ``done``.

A scenario runs on the local stack (embedded Postgres, moto in server mode, the model emulator): orders are
arranged, the producer handler enqueues them, the SQS event-source emulator drives ``consumer.handler`` while
faults are on, the invariants are checked, the faults stop, what was broken is fixed, the DLQ is moved back
(the local mover), the queue drained again and the invariants checked once more. Nothing in the pipeline is
patched: faults come from the outside (the model emulator's fault injection, a botocore event hook on the
boto3 session that answers some S3 GetObject calls with a throttling response, ``pg_terminate_backend`` and
server restarts, a wrapper around the handler that crashes after the real handler returned).

Invoices here are small stamped images with generated line items (cheap to prepare at hundreds of orders);
:mod:`local.samples` has the realistic ones. Used by ``tests/reliability`` (small sizes) and
``bench/chaos.py`` (larger sizes, a table).
"""

from __future__ import annotations

import io
import json
import math
import random
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Self

import boto3
import pg8000.native
from PIL import Image

from invoice_pipeline import db, images, settings
from invoice_pipeline.migrations import migrate
from invoice_pipeline.visibility import visibility
from local.aws import MotoServer, patched_environment
from local.demo import messages_in
from local.dlq_mover import move_messages
from local.event_source import EventSourceStats, FakeLambdaContext, SqsEventSource
from local.model_emulator import ModelEmulator
from local.orders import create_orders_table, insert_orders
from local.postgres import EmbeddedPostgres
from local.stack import LocalStack, create_local_stack
from local.stack_config import load_queue_settings
from local.stamp import draw_stamp

MODEL = "gpt-4o-2024-11-20"
BUCKET = "chaos-invoices"
OPENAI_TEST_KEY = "sk-chaos-test-key-7f3a9c0d5e1b"  # a test secret: must never appear in the logs
APPLICATION_NAME = db.APPLICATION_NAME

_WORDS = ("Tomatoes", "Basmati rice", "Olive oil", "Chicken breast", "Labneh", "Flour", "Sugar", "Lemons", "Mint")
_UNITS = ("kg", "pcs", "ctn", "L", "box")
# Hostile text that must be stored verbatim (bound parameters) and break nothing.
HOSTILE_TEXT = (
    "Robert'); DROP TABLE benchmarking.invoice_items; --",
    'O\'Brien "special" flour; DELETE FROM orders;',
    "1; UPDATE benchmarking.extraction_jobs SET status='done' --",
    "$$ ; SELECT pg_sleep(10); $$",
    "back\\slash %s %(name)s :order_id ? $1",
)
HOSTILE_UNITS = ("kg'--", "pcs; DROP TABLE orders", ":llm", "%s")
HOSTILE_KEY = "it's'); DROP TABLE orders; --/scan 1.png"


# -- orders with known items ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TruthItem:
    invoice_index: int
    line_no: int
    item_name: str
    qty: Decimal
    uom: str
    unit_price: Decimal
    net_price: Decimal


@dataclass(frozen=True)
class ChaosInvoice:
    stamp: int
    key: str
    data: bytes
    answer: dict[str, Any]


@dataclass(frozen=True)
class ChaosOrder:
    order_id: int
    restaurant_id: int
    invoices: tuple[ChaosInvoice, ...]
    truth: tuple[TruthItem, ...]
    invoice_image: str


def stamped_image(stamp: int) -> bytes:
    """A small white page carrying only the stamp the model emulator reads (cheap to fetch and prepare)."""
    page = Image.new("RGB", (300, 400), "white")
    draw_stamp(page, stamp, left=16, top=16, unit=2, height=24)
    buffer = io.BytesIO()
    page.save(buffer, format="PNG")
    return buffer.getvalue()


def make_orders(count: int, *, first_id: int = 1, seed: int = 0, hostile: bool = False) -> list[ChaosOrder]:
    """``count`` orders of one or two invoices of one to four lines; the same arguments give the same orders."""
    rng = random.Random(f"chaos:{seed}:{first_id}")
    orders = []
    for order_id in range(first_id, first_id + count):
        invoices, truth = [], []
        for index in range(rng.choice((1, 1, 2))):
            stamp = order_id * 4 + index  # unique per invoice, well inside the 24-bit stamp
            lines = []
            for line_no in range(1, rng.randint(1, 4) + 1):
                qty = Decimal(rng.randint(1, 40)) / (4 if rng.random() < 0.3 else 1)
                price = Decimal(rng.randint(50, 90_000)) / 1000
                name = rng.choice(HOSTILE_TEXT if hostile else _WORDS)
                unit = rng.choice(HOSTILE_UNITS if hostile else _UNITS)
                total = (qty * price).quantize(Decimal("0.001"))
                lines.append(
                    {
                        "description": name,
                        "quantity": str(qty),
                        "unit": unit,
                        "unit_price": str(price),
                        "line_total": str(total),
                    }
                )
                truth.append(TruthItem(index, line_no, name, qty, unit, price, total))
            key = f"orders/{order_id}/{index}-{HOSTILE_KEY if hostile else 'invoice.png'}"
            answer = {"currency": "KWD", "printed_total": None, "items": lines}
            invoices.append(ChaosInvoice(stamp, key, stamped_image(stamp), answer))
        urls = [f"s3://{BUCKET}/{_quote_key(invoice.key)}" for invoice in invoices]
        invoice_image = json.dumps(urls) if len(urls) > 1 else urls[0]
        orders.append(ChaosOrder(order_id, 101 + order_id % 3, tuple(invoices), tuple(truth), invoice_image))
    return orders


def _quote_key(key: str) -> str:
    from urllib.parse import quote

    return quote(key, safe="/")


# -- faults from the outside -----------------------------------------------------------------------------------


class S3Faults:
    """A botocore hook on the boto3 default session: counts every S3 request, throttles some GetObject calls.

    Installed before the consumer creates its S3 client (clients copy the session's hooks when created), it
    sees exactly what the consumer asks S3 for. A throttled call gets a real S3 ``SlowDown`` response (503),
    so botocore's own retries and the consumer's error classification both run as in AWS.
    """

    def __init__(self, seed: int = 0) -> None:
        self.throttle_rate = 0.0
        self.requests: Counter[str] = Counter()
        self.throttled = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._session: Any = None

    def install(self) -> S3Faults:
        boto3.setup_default_session()
        self._session = boto3.DEFAULT_SESSION
        self._session.events.register("before-send.s3", self._before_send, unique_id="chaos-s3-faults")
        images.reset_s3_client()
        return self

    def uninstall(self) -> None:
        if self._session is not None:
            self._session.events.unregister("before-send.s3", unique_id="chaos-s3-faults")
        images.reset_s3_client()

    def _before_send(self, request: Any, event_name: str = "", **_: Any) -> Any:
        operation = event_name.rsplit(".", 1)[-1]  # before-send.s3.GetObject
        with self._lock:
            self.requests[operation] += 1
            throttle = operation == "GetObject" and self._rng.random() < self.throttle_rate
            if throttle:
                self.throttled += 1
        if not throttle:
            return None
        from botocore.awsrequest import AWSResponse

        body = (
            b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
            b"<Message>Please reduce your request rate (injected).</Message></Error>"
        )
        return AWSResponse(request.url, 503, {"Content-Type": "application/xml"}, _RawBody(body))


class _RawBody:
    """The minimal raw stream AWSResponse reads a body from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data

    def read(self, *_: Any) -> bytes:
        data, self._data = self._data, b""
        return data


class BackgroundFault:
    """A fault injected from a thread for the duration of a ``with`` block; subclasses implement ``_run``."""

    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        raise NotImplementedError


class BackendKiller(BackgroundFault):
    """Terminates the pipeline's Postgres backends (``application_name`` invoice-pipeline) every ``interval`` s."""

    def __init__(self, dsn: str, interval: float = 0.3) -> None:
        self.dsn = dsn
        self.interval = interval
        self.killed = 0
        super().__init__("backend-killer")

    def _run(self) -> None:
        connection = connect(self.dsn)
        try:
            while not self._stop.wait(self.interval):
                rows = connection.run(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name AND pid <> pg_backend_pid()",
                    name=APPLICATION_NAME,
                )
                self.killed += int(rows[0][0])
        finally:
            connection.close()


class ServerRestarter(BackgroundFault):
    """Restarts the Postgres server ``times`` times, ``every`` seconds apart, while the run goes on."""

    def __init__(self, server: EmbeddedPostgres, times: int = 2, every: float = 1.5) -> None:
        self.server, self.times, self.every = server, times, every
        self.restarts = 0
        super().__init__("server-restarter")

    def _run(self) -> None:
        while self.restarts < self.times and not self._stop.wait(self.every):
            self.server.restart()
            self.restarts += 1


class RecordingHandler:
    """Wraps a handler: counts deliveries per message; optionally crashes after the real handler returned.

    A crash after the handler returned is a consumer killed between its commit and the message delete: the
    whole batch comes back after the visibility timeout, and the second delivery must write nothing new.
    With ``crash_every=n`` every n-th batch of first deliveries crashes (the first one included).
    """

    def __init__(self, handler: Callable[[dict[str, Any], Any], Any], *, crash_every: int = 0) -> None:
        self.handler = handler
        self.crash_every = crash_every
        self.crashes = 0
        self.first_batches = 0
        self.deliveries: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        records = event["Records"]
        with self._lock:
            for record in records:
                self.deliveries[record["messageId"]] += 1
            crash = False
            if self.crash_every and all(r["attributes"].get("ApproximateReceiveCount") == "1" for r in records):
                crash = self.first_batches % self.crash_every == 0
                self.first_batches += 1
        response = self.handler(event, context)
        if crash:
            with self._lock:
                self.crashes += 1
            raise RuntimeError("consumer killed after its commit, before the messages were deleted (injected)")
        return response


# -- the stack ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChaosConfig:
    """Time scaled for local runs; counts from cdk.json (batch size, maxReceiveCount)."""

    function_timeout_seconds: int = 50
    visibility_timeout_seconds: int = 50  # equal to the function timeout, as the local stack does
    processing_lease_seconds: int = 60  # longer than the function timeout (the minimum the consumer accepts)
    max_concurrency: int = 4
    backoff_base_seconds: int = 1
    model_timeout_seconds: int = 2
    max_image_bytes: int = 200_000
    max_orders_per_run: int = 1000
    drain_timeout_seconds: float = 240.0
    seed: int = 0  # of the fault generators (the model emulator's and the S3 hook's dice)


def connect(dsn: str) -> pg8000.native.Connection:
    params = db.params_from_url(dsn)
    return pg8000.native.Connection(
        user=params.user,
        password=params.password,
        host=params.host,
        port=params.port,
        database=params.database,
        application_name="chaos-harness",
    )


def fresh_database(server: EmbeddedPostgres, name: str) -> str:
    """A new, migrated database on ``server``; returns its DSN."""
    admin = connect(server.dsn)
    try:
        admin.run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.run(f"CREATE DATABASE {name}")
    finally:
        admin.close()
    dsn = server.dsn_for(name)
    connection = connect(dsn)
    try:
        migrate(connection)
    finally:
        connection.close()
    return dsn


def _functions_importable() -> None:
    functions_dir = str(Path(settings.__file__).resolve().parent.parent)
    if functions_dir not in sys.path:
        sys.path.insert(0, functions_dir)


class ChaosStack:
    """One scenario's stack: queues, bucket, orders table and model emulator, the handlers' environment set."""

    def __init__(self, server: EmbeddedPostgres, dsn: str, moto: MotoServer, config: ChaosConfig) -> None:
        self.server, self.dsn, self.moto, self.config = server, dsn, moto, config
        self.model = ModelEmulator(seed=config.seed)
        self.s3_faults = S3Faults(seed=config.seed)
        self.orders: dict[int, ChaosOrder] = {}
        self.local: LocalStack
        self._exit = ExitStack()

    def __enter__(self) -> ChaosStack:
        _functions_importable()
        config = self.config
        self._exit.enter_context(self.model)
        self._exit.enter_context(
            patched_environment(
                {
                    **self.moto.environment(),
                    "DATABASE_URL": self.dsn,
                    "DB_SSLMODE": "disable",
                    "DB_CONNECT_TIMEOUT": "3",
                    "RESTAURANT_IDS": "*",
                    "LLM_MODELS": MODEL,
                    "ALLOWED_BUCKETS": BUCKET,
                    "MAX_IMAGE_BYTES": str(config.max_image_bytes),
                    "MAX_RECEIVE_COUNT": str(load_queue_settings().max_receive_count),
                    "MAX_ORDERS_PER_RUN": str(config.max_orders_per_run),
                    "PROCESSING_LEASE_SECONDS": str(config.processing_lease_seconds),
                    "RETRY_BACKOFF_BASE_SECONDS": str(config.backoff_base_seconds),
                    "MODEL_TIMEOUT_SECONDS": str(config.model_timeout_seconds),
                    "OPENAI_API_KEY": OPENAI_TEST_KEY,
                    "OPENAI_BASE_URL": self.model.base_url,
                    "POWERTOOLS_METRICS_DISABLED": "true",
                    "POWERTOOLS_TRACE_DISABLED": "true",
                }
            )
        )
        self._reset_caches()
        self._exit.callback(self._reset_caches)
        self.s3_faults.install()
        self._exit.callback(self.s3_faults.uninstall)
        queue_settings = replace(
            load_queue_settings(),
            consumer_timeout_seconds=config.function_timeout_seconds,
            visibility_timeout_seconds=config.visibility_timeout_seconds,
        )
        self.local = create_local_stack(queue_settings, bucket=BUCKET)
        self._exit.enter_context(patched_environment({"QUEUE_URL": self.local.queue_url}))
        settings.clear_cache()
        with self.sql() as connection:
            create_orders_table(connection)
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.close()

    @staticmethod
    def _reset_caches() -> None:
        settings.clear_cache()
        images.reset_s3_client()
        visibility.reset()
        db.pool.discard()

    @contextmanager
    def sql(self) -> Iterator[pg8000.native.Connection]:
        """A fresh harness connection (the server may have been restarted since the last one)."""
        connection = _connect_retrying(self.dsn)
        try:
            yield connection
        finally:
            with suppress(Exception):
                connection.close()

    def setenv(self, **values: str) -> None:
        """Change handler settings for the rest of the scenario (restored when the stack closes)."""
        self._exit.enter_context(patched_environment(values))
        settings.clear_cache()

    # -- arranging ---------------------------------------------------------------------------------------------

    def add_orders(self, orders: list[ChaosOrder], *, upload: bool = True) -> None:
        s3 = boto3.client("s3")
        for order in orders:
            self.orders[order.order_id] = order
            for invoice in order.invoices:
                self.model.register(invoice.stamp, invoice.answer)
                if upload:
                    s3.put_object(Bucket=BUCKET, Key=invoice.key, Body=invoice.data, ContentType="image/png")
        self.add_raw_orders([(order.order_id, order.restaurant_id, order.invoice_image) for order in orders])

    def add_raw_orders(self, rows: list[tuple[int, int, str | None]]) -> None:
        with self.sql() as connection:
            now = datetime.now(UTC)
            insert_orders(
                connection,
                [
                    (order_id, restaurant, image, now - timedelta(seconds=order_id))
                    for order_id, restaurant, image in rows
                ],
            )

    def upload(self, order: ChaosOrder) -> None:
        s3 = boto3.client("s3")
        for invoice in order.invoices:
            s3.put_object(Bucket=BUCKET, Key=invoice.key, Body=invoice.data, ContentType="image/png")

    def send(self, bodies: list[str]) -> None:
        sqs = boto3.client("sqs")
        for start in range(0, len(bodies), 10):
            chunk = bodies[start : start + 10]
            sqs.send_message_batch(
                QueueUrl=self.local.queue_url,
                Entries=[{"Id": str(n), "MessageBody": body} for n, body in enumerate(chunk)],
            )

    # -- running -----------------------------------------------------------------------------------------------

    def produce(self) -> dict[str, Any]:
        import producer

        settings.clear_cache()
        result: dict[str, Any] = producer.handler({"source": "chaos"}, FakeLambdaContext("producer", 300))
        return result

    def drain(self, handler: RecordingHandler) -> EventSourceStats:
        source = SqsEventSource(
            self.local.queue_url,
            handler,
            batch_size=self.local.settings.batch_size,
            max_batching_window_seconds=self.local.settings.max_batching_window_seconds,
            max_concurrency=self.config.max_concurrency,
            function_timeout_seconds=self.config.function_timeout_seconds,
            wait_time_seconds=0,
        )
        return source.drain(until_idle=True, timeout_seconds=self.config.drain_timeout_seconds)

    def redrive(self) -> int:
        return move_messages(boto3.client("sqs"), self.local.dlq_url, self.local.queue_url)

    # -- checking ----------------------------------------------------------------------------------------------

    def dlq_bodies(self) -> list[str]:
        return [message["Body"] for message in messages_in(boto3.client("sqs"), self.local.dlq_url)]

    def check(self, *, unrecoverable: frozenset[int] | set[int] = frozenset(), final: bool = False) -> Check:
        """The invariants over every order added with :meth:`add_orders` (see :class:`Check`)."""
        with self.sql() as connection:
            jobs = {
                order_id: (status, error, item_count)
                for order_id, status, error, item_count in connection.run(JOBS_SQL, llm=MODEL)
            }
            rows: dict[int, list[tuple[Any, ...]]] = {}
            for order_id, *row in connection.run(ITEMS_SQL, llm=MODEL):
                rows.setdefault(order_id, []).append(tuple(row))
            duplicate_keys = int(connection.run(DUPLICATE_KEYS_SQL)[0][0])
            tables = int(connection.run(TABLES_SQL)[0][0])
        dlq = self.dlq_bodies()
        dlq_jobs = Counter(_job_of(body) for body in dlq)
        check = Check(dlq=len(dlq), duplicates=duplicate_keys)
        if tables != 3:
            check.problems.append(f"expected orders, invoice_items and extraction_jobs to exist, found {tables}")
        for order_id, order in sorted(self.orders.items()):
            status, error, item_count = jobs.get(order_id, ("missing", None, None))
            stored = rows.get(order_id, [])
            expected = [
                (t.invoice_index, t.line_no, t.item_name, t.qty, t.uom, t.unit_price, t.net_price) for t in order.truth
            ]
            if status == "done":
                check.done += 1
                check.duplicates += max(0, len(stored) - len(expected))
                if stored != expected:
                    check.wrong += 1
                    check.problems.append(f"order {order_id}: items differ from the truth: {stored} != {expected}")
                if item_count != len(stored):
                    check.half_written += 1
                    check.problems.append(f"order {order_id}: item_count {item_count} but {len(stored)} rows")
                if final and order_id in unrecoverable:
                    check.problems.append(f"order {order_id} should have failed for good but is done")
            elif status == "failed" and error and dlq_jobs[(order_id, MODEL)] >= 1:
                check.failed += 1
                if stored:
                    check.half_written += 1
                    check.problems.append(f"order {order_id} failed but has {len(stored)} item rows")
                if final and order_id not in unrecoverable:
                    check.lost += 1
                    check.problems.append(
                        f"order {order_id} is recoverable but still failed after the redrive: {error}"
                    )
            else:
                check.lost += 1
                where = "in the DLQ" if dlq_jobs[(order_id, MODEL)] else "not in the DLQ"
                check.problems.append(f"order {order_id} ended {status} ({error}), message {where}")
        if check.duplicates:
            check.problems.append(f"{check.duplicates} duplicated item row(s)")
        return check


@dataclass
class Check:
    """What the invariants found: counts, and one line per violation."""

    dlq: int = 0
    done: int = 0
    failed: int = 0
    duplicates: int = 0
    lost: int = 0
    wrong: int = 0
    half_written: int = 0
    problems: list[str] = field(default_factory=list)


def _connect_retrying(dsn: str, seconds: float = 15.0) -> pg8000.native.Connection:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return connect(dsn)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _job_of(body: str) -> tuple[int, str]:
    """(order_id, llm) of a message body; (-1, "") when it names none."""
    try:
        message = json.loads(body)
        return int(message["order_id"]), str(message.get("llm") or MODEL)
    except (ValueError, KeyError, TypeError, AttributeError):
        return -1, ""


JOBS_SQL = "SELECT order_id, status, last_error, item_count FROM benchmarking.extraction_jobs WHERE llm = :llm"
ITEMS_SQL = """
SELECT order_id, invoice_index, line_no, item_name, qty, uom, unit_price, net_price
FROM benchmarking.invoice_items WHERE llm = :llm ORDER BY order_id, invoice_index, line_no
"""
DUPLICATE_KEYS_SQL = """
SELECT coalesce(sum(n - 1), 0) FROM (
    SELECT count(*) AS n FROM benchmarking.invoice_items GROUP BY order_id, llm, invoice_index, line_no
) AS lines
"""
TABLES_SQL = """
SELECT count(*) FROM pg_tables
WHERE (schemaname, tablename) IN (('public', 'orders'), ('benchmarking', 'invoice_items'),
                                  ('benchmarking', 'extraction_jobs'))
"""


# -- scenarios --------------------------------------------------------------------------------------------------


@dataclass
class ScenarioResult:
    name: str
    orders: int
    faults: dict[str, int]
    deliveries: int
    retries: int
    dlq: int  # messages in the DLQ after the faulty pass
    dlq_final: int  # after the redrive and a second pass (only unrecoverable orders and poison messages)
    duplicates: int
    lost: int
    wrong: int
    half_written: int
    model_requests: int
    seconds: float
    problems: list[str]
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def faults_text(self) -> str:
        return ", ".join(f"{kind} {count}" for kind, count in self.faults.items()) or "none"


class Run:
    """One scenario's steps; ``finish`` checks, redrives, checks again and returns the result."""

    def __init__(self, name: str, stack: ChaosStack, orders: int, seed: int) -> None:
        self.name, self.stack, self.seed = name, stack, seed
        self.started = time.monotonic()
        self.handler: RecordingHandler | None = None
        self.stats: list[EventSourceStats] = []
        self.faults: Counter[str] = Counter()
        self.problems: list[str] = []
        self.unrecoverable: set[int] = set()
        self.poison_bodies: list[str] = []
        self.notes: dict[str, Any] = {}
        self.fix: Callable[[], None] | None = None  # what repairs the recoverable faults before the redrive
        self.orders = make_orders(orders, seed=seed)
        stack.add_orders(self.orders)

    def consumer(self, crash_every: int = 0) -> RecordingHandler:
        import consumer

        if self.handler is None:
            self.handler = RecordingHandler(consumer.handler)
        self.handler.crash_every = crash_every
        return self.handler

    def produce_all(self) -> None:
        summary = self.stack.produce()
        self.expect(
            summary["enqueued"] == len(self.stack.orders),
            f"the producer enqueued {summary['enqueued']} jobs for {len(self.stack.orders)} eligible orders",
        )

    def drain(self, crash_every: int = 0) -> EventSourceStats:
        stats = self.stack.drain(self.consumer(crash_every))
        self.stats.append(stats)
        if stats.timed_out:
            self.problems.append(f"the queue was not drained within {self.stack.config.drain_timeout_seconds} s")
        return stats

    def expect(self, condition: bool, problem: str) -> None:
        if not condition:
            self.problems.append(problem)

    def finish(self) -> ScenarioResult:
        stack = self.stack
        first = stack.check(unrecoverable=self.unrecoverable)
        self.problems += [f"after the faulty pass: {problem}" for problem in first.problems]
        dlq_first = first.dlq
        stack.model.clear_faults()
        stack.s3_faults.throttle_rate = 0.0
        if self.fix is not None:
            self.fix()
        stack.redrive()
        self.drain()
        final = stack.check(unrecoverable=self.unrecoverable, final=True)
        self.problems += [f"after the redrive: {problem}" for problem in final.problems]
        dlq_final = stack.dlq_bodies()
        expected_final = len(self.poison_bodies) + len(self.unrecoverable)
        self.expect(
            len(dlq_final) == expected_final,
            f"DLQ holds {len(dlq_final)} message(s) after the redrive, expected {expected_final} "
            "(the unrecoverable orders and poison messages, once each)",
        )
        missing_poison = Counter(self.poison_bodies) - Counter(dlq_final)
        self.expect(not missing_poison, f"poison messages not in the DLQ: {sorted(missing_poison)}")
        handler = self.handler
        deliveries = sum(handler.deliveries.values()) if handler else 0
        faults = dict(self.faults)
        faults.update(stack.model.faults_fired)
        if stack.s3_faults.throttled:
            faults["s3_throttle"] = stack.s3_faults.throttled
        if handler and handler.crashes:
            faults["consumer_crash"] = handler.crashes
        return ScenarioResult(
            name=self.name,
            orders=len(stack.orders),
            faults=faults,
            deliveries=deliveries,
            retries=deliveries - (len(handler.deliveries) if handler else 0),
            dlq=dlq_first,
            dlq_final=len(dlq_final),
            duplicates=max(first.duplicates, final.duplicates),
            lost=final.lost,
            wrong=max(first.wrong, final.wrong),
            half_written=max(first.half_written, final.half_written),
            model_requests=stack.model.requests,
            seconds=time.monotonic() - self.started,
            problems=self.problems,
            notes=self.notes,
        )

    def invoices(self) -> int:
        return sum(len(order.invoices) for order in self.stack.orders.values())


def _model_faults(kind: str, rate: float, **options: Any) -> Callable[[Run], None]:
    def scenario(run: Run) -> None:
        run.produce_all()
        run.stack.model.inject(kind, rate=rate, **options)
        run.drain()

    return scenario


def scenario_model_429(run: Run) -> None:
    _model_faults("rate_limit", 0.5, retry_after=0.05)(run)


def scenario_model_500(run: Run) -> None:
    _model_faults("server_error", 0.5)(run)


def scenario_model_timeout(run: Run) -> None:
    _model_faults("timeout", 0.25, seconds=run.stack.config.model_timeout_seconds + 1)(run)


def scenario_model_malformed(run: Run) -> None:
    _model_faults("malformed_json", 0.4)(run)


def scenario_model_refusal(run: Run) -> None:
    """Refusals are permanent: those orders fail into the DLQ, and the redrive (refusals stopped) finishes them."""
    _model_faults("refusal", 0.2)(run)


def scenario_s3_faults(run: Run) -> None:
    """Throttled GetObject calls (transient), missing objects (fixed before the redrive), oversize (never)."""
    stack = run.stack
    missing = make_orders(max(1, len(run.orders) // 10), first_id=len(run.orders) + 1, seed=run.seed)
    stack.add_orders(missing, upload=False)
    oversize = make_orders(max(1, len(run.orders) // 10), first_id=len(run.orders) + len(missing) + 1, seed=run.seed)
    stack.add_orders(oversize)
    from local.samples import oversized_bytes

    s3 = boto3.client("s3")
    for order in oversize:
        s3.put_object(Bucket=BUCKET, Key=order.invoices[0].key, Body=oversized_bytes(stack.config.max_image_bytes + 1))
    run.unrecoverable |= {order.order_id for order in oversize}
    run.faults["s3_missing"] = len(missing)
    run.faults["s3_oversize"] = len(oversize)
    run.produce_all()
    stack.s3_faults.throttle_rate = 0.5
    run.drain()

    def fix() -> None:
        for order in missing:
            stack.upload(order)

    run.fix = fix


def scenario_db_kill(run: Run) -> None:
    """pg_terminate_backend on the consumer's connections every 0.3 s while the queue drains."""
    run.produce_all()
    with BackendKiller(run.stack.dsn, interval=0.3) as killer:
        run.drain()
    run.faults["pg_backend_killed"] = killer.killed


def scenario_db_restart(run: Run) -> None:
    """The Postgres server restarted twice while the queue drains (the model answers slowly meanwhile)."""
    run.produce_all()
    run.stack.model.inject("latency", seconds=0.2)
    with ServerRestarter(run.stack.server, times=2, every=0.7) as restarter:
        run.drain()
    run.stack.model.clear_faults()
    run.faults["pg_restart"] = restarter.restarts


def scenario_consumer_crash(run: Run) -> None:
    """The consumer dies after its commit and before the delete for some batches; nothing may be written twice."""
    run.produce_all()
    before = run.stack.model.requests
    run.drain(crash_every=2)
    run.expect(
        run.stack.model.requests - before == run.invoices(),
        f"the model was called {run.stack.model.requests - before} times for {run.invoices()} invoices: "
        "a redelivered done order was extracted again",
    )


def scenario_duplicates(run: Run) -> None:
    """Every message sent twice more by hand (three deliveries of each job); each invoice is extracted once."""
    run.produce_all()
    bodies = [json.dumps({"order_id": order.order_id, "llm": MODEL}) for order in run.orders]
    run.stack.send(bodies + bodies)
    run.faults["duplicate_messages"] = 2 * len(bodies)
    run.drain()
    run.expect(
        run.stack.model.requests == run.invoices(),
        f"the model was called {run.stack.model.requests} times for {run.invoices()} invoices",
    )


def scenario_two_producers(run: Run) -> None:
    """Two producer runs at once: every job is enqueued exactly once between them."""
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(2)

    def produce() -> None:
        barrier.wait()
        results.append(run.stack.produce())

    threads = [threading.Thread(target=produce) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    enqueued = sum(result["enqueued"] for result in results)
    run.notes["enqueued_per_producer"] = [result["enqueued"] for result in results]
    run.faults["concurrent_producers"] = 2
    run.expect(enqueued == len(run.orders), f"two producers enqueued {enqueued} jobs for {len(run.orders)} orders")
    run.drain()
    messages = len(run.handler.deliveries) if run.handler else 0
    run.expect(messages == len(run.orders), f"{messages} distinct messages for {len(run.orders)} jobs")


def scenario_backlog(run: Run) -> None:
    """MAX_ORDERS_PER_RUN at a third of the eligible orders: several producer runs, each capped, finish the work."""
    cap = max(1, math.ceil(len(run.orders) / 3))
    run.stack.setenv(MAX_ORDERS_PER_RUN=str(cap))
    runs = []
    while True:
        summary = run.stack.produce()
        runs.append(summary["enqueued"])
        run.expect(summary["enqueued"] <= cap, f"a producer run enqueued {summary['enqueued']} > cap {cap}")
        if summary["enqueued"] == 0 or len(runs) > 10:
            break
        run.drain()
    run.notes["producer_runs"] = runs
    run.faults["capped_producer_runs"] = len(runs) - 1
    run.expect(sum(runs) == len(run.orders), f"producer runs enqueued {runs} for {len(run.orders)} orders")


def scenario_poison(run: Run) -> None:
    """Poison messages mixed into the batches: not JSON, an unknown order, an unknown model, a bad order_id."""
    run.produce_all()
    unknown_order = 10_000_000
    poison = [
        "this is not JSON",
        json.dumps({"order_id": unknown_order, "llm": MODEL}),
        json.dumps({"order_id": run.orders[0].order_id, "llm": "gpt-2"}),
        json.dumps({"order_id": "12; DROP TABLE orders"}),
        '{"order_id": -1}',
    ]
    run.poison_bodies = poison
    run.stack.send(poison)
    run.faults["poison_messages"] = len(poison)
    run.drain()
    with run.stack.sql() as connection:
        rows = connection.run(
            "SELECT status, last_error FROM benchmarking.extraction_jobs WHERE order_id = :o", o=unknown_order
        )
    run.expect(
        bool(rows) and rows[0][0] == "failed" and rows[0][1] == "order not found",
        f"unknown order: ledger row {rows}, expected failed / order not found",
    )


SCENARIOS: dict[str, tuple[Callable[[Run], None], str]] = {
    "model-429": (scenario_model_429, "model answers 429 with Retry-After to half the requests"),
    "model-500": (scenario_model_500, "model answers 500 to half the requests"),
    "model-timeout": (scenario_model_timeout, "a quarter of model requests outlive the client timeout"),
    "model-malformed": (scenario_model_malformed, "40% of answers are truncated, malformed JSON"),
    "model-refusal": (scenario_model_refusal, "20% of answers are refusals (permanent until redrive)"),
    "s3": (scenario_s3_faults, "half of GetObject throttled (SlowDown), 10% objects missing, 10% oversize"),
    "pg-kill": (scenario_db_kill, "pg_terminate_backend on the consumer's backends every 0.3 s"),
    "pg-restart": (scenario_db_restart, "Postgres server restarted twice during the run"),
    "consumer-crash": (
        scenario_consumer_crash,
        "every other first-delivery batch dies after the commit, before the delete",
    ),
    "duplicates": (scenario_duplicates, "every message delivered three times"),
    "two-producers": (scenario_two_producers, "two producer runs at the same time"),
    "backlog": (scenario_backlog, "MAX_ORDERS_PER_RUN = a third of the eligible orders"),
    "poison": (scenario_poison, "poison messages mixed into the batches"),
}
SCENARIO_CONFIG: dict[str, dict[str, Any]] = {
    # Batches without slow faults finish in well under a second: a short visibility timeout brings the
    # crashed batches back quickly without handing a message out twice while it is processed.
    "consumer-crash": {"visibility_timeout_seconds": 6},
}


def run_scenario(
    name: str, server: EmbeddedPostgres, dsn: str, moto: MotoServer, *, orders: int, seed: int = 0
) -> ScenarioResult:
    """Run scenario ``name`` with ``orders`` orders on a fresh database ``dsn`` and a clean moto server."""
    scenario, _ = SCENARIOS[name]
    config = replace(ChaosConfig(seed=zlib.crc32(f"{name}:{seed}".encode())), **SCENARIO_CONFIG.get(name, {}))
    with ChaosStack(server, dsn, moto, config) as stack:
        run = Run(name, stack, orders, seed)
        scenario(run)
        return run.finish()


# -- the table ----------------------------------------------------------------------------------------------------

COLUMNS = ("scenario", "orders", "faults injected", "retries", "DLQ", "DLQ after redrive", "dup", "lost", "time s")


def table(results: list[ScenarioResult]) -> str:
    """A Markdown table, one row per scenario."""
    rows = [
        (
            result.name,
            str(result.orders),
            result.faults_text(),
            str(result.retries),
            str(result.dlq),
            str(result.dlq_final),
            str(result.duplicates),
            str(result.lost),
            f"{result.seconds:.1f}",
        )
        for result in results
    ]
    widths = [max(len(column), *(len(row[n]) for row in rows)) for n, column in enumerate(COLUMNS)]
    lines = ["| " + " | ".join(column.ljust(width) for column, width in zip(COLUMNS, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for row in rows:
        lines.append("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)
