"""EventBridge Scheduler invokes the producer on a schedule, with retries and its own dead-letter queue."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from constructs import Construct

from stacks.config import PipelineConfig
from stacks.queues import dead_letter_queue

RETRY_ATTEMPTS = 3
# A run that could not start within the hour is superseded by the next runs (the producer is idempotent).
MAX_EVENT_AGE = Duration.hours(1)


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
            target=targets.LambdaInvoke(
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
        # The invoke role is created by the target at stack level; the finding names the producer's ARN.
        stack = Stack.of(self)
        producer_id = stack.get_logical_id(producer.node.default_child)  # type: ignore[arg-type]
        Validations.of(stack).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions::AwsSolutions-IAM5[Resource::<{producer_id}.Arn>:*]",
                reason="The scheduler's role may invoke the producer function and its versions only.",
            )
        )
