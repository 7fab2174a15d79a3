import pytest

from invoice_pipeline.documents.urls import S3Location, parse_image_url, parse_invoice_image, split_invoice_image
from invoice_pipeline.errors import InvalidImageUrl, PermanentError

ALLOWED = {"invoices-bucket", "my.dotted.bucket"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://invoices-bucket.s3.me-south-1.amazonaws.com/2026/11/a.jpg",
            S3Location("invoices-bucket", "2026/11/a.jpg"),
        ),
        ("https://invoices-bucket.s3-eu-west-1.amazonaws.com/a.jpg", S3Location("invoices-bucket", "a.jpg")),
        ("https://invoices-bucket.s3.amazonaws.com/a/b.png", S3Location("invoices-bucket", "a/b.png")),
        ("https://s3.us-east-1.amazonaws.com/invoices-bucket/x/y.pdf", S3Location("invoices-bucket", "x/y.pdf")),
        ("https://s3.amazonaws.com/invoices-bucket/k", S3Location("invoices-bucket", "k")),
        ("s3://invoices-bucket/receipts/r 1.jpg", S3Location("invoices-bucket", "receipts/r 1.jpg")),
        ("HTTPS://INVOICES-BUCKET.S3.AMAZONAWS.COM/Key.JPG", S3Location("invoices-bucket", "Key.JPG")),
        ("https://my.dotted.bucket.s3.amazonaws.com/k.jpg", S3Location("my.dotted.bucket", "k.jpg")),
    ],
)
def test_every_accepted_form_names_bucket_and_key(url, expected):
    assert parse_image_url(url, ALLOWED) == expected


def test_keys_are_url_decoded():
    location = parse_image_url(
        "https://invoices-bucket.s3.amazonaws.com/f%C3%A4ktura%20%D9%81%D8%A7%D8%AA%D9%88%D8%B1%D8%A9.jpg", ALLOWED
    )
    assert location.key == "fäktura فاتورة.jpg"


@pytest.mark.parametrize(
    "url",
    [
        "http://invoices-bucket.s3.amazonaws.com/a.jpg",  # plain http
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://169.254.169.254/invoices-bucket/a.jpg",
        "https://example.com/invoices-bucket/a.jpg",
        "https://invoices-bucket.s3.amazonaws.com.evil.example/a.jpg",
        "https://invoices-bucket.s3.amazonaws.com@evil.example/a.jpg",
        "https://user:pw@invoices-bucket.s3.amazonaws.com/a.jpg",
        "https://invoices-bucket.s3.amazonaws.com:8443/a.jpg",
        "https://invoices-bucket.s3.amazonaws.com/a.jpg?X-Amz-Signature=abc",
        "s3://other-bucket/a.jpg",  # not allowed
        "https://other-bucket.s3.amazonaws.com/a.jpg",
        "https://s3.us-east-1.amazonaws.com/other-bucket/a.jpg",
        "https://s3.us-east-1.amazonaws.com/invoices-bucket/../other-bucket/a.jpg",
        "https://s3.us-east-1.amazonaws.com/invoices-bucket/%2e%2e/other-bucket/a.jpg",
        "s3://invoices-bucket/a/%2E%2E/%2e%2e/b.jpg",
        "s3://invoices-bucket/a/./b.jpg",
        "s3://invoices-bucket/",
        "s3://invoices-bucket",
        "s3://invoices-bucket/a%00.jpg",
        "s3://INVALID_bucket/a.jpg",
        "ftp://invoices-bucket/a.jpg",
        "invoices-bucket/a.jpg",
        "https://[::1]/a.jpg",
    ],
)
def test_anything_else_is_refused_with_a_permanent_error_naming_it(url):
    with pytest.raises(InvalidImageUrl) as raised:
        parse_image_url(url, ALLOWED)
    assert isinstance(raised.value, PermanentError)
    assert url[:40] in str(raised.value) or "bucket" in str(raised.value)


def test_a_long_url_is_truncated_in_the_error():
    url = "https://example.com/" + "x" * 5000
    with pytest.raises(InvalidImageUrl) as raised:
        parse_image_url(url, ALLOWED)
    assert len(str(raised.value)) < 300
    assert str(raised.value).endswith("...")


@pytest.mark.parametrize(
    ("value", "count"),
    [
        ("s3://invoices-bucket/a.jpg", 1),
        ('["s3://invoices-bucket/a.jpg", "s3://invoices-bucket/b.jpg"]', 2),
        ("s3://invoices-bucket/a.jpg,s3://invoices-bucket/b.jpg", 2),
        ("s3://invoices-bucket/a.jpg, s3://invoices-bucket/b.jpg\n s3://invoices-bucket/c.jpg", 3),
        ("s3://invoices-bucket/a.jpg\r\n\ts3://invoices-bucket/b.jpg", 2),
        ('  [ "s3://invoices-bucket/a.jpg" ]  ', 1),
    ],
)
def test_invoice_image_lists_in_every_shape(value, count):
    locations = parse_invoice_image(value, ALLOWED)
    assert len(locations) == count
    assert [location.key for location in locations] == ["a.jpg", "b.jpg", "c.jpg"][:count]


@pytest.mark.parametrize("value", [None, "", "   ", "\n\t", "[]"])
def test_blank_invoice_image_is_a_permanent_error(value):
    with pytest.raises(InvalidImageUrl, match="no invoice_image"):
        parse_invoice_image(value, ALLOWED)


@pytest.mark.parametrize("value", ['["s3://invoices-bucket/a.jpg"', "[1, 2]", '{"url": 1}x'])
def test_malformed_json_arrays_are_refused(value):
    with pytest.raises(InvalidImageUrl):
        parse_invoice_image(value, ALLOWED)


def test_one_bad_url_among_good_ones_refuses_the_order():
    with pytest.raises(InvalidImageUrl, match="evil"):
        parse_invoice_image("s3://invoices-bucket/a.jpg https://evil.example/b.jpg", ALLOWED)


def test_split_keeps_order():
    assert split_invoice_image("b a,c") == ["b", "a", "c"]
