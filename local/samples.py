"""Sample supplier invoices with known line items: generated images plus the answer a perfect model gives.

Every invoice is drawn with Pillow and DejaVu fonts, deterministically from a seed, and carries a stamp
(``local.stamp``) in its top margin so the model emulator knows which invoice it is looking at. Kinds:

- ``a4_classic``: A4 at 150 dpi, table "Description | Qty | Unit | Unit price | Total";
- ``a4_columns``: another column order and other header words ("# | Item | UOM | Quantity | Rate | Amount");
- ``a4_multiline``: descriptions wrapped over two lines;
- ``receipt``: a tall thermal receipt (576 px wide, taller than 3:1), "2 kg x 0.750   1.500" lines, no header;
- ``rotated``: an A4 page stored turned in its pixels, with the EXIF orientation tag saying how to right it;
- ``photo``: an A4 page "photographed": mild perspective, blur, noise, uneven light, JPEG;
- ``arabic_digits``: an A4 page whose numbers are printed in Arabic-Indic digits (ASCII separators).

For each invoice the *answer* is the ``ModelInvoice`` dict a perfect model returns (numbers as printed,
Arabic-Indic digits included) and the *truth* is the normalised ``ExtractedInvoice`` (Decimal values).
Line totals are ``quantity x unit_price`` rounded half-up at the currency's precision and the printed total
is their sum. This module is a test and demo fixture; ``functions/`` never imports it.

``python -m local.samples --out DIR --orders N`` writes the images and ``truth.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont, ImageOps

from invoice_pipeline.extractor import ExtractedInvoice, ExtractedItem
from invoice_pipeline.reading.money import currency_decimals, round_money
from invoice_pipeline.reading.numbers import ARABIC_INDIC_DIGITS
from local.stamp import draw_stamp

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
A4_SIZE = (1240, 1754)  # 150 dpi
RECEIPT_WIDTH = 576  # 80 mm thermal paper at 203 dpi
KINDS = ("a4_classic", "a4_columns", "a4_multiline", "receipt", "rotated", "photo", "arabic_digits")
A4_LAYOUTS = ("a4_classic", "a4_columns", "a4_multiline")
STAMP_TOP = 22
STAMP_HEIGHT = 36
EXIF_ORIENTATION = 0x0112
# How the stored pixels are turned for each EXIF orientation used (the inverse of what a viewer applies).
_STORED_TURN = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
_ARABIC_INDIC = str.maketrans("0123456789", ARABIC_INDIC_DIGITS)

# (description, unit, quantity choices, unit price range in USD)
_KG = ("0.5", "1", "1.5", "2", "2.5", "3", "4", "5", "7.5", "10", "12", "15", "20", "25")
_COUNT = tuple(str(n) for n in (1, 2, 3, 4, 5, 6, 8, 10, 12, 24))
_FEW = tuple(str(n) for n in (1, 2, 3, 4, 5, 6, 8, 10))
CATALOGUE: dict[str, list[tuple[str, str, tuple[str, ...], tuple[float, float]]]] = {
    "produce": [
        ("Tomatoes", "kg", _KG, (0.8, 3.5)),
        ("Red onions", "kg", _KG, (0.6, 2.2)),
        ("Iceberg lettuce", "pcs", _COUNT, (0.7, 2.0)),
        ("Lemons", "kg", _KG, (1.5, 4.0)),
        ("Fresh coriander", "box", _FEW, (4.0, 12.0)),
        ("Potatoes", "kg", _KG, (0.5, 1.8)),
        ("Carrots", "kg", _KG, (0.6, 2.0)),
        ("Cucumbers", "kg", _KG, (0.9, 2.8)),
        ("Garlic peeled", "kg", _KG, (3.0, 9.0)),
        ("Bell peppers mixed", "case", _FEW, (12.0, 30.0)),
        ("Avocado Hass", "box", _FEW, (15.0, 40.0)),
    ],
    "meat": [
        ("Chicken breast boneless", "kg", _KG, (5.0, 11.0)),
        ("Beef mince", "kg", _KG, (7.0, 14.0)),
        ("Lamb shoulder", "kg", _KG, (10.0, 22.0)),
        ("Chicken wings", "kg", _KG, (3.5, 8.0)),
        ("Beef tenderloin", "kg", _KG, (25.0, 55.0)),
        ("Salmon fillet", "kg", _KG, (18.0, 35.0)),
    ],
    "dairy": [
        ("Whole milk", "L", _KG, (0.9, 2.0)),
        ("Mozzarella block", "kg", _KG, (6.0, 12.0)),
        ("Unsalted butter", "kg", _KG, (7.0, 14.0)),
        ("Greek yoghurt", "case", _FEW, (14.0, 30.0)),
        ("Eggs large", "dozen", _COUNT, (2.5, 5.0)),
        ("Cooking cream", "L", _KG, (3.0, 6.5)),
        ("Parmesan grated", "kg", _KG, (14.0, 28.0)),
    ],
    "dry goods": [
        ("Basmati rice", "kg", _KG, (1.5, 4.0)),
        ("Plain flour", "kg", _KG, (0.6, 1.5)),
        ("Olive oil extra virgin", "L", _KG, (6.0, 14.0)),
        ("White sugar", "kg", _KG, (0.8, 1.8)),
        ("Penne pasta", "case", _FEW, (10.0, 24.0)),
        ("Canned chickpeas", "case", _FEW, (12.0, 26.0)),
        ("Sunflower oil", "L", _KG, (1.5, 3.5)),
        ("Black pepper ground", "kg", _KG, (9.0, 20.0)),
    ],
    "cleaning": [
        ("Dishwasher detergent", "L", _KG, (2.0, 6.0)),
        ("Floor cleaner", "L", _KG, (1.5, 5.0)),
        ("Nitrile gloves", "box", _FEW, (5.0, 12.0)),
        ("Paper towels", "case", _FEW, (15.0, 35.0)),
        ("Garbage bags", "box", _FEW, (6.0, 16.0)),
        ("Hand soap refill", "pcs", _COUNT, (3.0, 8.0)),
    ],
}
# Qualifiers that make the long descriptions of the multi-line layout.
_DETAILS = (
    "grade A, chilled, delivered in crates",
    "premium quality, vacuum packed",
    "local farm, harvested this week",
    "imported, supplier lot checked",
    "bulk pack for kitchen use",
    "restaurant pack, best before end of month",
)
# USD to the currency, and how often each currency appears.
_CURRENCIES = {"USD": 1.0, "EUR": 0.92, "AED": 3.67, "KWD": 0.31, "BHD": 0.38, "JPY": 150.0}
_CURRENCY_WEIGHTS = {"USD": 3, "EUR": 2, "AED": 2, "KWD": 3, "BHD": 2, "JPY": 1}
_SUPPLIERS = (
    "Golden Harvest Foods LLC",
    "Bluewater Seafood Trading",
    "Al Noor Fresh Produce Co.",
    "Metro Kitchen Supplies",
    "Prime Cuts Butchery",
    "Crystal Clean Hygiene",
    "Desert Rose Dairy Farms",
)
_RESTAURANTS = ("Olive & Thyme Bistro", "The Copper Pot", "Saffron House", "Harbour Grill", "Casa Verde")


@dataclass
class SampleInvoice:
    stamp: int
    kind: str
    filename: str
    content_type: str
    data: bytes
    answer: dict[str, Any]
    truth: ExtractedInvoice


@dataclass
class SampleOrder:
    restaurant_id: int
    invoices: list[SampleInvoice]


@dataclass(frozen=True)
class _Line:
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    line_total: Decimal


@dataclass(frozen=True)
class _Document:
    """What is printed on one invoice, before it is drawn."""

    stamp: int
    supplier: str
    restaurant: str
    number: str
    date: str
    currency: str
    lines: tuple[_Line, ...]
    arabic_digits: bool

    @property
    def decimals(self) -> int:
        return currency_decimals(self.currency)

    @property
    def total(self) -> Decimal:
        return sum((line.line_total for line in self.lines), Decimal(0))

    def number_text(self, value: Decimal, decimals: int | None = None) -> str:
        """A number as printed: thousands separators, the given places, Arabic-Indic digits if the invoice has them."""
        text = f"{value:,.{decimals}f}" if decimals is not None else _plain(value)
        return text.translate(_ARABIC_INDIC) if self.arabic_digits else text

    def money(self, value: Decimal) -> str:
        return self.number_text(value, self.decimals)

    def answer(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "printed_total": self.money(self.total),
            "items": [
                {
                    "description": line.description,
                    "quantity": self.number_text(line.quantity),
                    "unit": line.unit,
                    "unit_price": self.money(line.unit_price),
                    "line_total": self.money(line.line_total),
                }
                for line in self.lines
            ],
        }

    def truth(self, invoice_index: int) -> ExtractedInvoice:
        items = tuple(
            ExtractedItem(line.description, line.quantity, line.unit, line.unit_price, line.line_total)
            for line in self.lines
        )
        return ExtractedInvoice(invoice_index, self.currency, self.total, items)


def _plain(value: Decimal) -> str:
    """A quantity as printed: no trailing zeros, no exponent."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _font(size: int, *, bold: bool = False, mono: bool = False) -> ImageFont.FreeTypeFont:
    name = "DejaVuSansMono" if mono else "DejaVuSans"
    return ImageFont.truetype(str(FONT_DIR / f"{name}{'-Bold' if bold else ''}.ttf"), size)


