"""The chaos results as a Markdown table, one row per scenario (``bench/chaos.py`` prints it)."""

from __future__ import annotations

from local.chaos.scenarios import ScenarioResult

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
    widths = [max(len(column), *(len(row[n]) for row in rows)) for n, column in enumerate(COLUMNS)]
    lines = ["| " + " | ".join(column.ljust(width) for column, width in zip(COLUMNS, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for row in rows:
        lines.append("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)
