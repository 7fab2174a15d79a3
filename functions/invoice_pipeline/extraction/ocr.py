"""The offline extractor (model names starting with ``ocr-``): OCR text boxes, then rebuild the item table.

``ocr-table-v1`` reads text boxes with RapidOCR (PP-OCR detection and recognition models that ship inside the
``rapidocr`` wheel, run by onnxruntime; no network) and turns them into line items with a pure function:

1. **Rows.** Boxes are clustered into rows by vertical overlap (at least half the smaller box height).
2. **Header.** The first row naming at least three different columns is the table header. Header words in
   several phrasings: description/item/product/particulars, qty/quantity, unit/uom, price/unit price/rate,
   total/amount/line total; "#"/"no." columns are recognised and ignored. A cell is assigned to the header
   span it overlaps most (the nearest one otherwise); a cell spanning several headers (OCR merged "4 kg") is
   split by words.
3. **Body.** Each row after the header with text in a numeric column starts an item; a row with text
   only in the description column continues the previous item's description (multi-line descriptions).
   The body ends at the totals section ("total", "subtotal", "grand total", "VAT", "tax", "amount due").
   When more than a third of the numeric cells do not read as numbers (digits of a script the models do
   not know), every number of the table is dropped rather than stored misread.
4. **Without a header** (receipts), rows are read as ``2 kg x 0.750  1.500`` or ``2 x Tomatoes  1.500``
   lines; the description of the first form is the text-only row just above it.
5. **Totals and currency.** The printed total is the amount on the last "total"/"grand total" row (a
   "subtotal" only when there is no other); the currency is an ISO code found on that row, on a "currency"
   row, or anywhere on the page.

Numbers are parsed as printed (thousands separators, Arabic-Indic digits, currency codes stripped). Only
scripts whose recognition models ship in the wheel are read (Latin and Chinese): Arabic-Indic digits are
normalised when the OCR returns them, which the bundled models rarely do.

Tall receipts arrive as overlapping segments: each is read on its own, rows cut by a segment edge are dropped
(the overlap holds them whole in the neighbouring segment), and rows repeated in the overlap are kept once.
The extractor reports no tokens and no cost.
"""

from __future__ import annotations

import difflib
import functools
import io
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from invoice_pipeline import images
from invoice_pipeline.clients import AwsClients
from invoice_pipeline.errors import PermanentError, TransientError
from invoice_pipeline.extraction import pdf_text, provenance, table_reader
from invoice_pipeline.extraction.base import ExtractedInvoice, ExtractedItem, InvoiceImages, PreparedImage
from invoice_pipeline.numbers import ascii_digits, parse_amount
from invoice_pipeline.settings import ConfigError, ConsumerSettings

NAME = "ocr"
MODEL_PREFIX = "ocr-"
DEFAULT_MODEL = "ocr-table-v1"
MODELS = frozenset({DEFAULT_MODEL})
MIN_CONFIDENCE = 0.5
EDGE_MARGIN = 3  # px: a row this close to a segment's cut edge may be cut in half
MAX_PDF_PAGES = 10  # as many as the consumer prepares (images.MAX_PDF_PAGES)
OCR_RENDER_LONG_SIDE = 2048  # px: a PDF page without a usable text layer is rendered this large for the OCR

# text, x0, y0, x1, y1, confidence (pixels of the image the OCR read)
Box = tuple[str, float, float, float, float, float]

HEADER_WORDS = {
    "description": (
        "description",
        "item description",
        "item",
        "items",
        "product",
        "product name",
        "details",
        "particulars",
        "article",
        "goods",
        "item name",
    ),
    "quantity": ("qty", "quantity", "qnty", "qty.", "q'ty", "quan"),
    "unit": ("unit", "uom", "u/m", "unit of measure", "measure", "units"),
    "unit_price": ("price", "unit price", "rate", "unit cost", "price/unit", "u.price", "unit rate", "cost", "each"),
    "line_total": ("total", "amount", "line total", "net amount", "value", "ext price", "extended", "net", "sum"),
    "number": ("#", "no", "no.", "sr", "sr.", "s/n", "sl", "line", "pos"),
}
NUMERIC_COLUMNS = ("quantity", "unit_price", "line_total")
FIELDS = ("description", "quantity", "unit", "unit_price", "line_total")
TOTAL_LABELS = ("grand total", "total", "subtotal", "sub total", "sub-total", "vat", "tax", "amount due", "balance")
CURRENCY_CODES = frozenset(
    {
        *("KWD", "BHD", "OMR", "JOD", "TND", "LYD", "IQD", "SAR", "AED", "QAR", "EGP", "USD", "EUR", "GBP"),
        *("CHF", "JPY", "KRW", "CNY", "INR", "PKR", "CAD", "AUD", "TRY"),
    }
)
_CURRENCY_SYMBOLS = {"€": "EUR", "£": "GBP", "¥": "JPY", "₩": "KRW", "₹": "INR"}
_CURRENCY = re.compile(r"(?<![A-Z])(" + "|".join(sorted(CURRENCY_CODES)) + r")(?![A-Z])")
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


