import io

import pypdfium2
import pytest
from PIL import Image

from invoice_pipeline import images
from invoice_pipeline.errors import ImageRejected
from invoice_pipeline.images import prepare_invoice, scaled_size, sniff_type, split_tall
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
    assert pypdfium2  # the renderer is a real dependency


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


def test_the_media_type_of_the_original_file_is_told_by_magic_bytes():
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(buffer, format="PNG")
    assert images.media_type(buffer.getvalue()) == "image/png"
    assert images.media_type(b"%PDF-1.7\n...") == "application/pdf"
    assert images.media_type(b"Order no 5") == "application/octet-stream"