def _document(rng: random.Random, stamp: int, *, kind: str, currency: str | None) -> _Document:
    currency = currency or rng.choices(list(_CURRENCY_WEIGHTS), weights=list(_CURRENCY_WEIGHTS.values()))[0]
    decimals = currency_decimals(currency)
    rate = _CURRENCIES.get(currency, 1.0)
    count = rng.randint(22, 32) if kind == "receipt" else rng.randint(6, 9 if kind == "a4_multiline" else 14)
    products = [product for group in CATALOGUE.values() for product in group]
    lines = []
    for description, unit, quantities, (low, high) in rng.sample(products, min(count, len(products))):
        if kind == "a4_multiline":
            description = f"{description}, {rng.choice(_DETAILS)}"
        quantity = Decimal(rng.choice(quantities))
        unit_price = round_money(Decimal(str(rng.uniform(low, high) * rate)), decimals)
        if unit_price <= 0:
            unit_price = round_money(Decimal(1), decimals)
        line_total = round_money(quantity * unit_price, decimals)
        lines.append(_Line(description, quantity, unit, unit_price, line_total))
    return _Document(
        stamp=stamp,
        supplier=rng.choice(_SUPPLIERS),
        restaurant=rng.choice(_RESTAURANTS),
        number=f"INV-{rng.randint(2025, 2026)}-{rng.randint(10000, 99999)}",
        date=f"2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d}",
        currency=currency,
        lines=tuple(lines),
        arabic_digits=kind == "arabic_digits",
    )


