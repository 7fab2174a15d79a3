"""A provider's rate-limit headers are input like any other: broken or hostile values name no wait or a bounded one,
and never raise (they are read after a billed call)."""

from __future__ import annotations

import pytest

from invoice_pipeline.errors import Throttled
from invoice_pipeline.ratelimits import MAX_PROVIDER_WAIT_SECONDS, parse_duration, rate_limit_state, retry_after_seconds

NOT_FINITE = ["nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-1e400"]


@pytest.mark.parametrize("value", NOT_FINITE)
def test_a_wait_that_is_not_a_finite_number_names_no_wait(value: str) -> None:
    assert retry_after_seconds({"retry-after": value}) is None
    assert retry_after_seconds({"retry-after-ms": value}) is None
    assert parse_duration(value) is None
    assert Throttled("x", retry_after_seconds=float(value)).retry_after_seconds is None


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "1e300"},
        {"retry-after-ms": "9" * 40},
        {"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"},
        {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "99999999h"},
    ],
)
def test_a_huge_or_far_away_wait_is_bounded(headers: dict[str, str]) -> None:
    assert retry_after_seconds(headers) == MAX_PROVIDER_WAIT_SECONDS


@pytest.mark.parametrize(
    "value", ["-5", "Fri, 31 Dec 1999 23:59:59 GMT", "Mon, 99 Foo 0000 99:99:99 GMT", "\x00", "1_000", "0x10"]
)
def test_a_negative_past_or_garbage_wait_is_never_negative(value: str) -> None:
    for name in ("retry-after", "retry-after-ms"):
        wait = retry_after_seconds({name: value})
        assert wait is None or 0 <= wait <= MAX_PROVIDER_WAIT_SECONDS
    assert Throttled("x", retry_after_seconds=-5.0).retry_after_seconds == 0


@pytest.mark.parametrize("value", [*NOT_FINITE, "-1e300", "-1", "1e300", "garbage", "9" * 5000])
def test_remaining_limits_are_never_negative_and_never_raise(value: str) -> None:
    state = rate_limit_state(
        {
            "x-ratelimit-limit-tokens": value,
            "x-ratelimit-remaining-tokens": value,
            "x-ratelimit-remaining-requests": value,
            "x-ratelimit-reset-tokens": value,
        }
    )
    for number in (
        (state.remaining_tokens, state.remaining_requests, state.limit_tokens, state.reset_tokens_seconds)
        if state
        else ()
    ):
        assert number is None or 0 <= number <= 1e15
