"""``make demo``: the whole pipeline on one offline machine (docs/architecture.md §13).

1. Embedded Postgres and a moto server (S3, SQS, Secrets Manager); the ordering app's ``orders`` table; the
   migrations; the database DSN stored in a secret that the handlers read through DB_SECRET_ARN.
2. Sample orders (``DEMO_ORDERS``, default 40) whose invoice images go to the bucket and whose known line
   items go to ``benchmarking.ground_truth_items``, plus poison orders: a missing object (fixed later), a
   bucket outside the allow-list, a file that is no image, an oversized file, a malformed ``invoice_image``;
   and two blank ones that are not eligible at all.
3. Queue and DLQ with the stack's settings (``cdk.json``), then one producer run (``producer.handler``).
4. The SQS event-source emulator runs ``consumer.handler`` until the queue is idle.
5. The DLQ is shown, the missing object uploaded, the DLQ moved back to the queue, the queue drained again.
6. A summary; the exit status is 1 if any eligible order is neither done nor failed-with-reason-in-the-DLQ,
   or if any item is duplicated.

What a person sees is the story, in plain lines: what runs, what failed and why, what the redrive fixed, the
figures and where the report is, with a progress line through the long first pass. The handlers' JSON log lines
(and any library warning) go to a file the demo names first (``DEMO_LOG_FILE``, default ``demo-handlers.log``);
``DEMO_VERBOSE=1`` leaves them on screen.

Extraction: OpenAI when OPENAI_API_KEY is set, else the offline OCR extractor when ``rapidocr`` is
installed, else the model emulator (a test double answering from the samples' known items).
``DEMO_EXTRACTOR=emulator|ocr|openai|bedrock|textract`` forces one; ``bedrock`` and ``textract`` run the real
boto3 clients against the local Bedrock Converse and Textract AnalyzeExpense emulators (``local.aws_emulators``).
``LLM_MODELS=a,b,c`` runs several models on the same orders (the producer enqueues each order once per model), so
the summary and ``invoices report`` show them side by side; each model's provider gets its emulator (OpenAI
names the model emulator unless ``DEMO_EXTRACTOR=openai``; ``ocr-*`` the real offline OCR). Without
``LLM_MODELS``, an offline demo (the reader or the emulator) runs two rows: that extractor and
``emulated-flawed-vision``, the model emulator making mistakes at rates it prints (``local.flawed_model``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from invoice_pipeline.model_names import ModelNameError, model_names, parse_model_list, provider_name, stage_names
from invoice_pipeline.tables import ledger_reads
from invoice_pipeline.tables.db import pool
from local.aws import patched_environment
from local.dlq_mover import move_messages
from local.event_sink import create_event_sink, drain_events
from local.event_source import FakeLambdaContext, SqsEventSource, drain_together, fresh_handler
from local.flawed_model import FLAWED_MODEL, describe_rates, flawed_answer
from local.logs import handler_logs, verbose
from local.progress import Progress
from local.runtime import emulated_model, emulator_environment, functions_importable, local_runtime, upload_samples
from local.stack import LocalStack
from local.stack_config import load_queue_settings, priority_max_concurrency

DEFAULT_ORDERS = 40
URGENT_SAMPLES = 2  # sample orders placed minutes ago: the producer sends them to the priority lane
# The offline OCR reads a page in about 1-4 CPU seconds: on 2 cores, 12 orders (about 20 pages) keep the demo
# under 3 minutes. DEMO_ORDERS overrides either default.
DEFAULT_OCR_ORDERS = 12
DRAIN_DEADLINE_SECONDS = 600
DEMO_MAX_IMAGE_BYTES = 5 * 1024 * 1024
OPENAI_MODEL = "gpt-4o-2024-11-20"
OCR_MODEL = "ocr-table-v1"
FLAWED_SEED = 7
EMULATED_MODEL = "gpt-4o-2024-11-20"  # the emulator answers as this model would; the summary says it is emulated
BEDROCK_MODEL = "bedrock/us.anthropic.claude-3-5-haiku-20241022-v1:0"
TEXTRACT_MODEL = "textract/analyze-expense"
DEFAULT_MODELS = {
    "openai": OPENAI_MODEL,
    "ocr": OCR_MODEL,
    "emulator": EMULATED_MODEL,
    "bedrock": BEDROCK_MODEL,
    "textract": TEXTRACT_MODEL,
}
BUCKET = "invoice-images"
FOREIGN_BUCKET = "someone-elses-bucket"
DEFAULT_REPORT_HTML = "demo-report.html"  # DEMO_REPORT_HTML overrides it
DEFAULT_LOG_FILE = "demo-handlers.log"  # DEMO_LOG_FILE overrides it


@dataclass(frozen=True)
class PoisonOrder:
    order_id: int
    invoice_image: str
    problem: str
    fixable: bool = False


@dataclass
class DemoResult:
    extractor: str
    llms: tuple[str, ...]
    eligible: set[int]
    not_eligible: set[int]
    poison: dict[int, PoisonOrder]
    jobs_by_llm: dict[str, dict[int, tuple[str, str | None]]]  # llm -> order_id -> (status, last_error)
    items_by_llm: dict[str, dict[int, int]]  # llm -> order_id -> items written
    truth_items: dict[int, int]  # order_id -> items in the ground truth
    duplicate_items: int
    dlq_jobs: list[tuple[int, str]]  # (order_id, llm) of each message left in the DLQ
    first_dlq_jobs: list[tuple[int, str]]
    redriven: int
    durations: dict[str, float] = field(default_factory=dict)
    consumed_orders_per_second: float = 0.0
    report: list[dict[str, Any]] = field(default_factory=list)  # `invoices report --format json`: a row per model
    ledger_totals: dict[str, int] = field(default_factory=dict)
    report_html: str | None = None  # the comparison page written by `invoices report --html`
    events_seen: dict[str, int] = field(default_factory=dict)  # completion events by detail-type, read from the bus

    @property
    def llm(self) -> str:
        """The first model (the only one unless LLM_MODELS names several)."""
        return self.llms[0]

    @property
    def jobs(self) -> dict[int, tuple[str, str | None]]:
        return self.jobs_by_llm[self.llm]

    @property
    def items(self) -> dict[int, int]:
        return self.items_by_llm[self.llm]

    @property
    def dlq_order_ids(self) -> list[int]:
        return [order_id for order_id, llm in self.dlq_jobs if llm == self.llm]

    @property
    def first_dlq_order_ids(self) -> list[int]:
        return [order_id for order_id, llm in self.first_dlq_jobs if llm == self.llm]

    def problems(self) -> list[str]:
        """Everything that would mean an order was lost or written twice, for every model."""
        found = []
        for llm in self.llms:
            jobs = self.jobs_by_llm.get(llm, {})
            for order_id in sorted(self.eligible):
                status, error = jobs.get(order_id, ("missing", None))
                if status == "done":
                    continue
                if status != "failed" or not error:
                    found.append(f"order {order_id} ({llm}) ended {status} (expected done, or failed with a reason)")
                elif (order_id, llm) not in self.dlq_jobs:
                    found.append(f"order {order_id} ({llm}) failed ({error}) but its message is not in the DLQ")
            for order_id in sorted(self.not_eligible & set(jobs)):
                found.append(f"order {order_id} has a blank invoice_image but was enqueued")
        if self.duplicate_items:
            found.append(f"{self.duplicate_items} duplicated item line(s)")
        for (order_id, llm), count in sorted(Counter(self.dlq_jobs).items()):
            if count > 1:
                found.append(f"order {order_id} ({llm}) is {count} times in the DLQ")
        return found


# -- choosing the extractor -----------------------------------------------------------------------------------


def choose_extractor(env: dict[str, str]) -> str:
    forced = env.get("DEMO_EXTRACTOR", "").strip().lower()
    if forced:
        if forced not in DEFAULT_MODELS:
            raise SystemExit(f"DEMO_EXTRACTOR must be one of {', '.join(DEFAULT_MODELS)}, got {forced!r}")
        if forced == "openai" and not env.get("OPENAI_API_KEY"):
            raise SystemExit("DEMO_EXTRACTOR=openai needs OPENAI_API_KEY")
        return forced
    if env.get("OPENAI_API_KEY"):
        return "openai"
    if ocr_available():
        return "ocr"
    return "emulator"


def ocr_available() -> bool:
    return (
        importlib.util.find_spec("rapidocr") is not None
        and importlib.util.find_spec("invoice_pipeline.providers.ocr") is not None
    )


# -- the steps ------------------------------------------------------------------------------------------------


def poison_orders(first_id: int, bucket: str, max_image_bytes: int) -> list[PoisonOrder]:
    from local.samples import not_an_image_bytes, oversized_bytes

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=FOREIGN_BUCKET)
    s3.put_object(Bucket=FOREIGN_BUCKET, Key="invoice.png", Body=oversized_bytes(64))
    s3.put_object(Bucket=bucket, Key="poison/notes.txt", Body=not_an_image_bytes(), ContentType="text/plain")
    s3.put_object(Bucket=bucket, Key="poison/huge.png", Body=oversized_bytes(max_image_bytes + 1))
    return [
        PoisonOrder(first_id, f"s3://{bucket}/poison/missing-scan.png", "object missing (uploaded later)", True),
        PoisonOrder(first_id + 1, f"s3://{FOREIGN_BUCKET}/invoice.png", "bucket not allowed"),
        PoisonOrder(first_id + 2, f"s3://{bucket}/poison/notes.txt", "not an image"),
        PoisonOrder(first_id + 3, f"s3://{bucket}/poison/huge.png", f"larger than {max_image_bytes} bytes"),
        PoisonOrder(first_id + 4, "see attached invoice, thanks", "malformed invoice_image"),
    ]


def messages_in(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message in a queue, left in it (received, then made visible again at once)."""
    seen: dict[str, dict[str, Any]] = {}
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30).get(
            "Messages", []
        )
        if not batch:
            break
        for message in batch:
            seen[message["MessageId"]] = message
    handles = [message["ReceiptHandle"] for message in seen.values()]
    for start in range(0, len(handles), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for n, handle in enumerate(handles[start : start + 10])
            ],
        )
    return list(seen.values())


