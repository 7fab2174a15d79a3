"""Rate-limit runs of the local pipeline: a backlog several windows deep against a model that enforces OpenAI's
token and request limits, with time scaled down to windows of seconds (as :mod:`local.chaos` does).

The model emulator enforces a token and a request budget per window for each model and answers 429 with
OpenAI's headers beyond it. The real handlers run under the SQS event-source emulator on the chaos harness's
stack (embedded Postgres, moto server). With ``paced`` the pipeline's shared budgets
(:mod:`invoice_pipeline.pacing.budget`) are set to the same limits (``invoices budget`` does the same); without it the
consumers find the limit by being refused, as before the budgets existed. Measured per model: orders failed or in the
DLQ, tokens served over what the provider's limit allowed from the first to the last answered call, and the share of
calls answered 429.

Per model it also measures each window of the run (tokens served against the budget, calls, 429s), the deliveries
and invocations the backlog took, the ledger's attempts (which must equal the model tries: a wait for the budget is
not an attempt) and its budget waits. ``paper_invoices`` replaces the small stamped pages by A4 pages with 8-26
lines each (about 1,880 tokens a call at gpt-4o's rule: the size of a real invoice).

Used by ``tests/reliability/test_rate_limits.py`` (small) and ``bench/rate_limits.py`` (the tables).
"""

from __future__ import annotations

import io
import json
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from decimal import Decimal

from PIL import Image

from invoice_pipeline.pacing.budget import Budget, set_budget
from invoice_pipeline.tables import ledger_reads
from invoice_pipeline.tables.ledger import JobStatus
from local.aws import MotoServer
from local.chaos import ChaosConfig, ChaosStack, RecordingHandler, make_orders
from local.chaos.data import BUCKET, ChaosInvoice, ChaosOrder, TruthItem
from local.event_source import fresh_handler
from local.markdown import markdown_table
from local.postgres import EmbeddedPostgres
from local.stamp import draw_stamp

MODELS = ("gpt-4o-2024-11-20", "gpt-4.1-mini")
# Tokens one order of the chaos harness costs on average (255-token stamp images, prompt, a short answer):
# measured, and only used to size the backlog in windows.
TOKENS_PER_ORDER = 800


@dataclass(frozen=True)
class WindowFigures:
    """One window of the run, from the first answered call: tokens served against the budget, calls, 429s."""

    index: int
    served_tokens: int
    budget_tokens: int
    calls: int
    rate_limited: int

    @property
    def used(self) -> float:
        return self.served_tokens / self.budget_tokens


@dataclass(frozen=True)
class ModelFigures:
    llm: str
    tokens_per_window: int
    orders: int
    done: int
    failed: int  # jobs failed (for any reason; throttling is the only fault here)
    dlq: int  # messages of this model in the DLQ
    calls: int
    rate_limited: int  # calls answered 429 for the rate limit
    served_tokens: int
    allowed_tokens: float  # the limit's bucket at the start plus its refill from the first to the last answer
    handed_back: int  # deliveries handed back for a provider 429 (throttles)
    windows: tuple[WindowFigures, ...] = ()
    attempts: Counter[int] = field(default_factory=Counter)  # jobs by their ledger attempts
    budget_waits: int = 0  # hand-backs to wait for the budget (not attempts)

    @property
    def full_windows(self) -> tuple[WindowFigures, ...]:
        """Every window but the last (the backlog runs out in it) and the first (it starts with a full bucket)."""
        return self.windows[1:-1]

    @property
    def min_window_used(self) -> float:
        return min((window.used for window in self.full_windows), default=self.used)

    @property
    def used(self) -> float:
        return self.served_tokens / self.allowed_tokens if self.allowed_tokens else 0.0

    @property
    def share_429(self) -> float:
        return self.rate_limited / self.calls if self.calls else 0.0


