"""A token and request budget per model, shared by every container: calls are paced instead of refused.

Each model with a row in ``benchmarking.model_budgets`` (``invoices budget MODEL --tpm N --rpm N``) has two
token buckets, tokens and requests, holding at most ``(1 - margin)`` of a window's allowance (a minute; shorter
in the scaled-down benchmarks) and refilled continuously, as the provider's own limits are. Before a model call
the consumer reserves the request's estimated tokens and one request with ONE atomic ``UPDATE ... RETURNING``:
the level may go negative, and how far says how long this caller must wait for its turn (virtual scheduling:
every concurrent caller gets its own slot, nobody is refused for being second). A wait that fits in the
invocation is slept; a longer one gives the reservation back and raises :class:`BudgetExhausted`, a
:class:`~invoice_pipeline.errors.Throttled` that hands the job back through a delayed message. After the call
the estimate is corrected from the answer's ``usage``, and the level is lowered to what the provider's
``x-ratelimit-remaining-*`` headers say is left (the key may be shared with other users). A provider 429 blocks
the model for everyone until the time it named.

Why Postgres: it is already there and every container already talks to it, one row update is atomic and
serialises the containers of one model without any new service (no Redis, no DynamoDB table, no extra IAM).
Models without a row are not paced (their 429s are still handled as throttling).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from invoice_pipeline.db import Connection, ConnectionPool
from invoice_pipeline.errors import PermanentError, Throttled
from invoice_pipeline.extraction.base import ExtractedInvoice, Extractor, InvoiceImages
from invoice_pipeline.observability import model_metric
from invoice_pipeline.ratelimits import MAX_PROVIDER_WAIT_SECONDS, RateLimitState

DEFAULT_MARGIN = 0.05  # of each limit kept free: other users of the key, estimates that come out short
DEFAULT_WINDOW_SECONDS = 60.0
# Text of a request besides its images (system prompt and instructions, ~1,100 characters) in tokens.
PROMPT_TOKENS = 300
# Output tokens reserved before the first answer of a model is seen; then the largest recent answer.
FIRST_OUTPUT_ESTIMATE = 600
# The longest turn a caller sleeps for inside an invocation: a quarter of the window, at most 15 s. A later turn
# hands the job back, so the consumer is free for the other models' jobs instead of sleeping for this one's.
SLEEP_SHARE_OF_WINDOW = 0.25
MAX_SLEEP_SECONDS = 15.0

# Kept per container, like the SDK clients: the sizes of each model's recent answers, in output tokens. The estimate
# is the largest of them: an estimate that comes out short, times the calls in flight, is what collects 429s.
RECENT_ANSWERS = 50
MIN_ANSWERS_SEEN = 10


# The level of both buckets brought up to now (refill at (1 - margin) x limit per window, capped at that).
_REFILLED = """least({limit} * (1 - margin), {level} + {limit} * (1 - margin)
        * greatest(0, CAST(extract(epoch FROM now.t - refilled_at) AS double precision)) / window_seconds)"""
_TOKENS = _REFILLED.format(limit="tpm", level="tokens")
_REQUESTS = _REFILLED.format(limit="rpm", level="requests")

RESERVE = f"""
WITH now AS (SELECT clock_timestamp() AS t)
UPDATE benchmarking.model_budgets
SET tokens = {_TOKENS} - CAST(:tokens AS double precision),
    requests = {_REQUESTS} - CAST(:requests AS double precision),
    refilled_at = greatest(refilled_at, now.t), updated_at = now.t
FROM now
WHERE llm = :llm
RETURNING tokens, requests, tpm * (1 - margin) / window_seconds, rpm * (1 - margin) / window_seconds,
          greatest(0, CAST(extract(epoch FROM blocked_until - now.t) AS double precision)), tpm, window_seconds
"""
# What a provider says is left, minus the margin, as a level: clamped to [0, the model's limit], since a header is
# untrusted input (ratelimits.py). NULL (no header) stays NULL: greatest and least would skip it.
_PROVIDER_LEVEL = """CASE WHEN CAST(:remaining_{kind} AS double precision) IS NOT NULL
    THEN least(greatest(CAST(:remaining_{kind} AS double precision) - margin * {limit}, 0), {limit}) END"""
# After the call: give back what the estimate over-reserved (or take what it under-reserved), then no more
# than the provider says is left, minus the margin. NULL remaining: the answer carried no header.
SETTLE = f"""
WITH now AS (SELECT clock_timestamp() AS t)
UPDATE benchmarking.model_budgets
SET tokens = least({_TOKENS} + CAST(:refund_tokens AS double precision),
                   coalesce({_PROVIDER_LEVEL.format(kind="tokens", limit="tpm")}, 'Infinity')),
    requests = least({_REQUESTS} + CAST(:refund_requests AS double precision),
                     coalesce({_PROVIDER_LEVEL.format(kind="requests", limit="rpm")}, 'Infinity')),
    refilled_at = greatest(refilled_at, now.t), updated_at = now.t
