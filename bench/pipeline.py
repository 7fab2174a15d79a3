"""Pipeline efficiency: how close the queue-driven consumer comes to the model's latency bound.

Every order has one invoice, so one model call; the model emulator answers each call after a fixed latency
L. With C concurrent consumer invocations and batch size 1 no pipeline can do better than

    ideal orders/s = C / (L x model calls per order) = C / L

(each invocation holds one order for at least L; bigger batches do not change the bound, a container still
works through its records one after the other). Efficiency = measured orders/s / ideal. What it loses is
everything around the model call: SQS receive and delete, the claim and the write in Postgres, the S3
fetch, the image preparation, the handler and SDK overhead, workers waiting on the queue.

The time of a run is from the start of the event source (workers start, each loads its handler copy as a
cold container does) to the end of the last invocation, not to the idle check that follows it.

Side by side on the same orders: the old script's shape, 4 threads in one process taking orders from a
list and calling the same extractor and the same write path as the consumer directly (no SQS), compared
with the event source at C = 4.

Starts its own embedded Postgres, moto server and model emulator; stops them all at exit.

    .venv/bin/python bench/pipeline.py [--orders 100] [--latency 0.5] [--concurrency 2,5,10] [--batch-size 1]
"""

from __future__ import annotations

import argparse
import importlib
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

from invoice_pipeline import settings  # noqa: E402
from invoice_pipeline.documents import images, urls  # noqa: E402
from invoice_pipeline.extractor import InvoiceImages  # noqa: E402
from invoice_pipeline.flows.consume import ConsumerDeps, build_runtime  # noqa: E402
from invoice_pipeline.tables import db, items, ledger, orders  # noqa: E402
from local.aws import patched_environment  # noqa: E402
from local.event_source import EventSourceStats, FakeLambdaContext, SqsEventSource, fresh_handler  # noqa: E402
from local.orders import create_orders_table, insert_orders  # noqa: E402
from local.runtime import emulated_model, emulator_environment, local_runtime, upload_samples  # noqa: E402
from local.samples import KINDS, SampleOrder, generate_invoice  # noqa: E402
from local.stack_config import load_queue_settings  # noqa: E402

MODEL = "gpt-4o-2024-11-20"
OLD_THREADS = 4
MAX_IMAGE_BYTES = 20 * 1024 * 1024
TARGET = 0.85

RESET_LEDGER = "TRUNCATE benchmarking.invoice_items, benchmarking.extraction_jobs"
DONE_JOBS = "SELECT count(*) FROM benchmarking.extraction_jobs WHERE llm = :llm AND status = 'done'"


@dataclass(frozen=True)
class Run:
    shape: str
    concurrency: int
    orders: int
    seconds: float
    model_calls: int
    latency: float

    @property
    def orders_per_second(self) -> float:
        return self.orders / self.seconds

    @property
    def ideal(self) -> float:
        calls_per_order = self.model_calls / self.orders
        return self.concurrency / (self.latency * calls_per_order)

    @property
    def efficiency(self) -> float:
        return self.orders_per_second / self.ideal


def single_invoice_orders(count: int, seed: int = 0) -> list[SampleOrder]:
    """``count`` orders of one invoice each, the sample kinds taking turns."""
    return [
        SampleOrder(
            restaurant_id=101 + n % 3,
            invoices=[generate_invoice(KINDS[n % len(KINDS)], stamp=n + 1, seed=seed)],
        )
        for n in range(count)
    ]


def load_orders(samples: Sequence[SampleOrder], bucket: str) -> list[int]:
    invoice_images = upload_samples(samples, bucket)
    now = datetime.now(UTC)
    rows = [
        (order_id, order.restaurant_id, invoice_images[order_id], now - timedelta(minutes=order_id))
        for order_id, order in enumerate(samples, start=1)
    ]
    with db.pool.connection() as connection:
        create_orders_table(connection)
        insert_orders(connection, rows)
    return [row[0] for row in rows]