@dataclass(frozen=True)
class RateLimitResult:
    name: str
    paced: bool
    window_seconds: float
    concurrency: int
    backlog_windows: float
    models: tuple[ModelFigures, ...]
    seconds: float
    deliveries: int = 0  # records handed to the consumer, every model
    invocations: int = 0
    orders: int = 0
    invoices: int = 0
    attempts_not_tries: int = 0  # orders whose attempts (all models) differ from the model requests they made
    backlog_tokens: int = 0  # what the backlog costs one model, about (sizes the backlog in windows)

    @property
    def deliveries_per_order(self) -> float:
        jobs = self.orders * len(self.models)
        return self.deliveries / jobs if jobs else 0.0

    @property
    def failed_or_dlq(self) -> int:
        return sum(model.failed + model.dlq for model in self.models)


def run_rate_limits(
    server: EmbeddedPostgres,
    dsn: str,
    moto: MotoServer,
    *,
    name: str,
    models: tuple[str, ...],
    tokens_per_window: tuple[int, ...],
    orders: int,
    window_seconds: float = 2.0,
    paced: bool = True,
    concurrency: int = 6,
    latency_seconds: float = 0.05,
    margin: float = 0.05,
    drain_timeout_seconds: float = 300.0,
    seed: int = 0,
    paper_invoices: int | None = None,
) -> RateLimitResult:
    """One run: ``orders`` orders enqueued once per model, drained by ``concurrency`` consumers. ``paper_invoices``:
    that many A4 invoices over the orders instead of the small stamped pages."""
    config = replace(ChaosConfig(seed=seed), max_concurrency=concurrency, drain_timeout_seconds=drain_timeout_seconds)
    started = time.monotonic()
    with ChaosStack(server, dsn, moto, config) as stack:
        stack.setenv(LLM_MODELS=",".join(models))
        batch = make_orders(orders, seed=seed) if paper_invoices is None else paper_orders(orders, paper_invoices, seed)
        stack.add_orders(batch)
        invoices = sum(len(order.invoices) for order in batch)
        for llm, tokens in zip(models, tokens_per_window, strict=True):
            # Requests are generous: the token limit is the one these runs are about.
            requests = max(10, 2 * math.ceil(invoices * tokens / (orders * TOKENS_PER_ORDER)))
            stack.model.limit(tokens=tokens, requests=requests, window_seconds=window_seconds, llm=llm)
            if paced:
                with stack.sql() as connection:
                    set_budget(connection, Budget(llm, tokens, requests, margin, window_seconds))
        if latency_seconds:
            stack.model.inject("latency", seconds=latency_seconds)
        import openai  # noqa: F401  # isort: skip

        # Warm containers, as a backlog that lasts finds them: the SDK's first import (about 2 s here) would sit
        # between a cold container's reservation and its call, which time scaled to windows of seconds magnifies
        # into a third of a window (on AWS, 2 s of a 60 s window stays inside the margin).
        handler = RecordingHandler(fresh_handler("consumer")())
        stack.produce()
        stats = stack.drain(handler)
        figures = tuple(
            _figures(stack, llm, tokens, orders, window_seconds)
            for llm, tokens in zip(models, tokens_per_window, strict=True)
        )
        not_tries = _attempts_not_tries(stack, models, batch)
        if stats.timed_out:
            raise RuntimeError(f"{name}: the queue was not drained within {drain_timeout_seconds} s")
    backlog_tokens = orders * TOKENS_PER_ORDER if paper_invoices is None else invoices * PAPER_CALL_TOKENS
    backlog = backlog_tokens / min(tokens_per_window)
    return RateLimitResult(
        name,
        paced,
        window_seconds,
        concurrency,
        backlog,
        figures,
        seconds=time.monotonic() - started,
        deliveries=stats.records,
        invocations=stats.invocations,
        orders=orders,
        invoices=invoices,
        attempts_not_tries=not_tries,
        backlog_tokens=backlog_tokens,
    )


