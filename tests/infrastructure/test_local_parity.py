"""The local stack builds its queues and polls them with the numbers the synthesized stack deploys.

Both sides read the same cdk.json context; compared here against the template itself, not the parser, so a
construct that stopped using a config field would show up too. One synth (they are slow): the committed context
with the shared keys unset, where the two parsers' defaults once differed; tests/unit/test_stack_config.py compares
the parsed numbers for the committed and other contexts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.stack_config import QueueSettings, load_queue_settings
from tests.infrastructure.conftest import Synthesized, synthesize
from tests.infrastructure.test_stack import environment, function, queue_keys

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# None: the key is unset and the parser's default applies.
UNSET = {
    "consumerTimeoutSeconds": None,
    "maxReceiveCount": None,
    "batchSize": None,
    "maxBatchingWindowSeconds": None,
    "consumerReservedConcurrency": 4,
    "consumerMaxConcurrency": None,
    "queueRetentionDays": None,
    "priorityMaxConcurrency": None,
}


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    yield synthesize(tmp_path_factory.mktemp("cdk-parity"), **UNSET)


def local_settings(synthesized: Synthesized, tmp_path: Path) -> QueueSettings:
    """What the local stack reads from a cdk.json holding the context the stack was synthesized from."""
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps({"app": "python app.py", "context": synthesized.context}))
    return load_queue_settings(path)


def deployed_numbers(synthesized: Synthesized) -> dict[str, Any]:
    main, dlq = queue_keys(synthesized)
    queue = synthesized.resources[main]["Properties"]
    consumer = function(synthesized, "consumer.handler")[1]["Properties"]
    (mapping,) = (
        m["Properties"]
        for m in synthesized.of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [main, "Arn"]}
    )
    return {
        "consumer_timeout_seconds": consumer["Timeout"],
        "visibility_timeout_seconds": queue["VisibilityTimeout"],
        "max_receive_count": queue["RedrivePolicy"]["maxReceiveCount"],
        "batch_size": mapping["BatchSize"],
        "max_batching_window_seconds": mapping.get("MaximumBatchingWindowInSeconds", 0),
        "reserved_concurrency": consumer["ReservedConcurrentExecutions"],
        "max_concurrency": mapping["ScalingConfig"]["MaximumConcurrency"],
        "queue_retention_seconds": queue["MessageRetentionPeriod"],
        "dlq_retention_seconds": synthesized.resources[dlq]["Properties"]["MessageRetentionPeriod"],
        "consumer MAX_RECEIVE_COUNT": int(environment(synthesized, "consumer.handler")["MAX_RECEIVE_COUNT"]),
    }


def test_the_local_stack_uses_every_number_the_stack_deploys(synthesized: Synthesized, tmp_path: Path) -> None:
    local = local_settings(synthesized, tmp_path)
    assert {
        "consumer_timeout_seconds": local.consumer_timeout_seconds,
        "visibility_timeout_seconds": local.visibility_timeout_seconds,
        "max_receive_count": local.max_receive_count,
        "batch_size": local.batch_size,
        "max_batching_window_seconds": local.max_batching_window_seconds,
        "reserved_concurrency": local.reserved_concurrency,
        "max_concurrency": local.max_concurrency,
        "queue_retention_seconds": local.queue_retention_seconds,
        "dlq_retention_seconds": local.dlq_retention_seconds,
        "consumer MAX_RECEIVE_COUNT": local.max_receive_count,
    } == deployed_numbers(synthesized)
