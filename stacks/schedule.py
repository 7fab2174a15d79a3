"""EventBridge Scheduler invokes the producer on a schedule, with retries and its own dead-letter queue."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from constructs import Construct

from stacks.config import PipelineConfig
from stacks.queues import dead_letter_queue

RETRY_ATTEMPTS = 3
# A run that could not start within the hour is superseded by the next runs (the producer is idempotent).
MAX_EVENT_AGE = Duration.hours(1)


class _InvokeUnqualified(targets.LambdaInvoke):
    """LambdaInvoke whose role may invoke the function's unqualified ARN only.

    The library's target grants ``function:*`` too (every version and alias); the schedule invokes the
    unqualified ARN, so that is all its role gets.
    """

    def __init__(self, function: lambda_.IFunction, **props: object) -> None:
        super().__init__(function, **props)  # type: ignore[arg-type]
        self._function = function

    def _add_target_action_to_role(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self._function.function_arn])
        )


class ProducerSchedule(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: PipelineConfig, producer: lambda_.Function):
        super().__init__(scope, construct_id)
        self.dead_letter_queue = dead_letter_queue(self, "DeadLetterQueue")
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            description="Runs the invoice pipeline producer",
            schedule=scheduler.ScheduleExpression.expression(config.schedule_expression),
            enabled=config.schedule_enabled,
            target=_InvokeUnqualified(
                producer,
                input=scheduler.ScheduleTargetInput.from_object({"source": "schedule"}),
                retry_attempts=RETRY_ATTEMPTS,
                max_event_age=MAX_EVENT_AGE,
                dead_letter_queue=self.dead_letter_queue,
            ),
        )
        Validations.of(self.dead_letter_queue).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-SQS3",
                reason="This queue is itself a dead-letter queue: the schedule's, for invocations that failed "
                "all retries (referenced by the schedule target, which cdk-nag does not recognise).",
            )
        )
