"""The Amazon Textract provider (docs/architecture.md §10: ``textract/analyze-expense``), synchronous AnalyzeExpense.

Textract's synchronous API reads one single-page document (JPEG, PNG, or a one-page PDF, at most 10 MB) per call,
so each page goes on its own: whole and upright (:func:`invoice_pipeline.documents.images.prepare_pages`: PDF pages
rendered, tall receipts not split, not scaled down to a vision model's size). The asynchronous API would read a
multi-page PDF in one job, but needs the document in S3, an SNS topic or polling, and several round trips: for
invoices of a page or two the synchronous calls are simpler and finish sooner.

Mapping of each ``ExpenseDocument`` (pages in order, documents in ``ExpenseIndex`` order):
- ``LineItemGroups[].LineItems[].LineItemExpenseFields`` -> one item per line item: ``ITEM`` (else
  ``DESCRIPTION``, else the whole ``EXPENSE_ROW`` text) as the description, ``QUANTITY``, ``UNIT_PRICE``, ``PRICE``
  as the line total. Textract has no unit-of-measure field: a unit printed after the quantity ("2 kg") is kept.
- where the line was read: the ``EXPENSE_ROW`` field's text as ``source_text`` and its ``Geometry.BoundingBox``
  (``Left, Top, Width, Height``, fractions of the page) as ``bbox`` (else the box around the line's fields),
  the page the call read as ``page``, and the lowest ``ValueDetection.Confidence`` of the line's value fields
  (0-100) as ``confidence`` (0-1).
- ``SummaryFields`` ``TOTAL`` (else ``AMOUNT_DUE``) -> the printed total; the ``Currency.Code`` Textract attaches
  to amounts -> the currency.
The texts as printed go through the same normalisation as a model's answer (:mod:`.normalise`: numbers, caps,
control characters, currency code, with the same validation warnings).

Cost: per page, from :mod:`invoice_pipeline.pricing`. No tokens. Errors: ``ProvisionedThroughputExceededException``,
``ThrottlingException``, ``LimitExceededException`` throttled; ``InternalServerError`` transient;
``UnsupportedDocumentException``, ``BadDocumentException``, ``DocumentTooLargeException``,
``InvalidParameterException`` permanent; ``AccessDeniedException`` configuration.

Response shapes from the Textract API reference (AnalyzeExpense, ExpenseDocument, ExpenseField, ExpenseCurrency)
and the saved responses of aws-samples/amazon-textract-textractor
(tests/fixtures/saved_api_responses/test_analyze_expense_from_path.json, Apache-2.0).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from invoice_pipeline.clients import AwsClients
from invoice_pipeline.documents import images
from invoice_pipeline.errors import ImageRejected, NotEnoughTime
from invoice_pipeline.extractor import (
    ExtractedInvoice,
    ExtractedItem,
    InvoiceImages,
    PreparedImage,
    request_budget,
)
from invoice_pipeline.pricing import PAGE_PRICES, ModelPrices, cost_usd
from invoice_pipeline.providers import aws_sdk
from invoice_pipeline.providers.answer import ModelInvoice, ModelLineItem
from invoice_pipeline.providers.normalise import normalise
from invoice_pipeline.settings import ConfigError, ConsumerSettings

NAME = "textract"
MODELS = frozenset({"textract/analyze-expense"})
SERVICE = "textract"
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024  # the synchronous API's limit
PRICE_PER_PAGE = PAGE_PRICES["textract/analyze-expense"].page  # the pricing table's, for the tests and docs

ERRORS = aws_sdk.ErrorCodes(
    throttled=frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "LimitExceededException"}),
    transient=frozenset({"InternalServerError"}),
    permanent=frozenset(
        {
            "UnsupportedDocumentException",
            "BadDocumentException",
            "DocumentTooLargeException",
            "InvalidParameterException",
        }
    ),
    configuration=frozenset({"AccessDeniedException"}),
)
_QUANTITY_UNIT = re.compile(r"^\s*([^A-Za-z]*?\d[^A-Za-z]*?)\s*([A-Za-z][A-Za-z.]{0,11})\s*$")


def settings_from(env: Mapping[str, str]) -> None:
    """Textract needs no settings of its own: the function's role and region."""
    return None


def create_extractor(llm: str, settings: ConsumerSettings, clients: AwsClients) -> TextractExtractor:
    if llm not in MODELS:
        raise ConfigError(f"unknown Textract model {llm!r}; available: {', '.join(sorted(MODELS))}")
    return TextractExtractor(llm, clients, timeout_seconds=settings.model_timeout_seconds, prices=settings.model_prices)


