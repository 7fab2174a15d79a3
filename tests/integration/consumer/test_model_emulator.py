"""The model emulator speaks Chat Completions well enough for the real openai SDK, faults included."""

from __future__ import annotations

import base64

import openai
import pytest

from invoice_pipeline.pacing.image_tokens import image_tokens
from invoice_pipeline.providers.answer import ModelInvoice
from local.model_emulator import ModelEmulator
from tests.integration.consumer.conftest import answer, invoice_image

MODEL_4O = "gpt-4o-2024-11-20"


def ask(model: ModelEmulator, png: bytes, **options):
    client = openai.OpenAI(
        api_key="sk-test",
        base_url=model.base_url,
        max_retries=options.pop("max_retries", 0),
        timeout=options.pop("timeout", 10),
    )
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    return client.chat.completions.parse(
        model="gpt-4o-2024-11-20",
        messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url, "detail": "high"}}]}],
        response_format=ModelInvoice,
    )


def test_registered_answer_for_the_stamp_with_usage_from_the_tile_formula(model: ModelEmulator):
    model.register(99, answer(("Rice", "1", "bag", "3.750", "3.750")))
    completion = ask(model, invoice_image(99))
    assert completion.choices[0].message.parsed.items[0].description == "Rice"
    assert completion.usage.prompt_tokens == image_tokens(MODEL_4O, 1240, 1754) == 1105
    assert model.requests == 1 and model.requests_for(99) == 1


def test_unknown_stamp_gets_no_items(model: ModelEmulator):
    assert ask(model, invoice_image(12345)).choices[0].message.parsed.items == []


def test_faults(model: ModelEmulator):
    png = invoice_image(7)
    model.inject("refusal", times=1)
    assert ask(model, png).choices[0].message.refusal
    model.inject("insufficient_quota", times=1)
    with pytest.raises(openai.RateLimitError) as raised:
        ask(model, png)
    assert raised.value.code == "insufficient_quota"
    model.inject("server_error", times=2)
    assert ask(model, png, max_retries=2).choices[0].message.parsed is not None  # retried through
    model.inject("timeout", times=1, seconds=2)
    with pytest.raises(openai.APITimeoutError):
        ask(model, png, timeout=0.5)
    model.inject("malformed_json", times=1)
    with pytest.raises(ValueError):
        ask(model, png)
    model.inject("rate_limit", rate=1.0)
    with pytest.raises(openai.RateLimitError):
        ask(model, png)
    model.clear_faults()
    assert ask(model, png).choices[0].message.parsed is not None
    with pytest.raises(ValueError, match="unknown fault"):
        model.inject("gremlins")


def test_a_rate_limit_answers_429_with_openai_headers_and_200s_carry_the_remaining_budget(model: ModelEmulator):
    png = invoice_image(8)
    cost = image_tokens(MODEL_4O, 1240, 1754) + 1  # the image and a one-token empty answer... at least
    model.limit(tokens=2 * cost + 100, requests=100, window_seconds=60)
    client = openai.OpenAI(api_key="sk-test", base_url=model.base_url, max_retries=0, timeout=10)
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    call = client.chat.completions.with_raw_response.create
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url, "detail": "high"}}]}]
    first = call(model="gpt-4o-2024-11-20", messages=messages)
    assert first.headers["x-ratelimit-limit-tokens"] == str(2 * cost + 100)
    assert int(first.headers["x-ratelimit-remaining-tokens"]) < 2 * cost + 100
    assert first.headers["x-ratelimit-remaining-requests"] == "99"
    call(model="gpt-4o-2024-11-20", messages=messages)
    with pytest.raises(openai.RateLimitError) as raised:
        call(model="gpt-4o-2024-11-20", messages=messages)
    headers = raised.value.response.headers
    assert raised.value.code == "rate_limit_exceeded"
    assert int(headers["retry-after-ms"]) > 0 and int(headers["retry-after"]) >= 1
    assert headers["x-ratelimit-reset-tokens"].endswith("s")
    assert model.rate_limited() == 1 and len(model.served()) == 2
