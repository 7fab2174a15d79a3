"""The extractor interface and the item schema every extractor returns.

One call extracts ONE invoice: all the segments of a tall receipt go to the model together, in order, so
lines cut by a segment boundary (segments overlap) are returned once. The consumer calls the extractor once
per invoice of an order, then writes the whole order in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from pydantic import BaseModel

from invoice_pipeline.ratelimits import RateLimitState


@dataclass(frozen=True)
class PreparedImage:
    """One image as the model will see it: upright, scaled, encoded."""

    data: bytes
    media_type: str  # "image/png" or "image/jpeg"
    width: int
    height: int


@dataclass(frozen=True)
class InvoiceImages:
    """Everything the extractor gets for one invoice of an order."""

    order_id: int
    invoice_index: int  # which image of the order, from 0
    segments: tuple[PreparedImage, ...]  # top to bottom; one for an ordinary page


class ModelLineItem(BaseModel):
    """A line as the model returns it (strict structured outputs: every field required, nullable, no default).

    Numbers come back as strings exactly as printed (thousands separators, Arabic-Indic digits, 3 decimals);
    the consumer normalises them to Decimal.
    """

    description: str | None
    quantity: str | None
    unit: str | None
    unit_price: str | None
    line_total: str | None


class ModelInvoice(BaseModel):
    """One invoice as the model returns it."""

    currency: str | None  # ISO 4217 code when it can be told, e.g. "KWD"
    printed_total: str | None  # the invoice's printed grand total, when present
    items: list[ModelLineItem]


@dataclass(frozen=True)
class ExtractedItem:
    description: str | None
    quantity: Decimal | None
    unit: str | None
    unit_price: Decimal | None
    line_total: Decimal | None


@dataclass(frozen=True)
class ExtractedInvoice:
    invoice_index: int
    currency: str | None
    printed_total: Decimal | None
    items: tuple[ExtractedItem, ...]
    input_tokens: int = 0  # 0 for extractors that report none (offline OCR)
    output_tokens: int = 0
    cost_usd: Decimal = field(default=Decimal(0))
    rate_limits: RateLimitState | None = None  # what the provider's answer said of its limits, if anything


class Extractor(Protocol):
    """What the consumer needs of a model. ``deadline`` is a ``time.monotonic()`` value not to exceed."""

    model: str

    def extract(self, invoice: InvoiceImages, *, deadline: float) -> ExtractedInvoice: ...
