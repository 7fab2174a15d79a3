"""Fetching invoice images from S3 and preparing them the way the model actually sees them.

Preparation (per invoice): detect the type by magic bytes (JPEG, PNG, WEBP, GIF, PDF); render each PDF page
(at most ``MAX_PDF_PAGES``; every page is a segment of the same invoice); apply EXIF orientation; split very
tall receipts (taller than ``TALL_RATIO``:1) into overlapping segments BEFORE scaling so their text stays
legible; then scale each segment to what the model keeps (fit 2048x2048, shortest side at most 768: anything
larger is thrown away by the model and only costs upload time). Segments are JPEG-encoded.

Memory is decided from the header, before any decode or crop: the pixel count, the aspect ratio and the number
of segments follow from an image's size (a PDF page's from its size in points), so a 4 KB PNG of 1 x 2,000,000
pixels or a decompression bomb is refused while it is still a few bytes. A JPEG is decoded at the smallest
DCT scale that still covers what the model keeps (a 40 MP photo decodes at 1/4 or 1/8 of its pixels), and
segments are cropped, scaled and encoded one at a time.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable
from typing import Any

from PIL import Image, ImageOps

from invoice_pipeline.documents.urls import S3Location
from invoice_pipeline.errors import ImageRejected
from invoice_pipeline.extractor import PreparedImage

MAX_PIXELS = 40_000_000  # a 40 MP photo is plenty; beyond that we refuse rather than decode a bomb
MAX_PDF_PAGES = 10
MAX_SEGMENTS = 20
# Wide images are not split: at 10:1 the model's 2048 px long side leaves 204 px of height, less is unreadable.
MAX_WIDE_RATIO = 10.0
FIT_BOX = 2048
SHORT_SIDE = 768
TALL_RATIO = 3.0  # height / width beyond which a receipt is split
SEGMENT_RATIO = 2.0  # each segment is at most this tall relative to its width
SEGMENT_OVERLAP = 0.10  # of a segment's height, so a line cut at one boundary is whole in the next segment
PDF_RENDER_LONG_SIDE = 2048
JPEG_QUALITY = 88

# Pillow's own guard, behind the header check: above twice this it refuses at open (a permanent error here).
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

_SIGNATURES: tuple[tuple[str, Callable[[bytes], bool]], ...] = (
    ("jpeg", lambda head: head.startswith(b"\xff\xd8\xff")),
    ("png", lambda head: head.startswith(b"\x89PNG\r\n\x1a\n")),
    ("gif", lambda head: head[:6] in (b"GIF87a", b"GIF89a")),
    ("webp", lambda head: head[:4] == b"RIFF" and head[8:12] == b"WEBP"),
    ("pdf", lambda head: head[:1024].lstrip(b"\r\n\t \x00").startswith(b"%PDF-")),
)


def sniff_type(data: bytes) -> str | None:
    """``jpeg``, ``png``, ``gif``, ``webp``, ``pdf`` from the leading bytes, or None."""
    for name, matches in _SIGNATURES:
        if matches(data[:1024]):
            return name
    return None


MEDIA_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "pdf": "application/pdf",
}


def media_type(data: bytes) -> str:
    """The media type of an invoice file by its leading bytes (``application/octet-stream`` when unknown)."""
    kind = sniff_type(data)
    return MEDIA_TYPES[kind] if kind else "application/octet-stream"


# ---------------------------------------------------------------------------------------------- fetching


def fetch_invoice_image(location: S3Location, *, max_bytes: int, client: Any) -> bytes:
    """The object's bytes; refuses anything larger than ``max_bytes`` from its Content-Length, unread."""
    response = client.get_object(Bucket=location.bucket, Key=location.key)
    body = response["Body"]
    try:
        size = int(response.get("ContentLength") or 0)
        if size > max_bytes:
            raise ImageRejected(f"{location} is {size} bytes, more than MAX_IMAGE_BYTES={max_bytes}")
        data: bytes = body.read(max_bytes + 1)
        if len(data) > max_bytes:  # Content-Length lied or was absent
            raise ImageRejected(f"{location} is more than MAX_IMAGE_BYTES={max_bytes} bytes")
        return data
    finally:
        body.close()


# ---------------------------------------------------------------------------------------------- preparing


