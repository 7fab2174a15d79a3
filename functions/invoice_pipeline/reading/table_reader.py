"""Line items from words with positions, without knowing the layout: the evidence that holds across vendors.

Input: the rows of every page in reading order (boxes grouped into rows by ``rows.chain_rows``; a box is a
word of a PDF's text layer or a phrase the OCR read). Steps:

1. **Cells.** A row's boxes are split into words and joined again into cells where the gap is narrower than
   ``CELL_GAP`` row heights; a number is always a cell of its own ("1 234,56" stays one number). The
   document's decimal mark is the one most of its two-decimal amounts use, so "1.250" reads 1250 on a
   German invoice and "1,250" reads 1250 on an English one (``numbers`` reads the number with that mark).
2. **Anchor rows.** A row holding three numbers where one times another equals a third (within a cent or
   the last printed place; a percentage on the row may be a discount) is an item row beyond doubt: the
   product is the line total, the integer-like or left factor the quantity. Header words are not needed.
3. **Columns.** The anchors' line totals, unit prices and quantities are right-aligned columns; their right
   edges are the columns' positions.
4. **Item region.** From the first anchor back up to the header (a row of words without numbers, or any
   non-item row) and down to the first summary row (total, subtotal, VAT, shipping... in English, German,
   French, Arabic), a row with a number on the line-total column is an item too; a continued table on the
   next page starts a region of its own at its anchors. Rows of text only in the description column continue
   the description of the item above (wrapped descriptions); text above an item whose own row has none is
   its description (receipts print the name above ``2 x 0,89``).
5. **No anchors** (receipts, invoices without quantities): rows with a description and an amount on the
   commonest right edge, above the first total row, and a ``qty x price`` row next to an item gives it
   quantity and unit price. When the printed total equals the sum of a tail of these rows, the region
   starts where that tail starts (the rows above are the shop's header).

The printed total is the largest amount on a total row after the items; the currency an ISO code or symbol.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from invoice_pipeline.extractor import ExtractedInvoice, ExtractedItem
from invoice_pipeline.reading import vocabulary
from invoice_pipeline.reading.numbers import ascii_digits, document_decimal_mark, parse_decimal
from invoice_pipeline.reading.rows import Box, Row

CELL_GAP = 0.9  # row heights: text closer than this is one cell
COLUMN_SLACK = 1.2  # row heights a right edge may be off its column
CONTINUATION_GAP = 2.6  # row heights between an item's last row and a line continuing its description
CENT = Decimal("0.01")

QUANTITY_TITLES = frozenset(vocabulary.COLUMN_TITLES["quantity"])
PRICE_TITLES = frozenset(vocabulary.COLUMN_TITLES["unit_price"])
_TIMES = frozenset({"x", "×", "*", "@"})
_NUMBER_TEXT = re.compile(r"^[(+-]?\d[\d.,' \u00a0\u202f]*[)-]?$")
_SPACED_THOUSANDS = re.compile(r"^\d{3}(?:[.,]\d+)?-?$")
_CLASS_LETTER = re.compile(r"(?<=\d[.,]\d\d)[A-Z]$")
_DATE = re.compile(r"\d{1,2}[./-]\d{1,2}[./-](?:\d{2}|\d{4})|\d{4}-\d{2}-\d{2}")
_UNIT_TEXT = re.compile(r"^[^\W\d_]{1,8}\.?(?:\(s\))?$|^m[²³23]$")


@dataclass
class Cell:
    text: str
    x0: float
    x1: float
    value: Decimal | None = None  # a number; None for text
    decimals: int = 0  # digits after the decimal mark
    percent: bool = False
    money: bool = False  # printed with a currency ("50 €", "EUR 20"): an amount even without decimals

    @property
    def is_number(self) -> bool:
        return self.value is not None and not self.percent


@dataclass
class Line:
    cells: list[Cell]
    top: float  # position in reading order: page offset + y
    bottom: float
    height: float
    page: int

    @property
    def text(self) -> str:
        return " ".join(cell.text for cell in self.cells)

    @property
    def numbers(self) -> list[Cell]:
        return [cell for cell in self.cells if cell.is_number]

    @property
    def words(self) -> list[Cell]:
        return [cell for cell in self.cells if cell.value is None]


@dataclass
class Reading:
    """One item row as read: which cells hold which field."""

    line: int
    total: Cell
    quantity: Cell | None = None
    price: Cell | None = None
    description: list[str] = field(default_factory=list)
    unit: str | None = None
    last_line: int = -1


# ---- cells ----------------------------------------------------------------------------------------------


def _split_words(box: Box) -> list[tuple[str, float, float]]:
    """A box's words with their estimated x-spans (OCR boxes hold phrases; text-layer boxes one word)."""
    words = box[0].split()
    if len(words) <= 1:
        return [(box[0].strip(), box[1], box[3])] if words else []
    per_char = (box[3] - box[1]) / max(1, len(" ".join(words)))
    spans, position = [], 0
    for word in words:
        spans.append((word, box[1] + position * per_char, box[1] + (position + len(word)) * per_char))
        position += len(word) + 1
    return spans


