"""``invoices report``'s filter options and its ``--html`` export (the workbench's comparison page as one file)."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from invoice_pipeline.settings import ConfigError
from invoices_cli.comparison import ComparisonFilter


def _date(raw: str | None, option: str) -> date | None:
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ConfigError(f"{option} must be a date like 2026-11-29, got {raw!r}") from None


def report_filter(args: argparse.Namespace) -> ComparisonFilter:
    """The same filter the workbench's comparison page takes from its query string."""
    return ComparisonFilter(
        restaurant_ids=tuple(args.restaurant) if args.restaurant else None,
        since=_date(args.since, "--since"),
        until=_date(args.until, "--until"),
        llms=tuple(args.llm) if args.llm else None,
    )


def write_html_report(rows: list[dict[str, Any]], scope: ComparisonFilter, path: str | Path) -> Path:
    """Write the comparison page to ``path``: inline CSS and SVG, no script, nothing fetched; returns the path."""
    from invoices_cli.workbench.app import render_report_html

    target = Path(path)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    target.write_text(render_report_html(rows, scope, generated), encoding="utf-8")
    return target.resolve()
