"""Line items under a table header, and receipt line forms: the reader tuned on the generated samples.

1. **Header.** The first row naming at least three different columns (one the line total) is the table
   header; the titles are :data:`vocabulary.COLUMN_TITLES`, in several phrasings and languages ("#"/"Pos."
   and date columns are recognised and left out of the item). A cell is assigned to the header span it
   overlaps most (the nearest one otherwise); a cell spanning several headers (OCR merged "4 kg") is split by
   words.
2. **Body.** Each row after the header with text in a numeric column starts an item; a row with text only in
   the description column continues the previous item's description (multi-line descriptions). The body ends
   at the first summary row (:func:`vocabulary.starts_summary`: total, subtotal, VAT, tax, amount due...).
   When more than a third of the numeric cells do not read as numbers (digits of a script the OCR models do
   not know), every number of the table is dropped rather than stored misread.
3. **Without a header** (receipts), rows are read as ``2 kg x 0.750  1.500`` or ``2 x Tomatoes  1.500``
   lines; the description of the first form is the text-only row just above it.
4. **Totals and currency.** The printed total is the amount on the last grand-total row (a subtotal only when
   there is no other; never a tax row); the currency is an ISO code or symbol on that row, on a "currency"
   row, or the commonest on the page.

Numbers are parsed as printed (thousands separators, Arabic-Indic digits, currency codes and symbols stripped).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from invoice_pipeline.extractor import ExtractedInvoice, ExtractedItem
from invoice_pipeline.reading import vocabulary
from invoice_pipeline.reading.numbers import ascii_digits, parse_amount
from invoice_pipeline.reading.rows import Box, Row, key, row_text

NUMERIC_COLUMNS = ("quantity", "unit_price", "line_total")
FIELDS = ("description", "quantity", "unit", "unit_price", "line_total")
_NUMBER = r"[+-]?\d[\d,]*(?:\.\d+)?"
_TIMES = r"[xX×*@]"
# "2 kg x 0.750   1.500" (the description is on the row above)
_QTY_UNIT_PRICE_TOTAL = re.compile(
    rf"^(?P<quantity>{_NUMBER})\s*(?P<unit>[A-Za-z]{{1,8}}\.?)?\s*{_TIMES}\s*(?P<unit_price>{_NUMBER})\s+(?P<line_total>{_NUMBER})$"
)
# "2 x Tomatoes   1.500" or "2 kg x Tomatoes 1.500"
_QTY_DESCRIPTION_TOTAL = re.compile(
    rf"^(?P<quantity>{_NUMBER})\s*(?P<unit>[A-Za-z]{{1,8}}\.?)?\s*{_TIMES}\s+(?P<description>.*?[A-Za-z].*?)\s+(?P<line_total>{_NUMBER})$"
)
_SEPARATOR = re.compile(r"^[-=_*.\s]{3,}$")


def parse_number(text: str | None) -> Decimal | None:
    """A printed number in a cell: currency codes and symbols, spaces and stray colons removed."""
    if not text:
        return None
    cleaned = vocabulary.strip_currency(ascii_digits(text).strip().strip(":"))
    return parse_amount(re.sub(r"(?<=\d)\s(?=\d{3}(?!\d))", "", cleaned))  # "1 250.00"; "50 60" is two numbers


@dataclass(frozen=True)
class _Column:
    role: str
    x0: float
    x1: float


def _header_role(text: str) -> str | None:
    folded = key(text).replace(" .", ".")
    for role, words in vocabulary.COLUMN_TITLES.items():
        if folded in words:
            return role
    return None


def _find_header(rows: Sequence[Row]) -> tuple[int, list[_Column]] | None:
    for index, row in enumerate(rows):
        columns = []
        for box in row:
            role = _header_role(box[0])
            if role is None:
                # "Qty Unit" read as one box: split it when every word is a header word
                words = box[0].split()
                roles = [_header_role(word) for word in words]
                if len(words) > 1 and all(roles):
                    columns.extend(_split_header(box, words, roles))
                continue
            columns.append(_Column(role, box[1], box[3]))
        named = {column.role for column in columns if column.role not in vocabulary.IGNORED_COLUMNS}
        if len(named) >= 3 and "line_total" in named:
            return index, columns
    return None


def _split_header(box: Box, words: list[str], roles: list[str | None]) -> list[_Column]:
    spans = _word_spans(box, words)
    return [_Column(role, x0, x1) for role, (x0, x1) in zip(roles, spans, strict=True) if role]


def _word_spans(box: Box, words: Sequence[str]) -> list[tuple[float, float]]:
    """Estimated x-span of each word of a box, by character position."""
    text = " ".join(words)
    width = (box[3] - box[1]) / max(1, len(text))
    spans, position = [], 0
    for word in words:
        spans.append((box[1] + position * width, box[1] + (position + len(word)) * width))
        position += len(word) + 1
    return spans


def _column_for(x0: float, x1: float, columns: Sequence[_Column]) -> _Column:
    def overlap(column: _Column) -> float:
        return min(x1, column.x1) - max(x0, column.x0)

    best = max(columns, key=overlap)
    if overlap(best) > 0:
        return best
    return min(columns, key=lambda column: max(column.x0 - x1, x0 - column.x1))


def _cells(row: Row, columns: Sequence[_Column]) -> dict[str, str]:
    """The row's text per column role; a box spanning several columns is split by words."""
    parts: dict[str, list[str]] = {}
    for box in row:
        touched = [column for column in columns if min(box[3], column.x1) - max(box[1], column.x0) > 0]
        words = box[0].split()
        if len(touched) > 1 and len(words) > 1:
            for word, (x0, x1) in zip(words, _word_spans(box, words), strict=True):
                parts.setdefault(_column_for(x0, x1, columns).role, []).append(word)
        else:
            parts.setdefault(_column_for(box[1], box[3], columns).role, []).append(box[0].strip())
    return {role: " ".join(texts) for role, texts in parts.items()}