def decimal_mark(rows: Sequence[Row]) -> str:
    """ "," when most two-decimal amounts of the document are written 12,50, else "."."""
    return document_decimal_mark(word for row in rows for box in row for word in box[0].split())


def parse_cell_number(text: str, mark: str) -> tuple[Decimal | None, int, bool]:
    """(value, decimals, is percent) of a cell's text; value None when it is not a number."""
    cleaned = ascii_digits(text).strip()
    percent = cleaned.endswith("%")
    cleaned = cleaned.rstrip("%").strip()
    cleaned = vocabulary.strip_currency(cleaned)
    # a tax-class letter or a misread currency sign glued to a receipt's amount: "0,29A", "0,29E"
    cleaned = _CLASS_LETTER.sub("", cleaned)
    if not cleaned or not _NUMBER_TEXT.match(cleaned):
        return None, 0, False
    negative = cleaned.endswith("-") and not cleaned.startswith("-")  # receipts print "0,25-"
    cleaned = cleaned.rstrip("-") if negative else cleaned
    digits = re.sub(r"\D", "", cleaned)
    if len(digits) > 9:  # an article number, a GTIN, an account: not an amount
        return None, 0, False
    separators = re.sub(r"[\d\s'\u00a0\u202f()+-]", "", cleaned)
    value = parse_decimal(cleaned, decimal_mark=mark)  # 1.250 on a German invoice is a thousand and more
    if value is None:
        return None, 0, False
    if negative:
        value = -value
    decimals = 0
    if separators and separators[-1] == mark:
        decimals = len(re.sub(r"\D", "", cleaned[cleaned.rfind(mark) :]))
    elif separators and mark == "." and separators[-1] == "," and not re.search(r",\d{3}(?!\d)", cleaned):
        decimals = len(re.sub(r"\D", "", cleaned[cleaned.rfind(",") :]))
    elif separators and mark == "," and separators[-1] == "." and not re.search(r"\.\d{3}(?!\d)", cleaned):
        decimals = len(re.sub(r"\D", "", cleaned[cleaned.rfind(".") :]))
    return value, decimals, percent