def _order_id_of(message: dict[str, Any]) -> int:
    try:
        return int(json.loads(message["Body"])["order_id"])
    except (ValueError, KeyError, TypeError):
        return -1


def _job_of(message: dict[str, Any], default_llm: str) -> tuple[int, str]:
    try:
        llm = json.loads(message["Body"]).get("llm") or default_llm
    except (ValueError, KeyError, TypeError, AttributeError):
        llm = default_llm
    return _order_id_of(message), str(llm)


def demo_models(env: dict[str, str], extractor: str) -> tuple[str, ...]:
    """LLM_MODELS when set (several models on the same orders); else the extractor's model and, offline (the
    reader or the emulator), the emulator making mistakes on purpose (``local.flawed_model``), so the comparison
    has two rows."""
    try:
        listed = model_names(parse_model_list(env.get("LLM_MODELS", "")))
    except ModelNameError as error:
        raise SystemExit(str(error)) from None
    if listed:
        return listed
    if extractor in ("ocr", "emulator"):
        return (DEFAULT_MODELS[extractor], FLAWED_MODEL)
    return (DEFAULT_MODELS[extractor],)


@contextmanager
def _model_endpoints(extractor: str, orders: list[Any], llms: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """An emulator for each provider the models need (none for the offline OCR, nor for OpenAI when it is real)."""
    from local.aws_emulators import BedrockEmulator, TextractEmulator

    providers = {provider_name(llm) for llm in stage_names(parse_model_list(llms))}
    environment: dict[str, str] = {}
    with ExitStack() as stack:
        if "openai" in providers and extractor != "openai":
            emulator = stack.enter_context(emulated_model(orders))
            if FLAWED_MODEL in llms:
                _register_flawed_answers(emulator, orders)
            environment |= emulator_environment(emulator)
        for name, emulator_class in (("bedrock", BedrockEmulator), ("textract", TextractEmulator)):
            if name in providers:
                emulator = stack.enter_context(emulator_class())
                for order in orders:
                    for invoice in order.invoices:
                        emulator.register(invoice.stamp, invoice.answer)
                environment |= emulator.environment()
        yield environment


def _register_flawed_answers(emulator: Any, orders: list[Any]) -> None:
    """The flawed model's answers, drawn once per run (seeded: the same orders get the same mistakes)."""
    rng = random.Random(FLAWED_SEED)
    drawn: Counter[str] = Counter()
    lines = 0
    for order in orders:
        for invoice in order.invoices:
            answer, mistakes = flawed_answer(invoice.answer, rng)
            emulator.register_for_model(FLAWED_MODEL, invoice.stamp, answer)
            drawn.update(mistakes)
            lines += len(invoice.answer.get("items") or [])
    made = ", ".join(f"{count} {name}" for name, count in sorted(drawn.items())) or "none"
    print(
        f"{FLAWED_MODEL}: NOT a real model: the model emulator making mistakes on purpose at {describe_rates()}; "
        f"drawn on these {lines} lines: {made}"
    )


def run_demo(
    order_count: int = DEFAULT_ORDERS,
    extractor: str = "emulator",
    *,
    seed: int = 0,
    llms: tuple[str, ...] = (),
    report_html: str = DEFAULT_REPORT_HTML,
    while_running: Callable[[DemoResult], None] | None = None,
) -> DemoResult:
    """Run every step on a fresh local stack; returns what the ledger, items and DLQ hold at the end.

    ``llms``: the models to run on the same orders (default: the extractor's own). ``while_running`` is called
    with the result before the local stack stops (the demo's workbench runs there).
    """
    from local.orders import create_orders_table, insert_orders
    from local.samples import generate_orders

    functions_importable()
    llms = llms or (DEFAULT_MODELS[extractor],)
    llm = ",".join(llms)
    stack_settings = load_queue_settings()
    # The stack's own function timeout: a slow extractor (OCR on 2 cores) must not run out of time locally.
    queue_settings = stack_settings.scaled_for_local(stack_settings.consumer_timeout_seconds)
    timings: dict[str, float] = {}
    started = time.monotonic()

    print(f"generating {order_count} sample orders ...", flush=True)
    samples = generate_orders(order_count, seed=seed)
    with ExitStack() as stack:
        runtime = stack.enter_context(local_runtime(queue_settings, bucket=BUCKET))
        postgres, local = runtime.postgres, runtime.stack
        model_env = stack.enter_context(_model_endpoints(extractor, samples, llms))
        print(f"local stack: Postgres {postgres.host}:{postgres.port}, moto {runtime.moto.endpoint_url}")

        # 1. schema, the ordering app's table, and the DSN as a secret the handlers read
        print(f"migrations applied: {', '.join(runtime.applied_migrations) or 'none (already up to date)'}")

        # 2. orders: samples, poison, blanks
        images = upload_samples(samples, local.bucket)
        poison = poison_orders(len(samples) + 1, local.bucket, DEMO_MAX_IMAGE_BYTES)
        blank_ids = {len(samples) + len(poison) + 1, len(samples) + len(poison) + 2}
        now = datetime.now(UTC)
        # A day's backlog for the main lane, and the newest few orders just placed: urgent, so the producer sends them
        # to the priority lane (created within PRIORITY_WINDOW_MINUTES).
        urgent_ids = set(range(len(samples) - URGENT_SAMPLES + 1, len(samples) + 1))
        rows: list[tuple[int, int, str | None, datetime]] = [
            (order_id, order.restaurant_id, images[order_id], _created_at(now, order_id, order_id in urgent_ids))
            for order_id, order in enumerate(samples, start=1)
        ]
        rows += [(p.order_id, 101, p.invoice_image, _created_at(now, p.order_id, False)) for p in poison]
        rows += [(order_id, 102, text, now) for order_id, text in zip(sorted(blank_ids), (None, " \t\n "), strict=True)]
        with pool.connection() as connection:
            create_orders_table(connection)
            insert_orders(connection, rows)
        pool.discard()
        truth_rows = _load_ground_truth(samples)
        print(
            f"orders: {len(samples)} samples ({sum(len(o.invoices) for o in samples)} invoices, {truth_rows} known "
            f"items, loaded as ground truth), {len(poison)} poison ({'; '.join(p.problem for p in poison)}), "
            f"{len(blank_ids)} with a blank invoice_image; orders {sorted(urgent_ids)} placed minutes ago (urgent: the "
            "priority lane), the rest a day ago (the main lane)"
        )

        handler_env = runtime.handler_environment(
            llm=llm, max_image_bytes=DEMO_MAX_IMAGE_BYTES, model_env=model_env, priority_lane=True
        )
        event_sink = create_event_sink()  # a rule on the local bus to a queue: what a webhook would receive
        stack.enter_context(patched_environment(handler_env))
        timings["setup"] = time.monotonic() - started

        # 3. one producer run
        producer = fresh_handler("producer")()
        summary = producer({"source": "local.demo"}, FakeLambdaContext("producer", 300))
        print(describe_producer_run(summary))

        # 4. the consumer behind the event-source emulator
        print(
            f"consumer: {extractor} extractor ({llm}), batch size {queue_settings.batch_size}, "
            f"concurrency {queue_settings.max_concurrency}, maxReceiveCount {queue_settings.max_receive_count}"
        )
        consume_started = time.monotonic()
        consumer = fresh_handler("consumer")
        jobs = int(summary.get("enqueued", 0))
        first = _drain(local, consumer, "pass 1", jobs)
        timings["consume"] = time.monotonic() - consume_started
        sqs = boto3.client("sqs")

        # 5. the DLQ, a fix, a redrive
        first_dlq = messages_in(sqs, local.dlq_url) + messages_in(sqs, local.priority_dlq_url)
        print(f"DLQ after pass 1: {len(first_dlq)} message(s); each job's reason, from the ledger:")
        for line in _dlq_reasons([_job_of(message, llms[0]) for message in first_dlq]):
            print(f"  {line}")
        fixable = [p for p in poison if p.fixable]
        for p in fixable:
            sample = samples[0].invoices[0]
            key = p.invoice_image.split("/", 3)[3]
            boto3.client("s3").put_object(
                Bucket=local.bucket, Key=key, Body=sample.data, ContentType=sample.content_type
            )
        print(f"fixed: uploaded the missing object of order(s) {[p.order_id for p in fixable]}")
        redriven = move_messages(sqs, local.dlq_url, local.queue_url, rate=100)
        redriven += move_messages(sqs, local.priority_dlq_url, local.priority_queue_url, rate=100)
        print(f"redrive (local mover, as StartMessageMoveTask would): {redriven} message(s) back to the queue")
        redrive_started = time.monotonic()
        _drain(local, consumer, "pass 2", jobs)
        timings["redrive"] = time.monotonic() - redrive_started
        final_dlq = messages_in(sqs, local.dlq_url) + messages_in(sqs, local.priority_dlq_url)
        events_seen = Counter(event["detail-type"] for event in drain_events(event_sink))
        print(
            f"completion events seen on the bus: {sum(events_seen.values())} "
            f"({', '.join(f'{count} {kind}' for kind, count in sorted(events_seen.items())) or 'none'})"
        )

        # 6. what the database holds now
        result = _collect(
            extractor=extractor,
            llms=llms,
            eligible={order_id for order_id, *_ in rows} - blank_ids,
            not_eligible=blank_ids,
            poison={p.order_id: p for p in poison},
            dlq_jobs=[_job_of(message, llms[0]) for message in final_dlq],
            first_dlq_jobs=[_job_of(message, llms[0]) for message in first_dlq],
            redriven=redriven,
        )
        result.events_seen = dict(events_seen)
        result.durations = {**timings, "total": time.monotonic() - started}
        done_first = first.succeeded
        result.consumed_orders_per_second = done_first / timings["consume"] if timings["consume"] else 0.0
        result.report_html = str(_write_report(report_html))
        if while_running is not None:
            while_running(result)
        pool.discard()
    return result


def _invoices(*argv: str) -> list[str]:
    """The ``invoices`` command line in a child process with this process's environment (the demo's stack): local
    never imports the CLI (import contract), and the demo shows the operator's own commands at work."""
    return [sys.executable, "-m", "invoices_cli.main", *argv]


def _run_invoices(*argv: str) -> str:
    """What an ``invoices`` command printed; a failure raises with its error output."""
    done = subprocess.run(_invoices(*argv), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"invoices {' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


def _write_report(path: str) -> Path:
    _run_invoices("report", "--html", path)
    return Path(path).resolve()


def _load_ground_truth(samples: list[Any]) -> int:
    """The samples' known items as the operator loads ground truth (``invoices ground-truth load``); lines loaded."""
    from local.samples import truth_to_json

    orders = [
        {"order_id": order_id, "invoices": [truth_to_json(invoice.truth) for invoice in order.invoices]}
        for order_id, order in enumerate(samples, start=1)
    ]
    with tempfile.TemporaryDirectory(prefix="demo-truth-") as folder:
        path = Path(folder) / "ground-truth.json"
        path.write_text(json.dumps(orders, ensure_ascii=False), encoding="utf-8")
        loaded = json.loads(_run_invoices("ground-truth", "load", str(path), "--json"))
    return int(loaded["lines"])


def serve_workbench(result: DemoResult) -> None:
    """Print the summary, then serve the workbench against the demo's stack until Ctrl-C (DEMO_WORKBENCH=1)."""
    print(format_summary(result))
    port = os.environ.get("DEMO_WORKBENCH_PORT", "8765")
    workbench = subprocess.Popen(_invoices("workbench", "--port", port))
    print("the local stack stays up while `invoices workbench` runs (it prints its URL); Ctrl-C stops both", flush=True)
    try:
        workbench.wait()
    except KeyboardInterrupt:
        workbench.terminate()
        workbench.wait(timeout=10)
        print("\nworkbench stopped; local stack stopping")


def _drain(local: LocalStack, consumer: Callable[[], Any], label: str, total_jobs: int) -> Any:
    """Both lanes at once, each with its own mapping's concurrency, with a progress line meanwhile; then each lane's
    one-line account. Returns the main lane's statistics plus the priority lane's counts."""
    lanes = [(local.queue_url, local.settings.max_concurrency, label)]
    if local.priority_queue_url:
        lanes.append((local.priority_queue_url, priority_max_concurrency() or 2, f"{label} (priority lane)"))
    sources = [
        SqsEventSource(
            url,
            handler_factory=consumer,
            # The priority lane's mapping takes one order per invocation, without a batching window (stacks/).
            batch_size=local.settings.batch_size if url == local.queue_url else 1,
            max_batching_window_seconds=local.settings.max_batching_window_seconds if url == local.queue_url else 0,
            max_concurrency=concurrency,
            function_timeout_seconds=local.settings.consumer_timeout_seconds,
        )
        for url, concurrency, _ in lanes
    ]
    with Progress(f"  {label}", count=_finished_jobs, total=total_jobs):
        all_stats = drain_together(sources, timeout_seconds=DRAIN_DEADLINE_SECONDS)
    for (_, _, name), stats in zip(lanes, all_stats, strict=True):
        print(
            f"  {name}: {stats.invocations} batches, {stats.records} records, {stats.succeeded} ok, "
            f"{stats.failed} failed (a failed record comes back until maxReceiveCount, then goes to the DLQ; "
            f"max {stats.max_in_flight} concurrent)"
        )
        if stats.timed_out:
            print(f"  {name}: stopped at its deadline with messages left")
    main = all_stats[0]
    for other in all_stats[1:]:
        main.invocations += other.invocations
        main.records += other.records
        main.succeeded += other.succeeded
        main.failed += other.failed
        main.timed_out = main.timed_out or other.timed_out
    return main


def _created_at(now: datetime, order_id: int, urgent: bool) -> datetime:
    return now - timedelta(minutes=order_id) if urgent else now - timedelta(days=1, minutes=order_id)


def describe_producer_run(summary: dict[str, Any]) -> str:
    """The producer's run summary in one line (the handler returns it as JSON)."""
    return (
        f"producer: {summary.get('enqueued')} message(s) enqueued for {summary.get('scanned')} eligible order(s) "
        f"({summary.get('skipped')} skipped, {summary.get('send_failures')} send failures, {summary.get('pages')} "
        f"page(s), stopped because {summary.get('stopped_because')}) in {summary.get('duration_ms')} ms"
    )


def _finished_jobs() -> int:
    """Jobs done or failed so far, every model: the first pass's progress."""
    try:
        with pool.connection() as connection:
            totals = ledger_reads.ledger_status(connection).totals()
    finally:
        pool.discard()  # the progress thread's own connection: none left open when the stack stops
    return totals.get("done", 0) + totals.get("failed", 0)


def _dlq_reasons(jobs: list[tuple[int, str]]) -> list[str]:
    """``order 14 (model): its last_error`` for each job whose message is in the DLQ."""
    lines = []
    with pool.connection() as connection:
        for llm in sorted({llm for _, llm in jobs}):
            outcomes = ledger_reads.model_outcomes(connection, llm)
            for order_id in sorted(order_id for order_id, job_llm in jobs if job_llm == llm):
                outcome = outcomes.get(order_id)
                reason = outcome.last_error if outcome is not None else "no ledger row (the body names no order)"
                lines.append(f"order {order_id} ({llm}): {reason}")
    return lines


ITEMS_PER_ORDER_SQL = "SELECT order_id, count(*) FROM benchmarking.invoice_items WHERE llm = :llm GROUP BY order_id"
TRUTH_PER_ORDER_SQL = "SELECT order_id, count(*) FROM benchmarking.ground_truth_items GROUP BY order_id"
DUPLICATE_ITEMS_SQL = """
SELECT coalesce(sum(n - 1), 0) FROM (
    SELECT count(*) AS n FROM benchmarking.invoice_items GROUP BY order_id, llm, invoice_index, line_no
) AS lines
"""


def _collect(**facts: Any) -> DemoResult:
    jobs: dict[str, dict[int, tuple[str, str | None]]] = {}
    items: dict[str, dict[int, int]] = {}
    with pool.connection() as connection:
        for llm in facts["llms"]:
            jobs[llm] = {
                order_id: (job.status, job.last_error)
                for order_id, job in ledger_reads.model_outcomes(connection, llm).items()
            }
            items[llm] = dict(connection.run(ITEMS_PER_ORDER_SQL, llm=llm))
        truth = dict(connection.run(TRUTH_PER_ORDER_SQL))
        duplicates = int(connection.run(DUPLICATE_ITEMS_SQL)[0][0])
        totals = ledger_reads.ledger_status(connection).totals()
    report = json.loads(_run_invoices("report", "--format", "json"))  # the operator's per-model figures
    return DemoResult(
        jobs_by_llm=jobs,
        items_by_llm=items,
        truth_items=truth,
        duplicate_items=duplicates,
        report=report,
        ledger_totals=totals,
        **facts,
    )


# -- the summary ----------------------------------------------------------------------------------------------


def format_summary(result: DemoResult) -> str:
    done = sorted(order_id for order_id, (status, _) in result.jobs.items() if status == "done")
    failed = sorted(order_id for order_id, (status, _) in result.jobs.items() if status == "failed")
    extractor = {
        "emulator": "model emulator (a test double answering from the samples' known items; set OPENAI_API_KEY "
        "or install rapidocr for a real extractor)",
        "ocr": "offline OCR",
        "openai": "OpenAI",
        "bedrock": "Amazon Bedrock Converse emulator (the real boto3 client; answers from the samples' known items)",
        "textract": "Amazon Textract AnalyzeExpense emulator (the real boto3 client; answers from the known items)",
    }[result.extractor]
    lines = [
        "",
        "=== summary ===",
        f"extractor: {extractor}, model{'s' if len(result.llms) > 1 else ''} {', '.join(result.llms)}",
        f"orders: {len(result.eligible)} eligible ({len(result.not_eligible)} blank ones not enqueued): "
        f"{len(done)} done, {len(failed)} failed",
    ]
    for order_id in failed:
        _, error = result.jobs[order_id]
        where = "in the DLQ" if order_id in result.dlq_order_ids else "NOT in the DLQ"
        lines.append(f"  order {order_id} failed ({where}): {error}")
    fixed = [
        p.order_id for p in result.poison.values() if p.fixable and result.jobs.get(p.order_id, ("",))[0] == "done"
    ]
    lines.append(f"redrive: {result.redriven} message(s) moved back; fixed and now done: orders {fixed}")
    seen = result.events_seen
    lines.append(
        f"completion events on the bus: {sum(seen.values())} "
        f"({seen.get('Invoice extraction done', 0)} done, {seen.get('Invoice extraction failed', 0)} failed)"
    )
    for row in result.report:
        lines.append(
            f"{row['llm']}: {row['orders_done']} done, {row['orders_failed']} failed; items: {row['items']} in "
            f"{row['invoices']} invoices   tokens: {row['input_tokens']} in, "
            f"{row['output_tokens']} out   cost: ${row['cost_usd']} (per invoice: ${row['cost_per_invoice_usd']})"
        )
        if row["accuracy_f1"] is not None:
            lines.append(
                f"accuracy vs ground truth ({row['accuracy_orders']} orders): F1 {row['accuracy_f1']:.3f}, "
                f"precision {row['accuracy_precision']:.3f}, recall {row['accuracy_recall']:.3f}"
            )
        else:
            lines.append("accuracy vs ground truth: n/a (no done order has ground truth)")
    with_truth = [order_id for order_id in done if order_id in result.truth_items]
    exact = sum(1 for order_id in with_truth if result.items.get(order_id, 0) == result.truth_items[order_id])
    lines.append(f"done orders with as many items as their ground truth: {exact}/{len(with_truth)}")
    lines.append(f"ledger: {json.dumps(result.ledger_totals, sort_keys=True)}")
    d = result.durations
    lines.append(
        f"time: setup {d.get('setup', 0):.1f} s, pass 1 {d.get('consume', 0):.1f} s "
        f"({result.consumed_orders_per_second:.1f} orders/s), redrive pass {d.get('redrive', 0):.1f} s, "
        f"total {d.get('total', 0):.1f} s"
    )
    if result.report_html:
        lines.append(f"comparison report (invoices report --html, open it in a browser): {result.report_html}")
        lines.append(
            "workbench: the local stack stops when the demo ends; `DEMO_WORKBENCH=1 make demo` keeps it up and serves "
            "`invoices workbench` against it until Ctrl-C"
        )
    problems = result.problems()
    lines.append("nothing lost, nothing duplicated" if not problems else "PROBLEMS:")
    lines += [f"  {problem}" for problem in problems]
    return "\n".join(lines)


def main() -> int:
    env = dict(os.environ)
    extractor = choose_extractor(env)
    default_orders = DEFAULT_OCR_ORDERS if extractor == "ocr" else DEFAULT_ORDERS
    try:
        order_count = int(env.get("DEMO_ORDERS", default_orders))
    except ValueError:
        print(f"DEMO_ORDERS must be an integer, got {env['DEMO_ORDERS']!r}", file=sys.stderr)
        return 2
    keep_workbench = env.get("DEMO_WORKBENCH", "").strip() == "1"
    log_file = None if verbose(env) else Path(env.get("DEMO_LOG_FILE") or DEFAULT_LOG_FILE).resolve()
    if log_file is not None:
        print(f"handler logs (JSON lines, as CloudWatch would keep them): {log_file}; DEMO_VERBOSE=1 shows them here")
    try:
        with handler_logs(log_file, level=env.get("DEMO_LOG_LEVEL", "INFO")):
            result = run_demo(
                order_count,
                extractor,
                llms=demo_models(env, extractor),
                report_html=env.get("DEMO_REPORT_HTML", DEFAULT_REPORT_HTML),
                while_running=serve_workbench if keep_workbench else None,
            )
    except KeyboardInterrupt:
        print("\ninterrupted: local stack stopped", file=sys.stderr)
        return 130
    if not keep_workbench:
        print(format_summary(result))
    return 1 if result.problems() else 0


if __name__ == "__main__":
    raise SystemExit(main())
