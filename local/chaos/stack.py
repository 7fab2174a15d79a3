"""One chaos scenario's stack: the local stack with the handlers' environment set and scaled times.

Queues, bucket, orders table and model emulator; the producer and the consumer are the real handlers, driven by
the SQS event-source emulator; the DLQ is moved back by the local mover. Times are scaled for local runs,
counts (batch size, maxReceiveCount) come from cdk.json.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pg8000.native

from invoice_pipeline import settings
from invoice_pipeline.tables import db
from local.aws import MotoServer, patched_environment, reset_client_caches
from local.chaos.data import BUCKET, MODEL, OPENAI_TEST_KEY, ChaosOrder
from local.chaos.database import connect_retrying
from local.chaos.faults import RecordingHandler, S3Faults
from local.chaos.invariants import Check, check_invariants, read_ledger
from local.demo import messages_in
from local.dlq_mover import move_messages
from local.event_source import EventSourceStats, FakeLambdaContext, SqsEventSource, fresh_handler
from local.model_emulator import ModelEmulator
from local.orders import create_orders_table, insert_orders
from local.postgres import EmbeddedPostgres
from local.stack import LocalStack, create_local_stack
from local.stack_config import load_queue_settings


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
        with self.sql() as connection:
            create_orders_table(connection)
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.close()

    @staticmethod
    def _reset_caches() -> None:
        reset_client_caches()  # each handler builds its own runtime; Powertools keeps its secret providers per process
        db.pool.discard()

    @contextmanager
    def sql(self) -> Iterator[pg8000.native.Connection]:
        """A fresh harness connection (the server may have been restarted since the last one)."""
        connection = connect_retrying(self.dsn)
        try:
            yield connection
        finally:
            with suppress(Exception):
                connection.close()

    def setenv(self, **values: str) -> None:
        """Change handler settings for the rest of the scenario (restored when the stack closes)."""
        self._exit.enter_context(patched_environment(values))

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
        handler = fresh_handler("producer")()  # a new container: the settings as the scenario left them
        result: dict[str, Any] = handler({"source": "chaos"}, FakeLambdaContext("producer", 300))
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
            ledger = read_ledger(connection)
        return check_invariants(ledger, self.orders, self.dlq_bodies(), unrecoverable=unrecoverable, final=final)
