"""A test double for an OpenAI vision model, like moto is for AWS: a real HTTP server speaking Chat Completions.

It listens on 127.0.0.1 (a free port) and answers ``POST /v1/chat/completions`` the way the OpenAI API does
(``id``, ``object``, ``created``, ``model``, ``choices[0].message`` with ``content``/``refusal``,
``finish_reason``, ``usage``), so the real ``openai`` SDK, its retries and its structured-output parsing run
end to end against it. It does not read invoices: it decodes the barcode stamp (:mod:`local.stamp`) on the
FIRST image of a request and returns the answer registered for that stamp (an invoice with no items for an
unknown stamp). Faults can be injected to exercise the consumer's error handling.

    with ModelEmulator() as model:
        model.register(17, {"currency": "KWD", "printed_total": "3.500", "items": [...]})
        model.inject("server_error", times=3)
        # OPENAI_BASE_URL=model.base_url
"""

from __future__ import annotations

import base64
import io
import json
import math
import time
import urllib.parse
import uuid
from collections import Counter
from typing import Any

from PIL import Image

from invoice_pipeline.pacing.image_tokens import image_tokens
from local.http_emulator import ProviderEmulator, Reply, header
from local.stamp import read_stamp

FAULT_KINDS = (
    "latency",
    "rate_limit",
    "server_error",
    "timeout",
    "malformed_json",
    "refusal",
    "insufficient_quota",
    "invalid_api_key",
    "headers",
)


class RateLimit:
    """OpenAI-style limits of one model: a token and a request bucket, each holding one window's allowance and
    refilled continuously (``x-ratelimit-reset-*`` is the time until full again). A request needs room for all its
    tokens (prompt and answer) and one request; a refused one still counts against the request limit."""

    def __init__(self, tokens: int, requests: int, window_seconds: float, clock: Any = time.monotonic) -> None:
        self.limit_tokens, self.limit_requests, self.window_seconds = tokens, requests, window_seconds
        self._clock = clock
        self._tokens, self._requests = float(tokens), float(requests)
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed, self._at = now - self._at, now
        self._tokens = min(self.limit_tokens, self._tokens + self.limit_tokens * elapsed / self.window_seconds)
        self._requests = min(self.limit_requests, self._requests + self.limit_requests * elapsed / self.window_seconds)

    def admit(self, tokens: int) -> tuple[bool, dict[str, str]]:
        """Take ``tokens`` and one request if both fit: (admitted, the x-ratelimit-* headers and, if refused,
        retry-after-ms / Retry-After)."""
        self._refill()
        requests_ok = self._requests >= 1
        tokens_ok = self._tokens >= tokens
        self._requests = max(0.0, self._requests - 1)  # refused requests count too
        if requests_ok and tokens_ok:
            self._tokens -= tokens
        headers = {
            "x-ratelimit-limit-requests": str(self.limit_requests),
            "x-ratelimit-limit-tokens": str(self.limit_tokens),
            "x-ratelimit-remaining-requests": str(int(self._requests)),
            "x-ratelimit-remaining-tokens": str(int(self._tokens)),
            "x-ratelimit-reset-requests": _duration(
                self._until(self._requests, self.limit_requests, self.limit_requests)
            ),
            "x-ratelimit-reset-tokens": _duration(self._until(self._tokens, self.limit_tokens, self.limit_tokens)),
        }
        if requests_ok and tokens_ok:
            return True, headers
        wait = max(
            0.0 if requests_ok else self._until(self._requests, 1, self.limit_requests),
            0.0 if tokens_ok else self._until(self._tokens, tokens, self.limit_tokens),
        )
        headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
        headers["retry-after"] = str(max(1, math.ceil(wait)))
        return False, headers

    def _until(self, level: float, needed: float, limit: int) -> float:
        return max(0.0, needed - level) * self.window_seconds / limit