def cells_of(row: Row, mark: str) -> list[Cell]:
    """The row's cells, left to right (step 1)."""
    words = sorted((word for box in row for word in _split_words(box)), key=lambda w: w[1])
    height = statistics.median([box[4] - box[2] for box in row]) if row else 1.0
    cells: list[Cell] = []
    currency_before = False
    for text, x0, x1 in words:
        if vocabulary.is_currency_word(text):
            # "9,90 €" is the number 9,90, an amount; so is "EUR 20"
            if cells and cells[-1].value is not None and not cells[-1].percent and x0 - cells[-1].x1 <= height:
                cells[-1].money = True
            else:
                currency_before = True
            continue
        value, decimals, percent = parse_cell_number(text, mark)
        if text == "%" and cells and cells[-1].value is not None:
            cells[-1].percent = True
            continue
        previous = cells[-1] if cells else None
        gap = x0 - previous.x1 if previous else 1e9
        if (
            previous is not None
            and previous.value is not None
            and not previous.percent
            and previous.decimals == 0
            and re.fullmatch(r"-?\d{1,3}", previous.text)
            and _SPACED_THOUSANDS.match(text)
            and gap <= 0.6 * height
        ):
            joined = f"{previous.text} {text}"
            value, decimals, percent = parse_cell_number(joined, mark)
            if value is not None:  # "1 234,56": a thousands space
                cells[-1] = Cell(joined, previous.x0, x1, value, decimals, percent)
                continue
        if value is None and previous is not None and previous.value is None and gap <= CELL_GAP * height:
            previous.text = f"{previous.text} {text}"
            previous.x1 = x1
            continue
        money = value is not None and (currency_before or vocabulary.strip_currency(text) != text)
        cells.append(Cell(text, x0, x1, value, decimals, percent, money))
        currency_before = False
    return _ranges_as_text(cells)


_RANGE_WORDS = frozenset({"-", "–", "to", "bis", "à", "au"})


def _ranges_as_text(cells: list[Cell]) -> list[Cell]:
    """ "08.30 - 12.30" (opening hours, a period, a size range) is text, not two amounts."""
    merged: list[Cell] = []
    index = 0
    while index < len(cells):
        cell = cells[index]
        if (
            index + 2 < len(cells)
            and cell.value is not None
            and not cell.money
            and cells[index + 1].text.casefold() in _RANGE_WORDS
            and cells[index + 2].value is not None
            and not cells[index + 2].money
        ):
            following = cells[index + 2]
            merged.append(Cell(f"{cell.text} {cells[index + 1].text} {following.text}", cell.x0, following.x1))
            index += 3
            continue
        merged.append(cell)
        index += 1
    return merged


# ---- rows -----------------------------------------------------------------------------------------------


def _first_words(line: Line) -> str:
    words = line.words
    return re.sub(r"\s+", " ", words[0].text.casefold()).strip(" :*") if words else ""


def is_summary(line: Line) -> bool:
    """A subtotal, tax, total, shipping or payment row (its first text starts with such a word)."""
    return vocabulary.starts_summary(_first_words(line), line.text)


def is_header(line: Line) -> bool:
    """A row of column titles: two header words or more, no amounts."""
    if any(cell.decimals for cell in line.numbers):
        return False
    tokens = {token.strip(".:/").casefold() for cell in line.words for token in cell.text.split()}
    return len(tokens & vocabulary.TITLE_WORDS) >= 2


def _close(product: Decimal, total: Decimal, decimals: int) -> bool:
    tolerance = max(CENT, Decimal(1).scaleb(-decimals) if decimals else Decimal("0.5"))
    return abs(product - total) <= tolerance


def anchor_candidates(line: Line) -> list[tuple[float, Reading]]:
    """Every quantity x unit price = line total the row's numbers hold (step 2), with a plausibility score."""
    numbers = line.numbers
    if numbers and numbers[0] is line.cells[0] and numbers[0].decimals == 0 and len(line.cells) > 1:
        numbers = numbers[1:]  # a position number
    if len(numbers) < 3 or not line.words:
        return []
    if len(numbers) > 4 and not any(cell.decimals or cell.money for cell in numbers):
        return []  # a phone number or an account in groups of digits
    percents = [cell.value for cell in line.cells if cell.percent and cell.value is not None]
    found: list[tuple[float, Reading]] = []
    for t_index in range(len(numbers) - 1, 1, -1):
        total = numbers[t_index]
        assert total.value is not None
        for a_index in range(t_index):
            for b_index in range(a_index + 1, t_index):
                left, right = numbers[a_index], numbers[b_index]
                assert left.value is not None and right.value is not None
                if not any(c.decimals or c.money for c in (total, left, right)) and len(numbers) > 3:
                    continue
                product = left.value * right.value
                discounted = [product * (1 - p / 100) for p in percents]
                if not any(_close(value, total.value, total.decimals) for value in (product, *discounted)):
                    continue
                if total.value == 0 and any(c.value == 0 and c.decimals == 0 for c in (left, right)):
                    continue  # "2000,00 x 0 = 0,00": a tax rate of nought, not an item
                quantity, price = _quantity_first(left, right)
                # rightmost total first; factors next to each other; a factor of exactly 1 says little
                score = t_index * 10 - (t_index - b_index) - (b_index - a_index)
                score -= 5 * sum(c.value == 1 and c.decimals == 0 for c in (left, right))
                found.append((score, Reading(line=-1, total=total, quantity=quantity, price=price)))
    found.sort(key=lambda pair: -pair[0])
    return found


