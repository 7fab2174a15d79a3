"""Lambda handler: apply pending schema migrations (run by a CDK trigger on every deploy)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from invoice_pipeline.observability import logger, tracer
from invoice_pipeline.settings import database_settings
from invoice_pipeline.tables.migrations import MigrationLimits
from invoice_pipeline.tables.schema import migrate_database


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = migrate_database(database_settings(), MigrationLimits.within(context.get_remaining_time_in_millis()))
    logger.info("migrations applied", extra=result)
    return result
