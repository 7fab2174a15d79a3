"""The shared budget row stays usable whatever a provider's headers say, and an operator can always reset it."""

from __future__ import annotations

import time

import pytest

from invoice_pipeline.errors import PermanentError
from invoice_pipeline.extractor import ExtractedInvoice, InvoiceImages, PreparedImage
from invoice_pipeline.pacing.budget import Budget, ModelBudgets, Reservation, set_budget
from invoice_pipeline.ratelimits import RateLimitState
from invoice_pipeline.tables import db
from tests.integration.cli import run_cli

LLM = "gpt-4o-2024-11-20"


def row(sql) -> tuple[float, float, float | None]:
    """(tokens, requests, seconds until blocked_until or None)."""
    tokens, requests, blocked = sql.run(
        "SELECT tokens, requests, extract(epoch FROM blocked_until - now()) FROM benchmarking.model_budgets"
        " WHERE llm = :l",
        l=LLM,
    )[0]
    return float(tokens), float(requests), None if blocked is None else float(blocked)


@pytest.fixture
def budgets(database: str) -> ModelBudgets:
    with db.pool.connection() as connection:
        set_budget(connection, Budget(LLM, tpm=30_000, rpm=500, margin=0.0, window_seconds=60))
    return ModelBudgets(db.pool, sleep=lambda seconds: None)


@pytest.mark.parametrize(
    ("remaining", "tokens"),
    [(-(10**300), 0.0), (10**300, 30_000.0), (-1, 0.0), (12_000, 12_000.0)],
    ids=["-1e300", "1e300", "-1", "12000"],
)
def test_a_provider_remaining_value_is_clamped_to_the_limit(budgets, sql, remaining: int, tokens: float):
    state = RateLimitState(remaining_tokens=remaining, remaining_requests=remaining)
    budgets.settle(Reservation(LLM, paced=True, tokens={0: 0}), 0, 0, 0, state)
    level, requests, _ = row(sql)
    assert level == pytest.approx(tokens, abs=50)
    assert 0 <= requests <= 500


@pytest.mark.parametrize("wait", [1e300, 10**12])
def test_a_provider_wait_is_clamped_to_the_longest_wait(database: str, sql, wait: float):
    with db.pool.connection() as connection:
        set_budget(connection, Budget(LLM, tpm=30_000, rpm=500))
    ModelBudgets(db.pool, max_wait_seconds=120).block(Reservation(LLM, paced=True), wait)
    assert row(sql)[2] == pytest.approx(120, abs=5)


def test_invoices_budget_resets_the_level_and_the_block(budgets, sql, capsys):
    sql.run(
        "UPDATE benchmarking.model_budgets SET tokens = -1e300, requests = -1e300,"
        " blocked_until = '9999-12-31 23:59:59+00' WHERE llm = :l",
        l=LLM,
    )
    code, _ = run_cli(capsys, "budget", LLM, "--tpm", "30000", "--rpm", "500")
    assert code == 0
    tokens, requests, blocked = row(sql)
    assert tokens == pytest.approx(30_000 * 0.95) and requests == pytest.approx(500 * 0.95)
    assert blocked is None


# --- reservations no window can grant ----------------------------------------------------------------------------

A4_SCAN = PreparedImage(b"", "image/png", 1240, 1754)  # 1,105 image tokens as OpenAI counts them


class AnsweringExtractor:
    """Answers every invoice at once with a fixed usage (the budget's side is under test, not a provider)."""

    llm = LLM

    def prepare(self, data: bytes, *, source: str) -> tuple[PreparedImage, ...]:
        return (A4_SCAN,)

    def extract(self, invoice: InvoiceImages, *, deadline: float) -> ExtractedInvoice:
        return ExtractedInvoice(invoice.invoice_index, None, None, (), input_tokens=1405, output_tokens=200)


def order_of(invoices: int) -> list[InvoiceImages]:
    return [InvoiceImages(1, index, (A4_SCAN,)) for index in range(invoices)]


def after_one_long_answer(tpm: int) -> ModelBudgets:
    """A container that has seen one 16,000-token answer: it now estimates 17,405 tokens per A4 invoice."""
    with db.pool.connection() as connection:
        set_budget(connection, Budget(LLM, tpm=tpm, rpm=500, margin=0.05, window_seconds=60))
    budgets = ModelBudgets(db.pool, sleep=lambda seconds: None)
    budgets.settle(Reservation(LLM, paced=False), 0, 0, 16_000, None)
    assert budgets.estimate_tokens(LLM, order_of(1)[0]) == 17_405
    return budgets


def test_an_order_larger_than_a_window_reserves_per_invoice_instead_of_waiting_forever(database: str, sql):
    # tpm 30,000 (28,500 usable) grants at most 35,625 tokens at once (a full window and a 15 s turn); the order
    # needs 3 x 17,405 = 52,215: reserved whole it would be handed back until MAX_THROTTLE_WAIT_SECONDS fails it.
    budgets = after_one_long_answer(30_000)
    turn = budgets.take_turn(LLM, 3, deadline=time.monotonic() + 300, call_seconds=10)
    assert turn.per_call
    reservation = budgets.reserve(turn, order_of(3))
    assert row(sql)[0] == pytest.approx(28_500, abs=100)  # nothing held yet: each call reserves its own turn
    result = budgets.extract(AnsweringExtractor(), order_of(3)[0], reservation, deadline=time.monotonic() + 300)
    assert result.invoice_index == 0
    assert row(sql)[0] == pytest.approx(28_500 - 1_605, abs=100)  # one call reserved, then settled on its usage


def test_an_invoice_larger_than_any_window_fails_at_once_naming_the_budget_to_raise(database: str, sql):
    budgets = after_one_long_answer(10_000)  # grants at most 11,875 tokens at once: one invoice needs 17,405
    with pytest.raises(PermanentError, match=rf"invoices budget {LLM} --tpm"):
        budgets.take_turn(LLM, 1, deadline=time.monotonic() + 300, call_seconds=10)
    assert row(sql)[0] == pytest.approx(9_500, abs=100)  # what it took is given back
