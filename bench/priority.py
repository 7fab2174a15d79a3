"""The priority lane: how long an urgent order waits behind a backlog, with the lane and without it.

On the local stack (embedded Postgres, moto, the model emulator answering every call after a fixed latency L): a
backlog of orders created a day ago is enqueued on the main lane and the consumer starts on it at the main lane's
concurrency. Once it is busy, urgent orders are created (created_at = now, inside PRIORITY_WINDOW_MINUTES). The
producer runs on a schedule of period P, as EventBridge Scheduler would run it, and every completion event is read
back from the bus (an EventBridge rule to an SQS queue on moto). The figure per urgent order is the time from its
``created_at`` to its ``Invoice extraction done`` event, read as the event's ``finished_at`` (the commit after which
the event is put): p50 and p95 over the urgent orders.

The same run is made twice side by side: with the lane (PRIORITY_QUEUE_URL set: urgent orders go to their own
queue, read by a second event source at priorityMaxConcurrency) and without it (every order on the main queue,
behind the backlog). The target: with the lane, urgent p95 < 3 x L + P, whatever the backlog.

Every backlog order points at one image (the emulator answers by the stamp on it), so a large backlog costs no
image rendering. Without the lane an urgent order waits for the whole backlog (about backlog x L / concurrency);
``--no-lane-timeout`` bounds that run, and a wait cut short is printed as a lower bound (">").

    .venv/bin/python bench/priority.py [--backlog 2000] [--urgent 10] [--latency 2] [--concurrency 4]
        [--schedule-seconds 10] [--no-lane-timeout 1200]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]
# The handlers' logger takes its level when first imported, before the local stack quiets it: one line per order
# would bury the figures.
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

import boto3  # noqa: E402

from invoice_pipeline.tables import db  # noqa: E402
from local.aws import patched_environment  # noqa: E402
from local.event_sink import create_event_sink, drain_events  # noqa: E402
from local.event_source import FakeLambdaContext, SqsEventSource, fresh_handler  # noqa: E402
from local.orders import create_orders_table, insert_orders  # noqa: E402
from local.runtime import LocalRuntime, emulated_model, emulator_environment, local_runtime  # noqa: E402
from local.samples import KINDS, SampleOrder, generate_invoice  # noqa: E402
from local.stack_config import load_queue_settings, priority_max_concurrency  # noqa: E402

MODEL = "gpt-4o-2024-11-20"
MAX_IMAGE_BYTES = 20 * 1024 * 1024
BACKLOG_STAMP, URGENT_STAMP = 1, 2
DONE = "Invoice extraction done"
WARMUP_CALLS = 3  # model calls' worth of time the consumer spends on the backlog before urgent orders arrive
RESET = (
    "TRUNCATE benchmarking.invoice_items, benchmarking.extraction_jobs, benchmarking.event_outbox; DELETE FROM orders"
)


@dataclass
class LaneRun:
    label: str
    waits: dict[int, float] = field(default_factory=dict)  # urgent order -> seconds from created_at to its event
    urgent: int = 0
    cut_at: float | None = None  # the run stopped before every urgent order was done (seconds waited so far)

    def percentile(self, fraction: float) -> float:
        values = sorted(self.waits.values())
        if len(values) < self.urgent:  # the missing ones waited at least as long as the run lasted
            values += [self.cut_at or 0.0] * (self.urgent - len(values))
        return values[max(0, math.ceil(fraction * len(values)) - 1)]  # nearest rank

    def cell(self, fraction: float) -> str:
        value = self.percentile(fraction)
        cut = self.cut_at is not None and value >= self.cut_at
        return f"{'>' if cut else ''}{value:.1f}"


def upload(runtime: LocalRuntime, samples: list[SampleOrder]) -> dict[int, str]:
    s3 = boto3.client("s3")
    urls = {}
    for stamp, order in zip((BACKLOG_STAMP, URGENT_STAMP), samples, strict=True):
        invoice = order.invoices[0]
        key = f"bench/{stamp}-{invoice.filename}"
        s3.put_object(Bucket=runtime.stack.bucket, Key=key, Body=invoice.data, ContentType=invoice.content_type)
        urls[stamp] = f"s3://{runtime.stack.bucket}/{key}"
    return urls


def run_lane(
    runtime: LocalRuntime,
    urls: dict[int, str],
    sink: str,
    *,
    lane: bool,
    backlog: int,
    urgent: int,
    concurrency: int,
    priority_concurrency: int,
    latency: float,
    schedule_seconds: float,
    timeout_seconds: float,
) -> LaneRun:
    label = "with the priority lane" if lane else "without the lane"
    result = LaneRun(label, urgent=urgent)
    with db.pool.connection() as connection:
        connection.run(RESET)
        long_ago = datetime.now(UTC) - timedelta(days=1)
        insert_orders(
            connection,
            [(n, 101, urls[BACKLOG_STAMP], long_ago + timedelta(seconds=n)) for n in range(1, backlog + 1)],
        )
    drain_events(sink)
    for url in (runtime.stack.queue_url, runtime.stack.priority_queue_url):
        _empty(url)  # the previous run's backlog (PurgeQueue may run once a minute only)
    environment = {
        "PRIORITY_QUEUE_URL": runtime.stack.priority_queue_url if lane else "",
        "MAX_ORDERS_PER_RUN": str(backlog + urgent),
    }
    with patched_environment(environment):
        producer = fresh_handler("producer")()
        summary = producer({"source": "bench.priority"}, FakeLambdaContext("producer", 900))
        if summary["enqueued"] != backlog:
            raise RuntimeError(f"the producer enqueued {summary['enqueued']} of the {backlog} backlog orders")
        queue_settings = load_queue_settings().scaled_for_local()
        lanes = [(runtime.stack.queue_url, concurrency)]
        if lane:
            lanes.append((runtime.stack.priority_queue_url, priority_concurrency))
        sources = [
            SqsEventSource(
                url,
                handler_factory=fresh_handler("consumer"),
                batch_size=1,
                max_concurrency=workers,
                function_timeout_seconds=queue_settings.consumer_timeout_seconds,
            )
            for url, workers in lanes
        ]
        threads = [threading.Thread(target=source.drain, kwargs={"until_idle": False}) for source in sources]
        for thread in threads:
            thread.start()
        stop = threading.Event()
        try:
            time.sleep(WARMUP_CALLS * latency)  # the backlog is being worked on before anything urgent arrives
            created = _create_urgent(backlog, urgent, urls[URGENT_STAMP])
            schedule = threading.Thread(target=_schedule, args=(producer, schedule_seconds, stop), daemon=True)
            schedule.start()
            started = time.monotonic()
            while len(result.waits) < urgent and time.monotonic() - started < timeout_seconds:
                for event in drain_events(sink):
                    order_id = event["detail"]["order_id"]
                    if event["detail-type"] == DONE and order_id in created and order_id not in result.waits:
                        # The event's own finished_at (the commit, just before the put), not when this loop read it:
                        # on a loaded machine the reading lags, and the figure is the pipeline's.
                        finished = datetime.fromisoformat(event["detail"]["finished_at"].replace("Z", "+00:00"))
                        result.waits[order_id] = (finished - created[order_id]).total_seconds()
                time.sleep(0.2)
            if len(result.waits) < urgent:
                result.cut_at = time.monotonic() - started
        finally:
            stop.set()
            for source in sources:
                source.stop()
            for thread in threads:
                thread.join()
    return result


def _empty(queue_url: str) -> None:
    sqs = boto3.client("sqs")
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
        )


def _create_urgent(backlog: int, urgent: int, url: str) -> dict[int, datetime]:
    """The urgent orders, created now (the database's clock sets created_at, as the ordering app's would)."""
    ids = list(range(backlog + 1, backlog + urgent + 1))
    with db.pool.connection() as connection:
        rows = connection.run(
            "INSERT INTO orders (id, restaurant_id, invoice_image, created_at)"
            " SELECT id, 101, :url, clock_timestamp() FROM unnest(CAST(:ids AS bigint[])) AS id"
            " RETURNING id, created_at",
            url=url,
            ids=ids,
        )
    return {int(order_id): created_at for order_id, created_at in rows}


def _schedule(producer: Any, period: float, stop: threading.Event) -> None:
    """EventBridge Scheduler's stand-in: a producer run every ``period`` seconds, the first one a period from now."""
    while not stop.wait(period):
        producer({"source": "bench.priority"}, FakeLambdaContext("producer", 900))