class OcrUnavailableError(ConfigError):
    """The OCR extra is not installed: a configuration problem, not a problem of the order."""


class BoxReader(Protocol):
    def read(self, image: PreparedImage) -> list[Box]: ...


@dataclass(frozen=True)
class Segment:
    boxes: Sequence[Box]
    height: float


Row = tuple[Box, ...]


def _text(box: Box) -> str:
    return box[0]


def _key(text: str) -> str:
    return re.sub(r"\s+", " ", ascii_digits(text).strip().casefold()).strip(" :")


def parse_number(text: str | None) -> Decimal | None:
    """A printed number in a cell: currency codes and symbols, spaces and stray colons removed."""
    if not text:
        return None
    cleaned = _CURRENCY.sub("", ascii_digits(text).upper())
    cleaned = re.sub(r"[€£¥₩₹$:]", "", cleaned).replace(" ", "")
    return parse_amount(cleaned)


# ---- rows -----------------------------------------------------------------------------------------------


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
    return " ".join(_text(box).strip() for box in row)


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
    return re.sub(r"\s+", "", _key(text).replace("×", "x"))


def _same_row(left: str, right: str) -> bool:
    return left == right or difflib.SequenceMatcher(None, left, right, autojunk=False).ratio() >= 0.9


# ---- the table ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    role: str
    x0: float
    x1: float


def _header_role(text: str) -> str | None:
    key = _key(text).replace(" .", ".")
    for role, words in HEADER_WORDS.items():
        if key in words:
            return role
    return None


def _find_header(rows: Sequence[Row]) -> tuple[int, list[_Column]] | None:
    for index, row in enumerate(rows):
        columns = []
        for box in row:
            role = _header_role(_text(box))
            if role is None:
                # "Qty Unit" read as one box: split it when every word is a header word
                words = _text(box).split()
                roles = [_header_role(word) for word in words]
                if len(words) > 1 and all(roles):
                    columns.extend(_split_header(box, words, roles))
                continue
            columns.append(_Column(role, box[1], box[3]))
        named = {column.role for column in columns if column.role != "number"}
        if len(named) >= 3 and named & set(NUMERIC_COLUMNS):
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
        words = _text(box).split()
        if len(touched) > 1 and len(words) > 1:
            for word, (x0, x1) in zip(words, _word_spans(box, words), strict=True):
                parts.setdefault(_column_for(x0, x1, columns).role, []).append(word)
        else:
            parts.setdefault(_column_for(box[1], box[3], columns).role, []).append(_text(box).strip())
    return {role: " ".join(texts) for role, texts in parts.items()}


def _is_totals_row(text: str) -> bool:
    key = _key(text)
    return any(key.startswith(label) for label in TOTAL_LABELS)


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
    unreadable = sum(parse_number(text) is None for text in numbers)
    if numbers and unreadable * 3 > len(numbers):
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
    found: dict[str, tuple[Decimal, Row]] = {}
    for row in rows:
        key = _key(row_text(row))
        label = next((label for label in TOTAL_LABELS if key.startswith(label)), None)
        if label is None or label in ("vat", "tax"):
            continue
        numbers = [parse_number(_text(box)) for box in row]
        values = [value for value in numbers if value is not None]
        if not values:
            match = re.search(rf"(?:^|\s)({_NUMBER})\s*$", ascii_digits(row_text(row)))
            value = parse_number(match.group(1)) if match else None
            if value is None:
                continue
            values = [value]
        kind = "sub" if label.startswith("sub") else label
        found[kind] = (values[-1], row)
    for kind in ("grand total", "total", "amount due", "balance", "sub"):
        if kind in found:
            return found[kind]
    return None, None


