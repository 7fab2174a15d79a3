"""Lambda handler: one producer run on EventBridge Scheduler's schedule (docs/architecture.md §7), or, invoked with
``{"order_ids": [...], "priority": true|false}``, the named orders only (docs/events-and-lanes.md)."""

import functools
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from invoice_pipeline.flows.enqueue import (
    ProducerRuntime,
    build_runtime,
    enqueue_requested,
    publish_metrics,
    run_producer,
)
from invoice_pipeline.observability import logger, metrics, tracer
from invoice_pipeline.settings import producer_settings


@functools.cache
def runtime() -> ProducerRuntime:
    """This container's settings, pool and SQS client: built on the first invocation, kept while warm."""
    return build_runtime(producer_settings())


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if isinstance(event, dict) and "order_ids" in event:
        return enqueue_requested(
            runtime(), event["order_ids"], priority=event.get("priority", False), again=event.get("again", False)
        ).as_dict()
    summary = run_producer(runtime(), remaining_time_ms=context.get_remaining_time_in_millis)
    publish_metrics(summary)
    return summary.as_dict()
