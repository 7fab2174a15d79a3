import io
import struct
import zlib

import pypdfium2
import pytest
from PIL import Image

from invoice_pipeline.documents import images
from invoice_pipeline.documents.images import prepare_invoice, scaled_size, sniff_type, split_tall
from invoice_pipeline.errors import ImageRejected
from local.stamp import draw_stamp, read_stamp


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def page(width: int = 1240, height: int = 1754, stamp: int | None = 4242) -> Image.Image:
    image = Image.new("RGB", (width, height), "white")
    if stamp is not None:
        draw_stamp(image, stamp, left=40, top=40, unit=max(2, width // 300), height=max(30, width // 20))
    return image


@pytest.mark.parametrize(
    ("fmt", "kind"), [("JPEG", "jpeg"), ("PNG", "png"), ("GIF", "gif"), ("WEBP", "webp"), ("PDF", "pdf")]
)
def test_types_are_told_by_magic_bytes(fmt, kind):
    assert sniff_type(encoded(page(300, 400), fmt)) == kind


@pytest.mark.parametrize("data", [b"", b"hello world", b"<html><body>", b"BM" + b"\0" * 100, b"II*\x00" + b"\0" * 50])
def test_anything_else_is_not_an_image(data):
    assert sniff_type(data) is None
    with pytest.raises(ImageRejected, match="not a JPEG, PNG, WEBP, GIF or PDF"):
        prepare_invoice(data, source="s3://b/k")


def test_a_truncated_image_is_rejected_not_crashed():
    data = encoded(page(), "PNG")[:500]
    with pytest.raises(ImageRejected, match="cannot be decoded"):
        prepare_invoice(data, source="s3://b/k.png")


@pytest.mark.parametrize(
    ("size", "expected"),
    [((2480, 3508), (768, 1086)), ((1000, 1000), (768, 768)), ((500, 300), (500, 300)), ((6000, 1000), (2048, 341))],
)
def test_scaling_matches_what_the_model_keeps(size, expected):
    assert scaled_size(*size) == expected


def test_an_a4_scan_becomes_one_segment_the_model_sees_whole_and_keeps_its_stamp():
    segments = prepare_invoice(encoded(page(2480, 3508), "PNG"), source="s3://b/a4.png")
    assert len(segments) == 1
    assert (segments[0].width, segments[0].height) == (768, 1086)
    assert segments[0].media_type == "image/jpeg"
    assert read_stamp(Image.open(io.BytesIO(segments[0].data))) == 4242


def test_a_tall_receipt_is_split_into_overlapping_legible_segments_before_scaling():
    receipt = page(600, 4800, stamp=77)
    parts = split_tall(receipt)
    assert len(parts) == 5
    assert all(part.size == (600, 1200) for part in parts)
    tops = [0, 1080, 2160, 3240, 3600]  # step 90% of 1200, the last aligned to the bottom
    for part, top in zip(parts, tops, strict=True):
        assert part.tobytes() == receipt.crop((0, top, 600, top + 1200)).tobytes()
    segments = prepare_invoice(encoded(receipt, "PNG"), source="s3://b/r.png")
    assert len(segments) == 5
    # Squeezed whole it would be 96 px wide; as segments every one keeps the receipt's full width.
    assert all(segment.width == 600 for segment in segments)
    assert read_stamp(Image.open(io.BytesIO(segments[0].data))) == 77


def test_an_ordinary_page_is_not_split():
    assert len(split_tall(page(1000, 2900))) == 1


def test_exif_orientation_is_applied():
    upright = page(600, 900, stamp=1234)
    rotated = upright.transpose(Image.Transpose.ROTATE_270)  # stored sideways (90° clockwise), as phones do
    exif = Image.Exif()
    exif[0x0112] = 8  # Orientation: turn 90° counter-clockwise to view
    data = encoded(rotated, "JPEG", exif=exif, quality=95)
    (segment,) = prepare_invoice(data, source="s3://b/phone.jpg")
    assert (segment.width, segment.height) == (600, 900)
    assert read_stamp(Image.open(io.BytesIO(segment.data))) == 1234


def test_transparent_png_is_flattened_on_white():
    image = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    (segment,) = prepare_invoice(encoded(image, "PNG"), source="s3://b/t.png")
    assert Image.open(io.BytesIO(segment.data)).convert("L").getpixel((100, 100)) > 250


def test_decompression_bomb_is_refused_before_decoding(monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 1_000_000)
    data = encoded(Image.new("L", (2000, 2000), 255), "PNG")  # small file, 4 MP
    with pytest.raises(ImageRejected, match="more than 1000000"):
        prepare_invoice(data, source="s3://b/bomb.png")


def test_pillow_bomb_guard_is_a_permanent_error(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)
    data = encoded(Image.new("L", (1000, 1000), 255), "PNG")
    with pytest.raises(ImageRejected, match="too large to decode safely"):
        prepare_invoice(data, source="s3://b/bomb.png")


def pdf_of(*pages: Image.Image) -> bytes:
    buffer = io.BytesIO()
    pages[0].save(buffer, format="PDF", save_all=True, append_images=list(pages[1:]), resolution=150)
    return buffer.getvalue()


def test_every_pdf_page_is_a_segment_of_the_same_invoice():
    data = pdf_of(page(1240, 1754, stamp=11), page(1240, 1754, stamp=12))
    segments = prepare_invoice(data, source="s3://b/inv.pdf")
    assert len(segments) == 2
    assert [read_stamp(Image.open(io.BytesIO(s.data))) for s in segments] == [11, 12]
    assert all(max(s.width, s.height) <= 2048 and min(s.width, s.height) <= 768 for s in segments)


def test_a_pdf_with_too_many_pages_is_refused(monkeypatch):
    monkeypatch.setattr(images, "MAX_PDF_PAGES", 2)
    data = pdf_of(*(page(200, 300, stamp=None) for _ in range(3)))
    with pytest.raises(ImageRejected, match="has 3 pages, at most 2"):
        prepare_invoice(data, source="s3://b/long.pdf")


def test_a_broken_pdf_is_rejected():
    with pytest.raises(ImageRejected, match="not a readable PDF"):
        prepare_invoice(b"%PDF-1.7\n garbage", source="s3://b/x.pdf")


class FakeBody:
    def __init__(self, data: bytes) -> None:
        self.data, self.read_sizes, self.closed = data, [], False

    def read(self, size: int) -> bytes:
        self.read_sizes.append(size)
        return self.data[:size]

    def close(self) -> None:
        self.closed = True


class FakeS3:
    def __init__(self, data: bytes, length: int | None) -> None:
        self.body = FakeBody(data)
        self.length = length

    def get_object(self, Bucket: str, Key: str) -> dict:
        return {"Body": self.body, "ContentLength": self.length}


def test_oversize_object_is_refused_from_its_length_without_reading_it():
    s3 = FakeS3(b"x" * 100, length=10_000_000)
    with pytest.raises(ImageRejected, match="more than MAX_IMAGE_BYTES=1000"):
        images.fetch_invoice_image(images.S3Location("b", "k"), max_bytes=1000, client=s3)
    assert s3.body.read_sizes == [] and s3.body.closed


def test_a_lying_length_still_cannot_exceed_the_limit():
    s3 = FakeS3(b"x" * 5000, length=None)
    with pytest.raises(ImageRejected):
        images.fetch_invoice_image(images.S3Location("b", "k"), max_bytes=1000, client=s3)
    assert s3.body.read_sizes == [1001]


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` but whose pixel data is garbage: only a header can be read."""
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\x00\x00\x00\x10IDATgarbage"


def test_a_tall_strip_is_refused_from_its_header_before_anything_is_decoded():
    # Decoding this would fail ("cannot be decoded"): the refusal proves nothing was decoded or cropped.
    with pytest.raises(ImageRejected, match=r"s3://b/tall.png is 1x2000000 pixels: it makes 1999999 segments"):
        prepare_invoice(png_header_only(1, 2_000_000), source="s3://b/tall.png")


def test_a_wide_strip_is_refused_from_its_header():
    with pytest.raises(ImageRejected, match=r"s3://b/wide.png is 2000000x1 pixels, wider than 10:1"):
        prepare_invoice(png_header_only(2_000_000, 1), source="s3://b/wide.png")
    assert len(prepare_invoice(encoded(page(3000, 300, stamp=None), "PNG"), source="s3://b/ok.png")) == 1


def test_too_many_pixels_are_refused_from_the_header_naming_the_size():
    with pytest.raises(ImageRejected, match=r"s3://b/big.png is 8000x6000 pixels, more than 40000000"):
        prepare_invoice(png_header_only(8000, 6000), source="s3://b/big.png")


def test_orientation_is_applied_before_the_shape_is_judged():
    # Stored 20000 x 1000 (wider than 10:1) but turned upright it is a 1000 x 20000 receipt of 11 segments.
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encoded(Image.new("L", (20_000, 1000), 255), "JPEG", exif=exif, quality=50)
    assert len(prepare_invoice(data, source="s3://b/sideways.jpg")) == 11


def test_a_large_jpeg_is_decoded_at_a_smaller_scale_and_prepared_as_before():
    photo = page(4000, 3000, stamp=515)
    (segment,) = prepare_invoice(encoded(photo, "JPEG", quality=90), source="s3://b/photo.jpg")
    assert (segment.width, segment.height) == scaled_size(4000, 3000)
    assert read_stamp(Image.open(io.BytesIO(segment.data))) == 515
    opened = Image.open(io.BytesIO(encoded(photo, "JPEG")))
    images._decode_smaller(opened, opened.size)
    assert opened.size == (2000, 1500)  # half scale still covers the 1024 x 768 the model keeps


def test_a_tall_jpeg_receipt_keeps_its_segments_legible_when_decoded_smaller():
    receipt = page(3000, 12_000, stamp=616)
    segments = prepare_invoice(encoded(receipt, "JPEG", quality=90), source="s3://b/receipt.jpg")
    assert [(segment.width, segment.height) for segment in segments] == [(768, 1536)] * 3
    assert read_stamp(Image.open(io.BytesIO(segments[0].data))) == 616


def test_a_pdf_page_of_an_absurd_shape_is_refused_before_any_page_is_rendered():
    document = pypdfium2.PdfDocument.new()
    document.new_page(595, 842)
    document.new_page(14_400, 10)
    buffer = io.BytesIO()
    document.save(buffer)
    with pytest.raises(ImageRejected, match=r"s3://b/strip.pdf page 2 is 2048x1 pixels, wider than 10:1"):
        prepare_invoice(buffer.getvalue(), source="s3://b/strip.pdf")


def test_the_pages_of_a_pdf_share_the_segment_budget(monkeypatch):
    monkeypatch.setattr(images, "MAX_SEGMENTS", 2)
    data = pdf_of(*(page(200, 300, stamp=None) for _ in range(3)))
    with pytest.raises(ImageRejected, match="s3://b/three.pdf makes 3 segments, at most 2 are sent"):
        prepare_invoice(data, source="s3://b/three.pdf")


def test_the_media_type_of_the_original_file_is_told_by_magic_bytes():
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(buffer, format="PNG")
    assert images.media_type(buffer.getvalue()) == "image/png"
    assert images.media_type(b"%PDF-1.7\n...") == "application/pdf"
    assert images.media_type(b"Order no 5") == "application/octet-stream"