def _currency(rows: Sequence[Row], total_row: Row | None) -> str | None:
    """An ISO code on the total row (or a currency symbol there), on a "currency" row, else the commonest code."""

    def codes(text: str, *, symbols: bool) -> list[str]:
        found = _CURRENCY.findall(text.upper())
        if symbols:
            found += [code for symbol, code in _CURRENCY_SYMBOLS.items() if symbol in text]
        return found

    labelled = [total_row] if total_row is not None else []
    labelled += [row for row in rows if _is_totals_row(row_text(row)) and not _key(row_text(row)).startswith("vat")]
    labelled += [row for row in rows if _key(row_text(row)).startswith("currency")]
    for row in labelled:
        found = codes(row_text(row), symbols=True)
        if found:
            return found[0]
    counts: dict[str, int] = {}
    for row in rows:
        for code in codes(row_text(row), symbols=False):
            counts[code] = counts.get(code, 0) + 1
    return max(counts, key=lambda code: counts[code]) if counts else None


def reconstruct(rows: Sequence[Row], *, invoice_index: int = 0) -> ExtractedInvoice:
    """The invoice in ``rows`` (from ``group_rows`` or ``merge_segments``): items, printed total, currency."""
    return reconstruct_pages([rows], invoice_index=invoice_index)


def reconstruct_pages(pages: Sequence[Sequence[Row]], *, invoice_index: int = 0) -> ExtractedInvoice:
    """The invoice on ``pages`` (each page's rows): the reading whose arithmetic holds best.

    Two readers: the layout-free ``table_reader`` and the header reader below (tuned on the generated samples
    and the receipt line forms). Their readings are ranked by ``plausibility``; a tie keeps the header reader.
    """
    chained = [table_reader.chain_rows([box for row in rows for box in row]) for rows in pages]
    general = table_reader.read_items(chained, invoice_index=invoice_index)
    stacked: list[Row] = []
    offset = 0.0
    for rows in pages:
        stacked.extend(tuple((b[0], b[1], b[2] + offset, b[3], b[4] + offset, b[5]) for b in row) for row in rows)
        offset += max((b[4] for row in rows for b in row), default=0.0) + 1.0
    by_header = _reconstruct_by_header(stacked, invoice_index=invoice_index)
    general_score, header_score = plausibility(general), plausibility(by_header)
    if general_score > header_score or (general_score == header_score and not by_header.items):
        return general
    return by_header


def plausibility(invoice: ExtractedInvoice) -> int:
    """How much of a reading its own arithmetic confirms: lines whose quantity x unit price is their total,
    plus two when the printed total is the sum of the lines."""
    confirmed = 0
    for item in invoice.items:
        if item.quantity is not None and item.unit_price is not None and item.line_total is not None:
            confirmed += abs(item.quantity * item.unit_price - item.line_total) <= Decimal("0.01")
    totals = [item.line_total for item in invoice.items if item.line_total is not None]
    printed = invoice.printed_total
    sums = bool(totals) and printed is not None and abs(sum(totals, Decimal(0)) - printed) <= Decimal("0.01")
    return confirmed + 2 * sums


def _reconstruct_by_header(rows: Sequence[Row], *, invoice_index: int = 0) -> ExtractedInvoice:
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


def reconstruct_boxes(boxes: Iterable[Box], *, invoice_index: int = 0) -> ExtractedInvoice:
    """The invoice on one page of OCR boxes."""
    return reconstruct(group_rows(boxes), invoice_index=invoice_index)


# ---- OCR ------------------------------------------------------------------------------------------------


class RapidOcrReader:
    """Text boxes from RapidOCR with the models bundled in its wheel (no download, no network)."""

    _lock = threading.Lock()
    _engine: Any = None

    def __init__(self) -> None:
        try:
            import numpy  # noqa: F401  (a dependency of rapidocr; checked so the message names the extra)
            import rapidocr  # noqa: F401
        except ImportError as error:
            raise OcrUnavailableError(
                f"the offline extractor {DEFAULT_MODEL} needs the OCR extra, which is not installed "
                f"(missing module {error.name!r}): pip install -r requirements-ocr.txt"
            ) from None

    @classmethod
    def _get_engine(cls) -> Any:
        # One engine per process: loading the models takes about a second.
        if cls._engine is None:
            from rapidocr import RapidOCR

            cls._engine = RapidOCR(params={"Global.use_cls": False, "Global.log_level": "error"})
        return cls._engine

    def read(self, image: PreparedImage) -> list[Box]:
        from PIL import Image, UnidentifiedImageError

        try:
            picture = Image.open(io.BytesIO(image.data)).convert("RGB")
        except (UnidentifiedImageError, OSError) as error:
            raise PermanentError(f"the OCR cannot decode the prepared image: {error}") from None
        with self._lock:
            result = self._get_engine()(picture)
        if result.boxes is None:
            return []
        boxes: list[Box] = []
        for corners, text, score in zip(result.boxes, result.txts, result.scores, strict=True):
            xs = [float(point[0]) for point in corners]
            ys = [float(point[1]) for point in corners]
            boxes.append((str(text), min(xs), min(ys), max(xs), max(ys), float(score)))
        return boxes