def find_anchor(line: Line) -> Reading | None:
    """The row's most plausible quantity x unit price = line total, when its numbers hold one."""
    found = anchor_candidates(line)
    return found[0][1] if found else None


def _quantity_first(left: Cell, right: Cell) -> tuple[Cell, Cell]:
    """Which factor is the quantity: the one printed without a currency, else without decimals, else the whole
    number, else the left."""
    if left.money != right.money:
        return (right, left) if left.money else (left, right)
    if (left.decimals == 0) != (right.decimals == 0):
        return (left, right) if left.decimals == 0 else (right, left)
    left_whole = left.value is not None and left.value == left.value.to_integral_value()
    right_whole = right.value is not None and right.value == right.value.to_integral_value()
    if right_whole and not left_whole:
        return right, left
    return left, right


# ---- the document ---------------------------------------------------------------------------------------


def build_lines(pages: Sequence[Sequence[Row]]) -> list[Line]:
    """Every page's rows as lines in reading order, pages stacked (continued tables)."""
    mark = decimal_mark([row for rows in pages for row in rows])
    lines: list[Line] = []
    offset = 0.0
    for page_number, rows in enumerate(pages):
        bottom = 0.0
        for row in rows:
            cells = cells_of(row, mark)
            if not cells:
                continue
            top, low = min(b[2] for b in row), max(b[4] for b in row)
            height = statistics.median([b[4] - b[2] for b in row])
            lines.append(Line(cells, offset + top, offset + low, max(height, 1e-6), page_number))
            bottom = max(bottom, low)
        offset += bottom + 1000.0  # a page break is a wide gap: continuations never cross it
    return lines


def join_split_rows(lines: Sequence[Line]) -> list[Line]:
    """A row of numbers only, right under a row that holds no product, joined to it when together they do.

    Some renderings print the line total half a line lower than the rest of its row.
    """
    joined: list[Line] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        below = lines[index + 1] if index + 1 < len(lines) else None
        if (
            below is not None
            and not below.words
            and below.page == line.page
            and below.top - line.bottom <= line.height
            and line.words
            and find_anchor(line) is None
        ):
            merged = Line(
                sorted([*line.cells, *below.cells], key=lambda c: c.x0), line.top, below.bottom, line.height, line.page
            )
            if find_anchor(merged) is not None:
                joined.append(merged)
                index += 2
                continue
        joined.append(line)
        index += 1
    return joined


def _near(cell: Cell, edge: float | None, height: float) -> bool:
    return edge is not None and abs(cell.x1 - edge) <= COLUMN_SLACK * height


def _edge(cells: Sequence[Cell | None]) -> float | None:
    edges = [cell.x1 for cell in cells if cell is not None]
    return statistics.median(edges) if edges else None


@dataclass
class Columns:
    total: float | None
    price: float | None
    quantity: float | None


def _reading_on_columns(line: Line, index: int, columns: Columns) -> Reading | None:
    """A row with a number on the line-total column, its other numbers placed by the other columns."""
    numbers = [
        cell for cell in line.numbers if not (cell is line.cells[0] and cell.decimals == 0 and len(line.cells) > 1)
    ]
    totals = [cell for cell in numbers if _near(cell, columns.total, line.height)]
    if not totals:
        return None
    total = totals[-1]
    reading = Reading(line=index, total=total)
    for cell in numbers:
        if cell is total:
            continue
        if reading.price is None and _near(cell, columns.price, line.height):
            reading.price = cell
        elif reading.quantity is None and _near(cell, columns.quantity, line.height):
            reading.quantity = cell
    return reading


