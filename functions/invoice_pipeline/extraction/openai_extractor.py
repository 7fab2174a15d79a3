"""Extraction with an OpenAI(-compatible) vision model: Chat Completions with structured outputs.

All the segments of one invoice go in one request, as data URLs with ``detail: high``. The answer is parsed
into :class:`ModelInvoice` by the SDK (strict JSON schema) and normalised to Decimal here. The SDK is
imported on first use, not at cold start. Timeout and retries are sized so that every attempt the SDK may
make fits before the invocation's deadline. Errors are left to :func:`invoice_pipeline.errors.classify`,
except a refusal, which comes back as a normal answer and becomes :class:`ModelRefusal`.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any

from invoice_pipeline.errors import ModelRefusal, NotEnoughTime, Throttled, TransientError
from invoice_pipeline.extraction.base import ExtractedInvoice, ExtractedItem, InvoiceImages, ModelInvoice
from invoice_pipeline.numbers import parse_decimal
from invoice_pipeline.pricing import cost_usd
from invoice_pipeline.ratelimits import rate_limit_state, retry_after_seconds
from invoice_pipeline.settings import ConfigError, ConsumerSettings

PROMPT_VERSION = "2026-11-23.1"
SYSTEM_PROMPT = """\
You read supplier invoices and receipts photographed or scanned by restaurants (Arabic and English).
Return every purchased line item exactly once, top to bottom, in the order printed.
- The images are consecutive parts of ONE invoice (pages, or overlapping slices of a long receipt):
  a line visible in two overlapping slices is one line.
- Copy numbers exactly as printed, as strings: keep the digits (Arabic-Indic too), separators and decimals.
  Do not compute, round or convert anything. Use null for a value that is not printed.