def settings_from(env: Mapping[str, str]) -> None:
    """The offline extractor has no settings: its models ship in the ``rapidocr`` wheel."""
    return None


def create_extractor(llm: str, settings: ConsumerSettings, clients: AwsClients) -> OcrExtractor:
    return OcrExtractor(llm)


class OcrExtractor(images.VisionPreparation):
    """The ``Extractor`` for ``ocr-*`` model names. It reads the images a vision model sees (they read well enough,
    and tall receipts arrive split: :func:`merge_segments`)."""

    def __init__(self, llm: str = DEFAULT_MODEL, *, reader: BoxReader | None = None) -> None:
        if llm not in MODELS:
            raise ConfigError(f"unknown offline model {llm!r}; available: {', '.join(sorted(MODELS))}")
        self.llm = llm
        self._reader: BoxReader = reader if reader is not None else RapidOcrReader()

    def extract(self, invoice: InvoiceImages, *, deadline: float) -> ExtractedInvoice:
        document = invoice.document
        if document is not None and document.media_type == "application/pdf":
            pages = self._pdf_pages(invoice, document.data, deadline)
            read = reconstruct_pages([page.rows for page in pages], invoice_index=invoice.invoice_index)
            return provenance.locate(read, pages)
        segments = []
        for number, image in enumerate(invoice.segments, start=1):
            if time.monotonic() > deadline:
                raise TransientError(
                    f"OCR of order {invoice.order_id} invoice {invoice.invoice_index} ran out of time "
                    f"at segment {number} of {len(invoice.segments)}"
                )
            segments.append(Segment(self._reader.read(image), image.height))
        rows = merge_segments(segments)
        sizes = [(float(image.width), float(image.height)) for image in invoice.segments]
        read = reconstruct(rows, invoice_index=invoice.invoice_index)
        return provenance.locate(read, provenance.segment_pages(rows, sizes))

    def _pdf_pages(self, invoice: InvoiceImages, data: bytes, deadline: float) -> list[provenance.Page]:
        """Each page's rows: from its text layer when ``pdf_text`` judges it usable, else from OCR of the page."""
        import pypdfium2

        try:
            document = pypdfium2.PdfDocument(data)
        except pypdfium2.PdfiumError as error:
            raise PermanentError(f"the PDF of order {invoice.order_id} cannot be read: {error}") from None
        try:
            pages = []
            for number in range(min(len(document), MAX_PDF_PAGES)):
                if time.monotonic() > deadline:
                    raise TransientError(
                        f"reading the PDF of order {invoice.order_id} invoice {invoice.invoice_index} ran out of "
                        f"time at page {number + 1} of {len(document)}"
                    )
                page = document[number]
                try:
                    layer = pdf_text.read_page(page, ocr_sample=functools.partial(self._ocr_band, page))
                    words = layer.words if layer.usable else self._ocr_page(page)
                    width, height = page.get_size()
                finally:
                    page.close()
                pages.append(provenance.Page(group_rows(words), width, height))
            return pages
        finally:
            document.close()

    def _ocr_page(self, page: Any, band: tuple[float, float] | None = None) -> list[Box]:
        """OCR boxes of a rendered PDF page (or a band of it), in PDF points from the page's top left."""
        from PIL import Image

        width, height = page.get_size()
        scale = min(4.0, OCR_RENDER_LONG_SIDE / max(width, height, 1.0))
        picture: Image.Image = page.render(scale=scale, grayscale=True).to_pil()
        top = 0.0
        if band is not None:
            top = band[0]
            picture = picture.crop((0, int(band[0] * scale), picture.width, int(band[1] * scale)))
        buffer = io.BytesIO()
        picture.convert("RGB").save(buffer, format="JPEG", quality=90)
        image = PreparedImage(buffer.getvalue(), "image/jpeg", picture.width, picture.height)
        return [
            (text, x0 / scale, y0 / scale + top, x1 / scale, y1 / scale + top, confidence)
            for text, x0, y0, x1, y1, confidence in self._reader.read(image)
        ]

    def _ocr_band(self, page: Any, band: tuple[float, float]) -> list[str]:
        return [box[0] for box in self._ocr_page(page, band) if box[5] >= MIN_CONFIDENCE]
