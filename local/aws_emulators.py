"""Test doubles for Amazon Bedrock (Converse) and Amazon Textract (AnalyzeExpense), like moto is for S3 and SQS.

moto has neither operation, so these are real HTTP servers on 127.0.0.1 speaking each service's wire protocol;
boto3 reaches them through the standard ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` / ``AWS_ENDPOINT_URL_TEXTRACT``
variables (:meth:`environment`), so the real client, its signing, serialisation, retries and error parsing run.
Like :mod:`local.model_emulator` they do not read invoices: they decode the stamp (:mod:`local.stamp`) on the
first image of a request and answer with what is registered for it (a ``ModelInvoice`` dict); faults can be
injected per error the provider must handle. Signatures are not checked.

Wire protocols (checked with botocore 1.44, FIELD_NOTES 2026-11-29):
- Converse: rest-json ``POST /model/{modelId}/converse`` (model id percent-encoded), image bytes base64 in the
  JSON body; errors are an HTTP status, an ``x-amzn-ErrorType`` header and ``{"message": ...}``. Response shape
  from the Bedrock API reference (``output.message.content[].toolUse``, ``stopReason``, ``usage``, ``metrics``).
  Input tokens count each image by its model family's published rule (:mod:`invoice_pipeline.pacing.image_tokens`:
  Claude's width x height / 750, Nova's aspect-ratio buckets) plus a quarter token per character of text and schema.
- AnalyzeExpense: JSON 1.1 ``POST /`` with ``X-Amz-Target: Textract.AnalyzeExpense``; errors are HTTP 400/500
  with ``{"__type": ..., "Message": ...}``. Response shape from the Textract API reference and the saved responses
  in aws-samples/amazon-textract-textractor (tests/fixtures/saved_api_responses/test_analyze_expense_*.json):
  ``ExpenseDocuments[].SummaryFields`` / ``LineItemGroups[].LineItems[].LineItemExpenseFields`` with ``Type``,
  ``ValueDetection`` (text, geometry, confidence), ``PageNumber`` and ``Currency``. Like the real service it has
  no unit-of-measure field: the unit shows only in the ``EXPENSE_ROW`` text.

    with BedrockEmulator() as bedrock:
        bedrock.register(17, {"currency": "KWD", "printed_total": "3.500", "items": [...]})
        bedrock.inject("ThrottlingException", times=3)
        # os.environ.update(bedrock.environment())
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import time
import urllib.parse
import uuid
from typing import Any, ClassVar

from PIL import Image, UnidentifiedImageError

from invoice_pipeline.pacing.image_tokens import image_tokens
from local.http_emulator import Fault, ProviderEmulator, Reply, header
from local.stamp import read_stamp


class _AwsEmulator(ProviderEmulator):
    """The service's fault kinds (its error codes and :attr:`OTHER_FAULTS`) and its endpoint variable; subclasses
    answer requests."""

    SERVICE_ENV: ClassVar[str]
    FAULTS: ClassVar[dict[str, tuple[int, str]]]  # fault kind (the error code) -> (HTTP status, message)
    OTHER_FAULTS: ClassVar[tuple[str, ...]] = ("latency",)

    def environment(self) -> dict[str, str]:
        """What points boto3 (and the consumer) at this emulator."""
        return {self.SERVICE_ENV: self.endpoint_url}

    def fault_kinds(self) -> tuple[str, ...]:
        """An error code of the service, or one of :attr:`OTHER_FAULTS`; options ``seconds`` (latency), and for an
        error code ``message`` (instead of the default text) and ``headers`` (a dict sent as they are)."""
        return (*self.FAULTS, *self.OTHER_FAULTS)

    # ---------------------------------------------------------------------------------------------- serving

    def _seen(self, image: Image.Image | None) -> tuple[int | None, dict[str, Any], Fault | None]:
        """Count the request; (stamp, registered answer, fault to answer with, if any)."""
        stamp = read_stamp(image) if image is not None else None
        self._count(stamp)
        answer, fault = self._answer_for(stamp), self._next_fault(stamp)
        if fault is not None and fault.kind == "latency":
            time.sleep(float(fault.options.get("seconds", 1.0)))
        return stamp, answer, fault

    def error(self, code: str) -> Reply:
        raise NotImplementedError

    def fault_reply(self, fault: Fault) -> Reply:
        """The error reply of an injected error-code fault, with its ``message`` and ``headers`` options."""
        status, headers, reply = self.error(fault.kind)
        if "message" in fault.options:
            text = str(fault.options["message"])
            reply = {key: text if key in ("message", "Message") else value for key, value in reply.items()}
        return status, {**headers, **fault.options.get("headers", {})}, reply

    def crashed(self, error: Exception) -> Reply:
        status, headers, reply = self.error("InternalServerError")
        return status, headers, {**reply, "message": f"emulator error: {error}", "Message": f"emulator error: {error}"}

    def reply_headers(self) -> dict[str, str]:
        return {"x-amzn-RequestId": str(uuid.uuid4())}


def _open(data: bytes) -> Image.Image | None:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
        return image
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def _b64(text: Any) -> bytes | None:
    try:
        return base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        return None


# ------------------------------------------------------------------------------------------------- Bedrock


class BedrockEmulator(_AwsEmulator):
    SERVICE_ENV = "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"
    FAULTS: ClassVar[dict[str, tuple[int, str]]] = {
        "ThrottlingException": (429, "Too many requests, please wait before trying again. (emulated)"),
        "ServiceUnavailableException": (503, "The service is temporarily unavailable. (emulated)"),
        "ModelTimeoutException": (408, "The model took too long to respond. (emulated)"),
        "ModelNotReadyException": (429, "The model is not ready to serve inference requests. (emulated)"),
        "InternalServerException": (500, "An internal server error occurred. (emulated)"),
        "ValidationException": (400, "Input is too long for requested model. (emulated)"),
        "AccessDeniedException": (403, "You don't have access to the model with the specified model ID. (emulated)"),
        "ResourceNotFoundException": (404, "Model not found. (emulated)"),
    }
    OTHER_FAULTS = ("latency", "max_tokens", "content_filtered")

    def error(self, code: str) -> Reply:
        status, message = self.FAULTS.get(code, (500, "internal error"))
        return (
            status,
            {
                "Content-Type": "application/json",
                "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/",
            },
            {"message": message},
        )

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        parts = path.split("/")
        if len(parts) != 4 or parts[1] != "model" or parts[3] != "converse":
            return 404, {"Content-Type": "application/json", "x-amzn-ErrorType": "UnknownOperationException"}, {}
        # Every model id answers alike; a model without access is the injected AccessDeniedException.
        if not urllib.parse.unquote(parts[2]).strip():
            return self._validation("modelId is required")
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return self._validation("the request body is not JSON")
        messages = request.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._validation("messages must not be empty")
        pictures, characters = self._content(request)
        if pictures is None:
            return self._validation("an image block is not a readable image of its format")
        if "toolConfig" not in request:  # a plain chat turn (`invoices doctor` checks access with one)
            return self._text_reply(request, characters)
        tool = self._forced_tool(request)
        if isinstance(tool, tuple):
            return tool
        _, answer, fault = self._seen(pictures[0] if pictures else None)
        stop = "tool_use"
        if fault is not None and fault.kind in self.FAULTS:
            return self.fault_reply(fault)
        if fault is not None and fault.kind in ("max_tokens", "content_filtered"):
            stop = fault.kind
        text = json.dumps(answer, ensure_ascii=False)
        model_id = urllib.parse.unquote(parts[2])
        input_tokens = sum(image_tokens(f"bedrock/{model_id}", *p.size) for p in pictures) + characters // 4
        output_tokens = max(1, len(text) // 4) + 20
        content: list[dict[str, Any]]
        if stop == "tool_use":
            content = [{"toolUse": {"toolUseId": f"tooluse_{uuid.uuid4().hex[:22]}", "name": tool, "input": answer}}]
        elif stop == "max_tokens":
            max_tokens = int((request.get("inferenceConfig") or {}).get("maxTokens") or 0)
            output_tokens = max_tokens or output_tokens
            content = [{"toolUse": {"toolUseId": f"tooluse_{uuid.uuid4().hex[:22]}", "name": tool, "input": {}}}]
        else:
            content = [{"text": "The generated text has been blocked by our content filters."}]
            output_tokens = 0
        reply = {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "usage": {
                "inputTokens": input_tokens,
                "outputTokens": output_tokens,
                "totalTokens": input_tokens + output_tokens,
            },
            "metrics": {"latencyMs": 5},
        }
        return 200, {"Content-Type": "application/json"}, reply

    def _text_reply(self, request: dict[str, Any], characters: int) -> Reply:
        _, _, fault = self._seen(None)
        if fault is not None and fault.kind in self.FAULTS:
            return self.error(fault.kind)
        max_tokens = int((request.get("inferenceConfig") or {}).get("maxTokens") or 0)
        input_tokens = characters // 4 + 1
        reply = {
            "output": {"message": {"role": "assistant", "content": [{"text": "OK"}]}},
            "stopReason": "max_tokens" if max_tokens == 1 else "end_turn",
            "usage": {"inputTokens": input_tokens, "outputTokens": 1, "totalTokens": input_tokens + 1},
            "metrics": {"latencyMs": 5},
        }
        return 200, {"Content-Type": "application/json"}, reply

    def _validation(self, message: str) -> Reply:
        status, headers, _ = self.error("ValidationException")
        return status, headers, {"message": message}

    def _content(self, request: dict[str, Any]) -> tuple[list[Image.Image] | None, int]:
        pictures: list[Image.Image] = []
        characters = sum(len(str(block.get("text", ""))) for block in request.get("system") or [])
        characters += len(json.dumps(request.get("toolConfig") or {}))
        for message in request.get("messages") or []:
            for block in message.get("content") or []:
                if "text" in block:
                    characters += len(str(block["text"]))
                elif "image" in block:
                    data = _b64((block["image"].get("source") or {}).get("bytes"))
                    picture = _open(data) if data else None
                    if picture is None:
                        return None, characters
                    pictures.append(picture)
        return pictures, characters

    def _forced_tool(self, request: dict[str, Any]) -> str | Reply:
        config = request.get("toolConfig") or {}
        names = [(t.get("toolSpec") or {}).get("name") for t in config.get("tools") or []]
        forced = ((config.get("toolChoice") or {}).get("tool") or {}).get("name")
        if not forced or forced not in names:
            return self._validation("toolChoice must name one of the tools (the pipeline forces its tool)")
        spec = next(t["toolSpec"] for t in config["tools"] if t["toolSpec"].get("name") == forced)
        if not isinstance((spec.get("inputSchema") or {}).get("json"), dict):
            return self._validation("the tool needs inputSchema.json")
        return str(forced)


# ------------------------------------------------------------------------------------------------ Textract


class TextractEmulator(_AwsEmulator):
    SERVICE_ENV = "AWS_ENDPOINT_URL_TEXTRACT"
    MAX_BYTES = 10 * 1024 * 1024
    FAULTS: ClassVar[dict[str, tuple[int, str]]] = {
        "ProvisionedThroughputExceededException": (400, "Provisioned rate exceeded (emulated)"),
        "ThrottlingException": (400, "Rate exceeded (emulated)"),
        "InternalServerError": (500, "Internal server error (emulated)"),
        "UnsupportedDocumentException": (400, "Request has unsupported document format (emulated)"),
        "BadDocumentException": (400, "Unable to process the document (emulated)"),
        "DocumentTooLargeException": (400, "Document size exceeds the limit (emulated)"),
        "AccessDeniedException": (400, "User is not authorized to perform: textract:AnalyzeExpense (emulated)"),
    }

    def error(self, code: str, message: str | None = None) -> Reply:
        status, default = self.FAULTS.get(code, (500, "Internal server error"))
        headers = {"Content-Type": "application/x-amz-json-1.1"}
        return status, headers, {"__type": code, "Message": message or default}

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        target = header(headers, "X-Amz-Target")
        if path != "/" or target != "Textract.AnalyzeExpense":
            return 400, {"Content-Type": "application/x-amz-json-1.1"}, {"__type": "UnknownOperationException"}
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return self.error("InvalidParameterException", "the request body is not JSON")
        data = _b64((request.get("Document") or {}).get("Bytes"))
        if data is None:
            return self.error("InvalidParameterException", "Document.Bytes is required")
        if len(data) > self.MAX_BYTES:
            return self.error("DocumentTooLargeException")
        page = _open(data)
        if page is None or page.format not in ("JPEG", "PNG"):
            return self.error("UnsupportedDocumentException")
        _, answer, fault = self._seen(page)
        if fault is not None and fault.kind in self.FAULTS:
            return self.fault_reply(fault)
        return 200, {"Content-Type": "application/x-amz-json-1.1"}, analyze_expense_response(answer)


def _detection(text: str, top: float, left: float, width: float) -> dict[str, Any]:
    box = {"Width": width, "Height": 0.015, "Left": left, "Top": top}
    polygon = [
        {"X": left, "Y": top},
        {"X": left + width, "Y": top},
        {"X": left + width, "Y": top + 0.015},
        {"X": left, "Y": top + 0.015},
    ]
    return {"Text": text, "Geometry": {"BoundingBox": box, "Polygon": polygon}, "Confidence": 99.1}


def _field(kind: str, text: str, top: float, left: float, width: float, currency: str | None = None) -> dict[str, Any]:
    field: dict[str, Any] = {
        "Type": {"Text": kind, "Confidence": 99.5},
        "ValueDetection": _detection(text, top, left, width),
        "PageNumber": 1,
    }
    if currency:
        field["Currency"] = {"Code": currency, "Confidence": 95.0}
    return field


def analyze_expense_response(answer: dict[str, Any]) -> dict[str, Any]:
    """What AnalyzeExpense returns for a page whose perfect reading is ``answer`` (a ``ModelInvoice`` dict)."""
    currency = answer.get("currency")
    line_items = []
    for number, item in enumerate(answer.get("items") or []):
        top = 0.30 + 0.03 * number
        fields = []
        for kind, key, left, width in (
            ("ITEM", "description", 0.05, 0.40),
            ("QUANTITY", "quantity", 0.47, 0.08),
            ("UNIT_PRICE", "unit_price", 0.65, 0.12),
            ("PRICE", "line_total", 0.80, 0.14),
        ):
            if item.get(key):
                fields.append(_field(kind, str(item[key]), top, left, width, currency if kind == "PRICE" else None))
        row = " ".join(
            str(item.get(key) or "") for key in ("description", "quantity", "unit", "unit_price", "line_total")
        )
        fields.append(_field("EXPENSE_ROW", " ".join(row.split()), top, 0.0, 1.0))
        line_items.append({"LineItemExpenseFields": fields})
    summary = []
    if answer.get("printed_total"):
        total = _field("TOTAL", str(answer["printed_total"]), 0.9, 0.80, 0.14, currency)
        total["LabelDetection"] = _detection("TOTAL", 0.9, 0.60, 0.10)
        summary.append(total)
    return {
        "DocumentMetadata": {"Pages": 1},
        "ExpenseDocuments": [
            {
                "ExpenseIndex": 1,
                "SummaryFields": summary,
                "LineItemGroups": [{"LineItemGroupIndex": 1, "LineItems": line_items}] if line_items else [],
                "Blocks": [],
            }
        ],
        "AnalyzeExpenseModelVersion": "1.0",
    }
