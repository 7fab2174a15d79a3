"""The shared tracer is built on first use, so importing a handler does not load the X-Ray SDK."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from aws_lambda_powertools import Tracer

from invoice_pipeline.observability import LazyTracer

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


@pytest.mark.parametrize("handler", ["consumer", "producer", "migrate"])
def test_importing_a_handler_does_not_load_the_xray_sdk(handler):
    code = f"import sys, {handler}; print('aws_xray_sdk' in sys.modules)"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=FUNCTIONS
    ).stdout
    assert output.strip() == "False"


class FakeContext:
    function_name = "fn"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:fn"
    aws_request_id = "request-1"


def test_a_decorated_handler_builds_the_tracer_on_its_first_call_and_returns_the_handler_result():
    lazy = LazyTracer(service="test")
    calls = []

    @lazy.capture_lambda_handler
    def handler(event, context):
        calls.append(event)
        return {"seen": event["n"]}

    assert lazy._tracer is None
    assert handler.__name__ == "handler"

    assert handler({"n": 1}, FakeContext()) == {"seen": 1}
    built = lazy._tracer
    assert isinstance(built, Tracer)
    assert handler({"n": 2}, FakeContext()) == {"seen": 2}
    assert lazy._tracer is built
    assert calls == [{"n": 1}, {"n": 2}]


def test_other_tracer_attributes_are_read_from_the_built_tracer():
    lazy = LazyTracer(service="test")
    lazy.put_annotation(key="order_id", value=1)  # disabled outside Lambda: a no-op, but it must exist
    assert lazy.service == "test"
    with pytest.raises(AttributeError):
        lazy._not_an_attribute  # noqa: B018
