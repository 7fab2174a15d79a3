"""Rate-limit runs of the local pipeline: a backlog several windows deep against a model that enforces OpenAI's
token and request limits, with time scaled down to windows of seconds (as :mod:`local.chaos` does).

The model emulator enforces a token and a request budget per window for each model and answers 429 with
OpenAI's headers beyond it. The real handlers run under the SQS event-source emulator on the chaos harness's
stack (embedded Postgres, moto server). With ``paced`` the pipeline's shared budgets (:mod:`invoice_pipeline.budget`)
are set to the same limits (``invoices budget`` does the same); without it the consumers find the limit by being
refused, as before the budgets existed. Measured per model: orders failed or in the DLQ, tokens served over what
the provider's limit allowed from the first to the last answered call, and the share of calls answered 429.

Used by ``tests/reliability/test_rate_limits.py`` (small) and ``bench/rate_limits.py`` (the table).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace

from invoice_pipeline import ledger_reads
from invoice_pipeline.budget import Budget, set_budget
from invoice_pipeline.ledger import JobStatus
from local.aws import MotoServer
from local.chaos import ChaosConfig, ChaosStack, RecordingHandler, make_orders
from local.event_source import fresh_handler
from local.markdown import markdown_table
from local.postgres import EmbeddedPostgres

MODELS = ("gpt-4o-2024-11-20", "gpt-4.1-mini")
# Tokens one order of the chaos harness costs on average (255-token stamp images, prompt, a short answer):
# measured, and only used to size the backlog in windows.
TOKENS_PER_ORDER = 800


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
    handed_back: int  # deliveries handed back through a delayed message

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
) -> RateLimitResult:
    """One run: ``orders`` orders enqueued once per model, drained by ``concurrency`` consumers."""
    config = replace(ChaosConfig(seed=seed), max_concurrency=concurrency, drain_timeout_seconds=drain_timeout_seconds)
    started = time.monotonic()
    with ChaosStack(server, dsn, moto, config) as stack:
        stack.setenv(LLM_MODELS=",".join(models))
        batch = make_orders(orders, seed=seed)
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
        if stats.timed_out:
            raise RuntimeError(f"{name}: the queue was not drained within {drain_timeout_seconds} s")
    backlog = orders * TOKENS_PER_ORDER / min(tokens_per_window)
    return RateLimitResult(
        name, paced, window_seconds, concurrency, backlog, figures, seconds=time.monotonic() - started
    )


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


def table(results: list[RateLimitResult]) -> str:
    """A Markdown table, one row per model of each run."""
    rows = [
        (
            f"{result.name} ({'paced' if result.paced else 'unpaced'})",
            model.llm,
            str(model.tokens_per_window),
            f"{model.orders * TOKENS_PER_ORDER / model.tokens_per_window:.1f}",
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