def _duration(seconds: float) -> str:
    """OpenAI's way of writing a reset time: ``6m0s``, ``1.5s``, ``20ms``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3g}s"
    return f"{int(minutes)}m{text}" if minutes else text


class ModelEmulator(ProviderEmulator):
    METHODS = ("GET", "POST")

    def __init__(self, port: int | None = None, *, seed: int = 0, api_key: str | None = None) -> None:
        self._api_key = api_key  # when set, a request with another bearer key gets OpenAI's 401
        self._limits: dict[str | None, RateLimit] = {}
        self._served: list[tuple[float, str, int]] = []  # (monotonic time, model, tokens) of each 200
        self._limited: Counter[str] = Counter()  # 429s for a rate limit, per model
        self._limited_at: list[tuple[float, str]] = []  # (monotonic time, model) of each of those 429s
        self._model_answers: dict[tuple[str, int], dict[str, Any]] = {}  # (model, stamp) -> its own answer
        super().__init__(port, seed=seed)

    # --------------------------------------------------------------------------- control (test side)

    @property
    def base_url(self) -> str:
        return f"{self.endpoint_url}/v1"

    def fault_kinds(self) -> tuple[str, ...]:
        """Options of :meth:`inject`: ``seconds`` (latency, timeout), ``retry_after`` seconds (rate_limit,
        server_error, insufficient_quota; default 0.01 so SDK retries stay quick), ``message`` (refusal, rate_limit),
        ``headers`` (a dict sent as they are with the reply: any fault, or ``headers`` for an otherwise normal 200)."""
        return FAULT_KINDS

    def limit(self, *, tokens: int, requests: int, window_seconds: float = 60.0, llm: str | None = None) -> None:
        """Enforce ``tokens`` and ``requests`` per window for ``llm`` (None: every model without its own limit),
        answering 429 with OpenAI's headers when a request does not fit; 200s carry the x-ratelimit-* headers.

        ``llm`` here and below is the configured name as requests carry it (``openai/`` removed)."""
        with self._lock:
            self._limits[llm] = RateLimit(tokens, requests, window_seconds)

    def register_for_model(self, llm: str, stamp: int, answer: dict[str, Any]) -> None:
        """What ``llm`` (alone) answers for the invoice carrying ``stamp``; other models keep :meth:`register`'s."""
        with self._lock:
            self._model_answers[(llm, stamp)] = json.loads(json.dumps(answer))

    def served(self, llm: str | None = None) -> list[tuple[float, int]]:
        """(monotonic time, tokens) of every answered request (of ``llm``)."""
        with self._lock:
            return [(at, tokens) for at, name, tokens in self._served if llm is None or name == llm]

    def rate_limited(self, llm: str | None = None) -> int:
        """Requests refused with 429 for the rate limit (of ``llm``)."""
        with self._lock:
            return self._limited[llm] if llm is not None else sum(self._limited.values())

    def rate_limited_times(self, llm: str | None = None) -> list[float]:
        """Monotonic times of the requests refused with 429 for the rate limit (of ``llm``)."""
        with self._lock:
            return [at for at, name in self._limited_at if llm is None or name == llm]

    # --------------------------------------------------------------------------- serving

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if method == "GET":
            # models.retrieve: what `invoices doctor` asks to check the key without paying for a completion.
            prefix = "/v1/models/" if path.startswith("/v1/") else "/models/"
            if not path.startswith(prefix) or len(path) == len(prefix):
                return 404, {}, _error(f"no route {path}", "invalid_request_error", None)
            if not self._authorized(headers):
                return 401, {}, _invalid_key_error()
            model = urllib.parse.unquote(path[len(prefix) :])
            return 200, {}, {"id": model, "object": "model", "created": 0, "owned_by": "emulator"}
        if not self._authorized(headers):
            return 401, {}, _invalid_key_error()
        if path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            return 404, {}, _error(f"no route {path}", "invalid_request_error", None)
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return 400, {}, _error("body is not JSON", "invalid_request_error", None)
        return self.respond(request)

    def crashed(self, error: Exception) -> Reply:
        return 500, {}, _error(f"emulator error: {error}", "server_error", None)

    def reply_headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json"}

    def _authorized(self, headers: dict[str, str]) -> bool:
        return self._api_key is None or header(headers, "Authorization") == f"Bearer {self._api_key}"

    def respond(self, request: dict[str, Any]) -> Reply:
        """(status, headers, JSON body) for one Chat Completions request."""
        images = list(_images_of(request))
        stamp = read_stamp(images[0]) if images else None
        self._count(stamp)
        model = str(request.get("model") or "")
        if not model or not isinstance(request.get("messages"), list):
            return 400, {}, _error("'model' and 'messages' are required", "invalid_request_error", None)

        finish_reason = "stop"
        refusal: str | None = None
        with self._lock:
            own = self._model_answers.get((model, stamp)) if stamp is not None else None
        answer = json.dumps(own if own is not None else self._answer_for(stamp), ensure_ascii=False)
        content: str | None = answer
        fault = self._next_fault(stamp)
        if fault is not None:
            retry = {"retry-after-ms": str(int(1000 * float(fault.options.get("retry_after", 0.01))))}
            retry |= fault.options.get("headers", {})
            if fault.kind in ("latency", "timeout"):
                time.sleep(float(fault.options.get("seconds", 1.0 if fault.kind == "latency" else 30.0)))
            elif fault.kind == "rate_limit":
                message = str(fault.options.get("message", "Rate limit reached (emulated)"))
                return 429, retry, _error(message, "rate_limit_exceeded", "rate_limit_exceeded")
            elif fault.kind == "insufficient_quota":
                message = "You exceeded your current quota (emulated)"
                return 429, retry, _error(message, "insufficient_quota", "insufficient_quota")
            elif fault.kind == "invalid_api_key":
                return 401, {}, _invalid_key_error()
            elif fault.kind == "server_error":
                return 500, retry, _error("The server had an error (emulated)", "server_error", None)
            elif fault.kind == "malformed_json":
                content = answer[: len(answer) // 2] + "<<not json"
            elif fault.kind == "refusal":
                content, refusal = None, str(fault.options.get("message", "I'm sorry, I can't help with that."))

        prompt_tokens = sum(image_tokens(model, *image.size) for image in images) + _text_tokens(request)
        completion_tokens = max(1, len(content or refusal or "") // 4)
        headers: dict[str, str] = {}
        with self._lock:
            limit = self._limits.get(model, self._limits.get(None))
            if limit is not None:
                admitted, headers = limit.admit(prompt_tokens + completion_tokens)
                if not admitted:
                    self._limited[model] += 1
                    self._limited_at.append((time.monotonic(), model))
                    message = f"Rate limit reached for {model} (emulated)"
                    return 429, headers, _error(message, "requests", "rate_limit_exceeded")
            self._served.append((time.monotonic(), model, prompt_tokens + completion_tokens))
        if fault is not None and fault.kind == "headers":
            headers = {**headers, **fault.options.get("headers", {})}
        body = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": "fp_emulator",
        }
        return 200, headers, body


def _error(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _invalid_key_error() -> dict[str, Any]:
    return _error("Incorrect API key provided (emulated).", "invalid_request_error", "invalid_api_key")


def _images_of(request: dict[str, Any]) -> list[Image.Image]:
    images: list[Image.Image] = []
    for message in request.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for part in content:
            if isinstance(part, dict) and part.get("type") == "image_url":
                url = str((part.get("image_url") or {}).get("url", ""))
                if url.startswith("data:") and ";base64," in url:
                    data = base64.b64decode(url.split(";base64,", 1)[1])
                    images.append(Image.open(io.BytesIO(data)))
    return images


def _text_tokens(request: dict[str, Any]) -> int:
    characters = 0
    for message in request.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            characters += len(content)
        elif isinstance(content, list):
            characters += sum(len(str(part.get("text", ""))) for part in content if isinstance(part, dict))
    return characters // 4
