"""The offline extractor on real documents nobody here generated (``tests/realdocs``): the floor.

Documents go through the consumer's preparation (``images.prepare_invoice``, the original kept on
``InvoiceImages.document``) and are scored with the sets' own ``score.py``. Text-layer PDFs need no OCR; the
scan and the receipt run the real OCR (marker ``ocr``), about 20 s on a loaded machine. The six documents are
committed (``tests/realdocs/README.md`` names their sources and licences); the full sets, outside the
repository, are ``bench/real_documents.py``'s.
"""

import importlib.util
import json
import time
from decimal import Decimal
from pathlib import Path

import pytest

from invoice_pipeline.documents import images
from invoice_pipeline.extractor import InvoiceImages, SourceDocument
from invoice_pipeline.providers.ocr import OcrExtractor
from tests.setup_required import require_module

REALDOCS = Path(__file__).resolve().parents[1] / "realdocs"


@pytest.fixture(scope="module")
def score():
    spec = importlib.util.spec_from_file_location("realdocs_score", REALDOCS / "score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def extract(path: Path, extractor):
    data = path.read_bytes()
    invoice = InvoiceImages(
        1, 0, images.prepare_invoice(data, source=path.name), document=SourceDocument(data, images.media_type(data))
    )
    return extractor.extract(invoice, deadline=time.monotonic() + 300)


def predictions(invoice):
    return [
        {name: None if getattr(item, name) is None else str(getattr(item, name)) for name in ("description",)}
        | {
            name: None if getattr(item, name) is None else format(getattr(item, name), "f")
            for name in ("quantity", "unit_price", "line_total")
        }
        for item in invoice.items
    ]


def fields_right(score, expected, predicted):
    """(matched lines, lines with quantity, unit price and line total all right) under score.py's rule."""
    pairs = score.match_lines(expected, predicted)
    right = sum(all(score.num_eq(expected[i][f], predicted[j][f]) for f in score.FIELDS) for i, j in pairs)
    return len(pairs), right


class ForbiddenReader:
    def read(self, image):
        raise AssertionError("a PDF with a usable text layer must not be OCR'd")


@pytest.mark.parametrize(
    "basename",
    [
        "zf1_awv_comfort_einfach",  # German, a VAT column right of the line total
        "fx_en16931_miete",  # four pages, totals printed half a line lower, items on page 3
        "fnfe_facture_fr",  # French, a line discount in per cent, "1 234,56"-style amounts
        "facturxng_test01",  # French, eleven narrow columns (references, EAN, base price, discount, net price, VAT)
    ],
)
def test_text_layer_pdfs_are_read_whole_without_ocr(score, basename):
    truth = json.loads((REALDOCS / "zugferd" / f"{basename}.json").read_text())
    invoice = extract(REALDOCS / "zugferd" / f"{basename}.pdf", OcrExtractor(reader=ForbiddenReader()))
    predicted = predictions(invoice)
    matched, right = fields_right(score, truth["items"], predicted)
    assert (matched, right, len(predicted)) == (len(truth["items"]),) * 3, predicted


@pytest.mark.ocr
def test_a_scan_and_a_receipt_meet_the_ocr_floor(score):
    require_module("rapidocr", "the OCR extra (requirements-ocr.txt) is not installed")
    extractor = OcrExtractor()
    truth = json.loads((REALDOCS / "zugferd" / "zf1_awv_comfort_einfach.json").read_text())
    scan = predictions(extract(REALDOCS / "zugferd" / "zf1_awv_comfort_einfach.scan.png", extractor))
    assert fields_right(score, truth["items"], scan) == (2, 2), scan
    assert len(scan) <= 3, scan

    receipt_truth = json.loads((REALDOCS / "receipts" / f"{RECEIPT}.json").read_text())
    receipt = extract(REALDOCS / "receipts" / f"{RECEIPT}.jpg", extractor)
    line_sum = sum((item.line_total or Decimal(0) for item in receipt.items), Decimal(0))
    assert len(receipt.items) == receipt_truth["item_count"], predictions(receipt)
    assert abs(line_sum - Decimal(receipt_truth["printed_total"])) <= Decimal("0.05")


RECEIPT = "rcpt_lidl_02032020_02_00716"
