"""Fixtures shared by the integration tests of the operator commands."""

from __future__ import annotations

import pytest

from local.aws import MotoServer
from local.stack import LocalStack, create_local_stack
from local.stack_config import load_queue_settings


@pytest.fixture
def stack(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> LocalStack:
    """The bucket and queues on moto (times scaled for local runs); QUEUE_URL points at the queue."""
    local = create_local_stack(load_queue_settings().scaled_for_local(1))
    monkeypatch.setenv("QUEUE_URL", local.queue_url)
    return local