def _fields(fields: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Fields by type; the first of each type wins (Textract lists the most confident first)."""
    found: dict[str, Mapping[str, Any]] = {}
    for field in fields:
        kind = str((field.get("Type") or {}).get("Text") or "")
        found.setdefault(kind, field)
    return found


def _value(field: Mapping[str, Any] | None) -> str | None:
    if field is None:
        return None
    text = " ".join(str((field.get("ValueDetection") or {}).get("Text") or "").split())
    return text or None


VALUE_FIELDS = ("ITEM", "DESCRIPTION", "QUANTITY", "UNIT_PRICE", "PRICE")


def _box(field: Mapping[str, Any] | None) -> list[float] | None:
    """A field's value box as ``[x0, y0, x1, y1]`` (unchecked: the normaliser checks every provider's boxes)."""
    box = (((field or {}).get("ValueDetection") or {}).get("Geometry") or {}).get("BoundingBox")
    if not isinstance(box, Mapping):
        return None
    try:
        left, top = float(box["Left"]), float(box["Top"])
        return [left, top, left + float(box["Width"]), top + float(box["Height"])]
    except (KeyError, TypeError, ValueError):
        return None


def _row_box(by_type: Mapping[str, Mapping[str, Any]]) -> list[float] | None:
    row = _box(by_type.get("EXPENSE_ROW"))
    if row is not None:
        return row
    boxes = [box for kind in VALUE_FIELDS if (box := _box(by_type.get(kind))) is not None]
    if not boxes:
        return None
    return [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]


def _confidence(by_type: Mapping[str, Mapping[str, Any]]) -> float | None:
    found = []
    for kind in VALUE_FIELDS:
        value = ((by_type.get(kind) or {}).get("ValueDetection") or {}).get("Confidence")
        if isinstance(value, int | float) and not isinstance(value, bool):
            found.append(float(value) / 100)
    return min(found) if found else None


def line_item(fields: Iterable[Mapping[str, Any]], *, page: int | None = None) -> ModelLineItem:
    """One line item's texts as printed, in the shape a model answers, with where it was read."""
    by_type = _fields(fields)
    description = next(
        (text for kind in ("ITEM", "DESCRIPTION", "EXPENSE_ROW") if (text := _value(by_type.get(kind)))), None
    )
    quantity, unit = _value(by_type.get("QUANTITY")), None
    match = _QUANTITY_UNIT.match(quantity or "")
    if match:
        quantity, unit = match.group(1), match.group(2)
    return ModelLineItem(
        description=description,
        quantity=quantity,
        unit=unit,
        unit_price=_value(by_type.get("UNIT_PRICE")),
        line_total=_value(by_type.get("PRICE")),
        page=page,
        source_text=_value(by_type.get("EXPENSE_ROW")),
        bbox=_row_box(by_type),
        confidence=_confidence(by_type),
    )


def read_answer(response: Mapping[str, Any], *, page: int = 1) -> ModelInvoice:
    """One AnalyzeExpense response as the texts a model would answer: items, printed total, currency. ``page``:
    which page of the invoice the call read (a synchronous call reads one)."""
    lines: list[ModelLineItem] = []
    total: str | None = None
    currency: str | None = None
    documents = sorted(response.get("ExpenseDocuments") or [], key=lambda d: int(d.get("ExpenseIndex") or 0))
    for document in documents:
        for group in document.get("LineItemGroups") or []:
            for line in group.get("LineItems") or []:
                lines.append(line_item(line.get("LineItemExpenseFields") or [], page=page))
        summary = _fields(document.get("SummaryFields") or [])
        field = summary.get("TOTAL") or summary.get("AMOUNT_DUE")
        if field is not None and total is None:
            total = _value(field)
        for candidate in (field, *summary.values()):
            code = str(((candidate or {}).get("Currency") or {}).get("Code") or "").strip().upper()
            if currency is None and re.fullmatch(r"[A-Z]{3}", code):
                currency = code
    return ModelInvoice(currency=currency, printed_total=total, items=lines)


def read_response(response: Mapping[str, Any]) -> tuple[list[ExtractedItem], Decimal | None, str | None]:
    """(items, printed total, currency) of one AnalyzeExpense response, normalised."""
    invoice = normalise(read_answer(response), invoice_index=0)
    return list(invoice.items), invoice.printed_total, invoice.currency


class TextractExtractor:
    def __init__(self, llm: str, clients: AwsClients, *, timeout_seconds: float, prices: ModelPrices = ()) -> None:
        self._clients = clients
        self._prices = prices
        self.llm = llm
        self._timeout_seconds = timeout_seconds

    def prepare(self, data: bytes, *, source: str) -> tuple[PreparedImage, ...]:
        pages = images.prepare_pages(data, source=source)
        for number, page in enumerate(pages, start=1):
            if len(page.data) > MAX_DOCUMENT_BYTES:
                raise ImageRejected(f"{source} page {number} is {len(page.data)} bytes, Textract reads at most 10 MB")
        return pages

    def extract(self, invoice: InvoiceImages, *, deadline: float) -> ExtractedInvoice:
        lines: list[ModelLineItem] = []
        total: str | None = None
        currency: str | None = None
        for number, page in enumerate(invoice.segments, start=1):
            try:
                timeout, retries = request_budget(deadline - time.monotonic(), self._timeout_seconds)
            except NotEnoughTime as error:
                raise NotEnoughTime(f"page {number} of {len(invoice.segments)}: {error}") from None
            try:
                textract = aws_sdk.client(self._clients, SERVICE, timeout=timeout, retries=retries)
                response = textract.analyze_expense(Document={"Bytes": page.data})
            except Exception as error:
                translated = aws_sdk.translate(error, ERRORS, service=SERVICE)
                if translated is error:
                    raise
                raise translated from error
            read = read_answer(response, page=number)
            lines.extend(read.items)
            total = read.printed_total if read.printed_total is not None else total  # the last page has the total
            currency = currency or read.currency
        answer = ModelInvoice(currency=currency, printed_total=total, items=lines)
        return dataclasses.replace(
            normalise(answer, invoice_index=invoice.invoice_index),
            cost_usd=cost_usd(self.llm, 0, 0, pages=len(invoice.segments), configured=self._prices),
        )
