"""Lambda handler: one producer run on EventBridge Scheduler's schedule (DESIGN §4)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from invoice_pipeline.enqueue import publish_metrics, run_producer
from invoice_pipeline.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    summary = run_producer(remaining_time_ms=context.get_remaining_time_in_millis)
    publish_metrics(summary)
    return summary.as_dict()