def _fill(reading: Reading, line: Line) -> None:
    """Description and unit from the row's cells: everything left of its numbers ("Kaffee 1 kg", "Milch 1,5%")
    but a leading position number, and the text between them that is not the unit."""
    used = [cell for cell in (reading.quantity, reading.price, reading.total) if cell is not None]
    first_used = min(cell.x0 for cell in used)
    description: list[str] = []
    for position, cell in enumerate(line.cells):
        if cell.x0 >= reading.total.x0 or cell in used:
            continue
        if cell.value is not None:
            if position == 0 and cell.decimals == 0 and not cell.percent and len(line.cells) > 1:
                continue  # a position number
            if cell.x1 <= first_used:
                description.append(cell.text)
            continue
        after_quantity = reading.quantity is not None and 0 <= cell.x0 - reading.quantity.x1 <= 4 * line.height
        if after_quantity and reading.unit is None and _UNIT_TEXT.match(cell.text) and len(cell.text) <= 12:
            reading.unit = cell.text
            continue
        neighbours = line.cells[max(0, position - 1) : position + 2]
        if cell.text.casefold() in _TIMES and any(other in used for other in neighbours):
            continue  # "2 x 0,89": the sign between the quantity and the price
        if not description and _DATE.fullmatch(cell.text) and position + 1 < len(line.cells):
            continue  # a date column before the description ("03/11/2025  Consultation")
        description.append(cell.text)
    reading.description = description


def _text_only(line: Line, columns: Sequence[float] = ()) -> bool:
    """No number on the item columns: a description line (numbers inside it, "20 x 0,5l", are its text)."""
    return all(not any(_near(cell, edge, line.height) for edge in columns) for cell in line.numbers)


_MULTIPLIER = re.compile(
    r"^(?P<quantity>-?\d+(?:[.,]\d+)?)\s*(?P<unit>[^\W\d_]{1,6}\.?)?\s*[x×*]\s*(?P<price>-?\d+[.,]\d+)"
)


def _multiplier(line: Line, mark: str) -> tuple[Decimal, Decimal, str | None] | None:
    """``2 x 0,89`` or ``1,234 kg x 1,99 EUR/kg`` rows of receipts: (quantity, unit price, unit)."""
    text = re.sub(r"\s+", " ", ascii_digits(line.text)).strip()
    match = _MULTIPLIER.match(text)
    if match is None:
        return None
    quantity, _, _ = parse_cell_number(match["quantity"], mark)
    price, _, _ = parse_cell_number(match["price"], mark)
    if quantity is None or price is None:
        return None
    return quantity, price, match["unit"]


def read_items(pages: Sequence[Sequence[Row]], *, invoice_index: int = 0) -> ExtractedInvoice:
    """The invoice on ``pages`` (each page's rows from ``rows.chain_rows``), read by the module's rules."""
    mark = decimal_mark([row for rows in pages for row in rows])
    lines = build_lines(pages)
    lines = join_split_rows(lines)
    anchors: dict[int, Reading] = {}
    for index, line in enumerate(lines):
        if is_summary(line) or is_header(line):
            continue
        reading = find_anchor(line)
        if reading is not None:
            reading.line = index
            anchors[index] = reading
    if anchors:
        # what follows the document's total is a tax breakdown or a payment slip: net x (1 + rate) = gross there
        # (a total is at least as large as every line before it: "Bruttopreis: 1,50" under an item is no total)
        largest = Decimal(0)
        for index in range(min(anchors), len(lines)):
            value = anchors[index].total.value if index in anchors else None
            if value is not None:
                largest = max(largest, abs(value))
            line = lines[index]
            if is_summary(line) and _grand(line) and any(abs(c.value or Decimal(0)) >= largest for c in _amounts(line)):
                anchors = {position: reading for position, reading in anchors.items() if position < index}
                break
    readings = _items_around_anchors(lines, anchors) if anchors else _items_without_anchors(lines, mark)
    items = [_as_item(reading) for reading in readings]
    end = max((reading.last_line for reading in readings), default=-1)
    line_sum = sum((item.line_total for item in items if item.line_total is not None), Decimal(0))
    total = _printed_total(lines[end + 1 :] if readings else lines, line_sum if items else None)
    return ExtractedInvoice(
        invoice_index=invoice_index, currency=_currency(pages), printed_total=total, items=tuple(items)
    )