def _stamp(image: Image.Image, value: int) -> None:
    # Left margin, above every line of text, inside the top 15 % of the page.
    draw_stamp(image, value, left=40, top=STAMP_TOP, unit=max(2, image.width // 200), height=STAMP_HEIGHT)


@dataclass(frozen=True)
class _Column:
    key: str  # description, quantity, unit, unit_price, line_total, number
    header: str
    x: int  # left edge for left-aligned columns, right edge for right-aligned ones
    right: bool


_LAYOUT_COLUMNS = {
    "a4_classic": (
        _Column("description", "Description", 70, False),
        _Column("quantity", "Qty", 690, True),
        _Column("unit", "Unit", 730, False),
        _Column("unit_price", "Unit price", 990, True),
        _Column("line_total", "Total", 1170, True),
    ),
    "a4_columns": (
        _Column("number", "#", 70, False),
        _Column("description", "Item", 130, False),
        _Column("unit", "UOM", 610, False),
        _Column("quantity", "Quantity", 850, True),
        _Column("unit_price", "Rate", 1010, True),
        _Column("line_total", "Amount", 1170, True),
    ),
    "a4_multiline": (
        _Column("description", "Item description", 70, False),
        _Column("quantity", "Qty", 640, True),
        _Column("unit", "Unit", 680, False),
        _Column("unit_price", "Price", 960, True),
        _Column("line_total", "Line total", 1170, True),
    ),
}
_MULTILINE_WRAP = 34  # characters per description line in the multi-line layout


def _draw_a4(document: _Document, layout: str) -> Image.Image:
    width, height = A4_SIZE
    image = Image.new("L", A4_SIZE, 255)
    draw = ImageDraw.Draw(image)
    _stamp(image, document.stamp)
    big, bold, body, small = _font(40, bold=True), _font(26, bold=True), _font(26), _font(22)
    title = "TAX INVOICE" if layout == "a4_columns" else "INVOICE"

    draw.text((70, 100), document.supplier, font=big, fill=0)
    draw.text((70, 160), "Warehouse 14, Industrial Area, Street 7", font=small, fill=60)
    draw.text((70, 192), "Tel +965 2245 1180   VAT no. 300145229100003", font=small, fill=60)
    draw.text((width - 70, 100), title, font=big, fill=0, anchor="ra")
    meta = [("Invoice no.", document.number), ("Date", document.date), ("Currency", document.currency)]
    for row, (label, value) in enumerate(meta):
        y = 270 + row * 36
        draw.text((760, y), f"{label}:", font=body, fill=40)
        draw.text((width - 70, y), value, font=body, fill=0, anchor="ra")
    draw.text((70, 270), "Bill to:", font=bold, fill=0)
    draw.text((70, 306), document.restaurant, font=body, fill=0)
    draw.text((70, 342), "Purchasing department", font=body, fill=60)

    columns = _LAYOUT_COLUMNS[layout]
    y = 450
    draw.line([(60, y - 12), (width - 60, y - 12)], fill=0, width=2)
    for column in columns:
        draw.text((column.x, y), column.header, font=bold, fill=0, anchor="ra" if column.right else "la")
    y += 46
    draw.line([(60, y - 8), (width - 60, y - 8)], fill=0, width=2)
    row_height = 44
    for number, line in enumerate(document.lines, start=1):
        cells = {
            "number": document.number_text(Decimal(number)),
            "description": line.description,
            "quantity": document.number_text(line.quantity),
            "unit": line.unit,
            "unit_price": document.money(line.unit_price),
            "line_total": document.money(line.line_total),
        }
        wrapped = textwrap.wrap(line.description, _MULTILINE_WRAP) if layout == "a4_multiline" else [line.description]
        for column in columns:
            if column.key == "description":
                for offset, part in enumerate(wrapped):
                    draw.text((column.x, y + offset * 34), part, font=body, fill=0)
            else:
                draw.text((column.x, y), cells[column.key], font=body, fill=0, anchor="ra" if column.right else "la")
        y += row_height + 34 * (len(wrapped) - 1) + (10 if layout == "a4_multiline" else 0)
    draw.line([(60, y), (width - 60, y)], fill=0, width=2)
    y += 24
    total = document.money(document.total)
    draw.text((760, y), "Subtotal", font=body, fill=0)
    draw.text((width - 70, y), total, font=body, fill=0, anchor="ra")
    draw.text((760, y + 40), "VAT 0%", font=body, fill=0)
    draw.text((width - 70, y + 40), document.money(Decimal(0)), font=body, fill=0, anchor="ra")
    draw.text((760, y + 84), f"Total {document.currency}", font=bold, fill=0)
    draw.text((width - 70, y + 84), total, font=bold, fill=0, anchor="ra")
    draw.text((70, height - 130), "Payment due within 30 days of the invoice date.", font=small, fill=60)
    draw.text((70, height - 98), "Thank you for your business.", font=small, fill=60)
    return image


def _draw_receipt(document: _Document) -> Image.Image:
    mono, bold = _font(24, mono=True), _font(26, bold=True, mono=True)
    line_height = 34
    rows: list[tuple[str, str, bool]] = []  # (left text, right-aligned text, bold)
    rows += [(document.supplier, "", True), ("Industrial Area, Street 7", "", False), ("Tel +965 2245 1180", "", False)]
    rows += [("-" * 36, "", False), (f"Receipt {document.number}", "", False), (f"Date {document.date}", "", False)]
    rows += [(f"Customer {document.restaurant}", "", False), ("-" * 36, "", False)]
    for line in document.lines:
        rows.append((line.description, "", False))
        quantity = document.number_text(line.quantity)
        rows.append(
            (f"  {quantity} {line.unit} x {document.money(line.unit_price)}", document.money(line.line_total), False)
        )
    rows += [("-" * 36, "", False), (f"TOTAL {document.currency}", document.money(document.total), True)]
    rows += [(f"Items {len(document.lines)}", "", False), ("Thank you!", "", False)]
    top = STAMP_TOP + STAMP_HEIGHT + 30
    height = max(top + line_height * len(rows) + 60, int(RECEIPT_WIDTH * 3.2))
    image = Image.new("L", (RECEIPT_WIDTH, height), 255)
    _stamp(image, document.stamp)
    draw = ImageDraw.Draw(image)
    for row, (left, right, strong) in enumerate(rows):
        y = top + row * line_height
        font = bold if strong else mono
        draw.text((20, y), left, font=font, fill=0)
        if right:
            draw.text((RECEIPT_WIDTH - 20, y), right, font=font, fill=0, anchor="ra")
    return image


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(image: Image.Image, quality: int, exif: Image.Exif | None = None) -> bytes:
    buffer = io.BytesIO()
    options: dict[str, Any] = {"format": "JPEG", "quality": quality}
    if exif is not None:
        options["exif"] = exif.tobytes()
    image.convert("RGB").save(buffer, **options)
    return buffer.getvalue()


def _rotated(upright: Image.Image, rng: random.Random) -> tuple[bytes, int]:
    """The page stored turned, with the EXIF orientation that turns it back upright."""
    orientation = rng.choice(sorted(_STORED_TURN))
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    return _jpeg(upright.transpose(_STORED_TURN[orientation]), 90, exif), orientation


def _photographed(page: Image.Image, rng: random.Random) -> bytes:
    """Mild perspective (keystone), uneven light, blur, sensor noise and JPEG, deterministically from ``rng``."""
    width, height = page.size
    # Source quad corners (upper-left, lower-left, lower-right, upper-right) slightly outside the page: the
    # page appears smaller at the top than at the bottom. Top and bottom stay level so printed rows stay flat.
    inset_top, inset_bottom = rng.uniform(0.02, 0.04) * width, rng.uniform(0.0, 0.01) * width
    top, bottom = rng.uniform(0.005, 0.015) * height, rng.uniform(0.005, 0.015) * height
    quad = (
        -inset_top,
        -top,
        -inset_bottom,
        height + bottom,
        width + inset_bottom,
        height + bottom,
        width + inset_top,
        -top,
    )
    paper = Image.merge("RGB", (page, page.point(lambda v: v * 0.98), page.point(lambda v: v * 0.93)))
    warped = paper.transform(
        (width, height), Image.Transform.QUAD, quad, Image.Resampling.BICUBIC, fillcolor=(92, 84, 76)
    )
    # Light falls off towards the bottom of the page (about 15 % darker there).
    light = Image.linear_gradient("L").resize((width, height)).point(lambda v: 255 - v * 40 // 255)
    lit = ImageChops.multiply(warped, Image.merge("RGB", (light, light, light)))
    blurred = lit.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.0)))
    noise = Image.frombytes("L", (width, height), rng.randbytes(width * height)).convert("RGB")
    noisy = Image.blend(blurred, noise, 0.06)
    return _jpeg(noisy, 78)


