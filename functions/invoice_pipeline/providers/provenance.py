"""Where on the page the offline reader read each line: page, box and the printed row, from the rows it read.

The readers (:mod:`.table_reader`, the header reader in :mod:`.ocr`) turn rows of words into lines; this module
finds each line's row again among the same rows, in reading order, so the readers themselves carry no
geometry. A line's row is the first row (from where the previous line was found) that holds its line total and
most of its numbers and description words; a description wrapped onto the row above or below (receipts print
the name above ``2 x 0,89``) widens the box to that row. A line whose row cannot be found keeps NULL.

It also counts the rows that look like items (a word, and an amount with decimals on the lines' total column)
between the first and the last line found: the row-count check of :mod:`invoice_pipeline.tables.evidence` compares it
with the lines read; and keeps the amounts printed below the last line, where an invoice prints the total of its
lines.
"""

from __future__ import annotations

import dataclasses
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from invoice_pipeline.extractor import ExtractedInvoice, ExtractedItem
from invoice_pipeline.tables.evidence import compact_numbers, printed_numbers

Box = tuple[str, float, float, float, float, float]
Row = tuple[Box, ...]

_WORD = re.compile(r"[^\W\d_]{2,}")
_AMOUNT = re.compile(r"\d[.,]\d{2}(?!\d)")
COLUMN_SLACK = 0.03  # of the page width: an amount this close to the lines' total column is on it


@dataclass(frozen=True)
class Page:
    """One page's rows (boxes in the page's own units, origin top left) and its size in those units."""

    rows: Sequence[Row]
    width: float
    height: float


@dataclass(frozen=True)
class _Row:
    page: int  # 1-based
    text: str
    box: tuple[float, float, float, float]  # fractions of the page
    numbers: frozenset[Decimal]
    words: frozenset[str]
    amount_edge: float | None  # right edge (fraction of the page) of the row's rightmost amount with decimals


def _rows(pages: Sequence[Page]) -> list[_Row]:
    found = []
    for number, page in enumerate(pages, start=1):
        width, height = max(page.width, 1e-9), max(page.height, 1e-9)
        for row in page.rows:
            if not row:
                continue
            text = " ".join(box[0].strip() for box in row).strip()
            box = (
                min(b[1] for b in row) / width,
                min(b[2] for b in row) / height,
                max(b[3] for b in row) / width,
                max(b[4] for b in row) / height,
            )
            words = frozenset(word.casefold() for word in _WORD.findall(text))
            edges = [b[3] / width for b in row if _AMOUNT.search(compact_numbers(b[0]))]
            edge = max(edges) if edges else None
            found.append(_Row(number, text, box, frozenset(printed_numbers(text)), words, edge))
    return found


def _score(item: ExtractedItem, row: _Row) -> float:
    if item.line_total is not None and abs(item.line_total) not in row.numbers:
        return 0.0
    score = 2.0 if item.line_total is not None else 0.0
    score += sum(value is not None and abs(value) in row.numbers for value in (item.quantity, item.unit_price))
    words = {word.casefold() for word in _WORD.findall(item.description or "")}
    if words:
        score += 2 * len(words & row.words) / len(words)
    return score


def locate(invoice: ExtractedInvoice, pages: Sequence[Page]) -> ExtractedInvoice:
    """``invoice`` with each line's page, bbox and source text from ``pages`` (the rows the reader read), and
    the count of item-like rows between the first and last line found."""
    rows = _rows(pages)
    cursor = 0
    located: list[ExtractedItem] = []
    used: list[int] = []
    for item in invoice.items:
        best, best_score = None, 1.0  # at least the line total, or most of the description
        for order in (range(cursor, len(rows)), range(0, cursor)):
            for index in order:
                score = _score(item, rows[index])
                if score > best_score:
                    best, best_score = index, score
            if best is not None:
                break
        if best is None:
            located.append(item)
            continue
        cursor = best + 1
        used.append(best)
        located.append(_with_row(item, rows, best))
    item_rows: int | None = None
    amounts_below: frozenset[Decimal] | None = None
    if used:
        amounts_below = frozenset(
            number
            for found in rows[max(used) + 1 :]
            if _AMOUNT.search(compact_numbers(found.text))
            for number in found.numbers
        )
        item_rows = len(set(used)) + _item_like_rows(rows, used)
    return dataclasses.replace(invoice, items=tuple(located), item_rows=item_rows, amounts_below=amounts_below)


def _item_like_rows(rows: Sequence[_Row], used: Sequence[int]) -> int:
    """Rows between the first and last line found, not found for a line, with a word and an amount on the lines'
    total column (the median right edge of the found rows' rightmost amounts)."""
    edges = [edge for index in used if (edge := rows[index].amount_edge) is not None]
    if not edges:
        return 0
    column = statistics.median(edges)
    count = 0
    for index in range(min(used), max(used) + 1):
        edge = rows[index].amount_edge
        if index not in used and rows[index].words and edge is not None and abs(edge - column) <= COLUMN_SLACK:
            count += 1
    return count


def _with_row(item: ExtractedItem, rows: Sequence[_Row], index: int) -> ExtractedItem:
    row = rows[index]
    box = row.box
    texts = [row.text]
    missing = {word.casefold() for word in _WORD.findall(item.description or "")} - row.words
    for neighbour in (index - 1, index + 1):
        if not missing or not 0 <= neighbour < len(rows) or rows[neighbour].page != row.page:
            continue
        other = rows[neighbour]
        if other.words & missing:
            missing -= other.words
            box = (
                min(box[0], other.box[0]),
                min(box[1], other.box[1]),
                max(box[2], other.box[2]),
                max(box[3], other.box[3]),
            )
            texts = [other.text, *texts] if neighbour < index else [*texts, other.text]
    return dataclasses.replace(item, page=row.page, bbox=box, source_text=" ".join(texts))


def segment_pages(rows: Sequence[Row], sizes: Sequence[tuple[float, float]]) -> list[Page]:
    """Rows of stacked image segments (``ocr.merge_segments``: each segment's y shifted by the heights above it)
    back on their own segments, each with its size (width, height): a tall receipt's line is located on the
    segment it was read from."""
    pages: list[list[Row]] = [[] for _ in sizes]
    offsets = []
    offset = 0.0
    for _, height in sizes:
        offsets.append(offset)
        offset += height
    for row in rows:
        top = min(box[2] for box in row)
        number = max((index for index, start in enumerate(offsets) if start <= top), default=0)
        shift = offsets[number]
        pages[number].append(tuple((b[0], b[1], b[2] - shift, b[3], b[4] - shift, b[5]) for b in row))
    return [Page(tuple(page), width, height) for page, (width, height) in zip(pages, sizes, strict=True)]
