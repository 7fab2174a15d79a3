"""The chaos results as a Markdown table, one row per scenario (``bench/chaos.py`` prints it)."""

from __future__ import annotations

from local.chaos.scenarios import ScenarioResult
from local.markdown import markdown_table

COLUMNS = ("scenario", "orders", "faults injected", "retries", "DLQ", "DLQ after redrive", "dup", "lost", "time s")


def table(results: list[ScenarioResult]) -> str:
    """A Markdown table, one row per scenario."""
    rows = [
        (
            result.name,
            str(result.orders),
            result.faults_text(),
            str(result.retries),
            str(result.dlq),
            str(result.dlq_final),
            str(result.duplicates),
            str(result.lost),
            f"{result.seconds:.1f}",
        )
        for result in results
    ]
    return markdown_table(COLUMNS, rows)