def _render(document: _Document, kind: str, rng: random.Random) -> tuple[str, bytes]:
    """(content type, encoded image) of ``document`` drawn as ``kind``."""
    if kind == "receipt":
        return "image/png", _png(_draw_receipt(document))
    if kind in A4_LAYOUTS:
        return "image/png", _png(_draw_a4(document, kind))
    if kind == "arabic_digits":
        return "image/png", _png(_draw_a4(document, "a4_classic"))
    page = _draw_a4(document, rng.choice(A4_LAYOUTS))
    if kind == "rotated":
        return "image/jpeg", _rotated(page, rng)[0]
    if kind == "photo":
        return "image/jpeg", _photographed(page, rng)
    raise ValueError(f"unknown sample kind {kind!r}; expected one of {', '.join(KINDS)}")


def generate_invoice(
    kind: str, *, stamp: int, seed: int = 0, invoice_index: int = 0, currency: str | None = None
) -> SampleInvoice:
    """One sample invoice of ``kind``; the same arguments always give the same bytes."""
    if kind not in KINDS:
        raise ValueError(f"unknown sample kind {kind!r}; expected one of {', '.join(KINDS)}")
    rng = random.Random(f"invoice:{seed}:{stamp}:{kind}")
    document = _document(rng, stamp, kind=kind, currency=currency)
    content_type, data = _render(document, kind, rng)
    extension = "png" if content_type == "image/png" else "jpg"
    return SampleInvoice(
        stamp=stamp,
        kind=kind,
        filename=f"invoice-{stamp:06d}-{kind}.{extension}",
        content_type=content_type,
        data=data,
        answer=document.answer(),
        truth=document.truth(invoice_index),
    )


