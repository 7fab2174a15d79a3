"""The offline reader where its OCR runtime is not installed (the Lambda layer): PDF text layers are read as before,
anything that needs OCR is answered "cannot read here" (a permanent error alone; a cascade passes it on)."""

from __future__ import annotations

import sys
import time

import pytest

from invoice_pipeline.documents import images
from invoice_pipeline.errors import CannotReadHere, PermanentError
from invoice_pipeline.extractor import InvoiceImages, SourceDocument
from invoice_pipeline.providers.ocr import NoOcrHere, OcrExtractor
from tests.integration.consumer.conftest import invoice_image
from tests.unit.test_pdf_text import INVOICE, build_pdf


@pytest.fixture
def without_ocr_runtime(monkeypatch: pytest.MonkeyPatch) -> OcrExtractor:
    for module in ("rapidocr", "onnxruntime", "cv2"):
        monkeypatch.setitem(sys.modules, module, None)  # `import rapidocr` raises ImportError
    extractor = OcrExtractor()
    assert isinstance(extractor._reader, NoOcrHere)
    return extractor


def read(extractor: OcrExtractor, data: bytes):
    document = SourceDocument(data, images.media_type(data))
    invoice = InvoiceImages(7, 0, extractor.prepare(data, source="test"), document=document)
    return extractor.extract(invoice, deadline=time.monotonic() + 60)


def test_a_text_layer_pdf_is_read_without_the_ocr_runtime(without_ocr_runtime):
    invoice = read(without_ocr_runtime, build_pdf([INVOICE]))
    assert [str(item.line_total) for item in invoice.items] == ["198.00", "275.00"]


def test_a_scan_is_answered_cannot_read_here(without_ocr_runtime):
    with pytest.raises(CannotReadHere, match="needs OCR, which cannot read here.*requirements-ocr.txt"):
        read(without_ocr_runtime, invoice_image(5))
    assert issubclass(CannotReadHere, PermanentError)  # a single ocr-* model fails the order, clearly


def test_a_pdf_page_without_a_text_layer_is_answered_cannot_read_here(without_ocr_runtime):
    with pytest.raises(CannotReadHere):
        read(without_ocr_runtime, build_pdf([[]]))