def reset_ledger() -> None:
    with db.pool.connection() as connection:
        connection.run(RESET_LEDGER)


def done_jobs() -> int:
    with db.pool.connection() as connection:
        return int(connection.run(DONE_JOBS, llm=MODEL)[0][0])


def run_event_source(
    queue_url: str, emulator: Any, *, concurrency: int, batch_size: int, latency: float, expected: int
) -> Run:
    """One producer run, then the consumer handler behind the event source until the queue is idle."""
    reset_ledger()
    summary = fresh_handler("producer")()({"source": "bench.pipeline"}, FakeLambdaContext("producer", 300))
    if summary["enqueued"] != expected:
        raise RuntimeError(f"producer enqueued {summary['enqueued']} orders, expected {expected}")
    last_batch_done = 0.0

    def on_batch(stats: EventSourceStats) -> None:
        nonlocal last_batch_done
        last_batch_done = time.monotonic()

    settings_ = load_queue_settings().scaled_for_local()
    source = SqsEventSource(
        queue_url,
        handler_factory=fresh_handler("consumer"),
        batch_size=batch_size,
        max_concurrency=concurrency,
        function_timeout_seconds=settings_.consumer_timeout_seconds,
        on_batch=on_batch,
    )
    calls_before = emulator.requests
    started = time.monotonic()
    stats = source.drain(until_idle=True, timeout_seconds=600)
    calls = emulator.requests - calls_before
    _check(f"event source C={concurrency}", stats.succeeded, stats.errors[:3], calls, expected)
    return Run("event source -> consumer", concurrency, expected, last_batch_done - started, calls, latency)


