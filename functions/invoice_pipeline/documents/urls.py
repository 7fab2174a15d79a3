"""`orders.invoice_image` -> the S3 objects to fetch. Only allow-listed buckets, only S3 forms.

The contract: docs/architecture.md §4.

Accepted: ``https://BUCKET.s3.REGION.amazonaws.com/KEY``, ``https://BUCKET.s3.amazonaws.com/KEY``,
``https://s3.REGION.amazonaws.com/BUCKET/KEY`` and ``s3://BUCKET/KEY``; one URL, a JSON array of URLs, or
URLs separated by commas, whitespace or newlines. Keys are URL-decoded. Anything else (another scheme or
host, an IP address, a bucket outside ``ALLOWED_BUCKETS``, a key that walks out with ``..``) is a
:class:`InvalidImageUrl`, a permanent error naming the URL; nothing is ever fetched from it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from invoice_pipeline.errors import InvalidImageUrl

MAX_URLS_PER_ORDER = 50
_SHOWN_URL_CHARS = 120
# S3 bucket naming rules: 3-63 chars, lowercase letters, digits, dots and hyphens.
_BUCKET = r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]"
_REGION = r"[a-z]{2}(?:-gov)?-[a-z]+-\d"
_VIRTUAL_HOST = re.compile(rf"^(?P<bucket>{_BUCKET})\.s3(?:[.-](?P<region>{_REGION}))?\.amazonaws\.com$")
_PATH_HOST = re.compile(rf"^s3(?:[.-](?P<region>{_REGION}))?\.amazonaws\.com$")
_BUCKET_ONLY = re.compile(rf"^{_BUCKET}$")
_SEPARATORS = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def shown(url: str) -> str:
    """A URL as it may appear in an error: bounded, one line."""
    flat = " ".join(url.split())
    return flat if len(flat) <= _SHOWN_URL_CHARS else flat[: _SHOWN_URL_CHARS - 3] + "..."


def split_invoice_image(value: str | None) -> list[str]:
    """The URL strings in an ``invoice_image`` value (a JSON array, or separated by commas/whitespace)."""
    if value is None or not value.strip():
        return []
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            raise InvalidImageUrl(f"invoice_image starts like a JSON array but is not JSON: {shown(text)}") from None
        if not isinstance(parsed, list) or not all(isinstance(item, str) for item in parsed):
            raise InvalidImageUrl(f"invoice_image JSON must be an array of strings: {shown(text)}")
        return [item.strip() for item in parsed if item.strip()]
    return [part for part in _SEPARATORS.split(text) if part]


def parse_image_url(url: str, allowed_buckets: Collection[str]) -> S3Location:
    """One URL -> its S3 location, or :class:`InvalidImageUrl` naming it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidImageUrl(f"not a valid URL: {shown(url)}") from None
    if parts.username or parts.password or port is not None or parts.query or parts.fragment:
        raise InvalidImageUrl(f"image URL must be a plain S3 URL (no credentials, port, query): {shown(url)}")
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    path = parts.path
    if scheme == "s3":
        bucket, key = host, path[1:]
    elif scheme == "https" and (match := _VIRTUAL_HOST.match(host)):
        bucket, key = match.group("bucket"), path[1:]
    elif scheme == "https" and _PATH_HOST.match(host):
        bucket, _, key = path[1:].partition("/")
    else:
        raise InvalidImageUrl(f"not an S3 URL (expected s3:// or https://...amazonaws.com): {shown(url)}")
    key = unquote(key)
    if not _BUCKET_ONLY.match(bucket) or ".." in bucket:
        raise InvalidImageUrl(f"not a valid S3 bucket name in {shown(url)}")
    if bucket not in allowed_buckets:
        raise InvalidImageUrl(f"bucket {bucket!r} is not in ALLOWED_BUCKETS: {shown(url)}")
    if not key or key.endswith("/"):
        raise InvalidImageUrl(f"S3 URL names no object: {shown(url)}")
    segments = key.split("/")
    if any(segment in (".", "..") for segment in segments) or any(ord(ch) < 32 for ch in key):
        raise InvalidImageUrl(f"S3 key with '.'/'..' segments or control characters: {shown(url)}")
    return S3Location(bucket=bucket, key=key)


def parse_invoice_image(value: str | None, allowed_buckets: Collection[str]) -> list[S3Location]:
    """Every image of an order, in order; a blank value or any refused URL is an :class:`InvalidImageUrl`."""
    urls = split_invoice_image(value)
    if not urls:
        raise InvalidImageUrl("order has no invoice_image")
    if len(urls) > MAX_URLS_PER_ORDER:
        raise InvalidImageUrl(f"order has {len(urls)} image URLs, at most {MAX_URLS_PER_ORDER} are processed")
    return [parse_image_url(url, allowed_buckets) for url in urls]