def prepare_invoice(data: bytes, *, source: str) -> tuple[PreparedImage, ...]:
    """All the segments of one invoice, top to bottom (PDF pages in order), ready for the model."""
    kind = sniff_type(data)
    if kind is None:
        raise ImageRejected(f"{source} is not a JPEG, PNG, WEBP, GIF or PDF (starts with {data[:8]!r})")
    pages = _render_pdf(data, source) if kind == "pdf" else [_open_image(data, source)]
    # Pages were planned from their sizes before decoding; checked again on what was decoded, before any crop.
    total = sum(planned_segments(*page.size, source=source) for page in pages)
    _require_segments(total, source)
    prepared: list[PreparedImage] = []
    for page in pages:
        width, height = page.size
        for top, segment_height in segment_tops(width, height):
            segment = page if segment_height == height else page.crop((0, top, width, top + segment_height))
            prepared.append(_encode(scale_for_model(segment)))
    return tuple(prepared)


def planned_segments(width: int, height: int, *, source: str) -> int:
    """How many segments an upright ``width`` x ``height`` page makes; refuses a size that cannot be sent.

    Arithmetic on the size alone, so it runs on an image's header before anything is decoded.
    """
    if width * height > MAX_PIXELS:
        raise ImageRejected(f"{source} is {width}x{height} pixels, more than {MAX_PIXELS}")
    if width > MAX_WIDE_RATIO * height:
        raise ImageRejected(
            f"{source} is {width}x{height} pixels, wider than {MAX_WIDE_RATIO:g}:1: unreadable at the model's size"
        )
    count = segment_count(width, height)
    if count > MAX_SEGMENTS:
        raise ImageRejected(
            f"{source} is {width}x{height} pixels: it makes {count} segments, at most {MAX_SEGMENTS} are sent"
        )
    return count


def _require_segments(count: int, source: str) -> None:
    if count > MAX_SEGMENTS:
        raise ImageRejected(f"{source} makes {count} segments, at most {MAX_SEGMENTS} are sent")


