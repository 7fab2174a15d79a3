"""Figures as a Markdown table, as the chaos and rate-limit runs print them (``bench/chaos.py``,
``bench/rate_limits.py``)."""

from __future__ import annotations

from collections.abc import Sequence


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, each column padded to its widest cell so that it also reads as plain text."""
    widths = [max([len(column), *(len(row[n]) for row in rows)]) for n, column in enumerate(columns)]
    lines = ["| " + " | ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for row in rows:
        lines.append("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)