def _attempts_not_tries(stack: ChaosStack, models: tuple[str, ...], batch: list[ChaosOrder]) -> int:
    """Orders whose ledger attempts, over every model, differ from the requests the model emulator saw for their
    first invoice (each attempt that reached a model asked for it once, 429s included)."""
    attempts: Counter[int] = Counter()
    with stack.sql() as connection:
        for llm in models:
            for order_id, job in ledger_reads.model_outcomes(connection, llm).items():
                attempts[order_id] += job.attempts
    return sum(1 for order in batch if attempts[order.order_id] != stack.model.requests_for(order.invoices[0].stamp))


# Lines per paper invoice: with the prompt and an A4 page at gpt-4o's rule (1,105 tokens) about 1,880 tokens a call.
PAPER_LINES = (8, 26)
PAPER_CALL_TOKENS = 1880  # measured, only used to size the backlog in windows
PAPER_SIZE = (1240, 1754)  # A4 at 150 dpi


def paper_image(stamp: int) -> bytes:
    page = Image.new("RGB", PAPER_SIZE, "white")
    draw_stamp(page, stamp, left=40, top=40, unit=PAPER_SIZE[0] // 200, height=60)
    buffer = io.BytesIO()
    page.save(buffer, format="PNG")
    return buffer.getvalue()


def paper_orders(count: int, invoices: int, seed: int = 0) -> list[ChaosOrder]:
    """``count`` orders with ``invoices`` A4 invoices between them (one or two each), of PAPER_LINES lines."""
    if not count <= invoices <= 2 * count:
        raise ValueError(f"{invoices} invoices cannot be spread over {count} orders of one or two invoices")
    rng = random.Random(f"paper:{seed}")
    two = set(rng.sample(range(count), invoices - count))
    orders = []
    for number in range(count):
        order_id = number + 1
        documents, truth = [], []
        for index in range(2 if number in two else 1):
            stamp = order_id * 4 + index
            lines = []
            for line_no in range(1, rng.randint(*PAPER_LINES) + 1):
                qty, price = Decimal(rng.randint(1, 40)), Decimal(rng.randint(50, 90_000)) / 1000
                name, unit = f"Item {rng.randint(100, 999)} {rng.choice(('kg', 'ctn', 'box'))}", "pcs"
                total = (qty * price).quantize(Decimal("0.001"))
                lines.append(
                    {"description": name, "quantity": str(qty), "unit": unit, "unit_price": str(price),
                     "line_total": str(total)}
                )  # fmt: skip
                truth.append(TruthItem(index, line_no, name, qty, unit, price, total))
            key = f"orders/{order_id}/{index}-paper.png"
            answer = {"currency": "KWD", "printed_total": None, "items": lines}
            documents.append(ChaosInvoice(stamp, key, paper_image(stamp), answer))
        urls = [f"s3://{BUCKET}/{document.key}" for document in documents]
        invoice_image = json.dumps(urls) if len(urls) > 1 else urls[0]
        orders.append(ChaosOrder(order_id, 101 + order_id % 3, tuple(documents), tuple(truth), invoice_image))
    return orders


def _windows(
    served: list[tuple[float, int]], limited: list[float], tokens: int, window_seconds: float
) -> tuple[WindowFigures, ...]:
    if not served:
        return ()
    start = served[0][0]
    count = int((served[-1][0] - start) // window_seconds) + 1
    figures = []
    for index in range(count):
        low, high = start + index * window_seconds, start + (index + 1) * window_seconds
        answered = [used for at, used in served if low <= at < high]
        refused = sum(1 for at in limited if low <= at < high)
        figures.append(WindowFigures(index + 1, sum(answered), tokens, len(answered) + refused, refused))
    return tuple(figures)


def _figures(stack: ChaosStack, llm: str, tokens: int, orders: int, window_seconds: float) -> ModelFigures:
    with stack.sql() as connection:
        jobs = ledger_reads.model_outcomes(connection, llm).values()
    done = sum(1 for job in jobs if job.status == JobStatus.DONE)
    failed = sum(1 for job in jobs if job.status == JobStatus.FAILED)
    throttles = sum(job.throttles for job in jobs)
    dlq = sum(1 for body in stack.dlq_bodies() if _llm_of(body) == llm)
    served = stack.model.served(llm)
    served_tokens = sum(count for _, count in served)
    span = served[-1][0] - served[0][0] if len(served) > 1 else 0.0
    allowed = tokens * (1 + span / window_seconds)
    calls = len(served) + stack.model.rate_limited(llm)
    return ModelFigures(
        llm=llm,
        tokens_per_window=tokens,
        orders=orders,
        done=int(done),
        failed=int(failed),
        dlq=dlq,
        calls=calls,
        rate_limited=stack.model.rate_limited(llm),
        served_tokens=served_tokens,
        allowed_tokens=allowed,
        handed_back=int(throttles),
        windows=_windows(served, stack.model.rate_limited_times(llm), tokens, window_seconds),
        attempts=Counter(job.attempts for job in jobs),
        budget_waits=sum(job.budget_waits for job in jobs),
    )


def _llm_of(body: str) -> str | None:
    try:
        value = json.loads(body).get("llm")
    except (ValueError, AttributeError):
        return None
    return str(value) if value is not None else None


COLUMNS = (
    "run",
    "model",
    "budget tokens/window",
    "backlog (windows)",
    "orders done",
    "failed or DLQ",
    "tokens served / budget",
    "calls",
    "429 share",
    "handed back",
    "time s",
)


WINDOW_COLUMNS = ("run", "model", "window", "served / budget", "calls", "429s")
RUN_COLUMNS = (
    "run",
    "orders / invoices",
    "deliveries per order",
    "invocations",
    "model",
    "min full window",
    "budget waits",
    "attempts histogram",
    "orders with attempts != tries",
)


def window_table(results: list[RateLimitResult]) -> str:
    """A Markdown table, one row per window of each model of each run."""
    rows = [
        (
            f"{result.name} ({'paced' if result.paced else 'unpaced'})",
            model.llm,
            str(window.index),
            f"{window.served_tokens} / {window.budget_tokens} = {window.used:.2f}",
            str(window.calls),
            str(window.rate_limited),
        )
        for result in results
        for model in result.models
        for window in model.windows
    ]
    return markdown_table(WINDOW_COLUMNS, rows)


def run_table(results: list[RateLimitResult]) -> str:
    """A Markdown table, one row per model of each run: deliveries, invocations, attempts."""
    rows = [
        (
            f"{result.name} ({'paced' if result.paced else 'unpaced'})",
            f"{result.orders} / {result.invoices}",
            f"{result.deliveries_per_order:.2f}",
            str(result.invocations),
            model.llm,
            f"{model.min_window_used:.2f}",
            str(model.budget_waits),
            ", ".join(f"{attempts}: {jobs}" for attempts, jobs in sorted(model.attempts.items())),
            str(result.attempts_not_tries),
        )
        for result in results
        for model in result.models
    ]
    return markdown_table(RUN_COLUMNS, rows)


def table(results: list[RateLimitResult]) -> str:
    """A Markdown table, one row per model of each run."""
    rows = [
        (
            f"{result.name} ({'paced' if result.paced else 'unpaced'})",
            model.llm,
            str(model.tokens_per_window),
            f"{result.backlog_tokens / model.tokens_per_window:.1f}",
            f"{model.done}/{model.orders}",
            str(model.failed + model.dlq),
            f"{model.used:.2f}",
            str(model.calls),
            f"{model.share_429:.3f}",
            str(model.handed_back),
            f"{result.seconds:.1f}",
        )
        for result in results
        for model in result.models
    ]
    return markdown_table(COLUMNS, rows)
