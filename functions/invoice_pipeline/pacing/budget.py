"""A token and request budget per model, shared by every container: calls are paced instead of refused.

Each model with a row in ``benchmarking.model_budgets`` (``invoices budget MODEL --tpm N --rpm N``) has two token
buckets, tokens and requests, holding at most ``(1 - margin)`` of a window's allowance (a minute; shorter in the
scaled-down benchmarks) and refilled continuously, as the provider's own limits are. Before it fetches an order's
images the consumer reserves the order's estimated tokens and one request per invoice with ONE atomic ``UPDATE ...
RETURNING`` (its turn), then brings the holding to the prepared images' own estimate: the level may go negative,
and how far says how long this caller must wait for its turn (virtual scheduling: every concurrent caller gets its
own slot, nobody is refused for being second).

Waiting: a turn that comes soon (:data:`SLEEP_SHARE_OF_WINDOW`) is slept for inside the invocation. A later one
raises :class:`BudgetExhausted`: the consumer releases its claim without counting an attempt and hands the job back
ONCE as a fresh delayed message. A turn at most :data:`HOLD_TURN_WINDOWS` ahead is held (the tokens stay reserved,
the ledger row remembers them, the message comes back when the turn has come, and the call goes ahead without
reserving again); a turn further ahead is given back and the job returns :data:`RETURN_AHEAD_WINDOWS` before it to
reserve again, by then with estimates learnt from the answers in between.

Estimates (:class:`TokenEstimator`, per container): the images as the model's provider counts them
(:mod:`invoice_pipeline.pacing.image_tokens`), the prompt's text as the model's recent answers reported it (input tokens
minus the image estimate), and the answer as a running quantile of the recent answers' output tokens. After the call
the reservation is corrected from the answer's ``usage``, and the level is lowered to what the provider's
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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from invoice_pipeline.errors import PermanentError, Throttled
from invoice_pipeline.extractor import ExtractedInvoice, Extractor, InvoiceImages
from invoice_pipeline.observability import model_metric
from invoice_pipeline.pacing.image_tokens import image_tokens
from invoice_pipeline.ratelimits import MAX_PROVIDER_WAIT_SECONDS, RateLimitState
from invoice_pipeline.tables.db import Connection, ConnectionPool

DEFAULT_MARGIN = 0.05  # of each limit kept free: other users of the key, estimates that come out short
DEFAULT_WINDOW_SECONDS = 60.0
# Text of a request besides its images (system prompt and instructions, ~1,100 characters) in tokens, until the
# model's answers say how many it counts.
PROMPT_TOKENS = 300
# Output tokens reserved before a model's answers are seen; then OUTPUT_QUANTILE of its recent answers.
FIRST_OUTPUT_ESTIMATE = 600
# A quantile, not the largest answer: the largest over-reserves every call (a window then served 74-82% of its budget,
# measured). bench/rate_limits.py, small scenario: the median under-reserved small calls enough to be refused (0.21
# of gpt-4.1-mini's calls answered 429), the 0.9 quantile spaced the turns 7% too wide (0.88-0.89 of budget served).
OUTPUT_QUANTILE = 0.75
PROMPT_QUANTILE = 0.75
# The longest turn a caller sleeps for inside an invocation: a quarter of the window, at most 15 s. A later turn
# hands the job back, so the consumer is free for the other models' jobs instead of sleeping for this one's.
SLEEP_SHARE_OF_WINDOW = 0.25
MAX_SLEEP_SECONDS = 15.0
# A turn at most this many windows ahead is held while the job waits in a delayed message; a later one is given
# back and the job returns RETURN_AHEAD_WINDOWS before it (so the budget always has a window of jobs in hand).
HOLD_TURN_WINDOWS = 2.0
RETURN_AHEAD_WINDOWS = 1.0

# An invoice's size before any of a model's invoices has been seen: an A4 page as sent (scaled to 768 px wide).
A4_AS_SENT = (768, 1086)
# Kept per container, like the SDK clients: each model's recent answers (output tokens, prompt text tokens).
RECENT_ANSWERS = 50
MIN_ANSWERS_SEEN = 5


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
    """The model's shared budget has no room for this order before the invocation's deadline.

    ``retry_after_seconds``: when the job should come back; ``turn_seconds``: when its turn is; ``held_tokens``:
    the tokens still reserved for that turn (0: given back, the job reserves again when it returns)."""

    def __init__(
        self, message: str, *, retry_after_seconds: float, turn_seconds: float, held_tokens: int, held_requests: int = 0
    ) -> None:
        super().__init__(message, retry_after_seconds=retry_after_seconds)
        self.turn_seconds = turn_seconds
        self.held_tokens = held_tokens
        self.held_requests = held_requests


@dataclass(frozen=True)
class HeldTurn:
    """What an order handed back for its turn still holds of its model's budget (from the ledger row)."""

    tokens: int
    seconds_left: float  # until the turn; <= 0 once it has come


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


