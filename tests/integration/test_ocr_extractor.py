"""The offline extractor with the real OCR on generated clean A4 invoices: the accuracy floor.

Select with ``-m ocr`` (or deselect with ``-m "not ocr"``); about 10 s on two idle cores.
"""

import io
import time

import pytest
from PIL import Image

from invoice_pipeline.extractor import InvoiceImages, PreparedImage
from invoice_pipeline.reading.validation import validate
from invoices_cli.accuracy import aggregate, compare
from local.samples import generate_invoice
from tests.setup_required import require_module


@pytest.fixture(autouse=True)
def _ocr_installed() -> None:
    require_module("rapidocr", "the OCR extra (requirements-ocr.txt) is not installed")


pytestmark = pytest.mark.ocr


def as_the_model_sees_it(data: bytes) -> PreparedImage:
    """A clean A4 page scaled to a short side of 768 and re-encoded, as the consumer sends it."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    scale = 768 / min(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return PreparedImage(buffer.getvalue(), "image/jpeg", image.width, image.height)


def test_clean_a4_invoices_meet_the_accuracy_floor():
    from invoice_pipeline.providers.ocr import OcrExtractor

    extractor = OcrExtractor("ocr-table-v1")
    scores = []
    # another header than the classic one, and wrapped descriptions in a 3-decimal currency
    for stamp, kind in enumerate(("a4_columns", "a4_multiline"), start=71):
        sample = generate_invoice(kind, stamp=stamp, seed=8, currency="KWD" if kind == "a4_multiline" else None)
        images = InvoiceImages(order_id=stamp, invoice_index=0, segments=(as_the_model_sees_it(sample.data),))
        result = extractor.extract(images, deadline=time.monotonic() + 120)
        assert result.input_tokens == 0 and result.cost_usd == 0
        assert result.currency == sample.truth.currency, kind
        assert result.printed_total == sample.truth.printed_total, kind
        assert validate(result) == [], kind
        scores.append(compare(sample.truth.items, result.items))
    total = aggregate(scores)
    assert total.f1 >= 0.95, total.as_dict()
    assert total.numeric_accuracy >= 0.98, total.as_dict()
