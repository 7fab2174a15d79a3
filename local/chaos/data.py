"""The chaos runs' orders: small stamped invoices with generated line items whose truth is known.

Cheap to prepare at hundreds of orders; :mod:`local.samples` has the realistic ones. ``hostile=True`` fills the
items and S3 keys with text that must be stored verbatim (bound parameters) and break nothing.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from PIL import Image

from local.stamp import draw_stamp

MODEL = "gpt-4o-2024-11-20"
BUCKET = "chaos-invoices"
OPENAI_TEST_KEY = "sk-chaos-test-key-7f3a9c0d5e1b"  # a test secret: must never appear in the logs

_WORDS = ("Tomatoes", "Basmati rice", "Olive oil", "Chicken breast", "Labneh", "Flour", "Sugar", "Lemons", "Mint")
_UNITS = ("kg", "pcs", "ctn", "L", "box")
# Hostile text that must be stored verbatim (bound parameters) and break nothing.
HOSTILE_TEXT = (
    "Robert'); DROP TABLE benchmarking.invoice_items; --",
    'O\'Brien "special" flour; DELETE FROM orders;',
    "1; UPDATE benchmarking.extraction_jobs SET status='done' --",
    "$$ ; SELECT pg_sleep(10); $$",
    "back\\slash %s %(name)s :order_id ? $1",
)
HOSTILE_UNITS = ("kg'--", "pcs; DROP TABLE orders", ":llm", "%s")
HOSTILE_KEY = "it's'); DROP TABLE orders; --/scan 1.png"


@dataclass(frozen=True)
class TruthItem:
    invoice_index: int
    line_no: int
    item_name: str
    qty: Decimal
    uom: str
    unit_price: Decimal
    net_price: Decimal


@dataclass(frozen=True)
class ChaosInvoice:
    stamp: int
    key: str
    data: bytes
    answer: dict[str, Any]


@dataclass(frozen=True)
class ChaosOrder:
    order_id: int
    restaurant_id: int
    invoices: tuple[ChaosInvoice, ...]
    truth: tuple[TruthItem, ...]
    invoice_image: str


def stamped_image(stamp: int) -> bytes:
    """A small white page carrying only the stamp the model emulator reads (cheap to fetch and prepare)."""
    page = Image.new("RGB", (300, 400), "white")
    draw_stamp(page, stamp, left=16, top=16, unit=2, height=24)
    buffer = io.BytesIO()
    page.save(buffer, format="PNG")
    return buffer.getvalue()


def make_orders(count: int, *, first_id: int = 1, seed: int = 0, hostile: bool = False) -> list[ChaosOrder]:
    """``count`` orders of one or two invoices of one to four lines; the same arguments give the same orders."""
    rng = random.Random(f"chaos:{seed}:{first_id}")
    orders = []
    for order_id in range(first_id, first_id + count):
        invoices, truth = [], []
        for index in range(rng.choice((1, 1, 2))):
            stamp = order_id * 4 + index  # unique per invoice, well inside the 24-bit stamp
            lines = []
            for line_no in range(1, rng.randint(1, 4) + 1):
                qty = Decimal(rng.randint(1, 40)) / (4 if rng.random() < 0.3 else 1)
                price = Decimal(rng.randint(50, 90_000)) / 1000
                name = rng.choice(HOSTILE_TEXT if hostile else _WORDS)
                unit = rng.choice(HOSTILE_UNITS if hostile else _UNITS)
                total = (qty * price).quantize(Decimal("0.001"))
                lines.append(
                    {
                        "description": name,
                        "quantity": str(qty),
                        "unit": unit,
                        "unit_price": str(price),
                        "line_total": str(total),
                    }
                )
                truth.append(TruthItem(index, line_no, name, qty, unit, price, total))
            key = f"orders/{order_id}/{index}-{HOSTILE_KEY if hostile else 'invoice.png'}"
            answer = {"currency": "KWD", "printed_total": None, "items": lines}
            invoices.append(ChaosInvoice(stamp, key, stamped_image(stamp), answer))
        urls = [f"s3://{BUCKET}/{_quote_key(invoice.key)}" for invoice in invoices]
        invoice_image = json.dumps(urls) if len(urls) > 1 else urls[0]
        orders.append(ChaosOrder(order_id, 101 + order_id % 3, tuple(invoices), tuple(truth), invoice_image))
    return orders


def _quote_key(key: str) -> str:
    return quote(key, safe="/")
