import pytest

from invoice_pipeline.ratelimits import RateLimitState, parse_duration, rate_limit_state, retry_after_seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("6m0s", 360.0), ("1s", 1.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("0.5", 0.5), ("17", 17.0)],
)
def test_reset_durations_are_read_as_openai_writes_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [None, "", "soon", "6x", "1s and more"])
def test_unreadable_durations_are_none(text: str | None) -> None:
    assert parse_duration(text) is None


def test_retry_after_ms_wins_over_retry_after() -> None:
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "20"}) == 1.5


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert retry_after_seconds({"Retry-After": "20"}) == 20
    date = "Sun, 29 Nov 2026 12:00:30 GMT"
    now = 1795953600.0  # 2026-11-29 12:00:00 UTC
    assert retry_after_seconds({"retry-after": date}, now=now) == pytest.approx(30)


def test_without_retry_after_the_exhausted_limits_reset_names_the_wait() -> None:
    headers = {
        "x-ratelimit-remaining-requests": "12",
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    assert retry_after_seconds(headers) == 360
    assert retry_after_seconds({}) is None
    assert retry_after_seconds(None) is None


def test_the_state_of_the_limits_is_read_from_any_answer() -> None:
    state = rate_limit_state(
        {
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-limit-tokens": "30000",
            "x-ratelimit-remaining-requests": "499",
            "x-ratelimit-remaining-tokens": "28745",
            "x-ratelimit-reset-requests": "120ms",
            "x-ratelimit-reset-tokens": "2.51s",
        }
    )
    assert state == RateLimitState(500, 30000, 499, 28745, 0.12, 2.51)
    assert rate_limit_state({"content-type": "application/json"}) is None


def test_capacity_is_the_budget_over_what_one_order_costs() -> None:
    from invoice_pipeline.pacing.budget import Budget
    from invoice_pipeline.tables.ledger_reads import ModelMeasurements
    from invoices_cli.controls import capacity_plan

    measured = ModelMeasurements("gpt-4o", 100, tokens_per_order=2000, invoices_per_order=2, seconds_per_order=12,
                                 backlog=12_000)  # fmt: skip
    plan = capacity_plan(measured, Budget("gpt-4o", tpm=100_000, rpm=40, margin=0.0))
    # Tokens allow 50 orders/min, requests only 20 (2 per order): 1,200/hour, 20/60 x 12 s = 4 consumers, 10 h.
    assert (plan["orders_per_hour"], plan["concurrency"], plan["drain_hours"]) == (1200, 4, 10)
    assert capacity_plan(measured, None)["concurrency"] is None
