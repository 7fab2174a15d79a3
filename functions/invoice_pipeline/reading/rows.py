"""Words with positions into rows: the geometry every reader starts from.

A box is a word of a PDF's text layer or a phrase the OCR read: ``(text, x0, y0, x1, y1, confidence)`` in the
image's pixels or the page's points, from the top left. Two ways to make rows of them:

- :func:`group_rows` clusters boxes by vertical overlap (at least half the smaller box height): for a page read
  upright;
- :func:`chain_rows` follows each row left to right, a box joining the row whose last box is level with it: a
  scan turned by a degree drifts a row's height across the page, and this keeps neighbouring rows apart.

Tall receipts arrive as overlapping segments: :func:`merge_segments` reads each on its own, drops rows cut by a
segment edge (the overlap holds them whole in the neighbouring segment) and keeps rows repeated in the overlap once.
"""

from __future__ import annotations

import difflib
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from invoice_pipeline.reading.numbers import ascii_digits

# text, x0, y0, x1, y1, confidence
Box = tuple[str, float, float, float, float, float]
Row = tuple[Box, ...]

MIN_CONFIDENCE = 0.5
EDGE_MARGIN = 3  # px: a row this close to a segment's cut edge may be cut in half


@dataclass(frozen=True)
class Segment:
    boxes: Sequence[Box]
    height: float


def key(text: str) -> str:
    """``text`` folded for comparing words: ASCII digits, lower case, single spaces, no trailing colon."""
    return re.sub(r"\s+", " ", ascii_digits(text).strip().casefold()).strip(" :")


def group_rows(boxes: Iterable[Box], *, min_confidence: float = MIN_CONFIDENCE) -> list[Row]:
    """Boxes clustered into rows (top to bottom), each row's boxes left to right."""
    kept = sorted(
        (box for box in boxes if box[5] >= min_confidence and box[0].strip()), key=lambda b: (b[2] + b[4]) / 2
    )
    rows: list[list[Box]] = []
    for box in kept:
        height = box[4] - box[2]
        placed = False
        for row in reversed(rows[-2:]):
            top, bottom = min(b[2] for b in row), max(b[4] for b in row)
            row_height = min(b[4] - b[2] for b in row)
            overlap = min(bottom, box[4]) - max(top, box[2])
            if overlap >= 0.5 * min(height, row_height):
                row.append(box)
                placed = True
                break
        if not placed:
            rows.append([box])
    return [tuple(sorted(row, key=lambda b: b[1])) for row in rows]


def row_text(row: Row) -> str:
    return " ".join(box[0].strip() for box in row)


def merge_segments(segments: Sequence[Segment]) -> list[Row]:
    """Rows of overlapping segments (top to bottom) as one list: cut rows dropped, the overlap kept once."""
    merged: list[Row] = []
    offset = 0.0
    for index, segment in enumerate(segments):
        rows = group_rows(segment.boxes)
        if index > 0:
            rows = [row for row in rows if min(b[2] for b in row) > EDGE_MARGIN]
        if index < len(segments) - 1:
            rows = [row for row in rows if max(b[4] for b in row) < segment.height - EDGE_MARGIN]
        shifted = [tuple((b[0], b[1], b[2] + offset, b[3], b[4] + offset, b[5]) for b in row) for row in rows]
        merged.extend(shifted[_overlap(merged, shifted) :])
        offset += segment.height
    return merged


def _overlap(previous: Sequence[Row], following: Sequence[Row]) -> int:
    """How many leading rows of ``following`` repeat the trailing rows of ``previous``.

    Rows are compared loosely: the same printed row read twice can differ in a character ("x" or "×").
    """
    before = [_loose(row_text(row)) for row in previous]
    after = [_loose(row_text(row)) for row in following]
    for count in range(min(len(before), len(after), 40), 0, -1):
        if all(_same_row(a, b) for a, b in zip(before[-count:], after[:count], strict=True)):
            return count
    return 0


def _loose(text: str) -> str:
    return re.sub(r"\s+", "", key(text).replace("×", "x"))


def _same_row(left: str, right: str) -> bool:
    return left == right or difflib.SequenceMatcher(None, left, right, autojunk=False).ratio() >= 0.9


def chain_rows(boxes: Sequence[Box], *, min_confidence: float = MIN_CONFIDENCE) -> list[Row]:
    """Boxes into rows, followed left to right: a box joins the row whose last box is level with it.

    A scan turned by a degree drifts a row's height across the page; comparing a box with its left neighbour
    instead of the row's whole span keeps neighbouring rows apart. Boxes much taller than the text (vertical
    margin notes) are left out.
    """
    kept = [box for box in boxes if box[5] >= min_confidence and box[0].strip()]
    if not kept:
        return []
    typical = statistics.median(box[4] - box[2] for box in kept)
    kept = [box for box in kept if box[4] - box[2] <= 3 * typical]
    rows: list[list[Box]] = []
    for box in sorted(kept, key=lambda b: (b[1], b[2])):
        center, height = (box[2] + box[4]) / 2, box[4] - box[2]
        best: tuple[float, list[Box]] | None = None
        for row in rows:
            last = row[-1]
            if last[3] > box[1] + 0.5 * height:
                continue  # overlapping in x: another row
            distance = abs(center - (last[2] + last[4]) / 2)
            allowed = 0.45 * min(height, last[4] - last[2]) + 0.02 * (box[1] - last[3])
            if distance <= allowed and (best is None or distance < best[0]):
                best = (distance, row)
        if best is None:
            rows.append([box])
        else:
            best[1].append(box)
    rows.sort(key=lambda row: statistics.mean((b[2] + b[4]) / 2 for b in row))
    return [tuple(row) for row in rows]