def run_old_script(order_ids: Sequence[int], emulator: Any, *, threads: int, latency: float) -> Run:
    """The old script's shape: threads take orders from one list and extract and write each directly."""
    reset_ledger()
    consumer = build_runtime(settings.consumer_settings())
    extractor = consumer.extractor_for(MODEL)
    pending = list(reversed(order_ids))
    lock = threading.Lock()
    errors: list[str] = []
    done = 0

    def next_order() -> int | None:
        with lock:
            return pending.pop() if pending else None

    def work() -> None:
        nonlocal done
        while (order_id := next_order()) is not None:
            try:
                extract_and_write(order_id, extractor, consumer)
            except Exception as error:
                with lock:
                    errors.append(f"order {order_id}: {type(error).__name__}: {error}")
            else:
                with lock:
                    done += 1

    calls_before = emulator.requests
    workers = [threading.Thread(target=work, name=f"old-{n}") for n in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.monotonic() - started
    calls = emulator.requests - calls_before
    _check(f"old script ({threads} threads)", done, errors[:3], calls, len(order_ids))
    return Run(f"old script ({threads} threads)", threads, len(order_ids), seconds, calls, latency)


def extract_and_write(order_id: int, extractor: Any, consumer: ConsumerDeps) -> None:
    """One order without the queue: claim, read, fetch and prepare, extract, write (the consumer's own calls)."""
    with db.pool.connection() as connection:
        claim = ledger.claim_job(connection, order_id, MODEL, message_id=f"old-script-{order_id}", lease_seconds=600)
        invoice_image = orders.read_invoice_image(connection, order_id)
    deadline = time.monotonic() + 60
    extracted = []
    for index, location in enumerate(urls.parse_invoice_image(invoice_image, consumer.settings.allowed_buckets)):
        data = consumer.fetch_image(location, max_bytes=consumer.settings.max_image_bytes)
        invoice = InvoiceImages(
            order_id=order_id, invoice_index=index, segments=images.prepare_invoice(data, source=str(location))
        )
        extracted.append(extractor.extract(invoice, deadline=deadline))
    with db.pool.connection() as connection:
        write = items.write_order(connection, order_id, MODEL, attempt=claim.attempt, invoices=extracted)
    if not write.job_completed:
        raise RuntimeError(f"order {order_id}: claim lost")


def _check(label: str, succeeded: int, errors: list[str], calls: int, expected: int) -> None:
    done = done_jobs()
    if succeeded != expected or done != expected or calls != expected:
        raise RuntimeError(
            f"{label}: {succeeded} succeeded, {done} jobs done, {calls} model calls; expected {expected} of each"
            + (f" ({'; '.join(errors)})" if errors else "")
        )


def format_table(runs: Sequence[Run], ratio: float, compared: int) -> str:
    lines = [
        f"{'shape':<28} {'C':>3} {'orders':>6} {'seconds':>8} {'orders/s':>9} {'ideal C/L':>9} {'efficiency':>10}",
    ]
    for run in runs:
        lines.append(
            f"{run.shape:<28} {run.concurrency:>3} {run.orders:>6} {run.seconds:>8.2f} {run.orders_per_second:>9.2f} "
            f"{run.ideal:>9.2f} {run.efficiency:>10.2f}"
        )
    lines.append(f"event source at C={compared} / old script ({OLD_THREADS} threads), orders/s: {ratio:.2f}")
    return "\n".join(lines)


def run(order_count: int, latency: float, concurrencies: Sequence[int], batch_size: int) -> dict[str, float]:
    print(f"generating {order_count} single-invoice sample orders ...", flush=True)
    samples = single_invoice_orders(order_count)
    queue_settings = load_queue_settings().scaled_for_local()
    compared = OLD_THREADS if OLD_THREADS in concurrencies else min(concurrencies, key=lambda c: abs(c - OLD_THREADS))
    with local_runtime(queue_settings) as runtime, emulated_model(samples) as emulator:
        order_ids = load_orders(samples, runtime.stack.bucket)
        env = runtime.handler_environment(
            llm=MODEL, max_image_bytes=MAX_IMAGE_BYTES, model_env=emulator_environment(emulator)
        )
        with patched_environment(env):
            db.pool.discard()
            emulator.inject("latency", seconds=latency)
            # The SDK is imported on the first model call; in this one process only the first run would pay it
            # (~0.5 s), so import it up front and every run starts alike (each still cold-starts its workers).
            importlib.import_module("openai")
            print(
                f"{order_count} orders x 1 invoice, model latency L = {latency:g} s per call, batch size {batch_size}; "
                f"ideal orders/s = C / (L x 1 call per order); target efficiency >= {TARGET}",
                flush=True,
            )
            runs = []
            for concurrency in concurrencies:
                runs.append(
                    run_event_source(
                        runtime.stack.queue_url,
                        emulator,
                        concurrency=concurrency,
                        batch_size=batch_size,
                        latency=latency,
                        expected=order_count,
                    )
                )
                print(f"  C={concurrency}: {runs[-1].efficiency:.2f}", flush=True)
            old = run_old_script(order_ids, emulator, threads=OLD_THREADS, latency=latency)
            runs.append(old)
            db.pool.discard()
    new = next(r for r in runs if r.concurrency == compared and r is not old)
    ratio = new.orders_per_second / old.orders_per_second
    print(format_table(runs, ratio, compared))
    figures = {f"efficiency_c{r.concurrency}": r.efficiency for r in runs if r is not old}
    figures.update(old_efficiency=old.efficiency, new_over_old=ratio)
    return figures


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per model call (default 0.5)")
    parser.add_argument(
        "--concurrency", default="2,4,5,10", help="comma list of C (default 2,4,5,10; 4 is compared with the old)"
    )
    parser.add_argument("--batch-size", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        concurrencies = [int(value) for value in args.concurrency.split(",")]
    except ValueError:
        parser.error(f"--concurrency must be a comma list of integers, got {args.concurrency!r}")
    if args.orders < 1 or args.latency <= 0 or args.batch_size < 1 or min(concurrencies) < 1:
        parser.error("--orders, --latency, --batch-size and every --concurrency must be positive")
    return run(args.orders, args.latency, concurrencies, args.batch_size)


if __name__ == "__main__":
    from local.logs import bench_logs

    with bench_logs("bench-pipeline"):
        main()