FROM now
WHERE llm = :llm
"""
# A 429: nobody calls the model before the time it named; the rejected request used no tokens.
BLOCK = """
WITH now AS (SELECT clock_timestamp() AS t)
UPDATE benchmarking.model_budgets
SET blocked_until = greatest(coalesce(blocked_until, now.t),
                             now.t + make_interval(secs => CAST(:wait_seconds AS double precision))),
    tokens = tokens + CAST(:refund_tokens AS double precision), updated_at = now.t
FROM now
WHERE llm = :llm
"""
UPSERT_BUDGET = """
INSERT INTO benchmarking.model_budgets AS budget (llm, tpm, rpm, margin, window_seconds, tokens, requests)
SELECT :llm, CAST(:tpm AS integer), CAST(:rpm AS integer), CAST(:margin AS double precision),
       CAST(:window_seconds AS double precision), CAST(:tpm AS integer) * (1 - CAST(:margin AS double precision)),
       CAST(:rpm AS integer) * (1 - CAST(:margin AS double precision))
ON CONFLICT (llm) DO UPDATE
SET tpm = excluded.tpm, rpm = excluded.rpm, margin = excluded.margin, window_seconds = excluded.window_seconds,
    tokens = excluded.tokens, requests = excluded.requests, refilled_at = clock_timestamp(), blocked_until = NULL,
    updated_at = clock_timestamp()
"""
SELECT_BUDGETS = """
SELECT llm, tpm, rpm, margin, window_seconds FROM benchmarking.model_budgets ORDER BY llm
"""
DELETE_BUDGET = "DELETE FROM benchmarking.model_budgets WHERE llm = :llm"


class BudgetExhausted(Throttled):
    """The model's shared budget has no room for this call before the invocation's deadline."""


class ReservationTooLarge(PermanentError):
    """A reservation needs more than the model's budget can ever grant at once (a full window plus the longest turn
    a caller sleeps for): no wait helps, only a larger budget."""


@dataclass(frozen=True)
class Budget:
    llm: str
    tpm: int
    rpm: int
    margin: float = DEFAULT_MARGIN
    window_seconds: float = DEFAULT_WINDOW_SECONDS

    def as_dict(self) -> dict[str, Any]:
        return {
            "llm": self.llm,
            "tpm": self.tpm,
            "rpm": self.rpm,
            "margin": self.margin,
            "window_seconds": self.window_seconds,
        }


def set_budget(connection: Connection, budget: Budget) -> None:
    """Create or change a model's budget; takes effect at the next call of any container (no deploy). The buckets
    start full and any 429 block is lifted: the operator's way out of a state a broken provider left behind."""
    if budget.tpm < 1 or budget.rpm < 1:
        raise ValueError(f"tpm and rpm must be >= 1, got {budget.tpm} and {budget.rpm}")
    if not 0 <= budget.margin < 1:
        raise ValueError(f"margin must be in [0, 1), got {budget.margin}")
    if budget.window_seconds <= 0:
        raise ValueError(f"window_seconds must be > 0, got {budget.window_seconds}")
    connection.run(
        UPSERT_BUDGET,
        llm=budget.llm,
        tpm=budget.tpm,
        rpm=budget.rpm,
        margin=budget.margin,
        window_seconds=budget.window_seconds,
    )


def list_budgets(connection: Connection) -> list[Budget]:
    return [
        Budget(llm, tpm, rpm, float(margin), float(window))
        for llm, tpm, rpm, margin, window in connection.run(SELECT_BUDGETS)
    ]


def delete_budget(connection: Connection, llm: str) -> bool:
    connection.run(DELETE_BUDGET, llm=llm)
    return bool(connection.row_count)


def image_tokens(width: int, height: int) -> int:
    """OpenAI's cost of a ``detail: high`` image: fit 2048x2048, shortest side 768, 85 + 170 per 512-px tile."""
    factor = min(1.0, 2048 / max(width, height))
    factor *= min(1.0, 768 / (min(width, height) * factor))
    return 85 + 170 * math.ceil(width * factor / 512) * math.ceil(height * factor / 512)


