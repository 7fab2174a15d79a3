"""Sample invoices: deterministic, stamped where a consumer can read it, arithmetically consistent truth."""

import io
import json
from decimal import Decimal

import pytest
from PIL import Image

from invoice_pipeline.reading.money import currency_decimals, round_money
from invoice_pipeline.reading.numbers import parse_amount
from local import samples
from local.stamp import read_stamp


def consumer_view(data: bytes) -> Image.Image:
    """What a consumer sends a model: upright, first segment of a tall receipt, fit 2048, short side 768, JPEG."""
    image = samples.upright(Image.open(io.BytesIO(data))).convert("RGB")
    if image.height > 3 * image.width:
        image = image.crop((0, 0, image.width, 2 * image.width))
    scale = min(1.0, 2048 / max(image.size))
    if min(image.size) * scale > 768:
        scale *= 768 / (min(image.size) * scale)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return Image.open(io.BytesIO(buffer.getvalue()))


@pytest.mark.parametrize("kind", samples.KINDS)
def test_every_kind_carries_a_stamp_a_consumer_can_read(kind):
    invoice = samples.generate_invoice(kind, stamp=4242 + len(kind), seed=3)
    view = consumer_view(invoice.data)
    assert min(view.size) <= 768
    assert read_stamp(view) == invoice.stamp


@pytest.mark.parametrize("kind", samples.KINDS)
def test_the_stamp_sits_in_the_top_margin_of_the_upright_page(kind):
    invoice = samples.generate_invoice(kind, stamp=77, seed=1)
    page = samples.upright(Image.open(io.BytesIO(invoice.data))).convert("L")
    top = int(page.height * 0.15)
    assert read_stamp(page.crop((0, 0, page.width, top)), search_fraction=1.0) == 77
    # nothing else is printed beside the stamp: the band it occupies is blank right of it
    band = page.crop((page.width * 3 // 4, samples.STAMP_TOP, page.width - 60, samples.STAMP_TOP + 36))
    assert band.getextrema()[0] > 60


@pytest.fixture(scope="module")
def invoices():
    """Twelve orders, generated once for the tests that only read them."""
    return [invoice for order in samples.generate_orders(12, seed=5) for invoice in order.invoices]


def test_generation_is_deterministic_and_the_seed_matters():
    first = samples.generate_orders(3, seed=11)
    again = samples.generate_orders(3, seed=11)
    other = samples.generate_orders(3, seed=12)
    assert [[i.data for i in o.invoices] for o in first] == [[i.data for i in o.invoices] for o in again]
    assert [[i.answer for i in o.invoices] for o in first] == [[i.answer for i in o.invoices] for o in again]
    assert [[i.answer for i in o.invoices] for o in first] != [[i.answer for i in o.invoices] for o in other]


def test_orders_cover_every_kind_with_consecutive_stamps_and_multi_invoice_orders():
    orders = samples.generate_orders(8, seed=0, first_stamp=500)
    invoices = [invoice for order in orders for invoice in order.invoices]
    assert {invoice.kind for invoice in invoices} == set(samples.KINDS)
    assert [invoice.stamp for invoice in invoices] == list(range(500, 500 + len(invoices)))
    assert any(len(order.invoices) > 1 for order in orders)
    for order in orders:
        assert [invoice.truth.invoice_index for invoice in order.invoices] == list(range(len(order.invoices)))


def test_truth_is_arithmetically_consistent_at_the_currency_precision(invoices):
    currencies = {invoice.truth.currency for invoice in invoices}
    assert currencies & {"KWD", "BHD"}, "a 3-decimal currency is among the samples"
    for invoice in invoices:
        truth = invoice.truth
        places = currency_decimals(truth.currency)
        assert truth.items
        for item in truth.items:
            assert item.quantity is not None and item.unit_price is not None and item.line_total is not None
            assert item.line_total == round_money(item.quantity * item.unit_price, places)
            assert item.unit_price.as_tuple().exponent == -places
        assert truth.printed_total == sum(item.line_total for item in truth.items)


def test_the_answer_prints_what_the_truth_holds(invoices):
    for invoice in invoices:
        answer, truth = invoice.answer, invoice.truth
        assert answer["currency"] == truth.currency
        assert parse_amount(answer["printed_total"]) == truth.printed_total
        assert len(answer["items"]) == len(truth.items)
        for printed, item in zip(answer["items"], truth.items, strict=True):
            assert printed["description"] == item.description and printed["unit"] == item.unit
            assert parse_amount(printed["quantity"]) == item.quantity
            assert parse_amount(printed["unit_price"]) == item.unit_price
            assert parse_amount(printed["line_total"]) == item.line_total


def test_arabic_indic_invoices_print_those_digits_in_the_answer_only():
    invoice = samples.generate_invoice("arabic_digits", stamp=9, currency="KWD")
    printed = invoice.answer["items"][0]["line_total"]
    assert any("\u0660" <= char <= "\u0669" for char in printed)
    assert not any(char.isascii() and char.isdigit() for char in printed)
    assert isinstance(invoice.truth.items[0].line_total, Decimal)
    assert invoice.truth.items[0].line_total.as_tuple().exponent == -3


def test_rotated_samples_store_turned_pixels_with_an_exif_orientation():
    for stamp in range(30, 36):
        invoice = samples.generate_invoice("rotated", stamp=stamp)
        stored = Image.open(io.BytesIO(invoice.data))
        orientation = stored.getexif().get(samples.EXIF_ORIENTATION)
        assert orientation in (3, 6, 8)
        assert invoice.content_type == "image/jpeg"
        if orientation in (6, 8):
            assert stored.width > stored.height
        assert samples.upright(stored).size == samples.A4_SIZE


def test_receipts_are_tall_and_narrow():
    invoice = samples.generate_invoice("receipt", stamp=3)
    image = Image.open(io.BytesIO(invoice.data))
    assert image.width == samples.RECEIPT_WIDTH
    assert image.height > 3 * image.width
    assert len(invoice.truth.items) >= 20


def test_unknown_kind_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown sample kind 'fax'.*a4_classic"):
        samples.generate_invoice("fax", stamp=1)


def test_poison_files_are_what_they_claim():
    not_image = samples.not_an_image_bytes()
    with pytest.raises(Exception, match="cannot identify"):
        Image.open(io.BytesIO(not_image))
    big = samples.oversized_bytes(1_000_000)
    assert len(big) == 1_000_000 and big.startswith(b"\x89PNG")


def test_main_writes_images_and_truth(tmp_path):
    lines = []
    assert samples.main(["--out", str(tmp_path), "--orders", "2", "--seed", "4"], echo=lines.append) == 0
    described = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    assert len(described) == 2
    for order in described:
        for invoice in order["invoices"]:
            assert (tmp_path / invoice["filename"]).stat().st_size > 10_000
            assert invoice["truth"]["items"][0]["line_total"] is not None
    assert "wrote 2 orders" in lines[0]