def _quantile(values: Sequence[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


class TokenEstimator:
    """Per container, like the SDK clients: each model's recent answers, and the tokens a call will count from them.

    Input: the images by the model's own rule (:mod:`invoice_pipeline.pacing.image_tokens`) plus the prompt's text,
    learnt as what the answers reported beyond the images. Output: :data:`OUTPUT_QUANTILE` of the recent answers once
    :data:`MIN_ANSWERS_SEEN` are in, else the larger of :data:`FIRST_OUTPUT_ESTIMATE` and the longest seen."""

    def __init__(self) -> None:
        self._outputs: dict[str, deque[int]] = {}
        self._prompts: dict[str, deque[int]] = {}
        self._estimates: dict[str, deque[int]] = {}  # recent invoices' estimates, images prepared
        self._lock = threading.Lock()

    def image_tokens(self, llm: str, invoice: InvoiceImages) -> int:
        return sum(image_tokens(llm, segment.width, segment.height) for segment in invoice.segments)

    def prompt_tokens(self, llm: str) -> int:
        with self._lock:
            recent = self._prompts.get(llm) or ()
            return _quantile(recent, PROMPT_QUANTILE) if len(recent) >= MIN_ANSWERS_SEEN else PROMPT_TOKENS

    def output_tokens(self, llm: str) -> int:
        with self._lock:
            recent = self._outputs.get(llm) or ()
            if len(recent) >= MIN_ANSWERS_SEEN:
                return _quantile(recent, OUTPUT_QUANTILE)
            return max([FIRST_OUTPUT_ESTIMATE, *recent])

    def estimate(self, llm: str, invoice: InvoiceImages) -> int:
        """Tokens the request will count: its images as the provider counts them, the prompt, the answer."""
        return self.image_tokens(llm, invoice) + self.prompt_tokens(llm) + self.output_tokens(llm)

    def invoice_tokens(self, llm: str) -> int:
        """What one invoice of ``llm`` is estimated at, before its images are seen: the mean of the recent invoices'
        estimates (the same estimate an order's holding is brought to once its images are prepared, so that turns
        spaced with it do not slide later then: measured 3.7 deliveries per order when they did), else an A4 page at
        the model's image rule with the prompt and answer estimates."""
        with self._lock:
            recent = self._estimates.get(llm) or ()
            if len(recent) >= MIN_ANSWERS_SEEN:
                return math.ceil(sum(recent) / len(recent))
        return image_tokens(llm, *A4_AS_SENT) + self.prompt_tokens(llm) + self.output_tokens(llm)

    def learn_estimates(self, llm: str, estimates: Iterable[int]) -> None:
        with self._lock:
            self._estimates.setdefault(llm, deque(maxlen=RECENT_ANSWERS)).extend(estimates)

    def learn(self, llm: str, *, image_tokens: int, input_tokens: int, output_tokens: int) -> None:
        """One answer's ``usage``: its output, and its input beyond the images (the prompt's text as counted)."""
        with self._lock:
            self._outputs.setdefault(llm, deque(maxlen=RECENT_ANSWERS)).append(output_tokens)
            if input_tokens > 0:
                prompt = max(0, input_tokens - image_tokens)
                self._prompts.setdefault(llm, deque(maxlen=RECENT_ANSWERS)).append(prompt)


@dataclass(frozen=True)
class Turn:
    """An order's place in its model's budget, taken before its images are fetched: the tokens and requests held."""

    llm: str
    paced: bool  # False: the model has no budget, nothing was reserved
    tokens: int = 0
    requests: int = 0
    waited_seconds: float = 0.0
    starts_at: float | None = None  # the clock's time of the turn; the images are prepared while it comes
    per_call: bool = False  # the order needs more than one window grants: each call reserves just before it is made
    call_seconds: float = 0.0  # what each of those reservations leaves before the deadline for its call


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
    image_tokens: dict[int, int] = field(default_factory=dict)  # invoice_index -> its images' estimate


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
        self.estimator = TokenEstimator()

    def estimate_tokens(self, llm: str, invoice: InvoiceImages) -> int:
        return self.estimator.estimate(llm, invoice)

    def take_turn(
        self,
        llm: str,
        invoice_count: int,
        *,
        deadline: float,
        call_seconds: float,
        held: HeldTurn | None = None,
    ) -> Turn:
        """The order's turn, before anything is fetched: a delivery that must wait costs no S3 read and no image work.

        Every call of the order is reserved at once (one request per invoice, each at the model's usual invoice:
        :meth:`TokenEstimator.invoice_tokens`), so that an order is never handed back half extracted. ``held``: the
        turn this order was handed back for (from the ledger), used instead of reserving again. Sleeps for a turn
        that comes soon (in :meth:`reserve`, after the images are prepared); raises :class:`BudgetExhausted` for a
        later one."""
        if held is not None:
            wait = self._wait_for_held_turn(llm, held, deadline, call_seconds)
            return Turn(llm, True, held.tokens, invoice_count, wait, self._clock() + wait)
        tokens = invoice_count * self.estimator.invoice_tokens(llm)
        try:
            waited = self.reserve_tokens(
                llm, tokens, requests=invoice_count, deadline=deadline, call_seconds=call_seconds, sleep=False
            )
        except ReservationTooLarge:
            if invoice_count == 1:
                raise
            # The order as a whole needs more than one window grants: its calls reserve one at a time instead.
            return Turn(llm, True, per_call=True, call_seconds=call_seconds)
        if waited is None:
            return Turn(llm, False)
        return Turn(llm, True, tokens, invoice_count, waited, self._clock() + waited)

    def reserve(self, turn: Turn, invoices: Sequence[InvoiceImages]) -> Reservation:
        """The turn's holding brought to the prepared invoices' own estimates (no new place in the queue), per
        invoice, for :meth:`extract` and :meth:`settle`."""
        llm = turn.llm
        tokens = {invoice.invoice_index: self.estimate_tokens(llm, invoice) for invoice in invoices}
        images = {invoice.invoice_index: self.estimator.image_tokens(llm, invoice) for invoice in invoices}
        self.estimator.learn_estimates(llm, tokens.values())
        if not turn.paced:
            return Reservation(llm, paced=False, image_tokens=images)
        if turn.per_call:
            return Reservation(llm, paced=True, unreserved=tokens, call_seconds=turn.call_seconds, image_tokens=images)
        if sum(tokens.values()) != turn.tokens:
            self._give_back(llm, turn.tokens - sum(tokens.values()), requests=0)
        if turn.starts_at is not None and turn.starts_at > self._clock():
            self._sleep(turn.starts_at - self._clock())  # what is left of the wait once the images are prepared
        return Reservation(llm, paced=True, tokens=tokens, waited_seconds=turn.waited_seconds, image_tokens=images)

    def release(self, turn: Turn) -> None:
        """Give a turn back unused (the order failed before any call: an image could not be read, say)."""
        if turn.paced and (turn.tokens or turn.requests):
            self._give_back(turn.llm, turn.tokens, requests=turn.requests)

    def _wait_for_held_turn(self, llm: str, held: HeldTurn, deadline: float, call_seconds: float) -> float:
        """The order comes back for the turn it holds (its message was delayed until about then): go, after a short
        wait if the turn is still a little ahead, or hand it back again holding the same tokens."""
        wait = max(0.0, held.seconds_left)
        if wait <= 0:
            return 0.0
        if wait <= MAX_SLEEP_SECONDS and self._clock() + wait + call_seconds <= deadline:
            return wait
        raise BudgetExhausted(
            f"model {llm} budget: the order's turn is in {wait:.1f} s",
            retry_after_seconds=wait,
            turn_seconds=wait,
            held_tokens=held.tokens,
        )

    def reserve_tokens(
        self, llm: str, tokens: int, *, requests: int = 1, deadline: float, call_seconds: float, sleep: bool = True
    ) -> float | None:
        """Take ``tokens`` and ``requests`` from the model's budget; this caller's turn is the returned number of
        seconds away when it comes soon enough (see ``SLEEP_SHARE_OF_WINDOW``) and leaves ``call_seconds`` before
        ``deadline`` (slept for here unless ``sleep`` is False); None when the model has no budget; a later turn
        raises :class:`BudgetExhausted`, holding the tokens for it or giving them back (see the module docstring)."""
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
            model_metric("BudgetHandBacks", 1, llm)
            message = f"model {llm} budget: next turn in {wait:.1f} s, later than this consumer waits"
            if wait <= HOLD_TURN_WINDOWS * window_seconds:
                raise BudgetExhausted(
                    message, retry_after_seconds=wait, turn_seconds=wait, held_tokens=tokens, held_requests=requests
                )
            self._give_back(llm, tokens, requests=requests)
            come_back = wait - RETURN_AHEAD_WINDOWS * window_seconds
            raise BudgetExhausted(message, retry_after_seconds=come_back, turn_seconds=wait, held_tokens=0)
        model_metric("BudgetWaits", 1, llm)
        model_metric("BudgetWaitSeconds", wait, llm, unit="Seconds")
        if sleep:
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
        self.estimator.learn(
            reservation.llm,
            image_tokens=reservation.image_tokens.get(invoice_index, 0),
            input_tokens=used_tokens - output_tokens,
            output_tokens=output_tokens,
        )
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

    def give_back(self, llm: str, tokens: int, *, requests: int) -> None:
        """Return a holding the caller could not keep (the order was not handed back for its turn after all)."""
        self._give_back(llm, tokens, requests=requests)

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
