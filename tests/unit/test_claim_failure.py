"""A record whose job cannot be claimed (database unreachable) backs off like any transient failure.

Without this it waited out the queue's whole visibility timeout, and every such receive still counted towards
maxReceiveCount.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from invoice_pipeline.errors import DatabaseConnectError
from invoice_pipeline.flows.consume import build_runtime, process_record
from invoice_pipeline.settings import consumer_settings_from
from tests.events.builders import sqs_record
from tests.fakes import RecordedVisibility


class UnreachablePool:
    @contextmanager
    def connection(self) -> Iterator[Any]:
        raise DatabaseConnectError("cannot connect to Postgres at u@db:5432/d: timed out")
        yield  # pragma: no cover


def test_a_claim_that_fails_backs_off_from_the_configured_base() -> None:
    settings = consumer_settings_from(
        {"DATABASE_URL": "postgresql://u:p@db/d", "ALLOWED_BUCKETS": "b", "RETRY_BACKOFF_BASE_SECONDS": "1"}
    )
    visibility = RecordedVisibility()
    deps = replace(build_runtime(settings), pool=UnreachablePool(), visibility=visibility)
    with pytest.raises(DatabaseConnectError):
        process_record(SQSRecord(sqs_record({"order_id": 7}, receive_count=3)), deadline=1e12, deps=deps)
    assert len(visibility.changes) == 1
    assert 3 <= visibility.changes[0] <= 5  # 1 s x 2^(3-1), +-20 %
