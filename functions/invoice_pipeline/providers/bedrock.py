"""The Amazon Bedrock provider (docs/architecture.md §10: ``bedrock/<model id or inference profile id>``), Converse API.

One ``converse`` call per invoice: the instructions of every LLM provider (:mod:`.answer`) as the system prompt,
the page images (JPEG, as the vision models see them) as image blocks, and the structured answer through a forced
tool (``toolChoice: {"tool": {"name": ...}}``) whose input schema is the item schema. Tokens come from ``usage``;
the cost from :mod:`invoice_pipeline.pricing`. The model id (or inference profile id, or ARN) is the name after
``bedrock/``; the region is the function's.

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

import re
import time
from collections.abc import Mapping
from typing import Any

from pydantic import Field, ValidationError

from invoice_pipeline.clients import AwsClients
from invoice_pipeline.documents import images
from invoice_pipeline.errors import ConfigurationError, ModelRefusal, PermanentError, TransientError
from invoice_pipeline.extractor import ExtractedInvoice, InvoiceImages, request_budget
from invoice_pipeline.model_ids import PROFILE_PREFIXES, profile_and_model
from invoice_pipeline.pricing import ModelPrices, cost_usd
from invoice_pipeline.providers import aws_sdk
from invoice_pipeline.providers.answer import SYSTEM_PROMPT, ModelInvoice, invoice_json_schema, user_text
from invoice_pipeline.providers.normalise import normalise
from invoice_pipeline.settings import ConsumerSettings, EnvironmentSettings

__all__ = ["PROFILE_PREFIXES", "base_model_id"]  # the stack grants each model's foundation-model ARNs with these

NAME = "bedrock"
MODEL_PREFIX = "bedrock/"
SERVICE = "bedrock-runtime"
TOOL_NAME = "record_invoice"
DEFAULT_MAX_OUTPUT_TOKENS = 8192

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
# configuration changes, so it must not fail jobs one by one. Matched at the START of the service's own message
# only: further on, a message can quote the request (text a document controls), and those words there must not
# turn a bad invoice into a configuration error that retries forever.
_MODEL_ID_PROBLEM = re.compile(
    r"^(The provided model identifier is invalid"
    r"|Invocation of model ID \S+ with on-demand throughput"
    r"|The provided (model ID|inference profile)\b[^.]{0,80}\b(invalid|not supported|not found))"
)


class BedrockSettings(EnvironmentSettings):
    max_output_tokens: int = Field(DEFAULT_MAX_OUTPUT_TOKENS, alias="BEDROCK_MAX_OUTPUT_TOKENS", ge=256)


def settings_from(env: Mapping[str, str]) -> BedrockSettings:
    return BedrockSettings.from_env(env)


def create_extractor(llm: str, settings: ConsumerSettings, clients: AwsClients) -> BedrockExtractor:
    provider_settings: BedrockSettings = settings.provider(NAME)  # type: ignore[assignment]
    return BedrockExtractor(
        llm, provider_settings, clients, timeout_seconds=settings.model_timeout_seconds, prices=settings.model_prices
    )


def base_model_id(model_id: str) -> str:
    """``us.anthropic.claude...`` or an inference-profile ARN -> ``anthropic.claude...`` (the foundation model)."""
    return profile_and_model(model_id.rsplit("/", 1)[-1])[1]


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


def _is_model_id_problem(error: Exception) -> bool:
    """A ValidationException whose message STARTS with the service's sentence about the model id."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return False
    details = response.get("Error", {})
    return details.get("Code") == "ValidationException" and bool(
        _MODEL_ID_PROBLEM.match(str(details.get("Message", "")))
    )


class BedrockExtractor(images.VisionPreparation):
    def __init__(
        self,
        llm: str,
        settings: BedrockSettings,
        clients: AwsClients,
        *,
        timeout_seconds: float,
        prices: ModelPrices = (),
    ) -> None:
        self.llm = llm
        self._prices = prices
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
            if isinstance(translated, PermanentError) and _is_model_id_problem(error):
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
            cost_usd=cost_usd(self.llm, input_tokens, output_tokens, configured=self._prices),
        )
