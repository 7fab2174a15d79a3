"""The extractor interface and what every extractor returns, whatever its provider.

One call extracts ONE invoice: all the segments of a tall receipt go to the model together, in order, so
lines cut by a segment boundary (segments overlap) are returned once. The consumer calls the extractor once
per invoice of an order, then writes the whole order in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from invoice_pipeline.errors import NotEnoughTime
from invoice_pipeline.ratelimits import RateLimitState


@dataclass(frozen=True)
class PreparedImage:
    """One image as the model will see it: upright, scaled, encoded."""

    data: bytes
    media_type: str  # "image/png" or "image/jpeg"
    width: int
    height: int


@dataclass(frozen=True)
class SourceDocument:
    """The invoice file as fetched, before preparation: for an extractor that reads it itself (a PDF's text layer)."""

    data: bytes
    media_type: str  # "application/pdf", "image/jpeg", "image/png", "image/webp" or "image/gif"


@dataclass(frozen=True)
class InvoiceImages:
    """Everything the extractor gets for one invoice of an order."""

    order_id: int
    invoice_index: int  # which image of the order, from 0
    segments: tuple[PreparedImage, ...]  # top to bottom; one for an ordinary page
    document: SourceDocument | None = None  # the original file; extractors that only need images ignore it


@dataclass(frozen=True)
class ValidationWarning:
    """A finding about an extracted invoice: a value the normaliser cleaned, capped or could not read, or an
    arithmetic check that failed (:mod:`invoice_pipeline.reading.validation`). Advisory: the order is still written."""

    code: str
    invoice_index: int
    line_no: int | None  # from 1; None for a warning about the whole invoice
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ExtractedItem:
    """One line as read. The provenance fields (where on the document the line was read) are not part of a
    line's value: two readings of the same line compare equal wherever they were found. They hold what the
    extractor reported until :func:`invoice_pipeline.providers.normalise.normalise_provenance` checks them."""

    description: str | None
    quantity: Decimal | None
    unit: str | None
    unit_price: Decimal | None
    line_total: Decimal | None
    page: int | None = field(default=None, compare=False)  # 1-based page (or image segment) of the invoice
    bbox: tuple[float, ...] | None = field(default=None, compare=False)  # x0, y0, x1, y1: fractions, top left
    source_text: str | None = field(default=None, compare=False)  # the printed row as read
    confidence: float | None = field(default=None, compare=False)  # 0-1, the lowest of its fields, if reported


@dataclass(frozen=True)
class ExtractedInvoice:
    invoice_index: int
    currency: str | None
    printed_total: Decimal | None
    items: tuple[ExtractedItem, ...]
    input_tokens: int = 0  # 0 for extractors that report none (offline OCR)
    output_tokens: int = 0
    cost_usd: Decimal | None = field(default=Decimal(0))  # None: the model has no price (pricing.py)
    warnings: tuple[ValidationWarning, ...] = ()  # what normalising the model's answer changed or dropped
    rate_limits: RateLimitState | None = None  # what the provider's answer said of its limits, if anything
    item_rows: int | None = None  # rows of the page that look like items, where the reader counted them
    # amounts printed on the rows below the last line, where the reader has the page's rows (a subtotal of the
    # lines is often printed there while ``printed_total`` is the grand total with taxes)
    amounts_below: frozenset[Decimal] | None = None


class Extractor(Protocol):
    """What the consumer needs of a model. ``deadline`` is a ``time.monotonic()`` value not to exceed.

    ``prepare`` turns one fetched object (image or PDF) into what this provider reads: images scaled to what a
    vision model keeps (:func:`invoice_pipeline.documents.images.prepare_invoice`), or whole pages for a document
    service. ``extract`` raises only the project's error types (:mod:`invoice_pipeline.errors`): each provider
    translates its own SDK's errors at this boundary.
    """

    llm: str  # the name in LLM_MODELS and the ledger, as configured

    def prepare(self, data: bytes, *, source: str) -> tuple[PreparedImage, ...]: ...

    def extract(self, invoice: InvoiceImages, *, deadline: float) -> ExtractedInvoice: ...


DEFAULT_TIMEOUT_SECONDS = 120.0  # one attempt at most; a vision call on a few pages takes 5-40 s
MIN_ATTEMPT_SECONDS = 10.0  # below this an attempt is unlikely to finish: fail over to SQS instead
MAX_RETRIES = 2
RETRY_SLEEP_ALLOWANCE = 2.0  # an SDK's backoff between attempts (about 0.5-2 s, honouring Retry-After)


def request_budget(
    remaining: float, max_timeout: float = DEFAULT_TIMEOUT_SECONDS, *, retry_sleep: float = RETRY_SLEEP_ALLOWANCE
) -> tuple[float, int]:
    """(timeout, max_retries) such that (retries + 1) attempts and their backoff fit in ``remaining`` seconds.

    ``max_timeout`` (``MODEL_TIMEOUT_SECONDS``) caps one attempt; ``retry_sleep`` is the longest sleep the SDK may
    take between attempts. Shared by every remote provider's SDK client.
    """
    for retries in range(MAX_RETRIES, -1, -1):
        per_attempt = (remaining - retries * retry_sleep) / (retries + 1)
        if per_attempt >= MIN_ATTEMPT_SECONDS:
            return min(max_timeout, per_attempt), retries
    raise NotEnoughTime(f"only {remaining:.0f} s left before the deadline: not calling the model")
