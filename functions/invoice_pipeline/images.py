"""Fetching invoice images from S3 and preparing them the way the model actually sees them.

Preparation (per invoice): detect the type by magic bytes (JPEG, PNG, WEBP, GIF, PDF); render each PDF page
(at most ``MAX_PDF_PAGES``; every page is a segment of the same invoice); apply EXIF orientation; split very
tall receipts (taller than ``TALL_RATIO``:1) into overlapping segments BEFORE scaling so their text stays
legible; then scale each segment to what the model keeps (fit 2048x2048, shortest side at most 768: anything
larger is thrown away by the model and only costs upload time). Segments are JPEG-encoded.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable
from typing import Any

from PIL import Image, ImageOps

from invoice_pipeline.errors import ImageRejected
from invoice_pipeline.extraction.base import PreparedImage
from invoice_pipeline.urls import S3Location

MAX_PIXELS = 40_000_000  # a 40 MP photo is plenty; beyond that we refuse rather than decode a bomb
MAX_PDF_PAGES = 10
MAX_SEGMENTS = 20
FIT_BOX = 2048
SHORT_SIDE = 768
TALL_RATIO = 3.0  # height / width beyond which a receipt is split
SEGMENT_RATIO = 2.0  # each segment is at most this tall relative to its width
SEGMENT_OVERLAP = 0.10  # of a segment's height, so a line cut at one boundary is whole in the next segment
PDF_RENDER_LONG_SIDE = 2048
JPEG_QUALITY = 88

# Pillow's own guard: above this it warns, above twice this it refuses; we turn both into a permanent error.
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

_s3_client: Any = None


def s3_client() -> Any:
    """The container's S3 client, created on first use (boto3 honours AWS_ENDPOINT_URL, so moto works)."""
    global _s3_client
    if _s3_client is None:
        import boto3
        from botocore.config import Config

        config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=20)
        _s3_client = boto3.client("s3", config=config)
    return _s3_client


def reset_s3_client() -> None:
    """Forget the cached client (tests point boto3 at a new endpoint)."""
    global _s3_client
    _s3_client = None


def fetch_invoice_image(location: S3Location, *, max_bytes: int, client: Any = None) -> bytes:
    """The object's bytes; refuses anything larger than ``max_bytes`` from its Content-Length, unread."""
    client = client or s3_client()
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
    segments: list[Image.Image] = []
    for page in pages:
        segments.extend(split_tall(page))
    if len(segments) > MAX_SEGMENTS:
        raise ImageRejected(f"{source} makes {len(segments)} segments, at most {MAX_SEGMENTS} are sent")
    return tuple(_encode(scale_for_model(segment)) for segment in segments)


def _open_image(data: bytes, source: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
            width, height = opened.size
            if width * height > MAX_PIXELS:
                raise ImageRejected(f"{source} is {width}x{height} pixels, more than {MAX_PIXELS}")
            opened.seek(0)  # first frame of an animated GIF/WEBP
            image: Image.Image = ImageOps.exif_transpose(opened) or opened
            image.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageRejected(f"{source} is too large to decode safely: {error}") from None
    except (OSError, ValueError, SyntaxError) as error:  # Pillow's ways of saying "corrupt"
        raise ImageRejected(f"{source} cannot be decoded as an image: {error}") from None
    return _flatten(image)


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
        pages = []
        for index in range(count):
            page = document[index]
            width, height = page.get_size()
            scale = min(4.0, PDF_RENDER_LONG_SIDE / max(width, height, 1.0))
            pages.append(_flatten(page.render(scale=scale).to_pil()))
            page.close()
        return pages
    except pypdfium2.PdfiumError as error:
        raise ImageRejected(f"{source} cannot be rendered: {error}") from None
    finally:
        document.close()


def split_tall(image: Image.Image) -> list[Image.Image]:
    """A receipt taller than TALL_RATIO:1 as overlapping segments of at most SEGMENT_RATIO:1; else itself."""
    width, height = image.size
    if height <= TALL_RATIO * width:
        return [image]
    segment_height = int(SEGMENT_RATIO * width)
    step = int(segment_height * (1 - SEGMENT_OVERLAP))
    count = math.ceil((height - segment_height) / step) + 1
    tops = [min(index * step, height - segment_height) for index in range(count)]
    return [image.crop((0, top, width, top + segment_height)) for top in tops]


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
