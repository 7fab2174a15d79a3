"""The Amazon Bedrock provider (docs/architecture.md §10: ``bedrock/<model id or inference profile id>``), Converse API.

One ``converse`` call per invoice: the instructions of every LLM provider (:mod:`.answer`) as the system prompt,
the page images (JPEG, as the vision models see them) as image blocks, and the structured answer through a forced
tool (``toolChoice: {"tool": {"name": ...}}``) whose input schema is the item schema. Tokens come from ``usage``;
the cost from :data:`PRICES`. The model id (or inference profile id, or ARN) is the name after ``bedrock/``; the
region is the function's.

PDF pages go as rendered images, not as Converse ``document`` blocks: which models read a document block visually
rather than by its text layer differs by model and option, and scanned invoices have no text layer; images keep
every Bedrock model comparable with the other vision providers on the same pixels.

Errors (botocore's standard retry mode retries throttling and 5xx inside the call, within the deadline budget):
``ThrottlingException`` / ``ServiceQuotaExceededException`` throttled; ``ServiceUnavailableException``,
``ModelTimeoutException``, ``ModelNotReadyException``, ``ModelErrorException``, ``InternalServerException``
transient; ``ValidationException`` permanent unless it says the model id itself is wrong; ``AccessDeniedException``
(which is also how a model not enabled in the account answers) and ``ResourceNotFoundException`` configuration;
``stopReason`` ``max_tokens`` permanent (the same invoice is truncated again: raise ``BEDROCK_MAX_OUTPUT_TOKENS``),
``content_filtered`` / ``guardrail_intervened`` a refusal.

Shapes from the Bedrock API reference (Converse request and response, ToolChoice, ContentBlock, TokenUsage) and
botocore's ``bedrock-runtime`` service model.

Settings: ``BEDROCK_MAX_OUTPUT_TOKENS`` (default 8192).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import Field, ValidationError

from invoice_pipeline import images
from invoice_pipeline.clients import AwsClients
from invoice_pipeline.errors import ConfigurationError, ModelRefusal, PermanentError, TransientError
from invoice_pipeline.extraction import aws_sdk
from invoice_pipeline.extraction.answer import SYSTEM_PROMPT, ModelInvoice, invoice_json_schema, user_text
from invoice_pipeline.extraction.base import ExtractedInvoice, InvoiceImages, request_budget
from invoice_pipeline.extraction.normalise import normalise
from invoice_pipeline.observability import logger
from invoice_pipeline.pricing import token_cost
from invoice_pipeline.settings import ConsumerSettings, EnvironmentSettings

NAME = "bedrock"
MODEL_PREFIX = "bedrock/"
SERVICE = "bedrock-runtime"
TOOL_NAME = "record_invoice"
DEFAULT_MAX_OUTPUT_TOKENS = 8192

# USD per 1M input and output tokens, on-demand, US East (N. Virginia), from https://aws.amazon.com/bedrock/pricing/
# as published in 2025 (the last time these were checked; this machine cannot reach the page). Keyed by base model
# id; a cross-region inference profile (``us.``, ``eu.``, ``apac.``, ``global.``) is priced as its model.
PRICES: dict[str, tuple[Decimal, Decimal]] = {
    "anthropic.claude-3-haiku-20240307-v1:0": (Decimal("0.25"), Decimal("1.25")),
    "anthropic.claude-3-5-haiku-20241022-v1:0": (Decimal("0.80"), Decimal("4.00")),
    "anthropic.claude-3-5-sonnet-20241022-v2:0": (Decimal("3.00"), Decimal("15.00")),
    "anthropic.claude-3-7-sonnet-20250219-v1:0": (Decimal("3.00"), Decimal("15.00")),
    "anthropic.claude-sonnet-4-20250514-v1:0": (Decimal("3.00"), Decimal("15.00")),
    "amazon.nova-lite-v1:0": (Decimal("0.06"), Decimal("0.24")),
    "amazon.nova-pro-v1:0": (Decimal("0.80"), Decimal("3.20")),
}
PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.")

ERRORS = aws_sdk.ErrorCodes(
    throttled=frozenset({"ThrottlingException", "ServiceQuotaExceededException"}),
    transient=frozenset(
        {
            "ServiceUnavailableException",
            "ModelTimeoutException",
            "ModelNotReadyException",
            "ModelErrorException",
            "InternalServerException",
        }
    ),
    permanent=frozenset({"ValidationException"}),
    configuration=frozenset({"AccessDeniedException", "ResourceNotFoundException"}),
)
# A ValidationException about the model id, not the request: every invoice would fail the same way until the
# configuration changes, so it must not fail jobs one by one.
_MODEL_ID_PROBLEMS = ("model identifier is invalid", "on-demand throughput", "inference profile")


class BedrockSettings(EnvironmentSettings):
    max_output_tokens: int = Field(DEFAULT_MAX_OUTPUT_TOKENS, alias="BEDROCK_MAX_OUTPUT_TOKENS", ge=256)


def settings_from(env: Mapping[str, str]) -> BedrockSettings:
    return BedrockSettings.from_env(env)


def create_extractor(llm: str, settings: ConsumerSettings, clients: AwsClients) -> BedrockExtractor:
    provider_settings: BedrockSettings = settings.provider(NAME)  # type: ignore[assignment]
    return BedrockExtractor(llm, provider_settings, clients, timeout_seconds=settings.model_timeout_seconds)


def base_model_id(model_id: str) -> str:
    """``us.anthropic.claude...`` or an inference-profile ARN -> ``anthropic.claude...`` (for pricing)."""
    model_id = model_id.rsplit("/", 1)[-1]
    for prefix in PROFILE_PREFIXES:
        if model_id.startswith(prefix):
            return model_id[len(prefix) :]
    return model_id


def cost_usd(model_id: str, input_tokens: int, output_tokens: int) -> Decimal:
    price = PRICES.get(base_model_id(model_id))
    if price is None:
        logger.warning("no price for model; cost recorded as 0", extra={"model": model_id})
        return Decimal(0)
    return token_cost(price, input_tokens, output_tokens)


def build_request(model_id: str, invoice: InvoiceImages, max_output_tokens: int) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"text": user_text(invoice)}]
    for segment in invoice.segments:
        content.append({"image": {"format": segment.media_type.split("/")[1], "source": {"bytes": segment.data}}})
    return {
        "modelId": model_id,
        "system": [{"text": SYSTEM_PROMPT}],
        "messages": [{"role": "user", "content": content}],
        "inferenceConfig": {"maxTokens": max_output_tokens, "temperature": 0},
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": TOOL_NAME,
                        "description": "Record the currency, printed total and every line item of the invoice.",
                        "inputSchema": {"json": invoice_json_schema()},
                    }
                }
            ],
            "toolChoice": {"tool": {"name": TOOL_NAME}},
        },
    }


def read_answer(response: Mapping[str, Any], *, invoice_index: int, max_output_tokens: int) -> ModelInvoice:
    """The tool input of a Converse response, or the error its stop reason means."""
    stop = response.get("stopReason")
    if stop == "max_tokens":
        raise PermanentError(
            f"invoice {invoice_index}: the answer was cut at {max_output_tokens} output tokens (stopReason "
            "max_tokens); raise BEDROCK_MAX_OUTPUT_TOKENS"
        )
    if stop in ("content_filtered", "guardrail_intervened"):
        raise ModelRefusal(f"invoice {invoice_index}: the model's answer was blocked (stopReason {stop})")
    blocks = response.get("output", {}).get("message", {}).get("content", []) or []
    tool = next((b["toolUse"] for b in blocks if "toolUse" in b and b["toolUse"].get("name") == TOOL_NAME), None)
    if tool is None:
        raise TransientError(f"invoice {invoice_index}: the model answered without the {TOOL_NAME} tool ({stop})")
    try:
        return ModelInvoice.model_validate(tool.get("input"))
    except ValidationError as error:
        problem = f"invoice {invoice_index}: the tool input does not match the item schema: {error}"
        raise TransientError(problem) from None


class BedrockExtractor(images.VisionPreparation):
    def __init__(self, llm: str, settings: BedrockSettings, clients: AwsClients, *, timeout_seconds: float) -> None:
        self.llm = llm
        self._clients = clients
        self.model_id = llm.removeprefix(MODEL_PREFIX)
        self._settings = settings
        self._timeout_seconds = timeout_seconds

    def extract(self, invoice: InvoiceImages, *, deadline: float) -> ExtractedInvoice:
        timeout, retries = request_budget(deadline - time.monotonic(), self._timeout_seconds)
        request = build_request(self.model_id, invoice, self._settings.max_output_tokens)
        try:
            runtime = aws_sdk.client(self._clients, SERVICE, timeout=timeout, retries=retries)
            response = runtime.converse(**request)
        except Exception as error:
            translated = aws_sdk.translate(error, ERRORS, service=SERVICE)
            if translated is error:
                raise
            if isinstance(translated, PermanentError) and any(p in str(translated) for p in _MODEL_ID_PROBLEMS):
                translated = ConfigurationError(f"{translated} (check the model id in LLM_MODELS: {self.llm})")
            raise translated from error
        answer = read_answer(
            response, invoice_index=invoice.invoice_index, max_output_tokens=self._settings.max_output_tokens
        )
        usage = response.get("usage") or {}
        input_tokens = int(usage.get("inputTokens") or 0)
        output_tokens = int(usage.get("outputTokens") or 0)
        extracted = normalise(answer, invoice_index=invoice.invoice_index)
        return ExtractedInvoice(
            invoice_index=extracted.invoice_index,
            currency=extracted.currency,
            printed_total=extracted.printed_total,
            items=extracted.items,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost_usd(self.model_id, input_tokens, output_tokens),
        )