def generate_orders(count: int, *, seed: int = 0, first_stamp: int = 1) -> list[SampleOrder]:
    """``count`` orders of one to three invoices; kinds take turns so a handful of orders covers every kind."""
    rng = random.Random(f"orders:{seed}")
    orders, stamp = [], first_stamp
    for _ in range(count):
        size = rng.choices((1, 2, 3), weights=(6, 3, 1))[0]
        invoices = []
        for index in range(size):
            kind = KINDS[(stamp - first_stamp) % len(KINDS)]
            currency = "KWD" if kind == "arabic_digits" else None
            invoices.append(generate_invoice(kind, stamp=stamp, seed=seed, invoice_index=index, currency=currency))
            stamp += 1
        orders.append(SampleOrder(restaurant_id=rng.choice((101, 102, 103)), invoices=invoices))
    return orders


def not_an_image_bytes() -> bytes:
    """A poison upload: text that claims nothing and is no image or PDF."""
    return b"Order note: please deliver before 9 am. This file is not an image.\n" * 4


def oversized_bytes(size: int) -> bytes:
    """A poison upload of ``size`` bytes that starts like a PNG, to be refused on its size alone."""
    header = b"\x89PNG\r\n\x1a\n"
    if size < len(header):
        raise ValueError(f"size must be at least {len(header)} bytes")
    return header + bytes(size - len(header))


