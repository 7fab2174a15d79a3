"""``invoices ground-truth load FILE``: the known line items of orders, from a JSON file, into the ground truth.

The file is a JSON list of orders, each ``{"order_id": N, "invoices": [...]}``; an invoice is
``{"invoice_index": 0, "currency": "KWD" or null, "items": [...]}`` and an item ``{"description", "quantity", "unit",
"unit_price", "line_total"}`` (any of them null or left out). Numbers are decimal strings as printed ("1.250") or
JSON numbers, read exactly. This is the form ``python -m local.samples`` writes for each invoice's truth
(``printed_total`` is accepted and not kept). Each order in the file replaces its whole ground truth; the replaced
version is kept (``benchmarking.ground_truth_versions``), as when the workbench saves a review.

Ids and numbers have the normaliser's bounds (order ids 1 to 2^63 - 1, invoice indexes up to 2^31 - 1, at most 15
digits before the point and 10 after, descriptions of at most 1,000 characters, units of 50, no NUL character).

Exit codes: 0 loaded; 2 the file is unreadable or malformed, or a value is out of range (the message names the
entry), or a configuration error.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from invoice_pipeline.errors import describe
from invoice_pipeline.extractor import ExtractedInvoice, ExtractedItem
from invoice_pipeline.settings import ConfigError
from invoice_pipeline.tables.db import pool
from invoices_cli.ground_truth import (
    MAX_INVOICE_INDEX,
    MAX_ORDER_ID,
    GroundTruthInvalid,
    check_line,
    load_ground_truth,
)

EXIT_OK = 0


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str | None = None
    quantity: Decimal | None = None
    unit: str | None = None
    unit_price: Decimal | None = None
    line_total: Decimal | None = None


class _Invoice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    invoice_index: int = Field(ge=0, le=MAX_INVOICE_INDEX)
    currency: str | None = None
    printed_total: Decimal | None = None
    items: list[_Item]


class _Order(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    order_id: int = Field(ge=1, le=MAX_ORDER_ID)
    invoices: list[_Invoice]


_ORDERS = TypeAdapter(list[_Order])


def _where(location: Sequence[int | str]) -> str:
    """``(2, "invoices", 0, "items", 1, "quantity")`` -> ``[2].invoices[0].items[1].quantity``."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location).lstrip(".")


def parse_truth(text: str, *, source: str = "the file") -> dict[int, list[ExtractedInvoice]]:
    """The orders of a ground-truth file (order_id -> its invoices); :class:`ConfigError` names what is wrong."""
    try:
        raw = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{source} is not JSON: {error}") from None
    except ValueError as error:  # an integer of more than 4,300 digits
        raise ConfigError(f"{source}: a number is out of range: {error}") from None
    try:
        orders = _ORDERS.validate_python(raw)
    except ValidationError as error:
        first = error.errors()[0]
        raise ConfigError(f"{source}: {_where(first['loc']) or 'the top level'}: {first['msg']}") from None
    truth: dict[int, list[ExtractedInvoice]] = {}
    for position, order in enumerate(orders):
        if order.order_id in truth:
            raise ConfigError(f"{source}: [{position}].order_id: order {order.order_id} is listed twice")
        indexes = [invoice.invoice_index for invoice in order.invoices]
        if len(set(indexes)) != len(indexes):
            raise ConfigError(f"{source}: [{position}].invoices: an invoice_index is listed twice ({indexes})")
        truth[order.order_id] = [
            ExtractedInvoice(
                invoice.invoice_index,
                invoice.currency,
                None,
                tuple(ExtractedItem(**item.model_dump()) for item in invoice.items),
            )
            for invoice in order.invoices
        ]
        for number, invoice in enumerate(truth[order.order_id]):
            for line, item in enumerate(invoice.items):
                try:
                    check_line(item, f"{source}: [{position}].invoices[{number}].items[{line}]", separator=".")
                except GroundTruthInvalid as error:
                    raise ConfigError(str(error)) from None
    return truth


def read_truth_file(path: str | Path) -> dict[int, list[ExtractedInvoice]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None
    return parse_truth(text, source=str(path))


def cmd_load(args: argparse.Namespace) -> int:
    from pg8000.native import DatabaseError

    truth = read_truth_file(args.file)
    try:
        with pool.connection() as connection:
            lines = load_ground_truth(connection, truth, saved_by=args.saved_by)
    except GroundTruthInvalid as error:
        raise ConfigError(f"{args.file}: {error}") from None
    except DatabaseError as error:  # a value Postgres refuses as data (SQLSTATE class 22): the file's fault
        fields = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
        if not str(fields.get("C", "")).startswith("22"):
            raise
        raise ConfigError(f"{args.file}: the database refused a value: {describe(error)}") from None
    if args.json:
        print(json.dumps({"orders": len(truth), "lines": lines}))
    else:
        print(f"loaded {lines} line(s) of ground truth for {len(truth)} order(s)")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ground_truth = sub.add_parser(
        "ground-truth",
        help="load the known line items of orders (what `report` and the workbench measure accuracy against)",
        description="Manage benchmarking.ground_truth_items, the reference that accuracy is measured against.",
    )
    actions = ground_truth.add_subparsers(dest="action", required=True, metavar="ACTION")
    load = actions.add_parser(
        "load",
        help="replace the ground truth of the orders in a JSON file",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    load.add_argument("file", metavar="FILE", help="JSON list of orders with their invoices' items")
    load.add_argument("--saved-by", help="who checked these items (kept with them, as the workbench does)")
    load.add_argument("--json", action="store_true", help="print the result as JSON")
    load.set_defaults(run=cmd_load)
