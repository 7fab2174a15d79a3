"""The PDF text layer: words with boxes, the rule that decides between it and OCR, and the extractor using it.

The PDFs are built here with pdfium itself (standard Helvetica, text objects placed at given points); the OCR
is an in-memory reader, so no OCR runs.
"""

import ctypes
import io
import time

import pypdfium2
import pypdfium2.raw as pdfium_c
import pytest

from invoice_pipeline.documents import images
from invoice_pipeline.extractor import InvoiceImages, SourceDocument
from invoice_pipeline.providers.ocr import OcrExtractor
from invoice_pipeline.reading import pdf_text

INVOICE = [
    (60, 60, "Lieferant GmbH, Rechnung 4711"),
    (60, 200, "Trennblätter A4"),
    (300, 200, "20"),
    (340, 200, "Stk."),
    (420, 200, "9,90"),
    (500, 200, "198,00"),
    (60, 220, "Joghurt Banane"),
    (300, 220, "50"),
    (340, 220, "Stk."),
    (420, 220, "5,50"),
    (500, 220, "275,00"),
    (60, 260, "Rechnungssumme netto"),
    (500, 260, "473,00"),
]


def build_pdf(pages, *, invisible=False, size=10.0):
    """A PDF whose pages hold the given (x, y from the top, text) strings; render mode 3 when ``invisible``."""
    document = pypdfium2.PdfDocument.new()
    for texts in pages:
        page = document.new_page(595, 842)
        font = pdfium_c.FPDFText_LoadStandardFont(document.raw, b"Helvetica")
        for x, y, text in texts:
            text_object = pdfium_c.FPDFPageObj_CreateTextObj(document.raw, font, ctypes.c_float(size))
            encoded = (text + "\0").encode("utf-16-le")
            buffer = ctypes.create_string_buffer(encoded, len(encoded))
            pdfium_c.FPDFText_SetText(text_object, ctypes.cast(buffer, ctypes.POINTER(pdfium_c.FPDF_WCHAR)))
            pdfium_c.FPDFPageObj_Transform(text_object, 1, 0, 0, 1, x, 842 - y - size)
            if invisible:
                pdfium_c.FPDFTextObj_SetTextRenderMode(text_object, pdf_text.INVISIBLE)
            pdfium_c.FPDFPage_InsertObject(page.raw, text_object)
        page.gen_content()
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


class RecordingReader:
    """An OCR stand-in: answers the given boxes (in pixels of the image it is shown) and counts its calls."""

    def __init__(self, answer=()):
        self.answer = list(answer)
        self.calls = 0

    def read(self, image):
        self.calls += 1
        return self.answer


def extract(data, reader):
    invoice = InvoiceImages(
        7, 0, images.prepare_invoice(data, source="test.pdf"), document=SourceDocument(data, images.media_type(data))
    )
    return OcrExtractor(reader=reader).extract(invoice, deadline=time.monotonic() + 60)


def test_a_digital_pdf_is_read_from_its_text_layer_without_ocr():
    reader = RecordingReader()
    invoice = extract(build_pdf([INVOICE]), reader)
    assert reader.calls == 0
    assert [(i.description, str(i.quantity), i.unit, str(i.unit_price), str(i.line_total)) for i in invoice.items] == [
        ("Trennblätter A4", "20", "Stk", "9.90", "198.00"),
        ("Joghurt Banane", "50", "Stk", "5.50", "275.00"),
    ]


def test_words_carry_their_boxes_in_points_from_the_top_left():
    document = pypdfium2.PdfDocument(build_pdf([INVOICE]))
    layer = pdf_text.read_page(document[0])
    assert layer.usable and not layer.invisible
    boxes = {word[0]: word for word in layer.words}
    assert boxes["198,00"][1] == pytest.approx(500, abs=1)
    assert 195 < boxes["198,00"][2] < boxes["198,00"][4] < 215
    assert boxes["Trennblätter"][3] < boxes["A4"][1]  # two words, left to right


def test_a_page_without_text_is_read_by_ocr():
    reader = RecordingReader()
    invoice = extract(build_pdf([[]]), reader)
    assert reader.calls == 1
    assert invoice.items == ()


def test_garbage_text_layers_are_refused():
    words = [("Qvhkqvrb", 0, 0, 40, 10, 1.0), ("Wzxcvbnm", 50, 0, 90, 10, 1.0), ("Rechnung", 0, 20, 40, 30, 1.0)]
    assert pdf_text.judge(words, printable=200, bad=0) == (
        False,
        "garbage text layer (only 33% of its words look like words)",
    )
    assert pdf_text.judge(words[2:], printable=200, bad=40)[0] is False  # unmapped glyphs
    assert pdf_text.judge(words[2:], printable=5, bad=0)[0] is False
    assert pdf_text.judge(words[2:], printable=200, bad=2)[0] is True


def test_an_invisible_ocr_layer_is_used_only_when_our_ocr_confirms_it():
    data = build_pdf([INVOICE], invisible=True)
    document = pypdfium2.PdfDocument(data)
    agreeing = pdf_text.read_page(document[0], ocr_sample=lambda band: [w for _, _, w in INVOICE])
    assert agreeing.invisible and agreeing.usable, agreeing.reason
    disagreeing = pdf_text.read_page(document[0], ocr_sample=lambda band: ["Lorem ipsum", "dolor sit amet"])
    assert not disagreeing.usable, disagreeing.reason
    assert not pdf_text.read_page(document[0]).usable  # nothing to check it with

    confirmed = RecordingReader([(text, 0, 0, 10, 10, 0.99) for _, _, text in INVOICE])
    invoice = extract(data, confirmed)
    assert confirmed.calls == 1  # the sample only; the items come from the text layer
    assert [str(i.line_total) for i in invoice.items] == ["198.00", "275.00"]