def _items_around_anchors(lines: Sequence[Line], anchors: dict[int, Reading]) -> list[Reading]:
    # columns from the anchors whose roles are certain (quantity printed without decimals, price with)
    certain = [r for r in anchors.values() if r.quantity and r.price and r.quantity.decimals == 0 < r.price.decimals]
    found = certain or list(anchors.values())
    columns = Columns(
        total=_edge([r.total for r in found]),
        price=_edge([r.price for r in found]),
        quantity=_edge([r.quantity for r in found]),
    )
    titles = None if certain else _titled_columns(lines, min(anchors))
    for index in list(anchors):
        # where several products hold (a factor of 1, a total of 0), the one on the columns wins; when no row
        # tells quantity from price, the header's titles do
        options = [option for _, option in anchor_candidates(lines[index])]
        options += [Reading(index, o.total, o.price, o.quantity) for o in options if o.price is not None]
        anchors[index] = min(
            options, key=lambda option: _title_distance(option, titles) if titles else _column_distance(option, columns)
        )
        anchors[index].line = index
    columns = Columns(
        total=_edge([r.total for r in anchors.values()]),
        price=_edge([r.price for r in anchors.values()]),
        quantity=_edge([r.quantity for r in anchors.values()]),
    )
    chosen: dict[int, Reading] = dict(anchors)
    for index, line in enumerate(lines):
        if index in chosen or is_summary(line) or is_header(line):
            continue
        reading = _reading_on_columns(line, index, columns)
        if reading is None:
            continue
        if not _inside_region(lines, index, anchors):
            continue
        chosen[index] = reading
    readings = [chosen[index] for index in sorted(chosen)]
    for reading in readings:
        _fill(reading, lines[reading.line])
    _attach_continuations(lines, readings)
    # a row of a percentage and an amount under an item ("1,00 %  - 0,10") is its allowance, not an item
    return [reading for reading in readings if _has_letters(reading.description) or reading.quantity is not None]


def _has_letters(texts: Sequence[str]) -> bool:
    return any(re.search(r"[^\W\d_]", text) for text in texts)


def _titled_columns(lines: Sequence[Line], first_anchor: int) -> tuple[float, float] | None:
    """Centres of the quantity and unit-price titles of the header row above the first item, if it has both."""
    for index in range(first_anchor - 1, max(-1, first_anchor - 12), -1):
        line = lines[index]
        if not is_header(line):
            continue
        quantity = price = None
        for cell in line.words:
            tokens = {token.strip(":/").casefold() for token in cell.text.split()}
            if quantity is None and tokens & QUANTITY_TITLES:
                quantity = (cell.x0 + cell.x1) / 2
            elif price is None and tokens & PRICE_TITLES:
                price = (cell.x0 + cell.x1) / 2
        if quantity is not None and price is not None:
            return quantity, price
    return None


def _title_distance(reading: Reading, titles: tuple[float, float]) -> float:
    distance = 0.0
    for cell, centre in ((reading.quantity, titles[0]), (reading.price, titles[1])):
        if cell is not None:
            distance += abs((cell.x0 + cell.x1) / 2 - centre)
    return distance


def _column_distance(reading: Reading, columns: Columns) -> float:
    distance = 0.0
    for cell, edge in (
        (reading.total, columns.total),
        (reading.price, columns.price),
        (reading.quantity, columns.quantity),
    ):
        if cell is not None and edge is not None:
            distance += abs(cell.x1 - edge)
    return distance


