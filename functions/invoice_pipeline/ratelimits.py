"""What a provider's answer says about its rate limits: how long to wait, what is left of the window.

OpenAI sends ``retry-after-ms`` / ``Retry-After`` on a 429 and ``x-ratelimit-{limit,remaining,reset}-
{requests,tokens}`` on every answer (resets written like ``6m0s``, ``1s``, ``20ms``). Providers call
:func:`retry_after_seconds` to fill :class:`invoice_pipeline.errors.Throttled` and :func:`rate_limit_state` to
let the budget (:mod:`invoice_pipeline.pacing.budget`) learn what the provider still allows. No SDK is imported here.

The headers are read after a billed call and shared by every container through the budget, so they are treated as
hostile input: a value that is not a finite number (``nan``, ``inf``, ``1e400``) or not readable names nothing
(None), a negative count or wait is 0, a wait is at most :data:`MAX_PROVIDER_WAIT_SECONDS` (an HTTP date in the
year 9999 included) and a count at most :data:`MAX_COUNT`. Nothing here raises on a header's value.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

# The longest wait an answer can name; the consumer's MAX_PROVIDER_WAIT_SECONDS may lower it further.
MAX_PROVIDER_WAIT_SECONDS = 3600.0
# No provider counts more tokens or requests per window than this; a larger count is taken as this (the budget
# clamps it again to the model's own limit).
MAX_COUNT = 10**15

# "1h2m3.5s", "6m0s", "20ms", "0.5s": the Go-style durations of OpenAI's x-ratelimit-reset-* headers.
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str | None) -> float | None:
    """Seconds in a Go-style duration (``6m0s``, ``1s``, ``20ms``), a bare number of seconds, or None."""
    if text is None:
        return None
    value = text.strip().lower()
    if not value:
        return None
    seconds = _number(value)
    if seconds is None:
        parts = _DURATION_PART.findall(value)
        if not parts or "".join(number + unit for number, unit in parts) != value:
            return None
        seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _wait(seconds: float | None) -> float | None:
    """A wait as the budget may use it: finite, in [0, MAX_PROVIDER_WAIT_SECONDS]; None when it names none."""
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(MAX_PROVIDER_WAIT_SECONDS, max(0.0, seconds))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup (httpx headers are, a plain dict may not be)."""
    value = headers.get(name)
    if value is None:
        for key, candidate in headers.items():
            if key.lower() == name:
                return candidate
    return value


def _number(text: str | None) -> float | None:
    """A finite number written in plain digits (``nan``, ``inf``, ``1e400``, ``1_000``, garbage: None)."""
    if text is None:
        return None
    value = text.strip()
    if not value or not set(value) <= _NUMBER_CHARACTERS:
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


_NUMBER_CHARACTERS = frozenset("0123456789.+-eE")


def retry_after_seconds(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """The wait a rate-limited answer names: ``retry-after-ms``, else ``Retry-After`` (seconds or an HTTP date),
    else the longer of the ``x-ratelimit-reset-*`` headers, in [0, MAX_PROVIDER_WAIT_SECONDS]. None when it names
    none (or only values that are not finite numbers)."""
    if not headers:
        return None
    milliseconds = _number(_header(headers, "retry-after-ms"))
    if milliseconds is not None and milliseconds >= 0:
        return _wait(milliseconds / 1000)
    retry_after = _header(headers, "retry-after")
    if retry_after is not None:
        seconds = _number(retry_after)
        if seconds is not None and seconds >= 0:
            return _wait(seconds)
        try:
            moment = parsedate_to_datetime(retry_after)
            wait = moment.timestamp() - (time.time() if now is None else now)
        except Exception:  # any malformed or out-of-range date names no wait (the parser raises several types)
            wait = None
        if wait is not None:
            return _wait(wait)
    resets = [
        parse_duration(_header(headers, f"x-ratelimit-reset-{kind}"))
        for kind in ("requests", "tokens")
        if _header(headers, f"x-ratelimit-remaining-{kind}") in ("0", None)
    ]
    known = [reset for reset in resets if reset is not None]
    return _wait(max(known)) if known else None


@dataclass(frozen=True)
class RateLimitState:
    """The provider's view of its limits after an answer (None where a header was missing)."""

    limit_requests: int | None = None
    limit_tokens: int | None = None
    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests_seconds: float | None = None
    reset_tokens_seconds: float | None = None


def rate_limit_state(headers: Mapping[str, str] | None) -> RateLimitState | None:
    """The ``x-ratelimit-*`` headers of an answer, or None when it carries none."""
    if not headers:
        return None

    def integer(name: str) -> int | None:
        value = _number(_header(headers, name))
        return None if value is None else int(min(MAX_COUNT, max(0.0, value)))

    state = RateLimitState(
        limit_requests=integer("x-ratelimit-limit-requests"),
        limit_tokens=integer("x-ratelimit-limit-tokens"),
        remaining_requests=integer("x-ratelimit-remaining-requests"),
        remaining_tokens=integer("x-ratelimit-remaining-tokens"),
        reset_requests_seconds=_wait(parse_duration(_header(headers, "x-ratelimit-reset-requests"))),
        reset_tokens_seconds=_wait(parse_duration(_header(headers, "x-ratelimit-reset-tokens"))),
    )
    return None if state == RateLimitState() else state
