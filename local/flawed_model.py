"""A model that makes mistakes on purpose, at rates it states: the demo's second row, so the comparison page has
two models to compare, agreement to measure and doubtful lines to show.

It is the model emulator (:mod:`local.model_emulator`) answering, for the model name :data:`FLAWED_MODEL`, the
samples' known lines with mistakes a vision model makes on real invoices: a dropped row, a misread digit, a unit
price read as the line total. Its name says what it is; it is not a real model and its figures are not a
model's. Each answer also carries the page and the row "as printed" the way the model read it (mistakes
included), as the OpenAI provider asks a model to.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

FLAWED_MODEL = "emulated-flawed-vision"
# Per line: the chance of each mistake (at most one mistake per line).
RATES = {"dropped row": 0.04, "misread digit": 0.06, "unit price read as total": 0.03}
# Digits an OCR or a vision model confuses.
CONFUSED = {"0": "8", "1": "7", "2": "7", "3": "8", "4": "9", "5": "6", "6": "5", "7": "1", "8": "3", "9": "4"}
NUMBER_FIELDS = ("quantity", "unit_price", "line_total")


def describe_rates() -> str:
    return ", ".join(f"{name} {rate:.0%}" for name, rate in RATES.items()) + " of lines"


def _misread(text: str, rng: random.Random) -> str:
    positions = [index for index, char in enumerate(text) if char in CONFUSED]
    if not positions:
        return text
    index = rng.choice(positions)
    return text[:index] + CONFUSED[text[index]] + text[index + 1 :]


def flawed_answer(answer: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], Counter[str]]:
    """``answer`` (a ``ModelInvoice`` JSON dict) with mistakes drawn at :data:`RATES`, and what was drawn."""
    drawn: Counter[str] = Counter()
    lines = []
    for line in answer.get("items") or []:
        line = dict(line)
        roll = rng.random()
        dropped, misread = RATES["dropped row"], RATES["dropped row"] + RATES["misread digit"]
        swapped = misread + RATES["unit price read as total"]
        if roll < dropped:
            drawn["dropped row"] += 1
            continue
        if roll < misread:
            present = [name for name in NUMBER_FIELDS if line.get(name)]
            if present:
                name = rng.choice(present)
                changed = _misread(str(line[name]), rng)
                if changed != line[name]:
                    line[name] = changed
                    drawn["misread digit"] += 1
        elif roll < swapped and line.get("line_total") and line.get("unit_price") != line.get("line_total"):
            line["unit_price"] = line["line_total"]
            drawn["unit price read as total"] += 1
        printed = (line.get(name) for name in ("description", "quantity", "unit", "unit_price", "line_total"))
        line["page"] = 1
        line["source_text"] = " ".join(str(value) for value in printed if value)
        lines.append(line)
    return {**answer, "items": lines}, drawn
