"""Cascades for the operator: per cascade, the share of invoices each stage answered and the cost the cascade saved
(the report and the comparison page), and the calls each stage is expected to make (``invoices capacity``);
docs/cascade.md."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from invoice_pipeline.model_names import ModelEntry, ModelNameError, parse_model_entry


def add_stage_shares(rows: list[dict[str, Any]], stage_invoices: dict[str, dict[str, int]]) -> None:
    """Add ``stages`` (stage -> invoices and share, in stage order) and ``cost_saved_usd`` to each cascade's row.

    The saving is an estimate: each invoice answered before the last stage is counted at what the cascade's invoices
    answered by its last stage cost on average (all their stages included)."""
    for row in rows:
        entry = cascade_entry(row["llm"])
        if entry is None:
            row["stages"], row["cost_saved_usd"] = None, None
            continue
        counts = stage_invoices.get(row["llm"], {})
        answered = sum(counts.values())
        row["stages"] = {
            stage: {
                "invoices": counts.get(stage, 0),
                "share": round(counts.get(stage, 0) / answered, 4) if answered else None,
            }
            for stage in entry.stages
        }
        last = counts.get(entry.stages[-1], 0)
        earlier = answered - last
        cost = Decimal(row["cost_usd"])
        row["cost_saved_usd"] = str((cost / last * earlier).quantize(Decimal("0.000001"))) if last else None


def stage_lines(row: dict[str, Any]) -> list[str]:
    """The report's text lines for a cascade's row (none for a single model)."""
    stages = row.get("stages")
    if not stages:
        return []
    shares = ", ".join(
        f"{stage} {entry['invoices']} ({'-' if entry['share'] is None else format(entry['share'], '.0%')})"
        for stage, entry in stages.items()
    )
    saved = row.get("cost_saved_usd")
    return [
        f"  answered per stage (invoices): {shares}",
        f"  cost saved (estimate): {'-' if saved is None else '$' + saved}",
    ]


def cascade_entry(llm: str) -> ModelEntry | None:
    """The cascade ``llm`` names, or None for a single model (or a name no configuration accepts today)."""
    try:
        entry = parse_model_entry(llm)
    except ModelNameError:
        return None
    return entry if entry.is_cascade else None


def stage_reach(entry: ModelEntry, answered: Mapping[str, int]) -> dict[str, float]:
    """Per stage, the share of the cascade's invoices it is expected to read: the first stage reads all of them, a
    later one those the stages before it passed on (measured: the invoices it or a later stage answered); before
    any invoice was answered, all of them."""
    total = sum(answered.get(stage, 0) for stage in entry.stages)
    return {
        stage: 1.0 if not total else sum(answered.get(later, 0) for later in entry.stages[position:]) / total
        for position, stage in enumerate(entry.stages)
    }
