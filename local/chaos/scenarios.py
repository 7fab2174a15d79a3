"""The chaos scenarios: each arranges orders, turns faults on while the queue drains, then ``Run.finish``
stops the faults, fixes what can be fixed, redrives the DLQ, drains again and checks the promises twice.
"""

from __future__ import annotations

import json
import math
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import boto3

from invoice_pipeline.tables import ledger_reads
from local.aws import MotoServer
from local.chaos.data import BUCKET, MODEL, make_orders
from local.chaos.faults import BackendKiller, RecordingHandler, ServerRestarter
from local.chaos.stack import ChaosConfig, ChaosStack
from local.event_source import EventSourceStats, fresh_handler
from local.postgres import EmbeddedPostgres


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
        if self.handler is None:  # one container for the scenario's drains, with its own runtime
            self.handler = RecordingHandler(fresh_handler("consumer")())
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
        rows = [(job.status, job.last_error) for job in ledger_reads.order_outcomes(connection, unknown_order).values()]
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