def _inside_region(lines: Sequence[Line], index: int, anchors: dict[int, Reading]) -> bool:
    """Between anchors of the same page, or next to them with only item-like rows in between."""
    for step in (-1, 1):
        position = index + step
        while 0 <= position < len(lines):
            if position in anchors:
                if lines[position].page == lines[index].page:
                    return True
                break
            line = lines[position]
            if is_summary(line) or is_header(line) or line.page != lines[index].page:
                break
            position += step
    return False


def _attach_continuations(lines: Sequence[Line], readings: list[Reading]) -> None:
    """Text-only rows under an item continue its description; above an item without one they are it."""
    item_lines = {reading.line: reading for reading in readings}
    for reading in readings:
        reading.last_line = reading.line
    description_edge = min(
        (min((c.x0 for c in lines[r.line].words), default=r.total.x0) for r in readings if r.description),
        default=None,
    )
    first_number = min((r.total.x0 for r in readings), default=0.0)
    edges = [r.total.x1 for r in readings]  # a row with nothing on the line-total column is no item of its own
    for reading in readings:
        line = lines[reading.line]
        if reading.description:
            continue
        above = reading.line - 1
        if above >= 0 and above not in item_lines and _text_only(lines[above], edges) and not is_summary(lines[above]):
            candidate = lines[above]
            if line.top - candidate.bottom <= CONTINUATION_GAP * line.height and not is_header(candidate):
                reading.description = [cell.text for cell in candidate.words]
    for position, reading in enumerate(readings):
        following = readings[position + 1].line if position + 1 < len(readings) else len(lines)
        index = reading.line + 1
        while index < following:
            line = lines[index]
            previous = lines[reading.last_line]
            if line.page != previous.page or line.top - previous.bottom > CONTINUATION_GAP * line.height:
                break
            if is_summary(line) or not _text_only(line, edges) or _prices(line, reading):
                break
            if index + 1 == following < len(lines) and not readings[position + 1].description:
                break  # the next item's name, printed above its numbers
            words = [c for c in line.cells if c.x1 <= first_number + line.height]
            if description_edge is not None and words and words[0].x0 < description_edge - 2 * line.height:
                break
            if not words:
                break
            reading.description.extend(cell.text for cell in words)
            reading.last_line = index
            index += 1


def _rows_above(lines: Sequence[Line], stop: int, mark: str) -> tuple[list[Reading], bool]:
    """The amount rows above ``stop`` on the commonest right edge, cut to the tail that adds up to an amount of
    the ``stop`` row when there is one (and whether there is)."""
    candidates: list[Reading] = []
    for index, line in enumerate(lines[:stop]):
        amounts = _amounts(line)
        if not amounts or not line.words or is_header(line) or is_summary(line):
            continue
        if _multiplier(line, mark) is not None and len(amounts) == 1 and not _has_name(line):
            continue
        candidates.append(Reading(line=index, total=amounts[-1]))
    if not candidates:
        return [], False
    slack = COLUMN_SLACK * statistics.median(lines[r.line].height for r in candidates)

    def support(reading: Reading) -> tuple[int, float]:
        return sum(abs(other.total.x1 - reading.total.x1) <= slack for other in candidates), reading.total.x1

    # the commonest right edge first; another edge whose tail adds up to the total wins over it
    printed = {cell.value for cell in _amounts(lines[stop])} if stop < len(lines) else set()
    columns: list[float] = []
    for reading in sorted(candidates, key=support, reverse=True):
        if all(abs(reading.total.x1 - column) > slack for column in columns):
            columns.append(reading.total.x1)
    for column in columns:
        readings = [r for r in candidates if abs(r.total.x1 - column) <= slack]
        running = Decimal(0)
        for start in range(len(readings) - 1, -1, -1):
            running += readings[start].total.value or Decimal(0)
            if any(value is not None and abs(running - value) <= CENT for value in printed):
                return readings[start:], True
    return [r for r in candidates if abs(r.total.x1 - columns[0]) <= slack], False


def _prices(line: Line, reading: Reading) -> bool:
    """The row is ``qty x price`` of this item (a receipt's multiplier row), not more of its description."""
    match = _MULTIPLIER.match(ascii_digits(line.text))
    if match is None or reading.total.value is None:
        return False
    quantity = parse_decimal(match["quantity"].replace(",", "."))
    price = parse_decimal(match["price"].replace(",", "."))
    return quantity is not None and price is not None and abs(quantity * price - reading.total.value) <= CENT


