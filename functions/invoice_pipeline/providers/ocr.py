"""The offline extractor (model names starting with ``ocr-``): words with positions, then the readers.

``ocr-table-v1`` reads text boxes with RapidOCR (PP-OCR detection and recognition models that ship inside the
``rapidocr`` wheel, run by onnxruntime; no network), or a PDF page's text layer where ``pdf_text`` judges it
usable, and hands them to the reading modules: ``rows`` (boxes into rows, segments of tall receipts merged),
``invoice_reader`` (the header reader and the layout-free table reader, the reading whose arithmetic holds best
wins). Only scripts whose recognition models ship in the wheel are read (Latin and Chinese). The extractor
reports no tokens and no cost.
"""

from __future__ import annotations

import functools
import io
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

from invoice_pipeline.clients import AwsClients
from invoice_pipeline.documents import images
from invoice_pipeline.errors import CannotReadHere, PermanentError, TransientError
from invoice_pipeline.extractor import ExtractedInvoice, InvoiceImages, PreparedImage
from invoice_pipeline.model_names import OFFLINE_READER_MODELS
from invoice_pipeline.providers import provenance
from invoice_pipeline.reading import pdf_text
from invoice_pipeline.reading.invoice_reader import reconstruct, reconstruct_pages
from invoice_pipeline.reading.rows import MIN_CONFIDENCE, Box, Segment, group_rows, merge_segments
from invoice_pipeline.settings import ConfigError, ConsumerSettings

NAME = "ocr"
MODEL_PREFIX = "ocr-"
DEFAULT_MODEL = "ocr-table-v1"
MODELS = OFFLINE_READER_MODELS
MAX_PDF_PAGES = 10  # as many as the consumer prepares (images.MAX_PDF_PAGES)
OCR_RENDER_LONG_SIDE = 2048  # px: a PDF page without a usable text layer is rendered this large for the OCR


class OcrUnavailableError(ConfigError):
    """The OCR extra is not installed: a configuration problem, not a problem of the order."""


class BoxReader(Protocol):
    def read(self, image: PreparedImage) -> list[Box]: ...