@dataclass
class Reservation:
    """What one order holds of its model's budget: the tokens still reserved for each invoice not yet answered."""

    llm: str
    paced: bool  # False: the model has no budget, nothing was reserved
    tokens: dict[int, int] = field(default_factory=dict)  # invoice_index -> tokens reserved for its call
    waited_seconds: float = 0.0
    # invoice_index -> tokens its call will reserve just before it is made: the order as a whole needs more than
    # one window grants (ReservationTooLarge), so its calls reserve one at a time.
    unreserved: dict[int, int] = field(default_factory=dict)
    call_seconds: float = 0.0  # what each of those reservations leaves before the deadline for its call


class ModelBudgets:
    """The consumer's side of the budgets: reserve for the whole order, wait or hand back, call, settle."""

    def __init__(
        self,
        pool: ConnectionPool,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        max_wait_seconds: float = MAX_PROVIDER_WAIT_SECONDS,
    ) -> None:
        self._pool = pool
        self._max_wait_seconds = max_wait_seconds  # MAX_PROVIDER_WAIT_SECONDS: the longest block a 429 may set
        self._clock = clock
        self._sleep = sleep
        self._recent_outputs: dict[str, deque[int]] = {}
        self._estimates_lock = threading.Lock()

    def estimate_tokens(self, llm: str, invoice: InvoiceImages) -> int:
        """Tokens the request will count: its images as the provider counts them, the prompt, the answer."""
        with self._estimates_lock:
            recent = self._recent_outputs.get(llm) or ()
            # A handful of short answers says little about the long ones: keep the first estimate until then.
            output = max(recent) if len(recent) >= MIN_ANSWERS_SEEN else max([FIRST_OUTPUT_ESTIMATE, *recent])
        images = sum(image_tokens(segment.width, segment.height) for segment in invoice.segments)
        return images + PROMPT_TOKENS + output

    def reserve(
        self, llm: str, invoices: Sequence[InvoiceImages], *, deadline: float, call_seconds: float
    ) -> Reservation:
        """Reserve every call of an order at once (one request per invoice), so that an order is never handed back
        half extracted: the calls then go one after another without waiting again."""
        tokens = {invoice.invoice_index: self.estimate_tokens(llm, invoice) for invoice in invoices}
        try:
            waited = self.reserve_tokens(
                llm, sum(tokens.values()), requests=len(tokens), deadline=deadline, call_seconds=call_seconds
            )
        except ReservationTooLarge:
            if len(tokens) == 1:
                raise
            return Reservation(llm, paced=True, unreserved=tokens, call_seconds=call_seconds)
        if waited is None:
            return Reservation(llm, paced=False)
        return Reservation(llm, paced=True, tokens=tokens, waited_seconds=waited)

    def reserve_tokens(
        self, llm: str, tokens: int, *, requests: int = 1, deadline: float, call_seconds: float
    ) -> float | None:
        """Take ``tokens`` and ``requests`` from the model's budget, sleeping for this caller's turn when it comes
        soon enough (see ``SLEEP_SHARE_OF_WINDOW``) and leaves ``call_seconds`` before ``deadline``; returns the
        seconds slept, None when the model has no budget; raises :class:`BudgetExhausted` (nothing kept)."""
        with self._pool.connection() as connection:
            rows = connection.run(RESERVE, llm=llm, tokens=tokens, requests=requests)
        if not rows:
            return None
        tokens_left, requests_left, token_rate, request_rate, blocked_seconds, tpm, window_seconds = rows[0]
        model_metric("TokenBudget", tpm, llm)  # the dashboard plots tokens used against it
        longest_sleep = min(MAX_SLEEP_SECONDS, SLEEP_SHARE_OF_WINDOW * window_seconds)
        self._refuse_unreachable(llm, tokens, requests, token_rate, request_rate, window_seconds + longest_sleep)
        wait = max(0.0, float(blocked_seconds or 0))
        if tokens_left < 0:
            wait = max(wait, -tokens_left / token_rate)
        if requests_left < 0:
            wait = max(wait, -requests_left / request_rate)
        if wait <= 0:
            return 0.0
        if wait > longest_sleep or self._clock() + wait + call_seconds > deadline:
            self._give_back(llm, tokens, requests=requests)
            model_metric("BudgetHandBacks", 1, llm)
            raise BudgetExhausted(
                f"model {llm} budget: next turn in {wait:.1f} s, later than this consumer waits",
                retry_after_seconds=wait,
            )
        model_metric("BudgetWaits", 1, llm)
        model_metric("BudgetWaitSeconds", wait, llm, unit="Seconds")
        self._sleep(wait)
        return wait

    def _refuse_unreachable(
        self, llm: str, tokens: int, requests: int, token_rate: float, request_rate: float, seconds: float
    ) -> None:
        """Raise :class:`ReservationTooLarge` (what was taken given back) when the reservation needs more than the
        budget grants in ``seconds`` (a full window and the longest sleep): its turn would never come."""
        most_tokens, most_requests = token_rate * seconds, request_rate * seconds
        if tokens <= most_tokens and requests <= most_requests:
            return
        self._give_back(llm, tokens, requests=requests)
        model_metric("BudgetTooSmall", 1, llm)
        raise ReservationTooLarge(
            f"model {llm} budget too small: {requests} call(s) of about {tokens} tokens in all need more than it can "
            f"ever grant at once ({most_tokens:.0f} tokens, {most_requests:.1f} requests); raise it with "
            f"`invoices budget {llm} --tpm N --rpm N`"
        )

    def settle(
        self,
        reservation: Reservation,
        invoice_index: int,
        used_tokens: int,
        output_tokens: int,
        state: RateLimitState | None,
    ) -> None:
        """Correct one call's reservation from the answer's usage and the provider's remaining limits."""
        with self._estimates_lock:
            self._recent_outputs.setdefault(reservation.llm, deque(maxlen=RECENT_ANSWERS)).append(output_tokens)
        reserved = reservation.tokens.pop(invoice_index, 0)
        if not reservation.paced:
            return
        with self._pool.connection() as connection:
            connection.run(
                SETTLE,
                llm=reservation.llm,
                refund_tokens=reserved - used_tokens,
                refund_requests=0,
                remaining_tokens=None if state is None else state.remaining_tokens,
                remaining_requests=None if state is None else state.remaining_requests,
            )

    def block(self, reservation: Reservation, wait_seconds: float) -> None:
        """The provider answered 429: hold every container off the model for ``wait_seconds``, and give back what
        this order still holds (the refused request used no tokens; its later calls will reserve again)."""
        tokens = sum(reservation.tokens.values())
        requests = max(0, len(reservation.tokens) - 1)  # the refused request counts against the limit
        reservation.tokens.clear()
        if not reservation.paced:
            return
        with self._pool.connection() as connection:
            connection.run(
                BLOCK, llm=reservation.llm, wait_seconds=self.provider_wait(wait_seconds), refund_tokens=tokens
            )
        if requests:
            self._give_back(reservation.llm, 0, requests=requests)

    def provider_wait(self, seconds: float) -> float:
        """A wait a provider named, as the budget may hold a model for it: in [0, MAX_PROVIDER_WAIT_SECONDS]."""
        return min(self._max_wait_seconds, max(0.0, seconds)) if math.isfinite(seconds) else 1.0

    def _give_back(self, llm: str, tokens: int, *, requests: int) -> None:
        with self._pool.connection() as connection:
            connection.run(
                SETTLE,
                llm=llm,
                refund_tokens=tokens,
                refund_requests=requests,
                remaining_tokens=None,
                remaining_requests=None,
            )

    def extract(
        self, extractor: Extractor, invoice: InvoiceImages, reservation: Reservation, *, deadline: float
    ) -> ExtractedInvoice:
        """``extractor.extract`` for one invoice of a reserved order (see the module docstring)."""
        llm = reservation.llm
        if invoice.invoice_index in reservation.unreserved:  # this order reserves call by call
            tokens = reservation.unreserved.pop(invoice.invoice_index)
            waited = self.reserve_tokens(llm, tokens, deadline=deadline, call_seconds=reservation.call_seconds)
            reservation.tokens[invoice.invoice_index] = tokens
            reservation.waited_seconds += waited or 0.0
        try:
            result = extractor.extract(invoice, deadline=deadline)
        except Throttled as error:
            model_metric("ThrottledCalls", 1, llm)
            self.block(reservation, error.retry_after_seconds or 1.0)
            raise
        used = result.input_tokens + result.output_tokens
        model_metric("TokensUsed", used, llm)
        self.settle(reservation, invoice.invoice_index, used, result.output_tokens, result.rate_limits)
        return result
