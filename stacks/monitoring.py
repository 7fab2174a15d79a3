"""Alarms (to an encrypted SNS topic, optionally e-mailed) and the operations dashboard.

The custom metrics are the contract the functions emit through Powertools (namespace ``InvoicePipeline``,
dimension ``service=invoice-pipeline``); docs/operate.md lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.config import METRICS_NAMESPACE, SERVICE_NAME, PipelineConfig

FIVE_MINUTES = Duration.minutes(5)


@dataclass(frozen=True)
class CustomMetric:
    name: str
    unit: str
    meaning: str


# Emitted by the functions with Powertools Metrics; the dashboard reads them by these names.
CUSTOM_METRICS = (
    CustomMetric("Enqueued", "Count", "messages the producer sent (one per order and model)"),
    CustomMetric("OrdersDone", "Count", "orders written (items and ledger row in one transaction)"),
    CustomMetric("OrdersFailed", "Count", "orders that failed permanently or on their last receive"),
    CustomMetric("ItemsWritten", "Count", "invoice line items inserted"),
    CustomMetric("InputTokens", "Count", "model input tokens (images included)"),
    CustomMetric("OutputTokens", "Count", "model output tokens"),
    CustomMetric("CostUSD", "None", "estimated model cost in US dollars"),
    CustomMetric("ModelLatency", "Milliseconds", "time of one model call"),
    CustomMetric(
        "ModelCredentialsRejected", "Count", "records whose model call was refused for the deployment (key, access)"
    ),
    CustomMetric("JobsThrottled", "Count", "jobs handed back for a rate limit (not failures, not attempts)"),
)
# Emitted per model (dimensions service and llm) by the shared budget (invoice_pipeline.pacing.budget).
MODEL_METRICS = (
    CustomMetric("ThrottledCalls", "Count", "model calls answered with a rate limit (429, throttling exception)"),
    CustomMetric("BudgetWaits", "Count", "model calls that waited for their turn in the model's budget"),
    CustomMetric("BudgetWaitSeconds", "Seconds", "how long those calls waited"),
    CustomMetric("BudgetHandBacks", "Count", "calls whose turn came too late for the invocation: job handed back"),
    CustomMetric("TokensUsed", "Count", "tokens the model counted (input and output)"),
    CustomMetric("TokenBudget", "Count", "the model's configured tokens per minute (invoices budget)"),
)
ONE_MINUTE = Duration.minutes(1)


@dataclass(frozen=True)
class MonitoredResources:
    queue: sqs.IQueue
    dead_letter_queue: sqs.IQueue
    schedule_dead_letter_queue: sqs.IQueue
    producer: lambda_.IFunction
    consumer: lambda_.IFunction
    migrate: lambda_.IFunction
    priority_queue: sqs.IQueue | None = None  # the priority lane, when there is one
    priority_dead_letter_queue: sqs.IQueue | None = None


class PipelineMonitoring(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: PipelineConfig, resources: MonitoredResources
    ) -> None:
        super().__init__(scope, construct_id)
        # CloudWatch alarms can publish to an encrypted topic only with a customer managed key it may use.
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Encrypts the invoice pipeline alarm topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        cloudwatch_principal = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        # Only alarms named after this stack (`<stackName>-...`) in this account: CloudWatch cannot be used as a
        # confused deputy by alarms elsewhere.
        from_our_alarms = {
            "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
            "ArnLike": {"aws:SourceArn": self.alarm_arn_pattern(config)},
        }
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToUseTheKey",
                principals=[cloudwatch_principal],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions=from_our_alarms,
            )
        )
        self.topic = sns.Topic(
            self, "AlarmTopic", display_name="Invoice pipeline alarms", master_key=key, enforce_ssl=True
        )
        # A topic policy replaces SNS's default one, which was the only Allow CloudWatch had.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[cloudwatch_principal],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=from_our_alarms,
            )
        )
        if config.alarm_email is not None:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))

        self.alarms = self._alarms(config, resources)
        self.dashboard = self._dashboard(config, resources)

    @staticmethod
    def alarm_name(config: PipelineConfig, name: str) -> str:
        return f"{config.stack_name}-{name}"

    def alarm_arn_pattern(self, config: PipelineConfig) -> str:
        """The ARNs of every alarm this stack names (the topic and key policies allow exactly these)."""
        return Stack.of(self).format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=self.alarm_name(config, "*"),
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _alarms(self, config: PipelineConfig, r: MonitoredResources) -> dict[str, cloudwatch.Alarm]:
        at_least_one = {
            "threshold": 1,
            "evaluation_periods": 1,
            "comparison_operator": cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            "treat_missing_data": cloudwatch.TreatMissingData.NOT_BREACHING,
        }
        definitions: dict[str, tuple[cloudwatch.IMetric, str, dict[str, object]]] = {
            "DeadLetterQueueNotEmpty": (
                r.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=FIVE_MINUTES, statistic="Maximum"
                ),
                "Orders are in the dead-letter queue: read last_error in the ledger, fix, then redrive.",
                at_least_one,
            ),
            "OldestMessageTooOld": (
                r.queue.metric_approximate_age_of_oldest_message(period=FIVE_MINUTES, statistic="Maximum"),
                "The queue is not draining: check consumer errors, throttles and the model's rate limits.",
                {
                    "threshold": config.oldest_message_alarm_seconds,
                    "evaluation_periods": 3,
                    "comparison_operator": cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    "treat_missing_data": cloudwatch.TreatMissingData.NOT_BREACHING,
                },
            ),
            "ConsumerErrors": (
                r.consumer.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
                "Consumer invocations failed as a whole (crash, timeout, every record failed): see its logs.",
                at_least_one,
            ),
            "ConsumerThrottles": (
                r.consumer.metric_throttles(period=FIVE_MINUTES, statistic="Sum"),
                "The consumer was throttled: the event source's maximum concurrency must not exceed the "
                "reserved concurrency.",
                at_least_one,
            ),
            # Partial batch failures are not function errors: ConsumerErrors never sees a rejected key.
            "ModelCredentialsRejected": (
                cloudwatch.Metric(  # no label: a labelled metric makes the alarm a metric-math alarm
                    namespace=METRICS_NAMESPACE,
                    metric_name="ModelCredentialsRejected",
                    dimensions_map={"service": SERVICE_NAME},
                    statistic="Sum",
                    period=FIVE_MINUTES,
                ),
                "Model credentials rejected (401/403, model not enabled, key secret missing): no job is failed for "
                "it, every job waits. Put the right key in the OpenAI secret, then run `invoices doctor`.",
                at_least_one,
            ),
            "ProducerErrors": (
                r.producer.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
                "A producer run failed: see its logs (database reachable? queue reachable?).",
                at_least_one,
            ),
            "ScheduleDeadLetterQueueNotEmpty": (
                r.schedule_dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=FIVE_MINUTES, statistic="Maximum"
                ),
                "The scheduler could not invoke the producer after its retries: see the message's error "
                "attributes, then purge the schedule's dead-letter queue.",
                at_least_one,
            ),
        }
        if r.priority_queue is not None and r.priority_dead_letter_queue is not None:
            definitions["PriorityDeadLetterQueueNotEmpty"] = (
                r.priority_dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=FIVE_MINUTES, statistic="Maximum"
                ),
                "Urgent orders are in the priority lane's dead-letter queue: read last_error in the ledger, fix, "
                "then redrive (invoices redrive --lane priority).",
                at_least_one,
            )
            # Urgent orders wait minutes, not the main queue's hour: five minutes, or the main alarm's if lower.
            definitions["PriorityOldestMessageTooOld"] = (
                r.priority_queue.metric_approximate_age_of_oldest_message(period=FIVE_MINUTES, statistic="Maximum"),
                "The priority lane is not draining: check consumer errors and throttles and priorityMaxConcurrency.",
                {
                    "threshold": min(300, config.oldest_message_alarm_seconds),
                    "evaluation_periods": 1,
                    "comparison_operator": cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    "treat_missing_data": cloudwatch.TreatMissingData.NOT_BREACHING,
                },
            )
        action = cloudwatch_actions.SnsAction(self.topic)
        alarms: dict[str, cloudwatch.Alarm] = {}
        for name, (metric, description, props) in definitions.items():
            alarm = cloudwatch.Alarm(
                self,
                name,
                alarm_name=self.alarm_name(config, name),
                metric=metric,
                alarm_description=description,
                **props,  # type: ignore[arg-type]
            )
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            alarms[name] = alarm
        return alarms

    def _dashboard(self, config: PipelineConfig, r: MonitoredResources) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{config.stack_name}-operations")
        functions = {"producer": r.producer, "consumer": r.consumer, "migrate": r.migrate}
        dashboard.add_widgets(
            _graph(
                "Throughput (orders)",
                [
                    _custom("Enqueued"),
                    _custom("OrdersDone"),
                    _custom("OrdersFailed"),
                    _custom("ModelCredentialsRejected", label="credentials rejected"),
                ],
            ),
            _graph(
                "Queue depth",
                [
                    r.queue.metric_approximate_number_of_messages_visible(label="queue visible"),
                    r.queue.metric_approximate_number_of_messages_not_visible(label="queue in flight"),
                    r.dead_letter_queue.metric_approximate_number_of_messages_visible(label="DLQ"),
                    r.schedule_dead_letter_queue.metric_approximate_number_of_messages_visible(label="schedule DLQ"),
                ],
            ),
            _graph(
                "Age of oldest message (s)",
                [r.queue.metric_approximate_age_of_oldest_message(statistic="Maximum", label="queue")],
            ),
        )
        if r.priority_queue is not None and r.priority_dead_letter_queue is not None:
            dashboard.add_widgets(
                _graph(
                    "Priority lane depth",
                    [
                        r.priority_queue.metric_approximate_number_of_messages_visible(label="priority visible"),
                        r.priority_queue.metric_approximate_number_of_messages_not_visible(label="priority in flight"),
                        r.priority_dead_letter_queue.metric_approximate_number_of_messages_visible(
                            label="priority DLQ"
                        ),
                    ],
                ),
                _graph(
                    "Priority lane: age of oldest message (s)",
                    [r.priority_queue.metric_approximate_age_of_oldest_message(statistic="Maximum", label="priority")],
                ),
                _graph("Priority messages enqueued", [_custom("PriorityMessagesEnqueued")]),
            )
        dashboard.add_widgets(
            _graph(
                "Latency (ms)",
                [
                    _custom("ModelLatency", statistic="p50", label="model p50"),
                    _custom("ModelLatency", statistic="p90", label="model p90"),
                    r.consumer.metric_duration(statistic="p50", label="consumer p50"),
                    r.consumer.metric_duration(statistic="p90", label="consumer p90"),
                ],
            ),
            _graph("Items written", [_custom("ItemsWritten")]),
            _graph("Tokens", [_custom("InputTokens"), _custom("OutputTokens")]),
        )
        dashboard.add_widgets(
            _graph("Cost (USD)", [_custom("CostUSD")]),
            _graph(
                "Function errors and throttles",
                [
                    metric
                    for label, function in functions.items()
                    for metric in (
                        function.metric_errors(label=f"{label} errors"),
                        function.metric_throttles(label=f"{label} throttles"),
                    )
                ],
            ),
            _graph(
                "Consumer concurrency",
                [
                    cloudwatch.Metric(
                        namespace="AWS/Lambda",
                        metric_name="ConcurrentExecutions",
                        dimensions_map={"FunctionName": r.consumer.function_name},
                        statistic="Maximum",
                        period=FIVE_MINUTES,
                        label="consumer",
                    )
                ],
            ),
        )
        dashboard.add_widgets(_graph("Jobs handed back for rate limits", [_custom("JobsThrottled")]))
        for llm in config.llm_models:
            dashboard.add_widgets(
                _graph(
                    f"Rate limits: {llm}",
                    [_model(name, llm) for name in ("ThrottledCalls", "BudgetWaits", "BudgetHandBacks")],
                ),
                _graph(
                    f"Tokens per minute, used vs budget: {llm}",
                    [
                        _model("TokensUsed", llm, label="tokens used / min"),
                        _model("TokenBudget", llm, statistic="Maximum", label="budget (tpm)"),
                    ],
                ),
                _graph(f"Budget wait (s): {llm}", [_model("BudgetWaitSeconds", llm, statistic="p90", label="p90")]),
            )
        return dashboard


def _custom(name: str, statistic: str = "Sum", label: str | None = None) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": SERVICE_NAME},
        statistic=statistic,
        period=FIVE_MINUTES,
        label=label or name,
    )


def _model(name: str, llm: str, statistic: str = "Sum", label: str | None = None) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": SERVICE_NAME, "llm": llm},
        statistic=statistic,
        period=ONE_MINUTE,
        label=label or name,
    )


def _graph(title: str, metrics: list[cloudwatch.IMetric]) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(title=title, left=metrics, width=8, height=6)
