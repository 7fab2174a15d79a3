"""The consumer's limits against runaway answers and hostile providers are deployment settings: cdk.json context with
the functions' own defaults, passed to the consumer's environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from invoice_pipeline import settings
from stacks.config import ContextError, PipelineConfig
from tests.infrastructure.conftest import example_context, synthesize
from tests.infrastructure.test_stack import environment

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

LIMITS = {
    "maxItemsPerInvoice": ("MAX_ITEMS_PER_INVOICE", settings.DEFAULT_MAX_ITEMS_PER_INVOICE),
    "maxThrottleWaitSeconds": ("MAX_THROTTLE_WAIT_SECONDS", settings.DEFAULT_MAX_THROTTLE_WAIT_SECONDS),
    "maxHandBacksPerJob": ("MAX_HAND_BACKS_PER_JOB", settings.DEFAULT_MAX_HAND_BACKS_PER_JOB),
    "maxProviderWaitSeconds": ("MAX_PROVIDER_WAIT_SECONDS", settings.DEFAULT_MAX_PROVIDER_WAIT_SECONDS),
}


def config_with(**overrides: Any) -> PipelineConfig:
    return PipelineConfig.from_mapping({**example_context(), **overrides})


def test_the_committed_context_holds_the_functions_defaults() -> None:
    context = example_context()
    for key, (_, default) in LIMITS.items():
        assert context[key] == default, key
    unset = PipelineConfig.from_mapping({key: value for key, value in context.items() if key not in LIMITS})
    assert (
        unset.max_items_per_invoice,
        unset.max_throttle_wait_seconds,
        unset.max_hand_backs_per_job,
        unset.max_provider_wait_seconds,
    ) == tuple(default for _, default in LIMITS.values())


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("maxItemsPerInvoice", 0),
        ("maxItemsPerInvoice", "many"),
        ("maxThrottleWaitSeconds", 0),
        ("maxHandBacksPerJob", 0),
        ("maxProviderWaitSeconds", 0),
        ("maxProviderWaitSeconds", 12 * 3600 + 1),  # longer than SQS can hold a message back
    ],
)
def test_a_bad_limit_names_its_key(key: str, value: Any) -> None:
    with pytest.raises(ContextError, match=key):
        config_with(**{key: value})


def test_the_consumer_gets_the_limits_from_context(tmp_path: Path) -> None:
    values = {"maxItemsPerInvoice": 200, "maxThrottleWaitSeconds": 7200, "maxHandBacksPerJob": 20}
    synthesized = synthesize(tmp_path, **values, maxProviderWaitSeconds="600")  # -c values arrive as strings
    variables = environment(synthesized, "consumer.handler")
    assert {name: variables[name] for name, _ in LIMITS.values()} == {
        "MAX_ITEMS_PER_INVOICE": "200",
        "MAX_THROTTLE_WAIT_SECONDS": "7200",
        "MAX_HAND_BACKS_PER_JOB": "20",
        "MAX_PROVIDER_WAIT_SECONDS": "600",
    }