def _open_image(data: bytes, source: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Pillow warns above MAX_PIXELS (the check below refuses, naming the size) and raises above twice that.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # reads the header only
            upright = _upright_size(image)
            planned_segments(*upright, source=source)
            image.seek(0)  # first frame of an animated GIF/WEBP
            _decode_smaller(image, upright)
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
    except ImageRejected:
        raise
    except Image.DecompressionBombError as error:
        raise ImageRejected(f"{source} is too large to decode safely: {error}") from None
    except (OSError, ValueError, SyntaxError) as error:  # Pillow's ways of saying "corrupt"
        raise ImageRejected(f"{source} cannot be decoded as an image: {error}") from None
    return _flatten(image)


_SIDEWAYS_ORIENTATIONS = frozenset({5, 6, 7, 8})  # EXIF orientations that turn the image by 90 degrees


def _upright_size(image: Image.Image) -> tuple[int, int]:
    """The size after EXIF orientation, from the header (EXIF stored after a PNG's pixels is found on decoding,
    and the decoded image is checked again then)."""
    width, height = image.size
    exif = image.info.get("exif")
    if isinstance(exif, bytes):
        orientation = Image.Exif()
        orientation.load(exif)
        if orientation.get(0x0112) in _SIDEWAYS_ORIENTATIONS:
            return height, width
    return width, height


def _decode_smaller(image: Image.Image, upright: tuple[int, int]) -> None:
    """Let a JPEG decode at a DCT scale (1/2, 1/4, 1/8) that still covers every pixel the model keeps."""
    width, height = upright
    if segment_count(width, height) > 1:  # segments keep the receipt's width, scaled per segment
        kept_width = scaled_size(width, int(SEGMENT_RATIO * width))[0]
    else:
        kept_width = scaled_size(width, height)[0]
    factor = kept_width / width
    needed = (max(1, math.ceil(width * factor)), max(1, math.ceil(height * factor)))
    if (width, height) != image.size:
        needed = (needed[1], needed[0])
    image.draft(None, needed)  # a no-op for every format but JPEG


def _flatten(image: Image.Image) -> Image.Image:
    """RGB on white (transparent PNG receipts would otherwise turn black in JPEG)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image if image.mode in ("RGB", "L") else image.convert("RGB")


def _render_pdf(data: bytes, source: str) -> list[Image.Image]:
    import pypdfium2

    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as error:
        raise ImageRejected(f"{source} is not a readable PDF: {error}") from None
    try:
        count = len(document)
        if count == 0:
            raise ImageRejected(f"{source} is a PDF without pages")
        if count > MAX_PDF_PAGES:
            raise ImageRejected(f"{source} has {count} pages, at most {MAX_PDF_PAGES} are processed")
        _plan_pdf(document, source)
        pages = []
        for index in range(count):
            page = document[index]
            width, height = page.get_size()
            scale = _pdf_render_scale(width, height)
            pages.append(_flatten(page.render(scale=scale).to_pil()))
            page.close()
        return pages
    except pypdfium2.PdfiumError as error:
        raise ImageRejected(f"{source} cannot be rendered: {error}") from None
    finally:
        document.close()


def _pdf_render_scale(width: float, height: float) -> float:
    """Points to pixels: the long side at PDF_RENDER_LONG_SIDE, never more than 4 px per point."""
    return min(4.0, PDF_RENDER_LONG_SIDE / max(width, height, 1.0))


def _plan_pdf(document: Any, source: str) -> None:
    """Every page's rendered size and segments from its size in points, before any page is rendered."""
    total = 0
    for index in range(len(document)):
        page = document[index]
        width, height = page.get_size()
        page.close()
        scale = _pdf_render_scale(width, height)
        rendered = (max(1, round(width * scale)), max(1, round(height * scale)))
        total += planned_segments(*rendered, source=f"{source} page {index + 1}")
    _require_segments(total, source)


def segment_count(width: int, height: int) -> int:
    """How many segments :func:`split_tall` makes of a ``width`` x ``height`` image, from the size alone."""
    if height <= TALL_RATIO * width:
        return 1
    segment_height, step = _segment_geometry(width)
    return math.ceil((height - segment_height) / step) + 1


def segment_tops(width: int, height: int) -> list[tuple[int, int]]:
    """(top, height) of each segment, top to bottom; one segment (0, height) unless the image is tall."""
    count = segment_count(width, height)
    if count == 1:
        return [(0, height)]
    segment_height, step = _segment_geometry(width)
    return [(min(index * step, height - segment_height), segment_height) for index in range(count)]


def _segment_geometry(width: int) -> tuple[int, int]:
    segment_height = int(SEGMENT_RATIO * width)
    return segment_height, max(1, int(segment_height * (1 - SEGMENT_OVERLAP)))


def split_tall(image: Image.Image) -> list[Image.Image]:
    """A receipt taller than TALL_RATIO:1 as overlapping segments of at most SEGMENT_RATIO:1; else itself."""
    width, height = image.size
    tops = segment_tops(width, height)
    if len(tops) == 1:
        return [image]
    return [image.crop((0, top, width, top + segment_height)) for top, segment_height in tops]


def scaled_size(width: int, height: int) -> tuple[int, int]:
    """The size the model works at: fit into FIT_BOX x FIT_BOX, then shortest side at most SHORT_SIDE."""
    factor = min(1.0, FIT_BOX / max(width, height))
    factor *= min(1.0, SHORT_SIDE / (min(width, height) * factor))
    return max(1, round(width * factor)), max(1, round(height * factor))


def scale_for_model(image: Image.Image) -> Image.Image:
    size = scaled_size(*image.size)
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)


def _encode(image: Image.Image) -> PreparedImage:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return PreparedImage(data=buffer.getvalue(), media_type="image/jpeg", width=image.width, height=image.height)


class VisionPreparation:
    """``Extractor.prepare`` of the extractors that read an invoice as a vision model keeps it (the OpenAI and
    Bedrock models, and the offline OCR, which reads those images well enough): :func:`prepare_invoice`."""

    def prepare(self, data: bytes, *, source: str) -> tuple[PreparedImage, ...]:
        return prepare_invoice(data, source=source)


PAGE_LONG_SIDE = 8000  # a document service reads whole pages; far above any page we render, below service caps


def prepare_pages(data: bytes, *, source: str) -> tuple[PreparedImage, ...]:
    """Each page of one invoice whole and upright (PDF pages in order), for document services such as Textract
    that find the text themselves: no splitting of tall receipts, no scaling down to a vision model's size."""
    kind = sniff_type(data)
    if kind is None:
        raise ImageRejected(f"{source} is not a JPEG, PNG, WEBP, GIF or PDF (starts with {data[:8]!r})")
    pages = _render_pdf(data, source) if kind == "pdf" else [_open_image(data, source)]
    prepared = []
    for page in pages:
        factor = min(1.0, PAGE_LONG_SIDE / max(page.size))
        if factor < 1.0:
            page = page.resize((round(page.width * factor), round(page.height * factor)), Image.Resampling.LANCZOS)
        prepared.append(_encode(page))
    return tuple(prepared)
