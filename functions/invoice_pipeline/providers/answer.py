"""What a language model is asked and what it answers, shared by every LLM provider (OpenAI, Bedrock).

The instructions, the item schema (strict-compatible: every field required and nullable, no defaults, so it is
valid both as OpenAI's structured-output format and as a Bedrock tool's input schema) live here once, so two
providers asked the same question are compared on the same footing; :mod:`.normalise` reads every answer.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import SkipJsonSchema

from invoice_pipeline.extractor import InvoiceImages

PROMPT_VERSION = "2026-11-23.1"
SYSTEM_PROMPT = """\
You read supplier invoices and receipts photographed or scanned by restaurants (Arabic and English).
Return every purchased line item exactly once, top to bottom, in the order printed.
- The images are consecutive parts of ONE invoice (pages, or overlapping slices of a long receipt):
  a line visible in two overlapping slices is one line.
- Copy numbers exactly as printed, as strings: keep the digits (Arabic-Indic too), separators and decimals.
  Do not compute, round or convert anything. Use null for a value that is not printed.
- description: the item's name as printed; unit: the unit of measure as printed (kg, pcs, ctn...), or null.
- quantity, unit_price, line_total: the line's printed values.
- Skip subtotals, taxes, discounts, delivery fees and grand totals: they are not items.
- page: the 1-based number of the image the line is printed on; source_text: the line's row exactly as
  printed, all its columns left to right (at most 200 characters).
- currency: the ISO 4217 code if it can be told (KWD, SAR, AED, USD...), else null.
- printed_total: the invoice's printed grand total, or null.
If the images are not an invoice, return no items."""


def _every_field_required(schema: dict[str, Any]) -> None:
    schema["required"] = list(schema.get("properties", {}))


class ModelLineItem(BaseModel):
    """A line as the model returns it (every field of the schema required and nullable).

    Numbers come back as strings exactly as printed (thousands separators, Arabic-Indic digits, 3 decimals);
    :func:`invoice_pipeline.providers.normalise.normalise` turns them into Decimal. ``page`` and
    ``source_text`` (where the line was read) are in the schema but default to None when parsing, so an answer
    without them still reads; ``bbox`` and ``confidence`` are not asked of a model (a document service such as
    Textract reports them) and stay out of the schema.
    """

    model_config = ConfigDict(json_schema_extra=_every_field_required)

    description: str | None
    quantity: str | None
    unit: str | None
    unit_price: str | None
    line_total: str | None
    page: int | None = None
    source_text: str | None = None
    bbox: SkipJsonSchema[list[float] | None] = None
    confidence: SkipJsonSchema[float | None] = None


class ModelInvoice(BaseModel):
    """One invoice as the model returns it."""

    currency: str | None  # ISO 4217 code when it can be told, e.g. "KWD"
    printed_total: str | None  # the invoice's printed grand total, when present
    items: list[ModelLineItem]


def invoice_json_schema() -> dict[str, Any]:
    """The item schema as plain JSON Schema (no ``$ref``), for providers that take a tool input schema."""
    schema = ModelInvoice.model_json_schema()
    line = schema.pop("$defs")["ModelLineItem"]
    schema["properties"]["items"]["items"] = line
    return schema


def user_text(invoice: InvoiceImages) -> str:
    count = len(invoice.segments)
    return "Extract the line items of this invoice." + (
        f" It comes as {count} images, top to bottom." if count > 1 else ""
    )