def _items_without_anchors(lines: Sequence[Line], mark: str) -> list[Reading]:
    """Step 5: description + amount rows on the commonest right edge above a total row. The total row is the
    first whose amount is the sum of a tail of the rows above it (else the first total row at all)."""
    stops = [i for i, line in enumerate(lines) if is_summary(line) and _grand(line) and _amounts(line)]
    fallback: list[Reading] | None = None
    readings: list[Reading] = []
    for stop in [*stops, len(lines)]:
        readings, confirmed = _rows_above(lines, stop, mark)
        if confirmed:
            break
        if fallback is None and readings:
            fallback = readings
    else:
        readings = fallback or []
    for reading in readings:
        _fill(reading, lines[reading.line])
        multiplier = _multiplier(lines[reading.line], mark)
        for neighbour in (reading.line + 1, reading.line - 1):
            if multiplier is None and 0 <= neighbour < len(lines):
                multiplier = _multiplier(lines[neighbour], mark) if not _amount_row(lines[neighbour], reading) else None
                if multiplier is not None and reading.total.value is not None:
                    quantity, price, _ = multiplier
                    if abs(quantity * price - reading.total.value) > CENT:
                        multiplier = None
        if multiplier is not None:
            quantity, price, unit = multiplier
            reading.quantity = Cell(str(quantity), 0, 0, quantity)
            reading.price = Cell(str(price), 0, 0, price)
            reading.unit = unit
    _attach_continuations(lines, readings)
    return readings


def _amount_row(line: Line, reading: Reading) -> bool:
    return any(_near(cell, reading.total.x1, line.height) for cell in _amounts(line))


def _has_name(line: Line) -> bool:
    return any(re.search(r"[^\W\d_]{3,}", cell.text) and cell.text.casefold() not in _TIMES for cell in line.words)


def _amounts(line: Line) -> list[Cell]:
    """Amounts as a document prints its sums: two or three decimals, or whole with a currency (a price per unit
    may have four: "80,0006" is no line total)."""
    return [cell for cell in line.numbers if cell.decimals in (2, 3) or (cell.money and cell.decimals <= 3)]


def _grand(line: Line) -> bool:
    """A total of the whole document (not a subtotal or a carried-forward amount)."""
    return vocabulary.is_grand_total(line.text.casefold())


def _printed_total(lines: Sequence[Line], line_sum: Decimal | None = None) -> Decimal | None:
    """The summary amount after the items that equals the sum of their totals (the net total, when an invoice
    prints net, tax and gross); otherwise the largest amount on a grand-total row, else on any summary row."""
    if line_sum is not None:
        for line in lines:
            if is_summary(line) and any(cell.value == line_sum for cell in _amounts(line)):
                return line_sum
    for rows in (
        [line for line in lines if is_summary(line) and _grand(line)],
        [row for row in lines if is_summary(row)],
    ):
        values = [cell.value for line in rows for cell in _amounts(line) if cell.value is not None]
        if values:
            return max(values, key=abs)
    return None


def _currency(pages: Sequence[Sequence[Row]]) -> str | None:
    """The commonest ISO code or currency symbol of the document."""
    counts: Counter[str] = Counter()
    for rows in pages:
        for row in rows:
            for box in row:
                for token in box[0].split():
                    code = vocabulary.currency_of(token)
                    if code is not None:
                        counts[code] += 1
    return counts.most_common(1)[0][0] if counts else None


def _as_item(reading: Reading) -> ExtractedItem:
    description = re.sub(r"\s+", " ", " ".join(reading.description)).strip() or None
    return ExtractedItem(
        description=description,
        quantity=_value(reading.quantity),
        unit=reading.unit.rstrip(".") if reading.unit else None,
        unit_price=_value(reading.price),
        line_total=_value(reading.total),
    )


def _value(cell: Cell | None) -> Decimal | None:
    return None if cell is None else cell.value