def _is_totals_row(text: str) -> bool:
    folded = key(text)
    return vocabulary.starts_summary(folded, folded)


def _item(description: str | None, quantity: str | None, unit: str | None, price: str | None, total: str | None):
    return ExtractedItem(
        description=(description or "").strip() or None,
        quantity=parse_number(quantity),
        unit=(unit or "").strip() or None,
        unit_price=parse_number(price),
        line_total=parse_number(total),
    )


def _table_items(rows: Sequence[Row], columns: Sequence[_Column]) -> tuple[list[ExtractedItem], int]:
    """Items of the rows under the header, and the index (within ``rows``) where the body ended."""
    found: list[dict[str, str]] = []
    end = len(rows)
    for index, row in enumerate(rows):
        if _is_totals_row(row_text(row)):
            end = index
            break
        cells = _cells(row, columns)
        if any(cells.get(role) for role in NUMERIC_COLUMNS):
            found.append(cells)
        elif found and set(cells) <= {"description"}:
            previous = found[-1]
            previous["description"] = f"{previous.get('description', '')} {cells['description']}".strip()
    numbers = [cells[role] for cells in found for role in NUMERIC_COLUMNS if cells.get(role)]
    unreadable = [text for text in numbers if parse_number(text) is None]
    if numbers and len(unreadable) * 3 > len(numbers) and not any(re.search(r"[^\W\d_]", t) for t in unreadable):
        # digits in a form this reader does not read (a decimal comma): the table is left to ``table_reader``
        return [], end
    if numbers and len(unreadable) * 3 > len(numbers):
        # Most numbers did not read as numbers: a script the bundled models do not know (Arabic-Indic digits
        # come back as look-alike letters). The ones that did parse are likely misreads too: keep none.
        for cells in found:
            for role in NUMERIC_COLUMNS:
                cells.pop(role, None)
    return [_item(*(cells.get(name) for name in FIELDS)) for cells in found], end


def _receipt_items(rows: Sequence[Row]) -> tuple[list[ExtractedItem], int]:
    """Items of a layout without a header: ``qty unit x price  total`` or ``qty x description  total`` rows."""
    items: list[ExtractedItem] = []
    above: str | None = None
    for index, row in enumerate(rows):
        text = re.sub(r"\s+", " ", ascii_digits(row_text(row))).strip()
        if items and _is_totals_row(text):
            return items, index
        match = _QTY_UNIT_PRICE_TOTAL.match(text)
        if match:
            unit = match["unit"]
            items.append(
                _item(
                    above,
                    match["quantity"],
                    unit.rstrip(".") if unit else None,
                    match["unit_price"],
                    match["line_total"],
                )
            )
            above = None
            continue
        match = _QTY_DESCRIPTION_TOTAL.match(text)
        if match:
            items.append(_item(match["description"], match["quantity"], match["unit"], None, match["line_total"]))
            above = None
            continue
        above = None if _SEPARATOR.match(text) or not re.search(r"[A-Za-z]", text) else text
    return items, len(rows)


def _printed_total(rows: Sequence[Row]) -> tuple[Decimal | None, Row | None]:
    """The amount on the last grand-total row (a subtotal row only when there is none; never a tax row)."""
    grand: tuple[Decimal, Row] | None = None
    sub: tuple[Decimal, Row] | None = None
    for row in rows:
        folded = key(row_text(row))
        if not vocabulary.starts_summary(folded, folded) or vocabulary.is_tax(folded):
            continue
        numbers = [parse_number(box[0]) for box in row]
        values = [value for value in numbers if value is not None]
        if not values:
            match = re.search(rf"(?:^|\s)({_NUMBER})\s*$", vocabulary.strip_currency(ascii_digits(row_text(row))))
            value = parse_number(match.group(1)) if match else None
            if value is None:
                continue
            values = [value]
        if vocabulary.is_grand_total(folded):
            grand = (values[-1], row)
        elif any(word in folded for word in vocabulary.SUBTOTAL_WORDS):
            sub = (values[-1], row)
    found = grand or sub
    return found if found is not None else (None, None)


def _codes(text: str) -> list[str]:
    return [code for token in text.split() if (code := vocabulary.currency_of(token)) is not None]


def _currency(rows: Sequence[Row], total_row: Row | None) -> str | None:
    """An ISO code or symbol on the total row, on a summary or "currency" row, else the commonest on the page."""
    labelled = [total_row] if total_row is not None else []
    for row in rows:
        folded = key(row_text(row))
        if (_is_totals_row(folded) and not vocabulary.is_tax(folded)) or folded.startswith(vocabulary.CURRENCY_LABELS):
            labelled.append(row)
    for row in labelled:
        found = _codes(row_text(row))
        if found:
            return found[0]
    counts: dict[str, int] = {}
    for row in rows:
        for code in _codes(row_text(row)):
            counts[code] = counts.get(code, 0) + 1
    return max(counts, key=lambda code: counts[code]) if counts else None


def read_by_header(rows: Sequence[Row], *, invoice_index: int = 0) -> ExtractedInvoice:
    header = _find_header(rows)
    if header is not None:
        start, columns = header
        items, end = _table_items(rows[start + 1 :], columns)
        end += start + 1
    else:
        items, end = _receipt_items(rows)
    total, total_row = _printed_total(rows[end:] if end < len(rows) else rows)
    return ExtractedInvoice(
        invoice_index=invoice_index,
        currency=_currency(rows, total_row),
        printed_total=total,
        items=tuple(items),
    )
