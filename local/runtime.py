"""The local stack as the demo and the benchmarks run it: servers, schema, queue, bucket and the handlers' environment.

    with local_runtime(queue_settings) as runtime:       # embedded Postgres + moto, migrated, queue and bucket
        images = upload_samples(samples, runtime.stack.bucket)
        ...insert orders with runtime.pool...
        with patched_environment(runtime.handler_environment(llm=..., model_env=...)):
            ...producer.handler / SqsEventSource(consumer)...

Everything started here is stopped when the block ends (also on an exception or Ctrl-C).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from invoice_pipeline import settings
from invoice_pipeline.settings import database_settings
from invoice_pipeline.tables.schema import migrate_database
from local.aws import MotoServer, patched_environment, reset_client_caches
from local.postgres import EmbeddedPostgres
from local.stack import LocalStack, create_local_stack
from local.stack_config import QueueSettings


@dataclass(frozen=True)
class LocalRuntime:
    postgres: EmbeddedPostgres
    moto: MotoServer
    stack: LocalStack
    secret_arn: str  # the database DSN in RDS secret format, as the deployed functions read it
    applied_migrations: tuple[str, ...]

    def handler_environment(
        self, *, llm: str, max_image_bytes: int, model_env: dict[str, str] | None = None, priority_lane: bool = False
    ) -> dict[str, str]:
        """What the producer and consumer handlers read (docs/architecture.md §11), pointed at this stack.
        ``priority_lane``: the producer sends urgent orders to the stack's priority queue (the caller then drains
        both queues)."""
        lane = {"PRIORITY_QUEUE_URL": self.stack.priority_queue_url} if priority_lane else {}
        return {
            **lane,
            "DB_SECRET_ARN": self.secret_arn,
            "DATABASE_URL": "",
            "QUEUE_URL": self.stack.queue_url,
            "RESTAURANT_IDS": "*",
            "LLM_MODELS": llm,
            "ALLOWED_BUCKETS": self.stack.bucket,
            "MAX_IMAGE_BYTES": str(max_image_bytes),
            "MAX_RECEIVE_COUNT": str(self.stack.settings.max_receive_count),
            **(model_env or {}),
        }


def functions_importable() -> None:
    """The handlers live in functions/ next to invoice_pipeline, as in the Lambda code asset."""
    functions_dir = str(Path(settings.__file__).resolve().parent.parent)
    if functions_dir not in sys.path:
        sys.path.insert(0, functions_dir)


def quiet_logs(env: dict[str, str], level: str = "CRITICAL") -> dict[str, str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    return {
        **env,
        "POWERTOOLS_LOG_LEVEL": level,
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


@contextmanager
def local_runtime(
    queue_settings: QueueSettings, *, bucket: str = "invoice-images", log_level: str = "CRITICAL"
) -> Iterator[LocalRuntime]:
    """Embedded Postgres and a moto server, migrated, with the stack's bucket, queue and DLQ and a DB secret.

    Inside the block boto3 points at moto and ``DATABASE_URL`` at the database (``invoice_pipeline.tables.db.pool``
    connects there); :meth:`LocalRuntime.handler_environment` gives what the handlers need on top.
    """
    functions_importable()
    with ExitStack() as stack:
        postgres = stack.enter_context(EmbeddedPostgres())
        moto = stack.enter_context(MotoServer())
        moto.reset()  # moto servers in one process share their state: start from an empty account
        env = quiet_logs({**moto.environment(), "DATABASE_URL": postgres.dsn, "DB_SSLMODE": "disable"}, log_level)
        stack.enter_context(patched_environment(env))
        stack.callback(_forget_cached_clients)
        _forget_cached_clients()
        applied = migrate_database(database_settings())["applied"]
        secret_arn = boto3.client("secretsmanager").create_secret(
            Name="invoice-pipeline/db",
            SecretString=json.dumps(
                {
                    "host": postgres.host,
                    "port": postgres.port,
                    "username": postgres.user,
                    "password": postgres.password,
                    "dbname": "postgres",
                }
            ),
        )["ARN"]
        yield LocalRuntime(
            postgres=postgres,
            moto=moto,
            stack=create_local_stack(queue_settings, bucket=bucket),
            secret_arn=secret_arn,
            applied_migrations=tuple(applied),  # type: ignore[arg-type]
        )


def _forget_cached_clients() -> None:
    """Settings, clients and DB connections cached for an earlier endpoint must not leak into this one."""
    from invoice_pipeline.tables.db import pool

    reset_client_caches()
    pool.discard()


def s3_url(bucket: str, key: str, form: int) -> str:
    """The forms docs/architecture.md §4 accepts, taken in turn so every run exercises each."""
    if form % 3 == 0:
        return f"s3://{bucket}/{key}"
    if form % 3 == 1:
        return f"https://{bucket}.s3.us-east-1.amazonaws.com/{key}"
    return f"https://s3.us-east-1.amazonaws.com/{bucket}/{key}"


def upload_samples(orders: Sequence[Any], bucket: str) -> dict[int, str]:
    """Put every sample invoice into the bucket; returns order_id -> invoice_image (varied list forms)."""
    s3 = boto3.client("s3")
    invoice_images: dict[int, str] = {}
    for order_id, order in enumerate(orders, start=1):
        urls = []
        for index, invoice in enumerate(order.invoices):
            key = f"orders/{order_id}/{index}-{invoice.filename}"
            s3.put_object(Bucket=bucket, Key=key, Body=invoice.data, ContentType=invoice.content_type)
            urls.append(s3_url(bucket, key, order_id + index))
        invoice_images[order_id] = json.dumps(urls) if len(urls) > 1 and order_id % 2 else "\n".join(urls)
    return invoice_images


@contextmanager
def emulated_model(orders: Sequence[Any]) -> Iterator[Any]:
    """The model emulator, started, with every sample invoice's answer registered; yields the emulator."""
    from local.model_emulator import ModelEmulator

    with ModelEmulator() as emulator:
        for order in orders:
            for invoice in order.invoices:
                emulator.register(invoice.stamp, invoice.answer)
        yield emulator


def emulator_environment(emulator: Any) -> dict[str, str]:
    return {"OPENAI_BASE_URL": emulator.base_url, "OPENAI_API_KEY": "emulator-needs-no-key"}
