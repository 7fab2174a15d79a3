"""The migrate function's statement timeout stays inside its own deadline."""

from invoice_pipeline.tables.migrations import (
    DEADLINE_MARGIN_MS,
    LOCK_TIMEOUT_MS,
    MIN_STATEMENT_TIMEOUT_MS,
    STATEMENT_TIMEOUT_MS,
    MigrationLimits,
)


def test_statement_timeout_ends_before_the_function_is_killed() -> None:
    limits = MigrationLimits.within(120_000)
    assert limits.statement_timeout_ms == 120_000 - DEADLINE_MARGIN_MS
    assert limits.lock_timeout_ms == LOCK_TIMEOUT_MS


def test_statement_timeout_is_capped_and_never_zero() -> None:
    assert MigrationLimits.within(10 * 3600 * 1000).statement_timeout_ms == STATEMENT_TIMEOUT_MS
    assert MigrationLimits.within(3_000).statement_timeout_ms == MIN_STATEMENT_TIMEOUT_MS  # 0 would mean no limit
