"""Bad input to the consumer's parsers: a classified error (PermanentError/TransientError) or a valid result."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invoice_pipeline.consume import parse_message
from invoice_pipeline.errors import PipelineError
from invoice_pipeline.urls import parse_invoice_image

MODELS = ("gpt-4o-2024-11-20", "gpt-4.1-mini")
ALLOWED = frozenset({"invoices", "chaos-invoices"})
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
message_like = st.fixed_dictionaries(
    {},
    optional={
        "order_id": st.integers() | st.text(max_size=12) | st.floats() | st.none() | st.booleans(),
        "llm": st.sampled_from([*MODELS, "", "gpt-2", None]) | st.text(max_size=12) | st.integers(),
        "extra": json_values,
    },
)


def _parse(body: str) -> None:
    try:
        order_id, llm = parse_message(body, MODELS)
    except PipelineError as error:
        assert str(error)  # says what is wrong
        return
    assert isinstance(order_id, int) and 1 <= order_id < 2**63
    assert llm in MODELS


@FUZZ
@given(st.text(max_size=200))
def test_any_text_body_parses_or_is_a_classified_error(body: str) -> None:
    _parse(body)


@FUZZ
@given(st.one_of(message_like, json_values))
def test_any_json_body_parses_or_is_a_classified_error(value: object) -> None:
    _parse(json.dumps(value))


url_parts = st.builds(
    "{}{}{}{}".format,
    st.sampled_from(["s3://", "https://", "http://", "file://", "//", "S3://", "HTTPS://", ""]),
    st.sampled_from(
        [
            "invoices",
            "invoices.s3.amazonaws.com",
            "invoices.s3.eu-west-1.amazonaws.com",
            "s3.amazonaws.com/invoices",
            "s3.us-east-1.amazonaws.com/chaos-invoices",
            "evil.com",
            "invoices.s3.amazonaws.com@evil.com",
            "169.254.169.254",
            "invoices.s3.amazonaws.com.evil.com",
            "other-bucket",
            "[::1]",
        ]
    ),
    st.sampled_from(["", ":443", ":80", ":99999", ":x"]),
    st.builds(
        "/{}".format,
        st.lists(
            st.sampled_from(["a", "..", ".", "%2e%2e", "%2F", "%00", "%0a", "x.png", "?q=1", "#f", "%", "%zz", "ü"])
            | st.text(max_size=5),
            max_size=5,
        ).map("/".join),
    ),
)


def _locations(value: str) -> None:
    try:
        locations = parse_invoice_image(value, ALLOWED)
    except PipelineError as error:
        assert str(error)
        return
    for location in locations:
        assert location.bucket in ALLOWED
        assert location.key and ".." not in location.key.split("/")
        assert not any(ord(ch) < 32 for ch in location.key)


@FUZZ
@given(st.text(max_size=200))
def test_any_invoice_image_text_is_locations_in_allowed_buckets_or_a_classified_error(value: str) -> None:
    _locations(value)


@FUZZ
@given(st.lists(url_parts, min_size=1, max_size=3), st.sampled_from([" ", ",", "\n", "json"]))
def test_url_like_invoice_images_never_leave_the_allow_list(urls: list[str], separator: str) -> None:
    _locations(json.dumps(urls) if separator == "json" else separator.join(urls))
