"""The OpenAI provider (docs/architecture.md §10: ``openai/<model>`` or any name no other provider claims).

Chat Completions with structured outputs against OpenAI or any compatible endpoint (``OPENAI_BASE_URL``). All the
segments of one invoice go in one request, as data URLs with ``detail: high``; the answer is parsed into
:class:`~invoice_pipeline.providers.answer.ModelInvoice` by the SDK (strict JSON schema) and normalised by
:mod:`.normalise`. The SDK is imported on first use, not at cold start. Timeout and retries are sized so that
every attempt the SDK may make fits before the invocation's deadline. The SDK's errors become the project's error
types here (:func:`translate`); a refusal comes back as a normal answer and becomes :class:`ModelRefusal`.

Settings: ``OPENAI_API_KEY`` or ``OPENAI_SECRET_ARN`` (the bare key, or JSON with ``api_key``; read when first
needed), ``OPENAI_BASE_URL``. Cost: per token, from :mod:`invoice_pipeline.pricing`.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time
from collections.abc import Mapping
from typing import Any

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from invoice_pipeline.clients import AwsClients
from invoice_pipeline.documents import images
from invoice_pipeline.errors import (
    ConfigurationError,
    ModelRefusal,
    PermanentError,
    QuotaExhausted,
    Throttled,
    TransientError,
    classify,
    describe,
)
from invoice_pipeline.extractor import (
    DEFAULT_TIMEOUT_SECONDS,
    MAX_RETRIES,
    MIN_ATTEMPT_SECONDS,
    ExtractedInvoice,
    InvoiceImages,
)
from invoice_pipeline.extractor import (
    request_budget as shared_request_budget,
)
from invoice_pipeline.pricing import ModelPrices, cost_usd
from invoice_pipeline.providers.answer import PROMPT_VERSION, SYSTEM_PROMPT, ModelInvoice, user_text
from invoice_pipeline.providers.normalise import normalise
from invoice_pipeline.ratelimits import rate_limit_state, retry_after_seconds
from invoice_pipeline.settings import ConfigError, ConsumerSettings, EnvironmentSettings

NAME = "openai"
MODEL_PREFIX = "openai/"  # optional: the name sent to the API is the rest

# Re-exported: the retry budget's limits and the answer's normalisation used to live here.
__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "MAX_RETRIES",
    "MIN_ATTEMPT_SECONDS",
    "PROMPT_VERSION",
    "normalise",
]
# The SDK sleeps between attempts: 0.5 s doubling, but a Retry-After up to 120 s is honoured as named, so a
# window-long rate limit could sleep that long. Retries are only granted where such a sleep still fits; a
# longer wait is the consumer's (the job is handed back, see consume.py), not the invocation's.
RETRY_SLEEP_ALLOWANCE = 120.0


def request_budget(remaining: float, max_timeout: float = DEFAULT_TIMEOUT_SECONDS) -> tuple[float, int]:
    """(timeout, max_retries) for the OpenAI SDK: its attempts and the Retry-After sleeps between them fit."""
    return shared_request_budget(remaining, max_timeout, retry_sleep=RETRY_SLEEP_ALLOWANCE)


class OpenAISettings(EnvironmentSettings):
    api_key: SecretStr | None = Field(None, alias="OPENAI_API_KEY")
    secret_arn: str | None = Field(None, alias="OPENAI_SECRET_ARN")
    base_url: str | None = Field(None, alias="OPENAI_BASE_URL")

    @field_validator("secret_arn")
    @classmethod
    def _key_wins(cls, secret_arn: str | None, info: ValidationInfo) -> str | None:
        return None if info.data.get("api_key") is not None else secret_arn


def settings_from(env: Mapping[str, str]) -> OpenAISettings:
    return OpenAISettings.from_env(env)


def create_extractor(llm: str, settings: ConsumerSettings, clients: AwsClients) -> OpenAIExtractor:
    return OpenAIExtractor(
        llm,
        settings.provider(NAME),  # type: ignore[arg-type]
        timeout_seconds=settings.model_timeout_seconds,
        prices=settings.model_prices,
    )


def build_messages(invoice: InvoiceImages) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = [{"type": "text", "text": user_text(invoice)}]
    for segment in invoice.segments:
        data_url = f"data:{segment.media_type};base64,{base64.b64encode(segment.data).decode('ascii')}"
        content.append({"type": "image_url", "image_url": {"url": data_url, "detail": "high"}})
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]


def api_key_from(settings: OpenAISettings) -> str:
    """OPENAI_API_KEY, or the Secrets Manager secret (the bare key, or JSON with ``api_key``), cached 5 min."""
    if settings.api_key is not None:
        return settings.api_key.get_secret_value()
    if settings.secret_arn is None:
        raise ConfigError("OPENAI_API_KEY or OPENAI_SECRET_ARN must be set for OpenAI models")
    from aws_lambda_powertools.utilities import parameters

    value = str(parameters.get_secret(settings.secret_arn, max_age=300))
    if value.lstrip().startswith("{"):
        try:
            key = json.loads(value).get("api_key")
        except (ValueError, AttributeError):
            key = None
        if not isinstance(key, str) or not key:
            raise ConfigError(f"secret {settings.secret_arn} is JSON without an 'api_key' string")
        return key
    return value.strip()


def translate(error: Exception) -> Exception:
    """An OpenAI SDK error as the project's error type (docs/architecture.md §9); anything else unchanged.

    Which status and error codes mean what is judged once, in :func:`invoice_pipeline.errors.classify` (it knows
    the SDK's errors without importing it); here the kind becomes a type, with the wait a 429 names.
    """
    import openai

    if not isinstance(error, openai.OpenAIError):
        return error
    text = f"{type(error).__name__}: {error}"
    kind = classify(error)
    if kind == "throttled" and isinstance(error, openai.APIStatusError):
        return Throttled(f"model rate limit: {text}", retry_after_seconds=retry_after_seconds(error.response.headers))
    if kind == "configuration":
        return ConfigurationError(text)
    if kind in ("transient", "throttled"):
        return TransientError(text)
    if getattr(error, "code", None) == "insufficient_quota":
        return QuotaExhausted(text)  # an exhausted account needs a human, then a redrive
    if isinstance(error, openai.ContentFilterFinishReasonError):
        return ModelRefusal(f"the answer was stopped by the content filter ({text})")
    if isinstance(error, openai.LengthFinishReasonError):
        return PermanentError(f"the answer was cut at the output token limit ({text})")
    return PermanentError(text)


class OpenAIExtractor(images.VisionPreparation):
    def __init__(
        self,
        llm: str,
        settings: OpenAISettings,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        prices: ModelPrices = (),
    ):
        self.llm = llm
        self._prices = prices
        self._api_model = llm.removeprefix(MODEL_PREFIX)
        self._settings = settings
        self._timeout_seconds = timeout_seconds
        self._sdk_clients: dict[str, Any] = {}  # by API key: a rotated secret gets a new client
        self._lock = threading.Lock()

    def _client(self, api_key: str) -> Any:
        """One SDK client per key, kept while the container is warm (its connection pool is reused)."""
        with self._lock:
            client = self._sdk_clients.get(api_key)
            if client is None:
                import openai

                client = openai.OpenAI(api_key=api_key, base_url=self._settings.base_url)
                self._sdk_clients[api_key] = client
            return client

    def extract(self, invoice: InvoiceImages, *, deadline: float) -> ExtractedInvoice:
        timeout, retries = request_budget(deadline - time.monotonic(), self._timeout_seconds)
        try:
            api_key = api_key_from(self._settings)
        except Exception as error:  # no key set, secret missing or unreadable: a human must fix the deployment
            raise ConfigurationError(f"model credentials unavailable: {describe(error)}") from error
        client = self._client(api_key)
        try:
            # The raw response keeps the headers: x-ratelimit-remaining-* feed the shared budget.
            raw = client.with_options(timeout=timeout, max_retries=retries).chat.completions.with_raw_response.parse(
                model=self._api_model, messages=build_messages(invoice), response_format=ModelInvoice
            )
        except Exception as error:
            translated = translate(error)
            if translated is error:
                raise
            raise translated from error
        completion = raw.parse()
        message = completion.choices[0].message
        if message.refusal:
            raise ModelRefusal(f"model refused invoice {invoice.invoice_index}: {message.refusal}")
        if message.parsed is None:
            raise TransientError(f"model returned no answer for invoice {invoice.invoice_index}")
        usage = completion.usage
        input_tokens = usage.prompt_tokens if usage else 0
        output_tokens = usage.completion_tokens if usage else 0
        return dataclasses.replace(
            normalise(message.parsed, invoice_index=invoice.invoice_index),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost_usd(self.llm, input_tokens, output_tokens, configured=self._prices),
            rate_limits=rate_limit_state(raw.headers),
        )