class NoOcrHere:
    """Where the OCR runtime is not installed (the Lambda layer without it): PDF text layers are still read; a page
    that needs OCR is answered "cannot read here", which a cascade passes on to its next stage."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def read(self, image: PreparedImage) -> list[Box]:
        raise CannotReadHere(f"this document needs OCR, which cannot read here: {self.reason}")


class RapidOcrReader:
    """Text boxes from RapidOCR with the models bundled in its wheel (no download, no network)."""

    _lock = threading.Lock()
    _engine: Any = None

    def __init__(self) -> None:
        try:
            import numpy  # noqa: F401  (a dependency of rapidocr; checked so the message names the extra)
            import rapidocr  # noqa: F401
        except ImportError as error:
            raise OcrUnavailableError(
                f"the offline extractor {DEFAULT_MODEL} needs the OCR extra, which is not installed "
                f"(missing module {error.name!r}): pip install -r requirements-ocr.txt"
            ) from None

    @classmethod
    def _get_engine(cls) -> Any:
        # One engine per process: loading the models takes about a second.
        if cls._engine is None:
            from rapidocr import RapidOCR

            cls._engine = RapidOCR(params={"Global.use_cls": False, "Global.log_level": "error"})
        return cls._engine

    def read(self, image: PreparedImage) -> list[Box]:
        from PIL import Image, UnidentifiedImageError

        try:
            picture = Image.open(io.BytesIO(image.data)).convert("RGB")
        except (UnidentifiedImageError, OSError) as error:
            raise PermanentError(f"the OCR cannot decode the prepared image: {error}") from None
        with self._lock:
            result = self._get_engine()(picture)
        if result.boxes is None:
            return []
        boxes: list[Box] = []
        for corners, text, score in zip(result.boxes, result.txts, result.scores, strict=True):
            xs = [float(point[0]) for point in corners]
            ys = [float(point[1]) for point in corners]
            boxes.append((str(text), min(xs), min(ys), max(xs), max(ys), float(score)))
        return boxes


def _installed_reader() -> BoxReader:
    try:
        return RapidOcrReader()
    except OcrUnavailableError as error:
        return NoOcrHere(str(error))


def settings_from(env: Mapping[str, str]) -> None:
    """The offline extractor has no settings: its models ship in the ``rapidocr`` wheel."""
    return None


def create_extractor(llm: str, settings: ConsumerSettings, clients: AwsClients) -> OcrExtractor:
    return OcrExtractor(llm)


class OcrExtractor(images.VisionPreparation):
    """The ``Extractor`` for ``ocr-*`` model names. It reads the images a vision model sees (they read well enough,
    and tall receipts arrive split: :func:`merge_segments`)."""

    def __init__(self, llm: str = DEFAULT_MODEL, *, reader: BoxReader | None = None) -> None:
        if llm not in MODELS:
            raise ConfigError(f"unknown offline model {llm!r}; available: {', '.join(sorted(MODELS))}")
        self.llm = llm
        self._reader: BoxReader = reader if reader is not None else _installed_reader()

    def extract(self, invoice: InvoiceImages, *, deadline: float) -> ExtractedInvoice:
        document = invoice.document
        if document is not None and document.media_type == "application/pdf":
            pages = self._pdf_pages(invoice, document.data, deadline)
            read = reconstruct_pages([page.rows for page in pages], invoice_index=invoice.invoice_index)
            return provenance.locate(read, pages)
        segments = []
        for number, image in enumerate(invoice.segments, start=1):
            if time.monotonic() > deadline:
                raise TransientError(
                    f"OCR of order {invoice.order_id} invoice {invoice.invoice_index} ran out of time "
                    f"at segment {number} of {len(invoice.segments)}"
                )
            segments.append(Segment(self._reader.read(image), image.height))
        rows = merge_segments(segments)
        sizes = [(float(image.width), float(image.height)) for image in invoice.segments]
        read = reconstruct(rows, invoice_index=invoice.invoice_index)
        return provenance.locate(read, provenance.segment_pages(rows, sizes))

    def _pdf_pages(self, invoice: InvoiceImages, data: bytes, deadline: float) -> list[provenance.Page]:
        """Each page's rows: from its text layer when ``pdf_text`` judges it usable, else from OCR of the page."""
        import pypdfium2

        try:
            document = pypdfium2.PdfDocument(data)
        except pypdfium2.PdfiumError as error:
            raise PermanentError(f"the PDF of order {invoice.order_id} cannot be read: {error}") from None
        try:
            pages = []
            for number in range(min(len(document), MAX_PDF_PAGES)):
                if time.monotonic() > deadline:
                    raise TransientError(
                        f"reading the PDF of order {invoice.order_id} invoice {invoice.invoice_index} ran out of "
                        f"time at page {number + 1} of {len(document)}"
                    )
                page = document[number]
                try:
                    layer = pdf_text.read_page(page, ocr_sample=functools.partial(self._ocr_band, page))
                    words = layer.words if layer.usable else self._ocr_page(page)
                    width, height = page.get_size()
                finally:
                    page.close()
                pages.append(provenance.Page(group_rows(words), width, height))
            return pages
        finally:
            document.close()

    def _ocr_page(self, page: Any, band: tuple[float, float] | None = None) -> list[Box]:
        """OCR boxes of a rendered PDF page (or a band of it), in PDF points from the page's top left."""
        from PIL import Image

        width, height = page.get_size()
        scale = min(4.0, OCR_RENDER_LONG_SIDE / max(width, height, 1.0))
        picture: Image.Image = page.render(scale=scale, grayscale=True).to_pil()
        top = 0.0
        if band is not None:
            top = band[0]
            picture = picture.crop((0, int(band[0] * scale), picture.width, int(band[1] * scale)))
        buffer = io.BytesIO()
        picture.convert("RGB").save(buffer, format="JPEG", quality=90)
        image = PreparedImage(buffer.getvalue(), "image/jpeg", picture.width, picture.height)
        return [
            (text, x0 / scale, y0 / scale + top, x1 / scale, y1 / scale + top, confidence)
            for text, x0, y0, x1, y1, confidence in self._reader.read(image)
        ]

    def _ocr_band(self, page: Any, band: tuple[float, float]) -> list[str]:
        return [box[0] for box in self._ocr_page(page, band) if box[5] >= MIN_CONFIDENCE]
