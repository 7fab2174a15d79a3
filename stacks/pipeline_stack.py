"""The invoice pipeline stack: wires the constructs together and publishes what operators need."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnOutput, CfnResource, Duration, Stack, triggers
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.config import PipelineConfig
from stacks.functions import LOG_RETENTION, PipelineFunctions
from stacks.monitoring import MonitoredResources, PipelineMonitoring
from stacks.queues import PipelineQueues
from stacks.schedule import ProducerSchedule
from stacks.secrets import PipelineSecrets


class InvoicePipelineStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: PipelineConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, description="Invoice extraction pipeline (DESIGN.md)", **kwargs)
        self.config = config
        self.queues = PipelineQueues(self, "Queues", config=config)
        self.secrets = PipelineSecrets(self, "Secrets", config=config)
        self.functions = PipelineFunctions(self, "Functions", config=config, queues=self.queues, secrets=self.secrets)
        self.schedule = ProducerSchedule(self, "ProducerSchedule", config=config, producer=self.functions.producer)

        # Migrations run on every deploy BEFORE the producer's and consumer's code is updated (and before the
        # schedule and the event source): the code that runs meanwhile is the previous one, so migrations are
        # expand-only (docs/deploy.md, "Migrations on deploy"). A failed migration fails the deploy before any function
        # changes.
        self.migrations = triggers.Trigger(
            self,
            "MigrateOnDeploy",
            handler=self.functions.migrate,
            timeout=Duration.seconds(config.migrate_timeout_seconds),
            execute_before=[
                self.functions.producer,
                self.functions.consumer,
                self.schedule,
                self.functions.consumer_event_source,
                *([self.functions.priority_event_source] if self.functions.priority_event_source else []),
            ],
            execute_on_handler_change=True,
        )
        self._trigger_provider_logs(config)
        self.monitoring = PipelineMonitoring(
            self,
            "Monitoring",
            config=config,
            resources=MonitoredResources(
                queue=self.queues.queue,
                dead_letter_queue=self.queues.dead_letter_queue,
                priority_queue=self.queues.priority_queue,
                priority_dead_letter_queue=self.queues.priority_dead_letter_queue,
                schedule_dead_letter_queue=self.schedule.dead_letter_queue,
                producer=self.functions.producer,
                consumer=self.functions.consumer,
                migrate=self.functions.migrate,
            ),
        )
        self._outputs()

    def _trigger_provider_logs(self, config: PipelineConfig) -> None:
        """The trigger's provider function (one per stack, made by CDK) logs to a group with our retention."""
        provider = self.node.find_child("AWSCDK.TriggerCustomResourceProviderCustomResourceProvider")
        handler = provider.node.find_child("Handler")
        if not isinstance(handler, CfnResource):
            raise TypeError(f"the trigger provider's handler is a {type(handler).__name__}, not a CfnResource")
        log_group = logs.LogGroup(self, "MigrateTriggerLogs", retention=LOG_RETENTION[config.log_retention_days])
        # Its role has the basic execution policy, so it may write to this group.
        handler.add_property_override("LoggingConfig.LogGroup", log_group.log_group_name)

    def _outputs(self) -> None:
        queue, dlq = self.queues.queue, self.queues.dead_letter_queue
        console = f"https://{Aws.REGION}.console.aws.amazon.com"
        encoded_dlq_url = f"https%3A%2F%2Fsqs.{Aws.REGION}.amazonaws.com%2F{Aws.ACCOUNT_ID}%2F{dlq.queue_name}"
        outputs = {
            "QueueUrl": (queue.queue_url, "The work queue (one message per order and model)"),
            "DeadLetterQueueUrl": (dlq.queue_url, "Messages that failed maxReceiveCount times"),
            "DeadLetterQueueConsole": (
                f"{console}/sqs/v3/home?region={Aws.REGION}#/queues/{encoded_dlq_url}",
                "Console page of the dead-letter queue: 'Start DLQ redrive' moves its messages back",
            ),
            "ScheduleDeadLetterQueueUrl": (self.schedule.dead_letter_queue.queue_url, "Failed scheduler runs"),
            "ProducerFunctionName": (self.functions.producer.function_name, "Producer Lambda"),
            "ConsumerFunctionName": (self.functions.consumer.function_name, "Consumer Lambda"),
            "MigrateFunctionName": (self.functions.migrate.function_name, "Migrations Lambda (runs on deploy)"),
            "ScheduleName": (self.schedule.schedule.schedule_name, "EventBridge Scheduler schedule"),
            "AlarmTopicArn": (self.monitoring.topic.topic_arn, "Alarm notifications"),
            "DashboardUrl": (
                f"{console}/cloudwatch/home?region={Aws.REGION}#dashboards:name="
                f"{self.monitoring.dashboard.dashboard_name}",
                "Operations dashboard",
            ),
        }
        if self.queues.priority_queue is not None and self.queues.priority_dead_letter_queue is not None:
            outputs["PriorityQueueUrl"] = (self.queues.priority_queue.queue_url, "The priority lane's work queue")
            outputs["PriorityDeadLetterQueueUrl"] = (
                self.queues.priority_dead_letter_queue.queue_url,
                "Priority-lane messages that failed maxReceiveCount times",
            )
        outputs["EventBusName"] = (self.config.event_bus_name, "Completion events are put on this bus")
        if self.secrets.openai is not None:  # only when an OpenAI model is configured
            outputs["OpenAiSecretArn"] = (self.secrets.openai.secret_arn, "Put the OpenAI API key in this secret")
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)