def format_table(runs: list[LaneRun], latency: float, schedule_seconds: float) -> str:
    target = 3 * latency + schedule_seconds
    lines = [f"{'urgent orders, created -> done event':<40} {'p50 s':>8} {'p95 s':>8} {'p95 / target':>13}"]
    for run in runs:
        p95 = run.percentile(0.95)
        lines.append(f"{run.label:<40} {run.cell(0.5):>8} {run.cell(0.95):>8} {p95 / target:>13.2f}")
    lines.append(f"target: p95 < 3 x L + P = {target:g} s with the lane")
    return "\n".join(lines)


def run(
    backlog: int,
    urgent: int,
    latency: float,
    concurrency: int,
    schedule_seconds: float,
    no_lane_timeout: float,
) -> dict[str, float]:
    priority_concurrency = priority_max_concurrency() or 2
    samples = [
        SampleOrder(restaurant_id=101, invoices=[generate_invoice(KINDS[n], stamp=stamp)])
        for n, stamp in enumerate((BACKLOG_STAMP, URGENT_STAMP))
    ]
    with local_runtime(load_queue_settings().scaled_for_local()) as runtime, emulated_model(samples) as emulator:
        urls = upload(runtime, samples)
        with db.pool.connection() as connection:
            create_orders_table(connection)
        env = runtime.handler_environment(
            llm=MODEL, max_image_bytes=MAX_IMAGE_BYTES, model_env=emulator_environment(emulator)
        )
        with patched_environment(env):
            db.pool.discard()
            emulator.inject("latency", seconds=latency)
            sink = create_event_sink()
            print(
                f"backlog {backlog} orders on the main lane, {urgent} urgent orders, model latency L = {latency:g} s, "
                f"main concurrency {concurrency}, priority lane concurrency {priority_concurrency}, schedule period "
                f"P = {schedule_seconds:g} s",
                flush=True,
            )
            runs = []
            for lane, timeout in ((True, 10 * (3 * latency + schedule_seconds)), (False, no_lane_timeout)):
                runs.append(
                    run_lane(
                        runtime,
                        urls,
                        sink,
                        lane=lane,
                        backlog=backlog,
                        urgent=urgent,
                        concurrency=concurrency,
                        priority_concurrency=priority_concurrency,
                        latency=latency,
                        schedule_seconds=schedule_seconds,
                        timeout_seconds=timeout,
                    )
                )
                waits = ", ".join(f"{wait:.1f}" for wait in sorted(runs[-1].waits.values()))
                print(f"  {runs[-1].label}: p95 {runs[-1].cell(0.95)} s (each: {waits or '-'})", flush=True)
            db.pool.discard()
    print(format_table(runs, latency, schedule_seconds))
    with_lane, without = runs
    return {
        "lane_p50": with_lane.percentile(0.5),
        "lane_p95": with_lane.percentile(0.95),
        "no_lane_p50": without.percentile(0.5),
        "no_lane_p95": without.percentile(0.95),
        "target": 3 * latency + schedule_seconds,
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=2000, help="orders waiting on the main lane (default 2000)")
    parser.add_argument("--urgent", type=int, default=10, help="urgent orders created once it is busy (default 10)")
    parser.add_argument("--latency", type=float, default=2.0, help="seconds per model call (default 2)")
    parser.add_argument("--concurrency", type=int, default=4, help="the main lane's concurrency (default 4)")
    parser.add_argument("--schedule-seconds", type=float, default=10.0, help="the producer's period P (default 10)")
    parser.add_argument(
        "--no-lane-timeout", type=float, default=1200.0, help="longest wait of the run without the lane (s)"
    )
    args = parser.parse_args(argv)
    if min(args.backlog, args.urgent, args.concurrency) < 1 or args.latency <= 0 or args.schedule_seconds <= 0:
        parser.error("--backlog, --urgent, --concurrency, --latency and --schedule-seconds must be positive")
    return run(args.backlog, args.urgent, args.latency, args.concurrency, args.schedule_seconds, args.no_lane_timeout)


if __name__ == "__main__":
    main()
