"""The comparison page's plots as inline SVG: no plotting library, no script, nothing fetched.

Each function takes the per-model rows of :func:`invoices_cli.comparison.compare_models` and returns SVG markup
(text escaped here), so the live page and the exported ``report --html`` file draw the same figures.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

# Colour-blind-safe palette (Okabe-Ito), one colour per model in row order.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")
FONT = "font-family='system-ui, sans-serif' font-size='12'"


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' width='{width}' height='{height}' "
        f"role='img' aria-label='{escape(label)}' class='plot'>{''.join(body)}</svg>"
    )


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value``."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    return next(step * magnitude for step in (1, 2, 2.5, 5, 10) if value <= step * magnitude * (1 + 1e-9))


def accuracy_vs_cost(rows: list[dict[str, Any]]) -> str:
    """Scatter: cost per invoice (x) against item F1 (y), one labelled point per model with both figures."""
    width, height, left, right, top, bottom = 520, 320, 60, 160, 20, 50
    points = [
        (index, row["llm"], float(row["cost_per_invoice_usd"]), float(row["accuracy_f1"]))
        for index, row in enumerate(rows)
        if row["cost_per_invoice_usd"] not in (None, "unknown") and row["accuracy_f1"] is not None
    ]
    plot_w, plot_h = width - left - right, height - top - bottom
    x_max = _nice_max(max((cost for _, _, cost, _ in points), default=0.0) * 1.1)
    body = [f"<rect x='{left}' y='{top}' width='{plot_w}' height='{plot_h}' fill='#fafafa' stroke='#999'/>"]
    for tick in range(6):
        y_value = tick / 5
        y = top + plot_h - y_value * plot_h
        x_value = x_max * tick / 5
        x = left + plot_w * tick / 5
        body.append(f"<line x1='{left}' x2='{left + plot_w}' y1='{y:.1f}' y2='{y:.1f}' stroke='#e3e3e3'/>")
        body.append(f"<text x='{left - 6}' y='{y + 4:.1f}' text-anchor='end' {FONT}>{y_value:.1f}</text>")
        body.append(f"<text x='{x:.1f}' y='{top + plot_h + 16}' text-anchor='middle' {FONT}>${x_value:.4g}</text>")
    body.append(
        f"<text x='{left + plot_w / 2}' y='{height - 8}' text-anchor='middle' {FONT}>cost per invoice (USD)</text>"
    )
    body.append(
        f"<text transform='translate(14 {top + plot_h / 2}) rotate(-90)' text-anchor='middle' {FONT}>item F1</text>"
    )
    for index, llm, cost, f1 in points:
        x = left + (cost / x_max) * plot_w
        y = top + plot_h - f1 * plot_h
        body.append(
            f"<circle cx='{x:.1f}' cy='{y:.1f}' r='6' fill='{colour(index)}' class='point'>"
            f"<title>{escape(llm)}: F1 {f1:.3f}, ${cost:.6f} per invoice</title></circle>"
        )
    for slot, (index, llm, _, _) in enumerate(points):
        y = top + 14 + slot * 18
        body.append(f"<circle cx='{left + plot_w + 14}' cy='{y - 4}' r='5' fill='{colour(index)}'/>")
        body.append(f"<text x='{left + plot_w + 24}' y='{y}' {FONT}>{escape(llm)}</text>")
    if not points:
        body.append(
            f"<text x='{left + plot_w / 2}' y='{top + plot_h / 2}' text-anchor='middle' {FONT}>"
            "no model has both a cost and ground-truth accuracy yet</text>"
        )
    return _svg(width, height, body, "item F1 against cost per invoice, per model")


def _heat(value: float) -> str:
    """White (0) to blue (1)."""
    shade = int(255 - value * 175)
    return f"rgb({shade},{min(255, shade + 25)},255)"


def agreement_matrix(rows: list[dict[str, Any]]) -> str:
    """Heatmap of pairwise item F1 between models on the orders they all finished."""
    llms = [row["llm"] for row in rows]
    if len(llms) < 2:
        note = f"<text x='10' y='40' {FONT}>agreement needs at least two models on the same orders</text>"
        return _svg(440, 70, [note], "pairwise agreement between models")
    cell, left, top = 70, 170, 110
    size = max(len(llms), 1)
    width, height = max(left + cell * size + 20, 440), top + cell * size + 30
    body = []
    for column, llm in enumerate(llms):
        x = left + column * cell + cell / 2
        body.append(f"<text transform='translate({x:.0f} {top - 8}) rotate(-35)' {FONT}>{escape(llm)}</text>")
    for line, row in enumerate(rows):
        y = top + line * cell
        body.append(
            f"<text x='{left - 8}' y='{y + cell / 2 + 4:.0f}' text-anchor='end' {FONT}>{escape(row['llm'])}</text>"
        )
        for column, other in enumerate(llms):
            value = 1.0 if other == row["llm"] else row["agreement_f1"].get(other)
            x = left + column * cell
            fill = "#eeeeee" if value is None else _heat(value)
            text = "n/a" if value is None else f"{value:.3f}"
            body.append(
                f"<rect x='{x}' y='{y}' width='{cell}' height='{cell}' fill='{fill}' stroke='#fff' class='cell'>"
                f"<title>{escape(row['llm'])} vs {escape(other)}: {text}</title></rect>"
            )
            body.append(f"<text x='{x + cell / 2}' y='{y + cell / 2 + 4}' text-anchor='middle' {FONT}>{text}</text>")
    orders = rows[0]["agreement_orders"] if rows else 0
    body.append(
        f"<text x='10' y='{height - 8}' {FONT}>item F1 between models on the {orders} order(s) all finished</text>"
    )
    return _svg(width, height, body, "pairwise agreement between models")


def items_per_invoice(rows: list[dict[str, Any]]) -> str:
    """Grouped bars: how many invoices had how many lines, per model."""
    labels = list(rows[0]["items_per_invoice"]) if rows else []
    width, height, left, bottom, top = 560, 280, 50, 50, 20
    plot_w, plot_h = width - left - 20, height - top - bottom
    peak = max((count for row in rows for count in row["items_per_invoice"].values()), default=0)
    y_max = _nice_max(float(peak))
    body = [f"<line x1='{left}' x2='{left + plot_w}' y1='{top + plot_h}' y2='{top + plot_h}' stroke='#999'/>"]
    ticks = 5 if y_max % 5 == 0 else 4  # whole numbers on the axis where the maximum allows
    for tick in range(ticks + 1):
        value = y_max * tick / ticks
        y = top + plot_h - plot_h * tick / ticks
        body.append(f"<line x1='{left}' x2='{left + plot_w}' y1='{y:.1f}' y2='{y:.1f}' stroke='#eee'/>")
        body.append(f"<text x='{left - 6}' y='{y + 4:.1f}' text-anchor='end' {FONT}>{value:g}</text>")
    group = plot_w / max(len(labels), 1)
    bar = (group - 8) / max(len(rows), 1)
    for slot, label in enumerate(labels):
        x0 = left + slot * group + 4
        body.append(
            f"<text x='{x0 + (group - 8) / 2:.1f}' y='{top + plot_h + 16}' text-anchor='middle' {FONT}>{label}</text>"
        )
        for index, row in enumerate(rows):
            count = row["items_per_invoice"][label]
            bar_h = plot_h * count / y_max
            body.append(
                f"<rect x='{x0 + index * bar:.1f}' y='{top + plot_h - bar_h:.1f}' width='{max(bar - 1, 1):.1f}' "
                f"height='{bar_h:.1f}' fill='{colour(index)}' class='bar'>"
                f"<title>{escape(row['llm'])}: {count} invoice(s) with {label} lines</title></rect>"
            )
    body.append(f"<text x='{left + plot_w / 2}' y='{height - 10}' text-anchor='middle' {FONT}>lines per invoice</text>")
    return _svg(width, height, body, "distribution of lines per invoice, per model")
