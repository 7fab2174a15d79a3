"""Lambda handler: extract the invoices of each order in an SQS batch; reports partial failures.

The record's journey: docs/architecture.md §8.

``raise_on_entire_batch_failure=False``: when every record fails, return them all in ``batchItemFailures``
instead of raising. SQS treats both the same (every record is retried), but raising would count bad input
as a function error and fire the errors alarm; the DLQ alarms already cover records that keep failing.

The batch processor is made per invocation: it keeps the batch's successes and failures on itself, so one
shared instance would mix up the batches of invocations running at once in one process (the local
event-source emulator runs each concurrent execution environment as a thread). It costs nothing.
"""

import functools
import time
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from invoice_pipeline.flows.consume import ConsumerDeps, build_runtime, publish_stale_events, record_handler
from invoice_pipeline.observability import logger, metrics, tracer
from invoice_pipeline.settings import consumer_settings


@functools.cache
def runtime() -> ConsumerDeps:
    """This container's settings, pool, clients and extractors: built on the first invocation, kept while warm."""
    return build_runtime(consumer_settings())


@logger.inject_lambda_context(log_event=False, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(
        event=event, record_handler=record_handler(deadline, runtime()), processor=processor, context=context
    )
    publish_stale_events(runtime())
    return response