def truth_to_json(truth: ExtractedInvoice) -> dict[str, Any]:
    def text(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {
        "invoice_index": truth.invoice_index,
        "currency": truth.currency,
        "printed_total": text(truth.printed_total),
        "items": [
            {
                "description": item.description,
                "quantity": text(item.quantity),
                "unit": item.unit,
                "unit_price": text(item.unit_price),
                "line_total": text(item.line_total),
            }
            for item in truth.items
        ],
    }


def write_orders(orders: Sequence[SampleOrder], out: Path) -> Path:
    """Write every invoice image into ``out`` and a ``truth.json`` describing them; returns its path."""
    out.mkdir(parents=True, exist_ok=True)
    described = []
    for number, order in enumerate(orders, start=1):
        for invoice in order.invoices:
            (out / invoice.filename).write_bytes(invoice.data)
        described.append(
            {
                "order": number,
                "restaurant_id": order.restaurant_id,
                "invoices": [
                    {
                        "stamp": invoice.stamp,
                        "kind": invoice.kind,
                        "filename": invoice.filename,
                        "content_type": invoice.content_type,
                        "answer": invoice.answer,
                        "truth": truth_to_json(invoice.truth),
                    }
                    for invoice in order.invoices
                ],
            }
        )
    path = out / "truth.json"
    path.write_text(json.dumps(described, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def upright(image: Image.Image) -> Image.Image:
    """``image`` turned as its EXIF orientation says (what a viewer, and the consumer, does)."""
    return ImageOps.exif_transpose(image)


def main(argv: Sequence[str] | None = None, *, echo: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.samples", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the images and truth.json")
    parser.add_argument("--orders", type=int, default=10, help="number of orders (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first-stamp", type=int, default=1)
    args = parser.parse_args(argv)
    if args.orders < 1:
        parser.error("--orders must be at least 1")
    orders = generate_orders(args.orders, seed=args.seed, first_stamp=args.first_stamp)
    path = write_orders(orders, args.out)
    invoices = sum(len(order.invoices) for order in orders)
    echo(f"wrote {len(orders)} orders, {invoices} invoices and {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