- description: the item's name as printed; unit: the unit of measure as printed (kg, pcs, ctn...), or null.
- quantity, unit_price, line_total: the line's printed values.
- Skip subtotals, taxes, discounts, delivery fees and grand totals: they are not items.
- currency: the ISO 4217 code if it can be told (KWD, SAR, AED, USD...), else null.
- printed_total: the invoice's printed grand total, or null.
If the images are not an invoice, return no items."""

DEFAULT_TIMEOUT_SECONDS = 120.0  # one attempt at most; a vision call on a few pages takes 5-40 s
MIN_ATTEMPT_SECONDS = 10.0  # below this an attempt is unlikely to finish: fail over to SQS instead
MAX_RETRIES = 2
# The SDK sleeps between attempts: 0.5 s doubling, but a Retry-After up to 120 s is honoured as named, so a
# window-long rate limit could sleep that long. Retries are only granted where such a sleep still fits; a
# longer wait is the consumer's (the job is handed back, see consume.py), not the invocation's.
RETRY_SLEEP_ALLOWANCE = 120.0


def request_budget(remaining: float, max_timeout: float = DEFAULT_TIMEOUT_SECONDS) -> tuple[float, int]:
    """(timeout, max_retries) such that (retries + 1) attempts and their backoff fit in ``remaining`` seconds.

    ``max_timeout`` (``MODEL_TIMEOUT_SECONDS``) caps one attempt.
    """
    for retries in range(MAX_RETRIES, -1, -1):
        per_attempt = (remaining - retries * RETRY_SLEEP_ALLOWANCE) / (retries + 1)
        if per_attempt >= MIN_ATTEMPT_SECONDS:
            return min(max_timeout, per_attempt), retries
    raise NotEnoughTime(f"only {remaining:.0f} s left before the deadline: not calling the model")


def build_messages(invoice: InvoiceImages) -> list[dict[str, Any]]:
    count = len(invoice.segments)
    text = "Extract the line items of this invoice." + (
        f" It comes as {count} images, top to bottom." if count > 1 else ""
    )
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    for segment in invoice.segments:
        data_url = f"data:{segment.media_type};base64,{base64.b64encode(segment.data).decode('ascii')}"
        content.append({"type": "image_url", "image_url": {"url": data_url, "detail": "high"}})
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]


def normalise(answer: ModelInvoice, *, invoice_index: int) -> ExtractedInvoice:
    items = tuple(
        ExtractedItem(
            description=_text(line.description),
            quantity=parse_decimal(line.quantity),
            unit=_text(line.unit),
            unit_price=parse_decimal(line.unit_price),
            line_total=parse_decimal(line.line_total),
        )
        for line in answer.items
    )
    currency = _text(answer.currency)
    return ExtractedInvoice(
        invoice_index=invoice_index,
        currency=currency.upper() if currency else None,
        printed_total=parse_decimal(answer.printed_total),
        items=items,
    )


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    flat = " ".join(value.split())
    return flat or None


_clients: dict[tuple[str | None, str], Any] = {}
_clients_lock = threading.Lock()


def _client(base_url: str | None, api_key: str) -> Any:
    """One SDK client per endpoint and key for the container (connection pool reuse across invocations)."""
    with _clients_lock:
        client = _clients.get((base_url, api_key))
        if client is None:
            import openai

            client = openai.OpenAI(api_key=api_key, base_url=base_url)
            _clients[(base_url, api_key)] = client
        return client


def api_key_from(settings: ConsumerSettings) -> str:
    """OPENAI_API_KEY, or the Secrets Manager secret (the bare key, or JSON with ``api_key``), cached 5 min."""
    if settings.openai_api_key is not None:
        return settings.openai_api_key.get_secret_value()
    if settings.openai_secret_arn is None:
        raise ConfigError("OPENAI_API_KEY or OPENAI_SECRET_ARN must be set for OpenAI models")
    from aws_lambda_powertools.utilities import parameters

    value = str(parameters.get_secret(settings.openai_secret_arn, max_age=300))
    if value.lstrip().startswith("{"):
        try:
            key = json.loads(value).get("api_key")
        except (ValueError, AttributeError):
            key = None
        if not isinstance(key, str) or not key:
            raise ConfigError(f"secret {settings.openai_secret_arn} is JSON without an 'api_key' string")
        return key
    return value.strip()


def throttled_from(error: BaseException) -> Throttled | None:
    """A 429 rate-limit answer as :class:`Throttled` with the wait its headers name; None for anything else
    (``insufficient_quota`` is a 429 too, but no wait helps: :func:`~invoice_pipeline.errors.classify` makes it
    permanent)."""
    import openai

    if not isinstance(error, openai.APIStatusError) or error.status_code != 429:
        return None
    if getattr(error, "code", None) == "insufficient_quota":
        return None
    wait = retry_after_seconds(error.response.headers)
    return Throttled(f"model rate limit: {error.message}", retry_after_seconds=wait)


class OpenAIExtractor:
    def __init__(self, model: str, settings: ConsumerSettings) -> None:
        self.model = model
        self._settings = settings

    def extract(self, invoice: InvoiceImages, *, deadline: float) -> ExtractedInvoice:
        timeout, retries = request_budget(deadline - time.monotonic(), self._settings.model_timeout_seconds)
        client = _client(self._settings.openai_base_url, api_key_from(self._settings))
        try:
            # The raw response keeps the headers: x-ratelimit-remaining-* feed the shared budget.
            raw = client.with_options(timeout=timeout, max_retries=retries).chat.completions.with_raw_response.parse(
                model=self.model, messages=build_messages(invoice), response_format=ModelInvoice
            )
        except Exception as error:
            throttled = throttled_from(error)
            if throttled is None:
                raise
            raise throttled from error
        completion = raw.parse()
        message = completion.choices[0].message
        if message.refusal:
            raise ModelRefusal(f"model refused invoice {invoice.invoice_index}: {message.refusal}")
        if message.parsed is None:
            raise TransientError(f"model returned no answer for invoice {invoice.invoice_index}")
        usage = completion.usage
        input_tokens = usage.prompt_tokens if usage else 0
        output_tokens = usage.completion_tokens if usage else 0
        extracted = normalise(message.parsed, invoice_index=invoice.invoice_index)
        return ExtractedInvoice(
            invoice_index=extracted.invoice_index,
            currency=extracted.currency,
            printed_total=extracted.printed_total,
            items=extracted.items,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost_usd(self.model, input_tokens, output_tokens),
            rate_limits=rate_limit_state(raw.headers),
        )
