"""The per-model budget in Postgres: reservations queue up for their turn, late turns hand back, answers correct it."""

from __future__ import annotations

import threading

import pg8000.native
import pytest

from invoice_pipeline.extractor import InvoiceImages, PreparedImage
from invoice_pipeline.pacing.budget import (
    Budget,
    BudgetExhausted,
    HeldTurn,
    ModelBudgets,
    Reservation,
    delete_budget,
    list_budgets,
    set_budget,
)
from invoice_pipeline.ratelimits import RateLimitState
from invoice_pipeline.tables import db

LLM = "gpt-4o-2024-11-20"


class Clock:
    """Sleeps are recorded, not slept: the budget's arithmetic is checked, not the machine's timer."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def level(sql: pg8000.native.Connection) -> tuple[float, float]:
    tokens, requests = sql.run("SELECT tokens, requests FROM benchmarking.model_budgets WHERE llm = :l", l=LLM)[0]
    return float(tokens), float(requests)


@pytest.fixture
def budgets(database: str) -> ModelBudgets:
    clock = Clock()
    budgets = ModelBudgets(db.pool, clock=clock, sleep=clock.sleep)
    budgets.clock = clock  # type: ignore[attr-defined]
    return budgets


def test_a_model_without_a_budget_is_not_paced(budgets: ModelBudgets):
    assert budgets.reserve_tokens(LLM, 10_000, deadline=2000, call_seconds=10) is None


def test_reservations_beyond_the_window_wait_for_their_own_turn(budgets, sql):
    with db.pool.connection() as connection:
        set_budget(connection, Budget(LLM, tpm=6000, rpm=100, margin=0.0, window_seconds=60))
    clock = budgets.clock
    # 6000 tokens per minute = 100 per second: ten calls of 600 fit, the 11th waits 6 s, the 12th 12 s; the 13th
    # would wait 18 s, more than a quarter of the window: it is handed back, holding its turn (18 s is within a
    # window and a half), so its 600 tokens stay reserved for it.
    for _ in range(12):
        budgets.reserve_tokens(LLM, 600, deadline=clock.now + 300, call_seconds=10)
    assert clock.slept == [pytest.approx(6, abs=0.5), pytest.approx(12, abs=0.5)]
    with pytest.raises(BudgetExhausted) as raised:
        budgets.reserve_tokens(LLM, 600, deadline=clock.now + 300, call_seconds=10)
    assert raised.value.retry_after_seconds == pytest.approx(18, abs=0.5)
    assert raised.value.turn_seconds == pytest.approx(18, abs=0.5) and raised.value.held_tokens == 600
    assert level(sql)[0] == pytest.approx(-1800, abs=50)


def test_a_turn_beyond_the_hold_horizon_is_given_back_and_the_job_returns_a_window_before_it(budgets, sql):
    with db.pool.connection() as connection:
        set_budget(connection, Budget(LLM, tpm=6000, rpm=100, margin=0.0, window_seconds=60))
    clock = budgets.clock
    with db.pool.connection() as connection:
        connection.run("UPDATE benchmarking.model_budgets SET tokens = -12000 WHERE llm = :l", l=LLM)
    with pytest.raises(BudgetExhausted) as raised:  # its turn: 12,600 tokens at 100 per second, 126 s away
        budgets.reserve_tokens(LLM, 600, deadline=clock.now + 300, call_seconds=10)
    assert raised.value.turn_seconds == pytest.approx(126, abs=1) and raised.value.held_tokens == 0
    assert raised.value.retry_after_seconds == pytest.approx(66, abs=1)  # one window before the turn
    assert level(sql)[0] == pytest.approx(-12000, abs=50)  # given back


def test_a_held_turn_is_taken_without_reserving_again_and_corrected_to_the_prepared_estimate(budgets, sql):
    with db.pool.connection() as connection:
        set_budget(connection, Budget(LLM, tpm=6000, rpm=100, margin=0.0, window_seconds=60))
        connection.run("UPDATE benchmarking.model_budgets SET tokens = 0 WHERE llm = :l", l=LLM)
    invoice = InvoiceImages(1, 0, (PreparedImage(b"", "image/jpeg", 768, 1086),))
    estimate = budgets.estimate_tokens(LLM, invoice)
    turn = budgets.take_turn(
        LLM, 1, deadline=budgets.clock.now + 300, call_seconds=10, held=HeldTurn(estimate + 400, -0.5)
    )
    reservation = budgets.reserve(turn, [invoice])
    assert reservation.paced and reservation.tokens == {0: estimate} and budgets.clock.slept == []
    assert level(sql)[0] == pytest.approx(400, abs=50)  # only the over-estimate came back


def test_a_turn_is_taken_at_the_models_usual_invoice_and_given_back_when_the_order_fails_before_a_call(budgets, sql):
    with db.pool.connection() as connection:
        set_budget(connection, Budget(LLM, tpm=60_000, rpm=100, margin=0.0, window_seconds=60))
    turn = budgets.take_turn(LLM, 2, deadline=budgets.clock.now + 300, call_seconds=10)
    # Before any invoice of the model was seen: an A4 page at gpt-4o's rule (1,105), the prompt and answer estimates.
    assert turn.tokens == 2 * (1105 + 300 + 600) and turn.requests == 2
    budgets.release(turn)
    assert level(sql) == (pytest.approx(60_000, abs=50), pytest.approx(100, abs=0.5))


def test_the_margin_keeps_part_of_each_limit_free(budgets, sql):
    with db.pool.connection() as connection:
        set_budget(connection, Budget(LLM, tpm=10_000, rpm=10, margin=0.1, window_seconds=60))
    assert level(sql) == (pytest.approx(9000), pytest.approx(9))


def test_answers_correct_the_estimate_and_the_provider_remaining_caps_the_level(budgets, sql):
    with db.pool.connection() as connection:
        set_budget(connection, Budget(LLM, tpm=600_000, rpm=1000, margin=0.0, window_seconds=60))
    budgets.reserve_tokens(LLM, 5000, deadline=2000, call_seconds=10)
    reservation = Reservation(LLM, paced=True, tokens={0: 5000})
    budgets.settle(reservation, 0, used_tokens=3000, output_tokens=200, state=None)
    assert level(sql)[0] == pytest.approx(597_000, abs=200)  # 2000 given back
    budgets.settle(reservation, 1, used_tokens=0, output_tokens=0, state=RateLimitState(remaining_tokens=1000))
    assert level(sql)[0] == pytest.approx(1000, abs=200)  # another user of the key took the rest


def test_a_provider_429_holds_every_caller_off_until_the_time_it_named(budgets):
    with db.pool.connection() as connection:
        set_budget(connection, Budget(LLM, tpm=600_000, rpm=1000, margin=0.0, window_seconds=60))
    budgets.block(Reservation(LLM, paced=True), 12)
    clock = budgets.clock
    budgets.reserve_tokens(LLM, 100, deadline=clock.now + 300, call_seconds=10)
    assert clock.slept and 11 <= clock.slept[0] <= 12


def test_concurrent_containers_never_overbook_the_window(database: str, sql):
    with db.pool.connection() as connection:
        set_budget(connection, Budget(LLM, tpm=60_000, rpm=10_000, margin=0.0, window_seconds=60))
    waits: list[float] = []
    handed_back: list[float] = []
    lock = threading.Lock()

    def container() -> None:
        clock = Clock()
        budgets = ModelBudgets(db.pool, clock=clock, sleep=clock.sleep)
        for _ in range(10):
            try:
                budgets.reserve_tokens(LLM, 1000, deadline=clock.now + 10_000, call_seconds=0)
            except BudgetExhausted as error:
                with lock:
                    handed_back.append(error.retry_after_seconds or 0)
        with lock:
            waits.extend(clock.slept)

    threads = [threading.Thread(target=container) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 80 calls of 1000 tokens at 60,000 per minute (1000 per second): 60 go at once, the next 15 wait their turn
    # 1 s apart (the window refills a little in real time meanwhile), the rest would wait more than 15 s: they are
    # handed back holding their turns (within a window and a half), so all 80 stay reserved, none twice.
    assert len(waits) + len(handed_back) == 20
    assert 14 <= len(waits) <= 17 and max(waits) <= 15 and min(handed_back) > 15
    assert len(set(round(wait) for wait in waits)) == len(waits)  # every caller its own turn
    assert level(sql)[0] >= -20_500


def test_budgets_are_listed_changed_and_removed(database: str):
    with db.pool.connection() as connection:
        set_budget(connection, Budget(LLM, tpm=30_000, rpm=500))
        set_budget(connection, Budget(LLM, tpm=40_000, rpm=600, margin=0.1))
        assert list_budgets(connection) == [Budget(LLM, 40_000, 600, 0.1, 60.0)]
        with pytest.raises(ValueError, match="margin"):
            set_budget(connection, Budget(LLM, tpm=1, rpm=1, margin=1.5))
        assert delete_budget(connection, LLM) and list_budgets(connection) == []
