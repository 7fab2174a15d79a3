"""The three functions (producer, consumer, migrate): one code asset, one layer, one factory."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Acknowledgment, Annotations, Aws, Duration, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from invoice_pipeline.providers.bedrock import PROFILE_PREFIXES, base_model_id
from stacks.config import METRICS_NAMESPACE, SERVICE_NAME, PipelineConfig
from stacks.layer import dependency_layer, offline_reader_note
from stacks.queues import PipelineQueues
from stacks.secrets import PipelineSecrets

FUNCTIONS_SOURCE = Path(__file__).resolve().parent.parent / "functions"
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "**/.mypy_cache", "**/.pytest_cache", "**/*.egg-info"]
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
# What Lambda needs to attach a function to the VPC (its developer guide, "Giving Lambda functions access to a
# VPC"): the VPC access managed policy minus its logs:* on every log group.
ENI_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)

LOG_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


class PipelineFunctions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PipelineConfig,
        queues: PipelineQueues,
        secrets: PipelineSecrets,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._code = lambda_.Code.from_asset(str(FUNCTIONS_SOURCE), exclude=ASSET_EXCLUDES)
        self._layer = dependency_layer(self, "Dependencies", RUNTIME)
        if "ocr" in config.providers:
            note = offline_reader_note()
            print(note)
            Annotations.of(self).add_info(note)
        self._network = _Network(self, config)
        self._database_environment = {
            "DB_SECRET_ARN": secrets.database.secret_arn,
            "DB_SSLMODE": config.database.sslmode,
            **_optional("DB_SSL_ROOT_CERT", config.database.ssl_root_cert),
        }
        models = ",".join(config.llm_models)
        events_environment = {
            "EVENT_BUS_NAME": config.event_bus_name,
            "OUTBOX_RETRY_SECONDS": str(config.outbox_retry_seconds),
        }

        self.producer = self._function(
            "Producer",
            handler="producer.handler",
            description="Enqueues eligible orders, once per model, on the schedule",
            timeout_seconds=config.producer_timeout_seconds,
            memory_mb=config.producer_memory_mb,
            environment={
                "QUEUE_URL": queues.queue.queue_url,
                "LLM_MODELS": models,
                "RESTAURANT_IDS": ",".join(config.restaurant_ids),
                "MAX_ORDERS_PER_RUN": str(config.max_orders_per_run),
                "REQUEUE_LEASE_SECONDS": str(config.requeue_lease_seconds),
                "PROCESSING_LEASE_SECONDS": str(config.processing_lease_seconds),
                **_optional("ORDERS_SINCE", config.orders_since),
                **_optional("MAX_QUEUE_DEPTH", config.max_queue_depth),
                **events_environment,
                **_optional("PRIORITY_QUEUE_URL", queues.priority_queue.queue_url if queues.priority_queue else None),
                **_optional(
                    "PRIORITY_WINDOW_MINUTES", config.priority_window_minutes if config.priority_lane else None
                ),
            },
        )
        self.consumer = self._function(
            "Consumer",
            handler="consumer.handler",
            description="Extracts the line items of one order per message and writes them in one transaction",
            timeout_seconds=config.consumer_timeout_seconds,
            memory_mb=config.consumer_memory_mb,
            reserved_concurrency=config.consumer_reserved_concurrency,
            environment={
                "LLM_MODELS": models,
                "ALLOWED_BUCKETS": ",".join(config.allowed_buckets),
                "MAX_IMAGE_BYTES": str(config.max_image_bytes),
                "MAX_RECEIVE_COUNT": str(config.max_receive_count),
                "PROCESSING_LEASE_SECONDS": str(config.processing_lease_seconds),
                "MODEL_TIMEOUT_SECONDS": str(config.model_timeout_seconds),
                # the consumer's limits against runaway answers and hostile providers (docs/limits.md)
                "MAX_ITEMS_PER_INVOICE": str(config.max_items_per_invoice),
                "MAX_THROTTLE_WAIT_SECONDS": str(config.max_throttle_wait_seconds),
                "MAX_HAND_BACKS_PER_JOB": str(config.max_hand_backs_per_job),
                "MAX_PROVIDER_WAIT_SECONDS": str(config.max_provider_wait_seconds),
                **_optional("OPENAI_SECRET_ARN", secrets.openai.secret_arn if secrets.openai else None),
                **_optional("OPENAI_BASE_URL", config.openai_base_url if secrets.openai else None),
                **_optional("MODEL_PRICES", config.model_prices),
                **events_environment,
            },
        )
        self.migrate = self._function(
            "Migrate",
            handler="migrate.handler",
            description="Applies pending schema migrations (run on every deploy)",
            timeout_seconds=config.migrate_timeout_seconds,
            memory_mb=256,
            environment={},
        )

        # Maximum concurrency at or below the reserved concurrency: otherwise the poller is throttled and
        # healthy messages use up their receives and land in the dead-letter queue.
        self.consumer_event_source = lambda_.EventSourceMapping(
            self,
            "ConsumerEventSource",
            target=self.consumer,
            event_source_arn=queues.queue.queue_arn,
            batch_size=config.batch_size,
            max_batching_window=Duration.seconds(config.max_batching_window_seconds),
            max_concurrency=config.consumer_max_concurrency,
            report_batch_item_failures=True,
        )
        # The priority lane: the same function, its own mapping and maximum concurrency (docs/events-and-lanes.md).
        self.priority_event_source: lambda_.EventSourceMapping | None = None
        if queues.priority_queue is not None and config.priority_max_concurrency is not None:
            self.priority_event_source = lambda_.EventSourceMapping(
                self,
                "PriorityEventSource",
                target=self.consumer,
                event_source_arn=queues.priority_queue.queue_arn,
                # One order per invocation, no batching window: an urgent order never waits for another.
                batch_size=1,
                max_concurrency=config.priority_max_concurrency,
                report_batch_item_failures=True,
            )
        self._grant(queues, secrets)

    def _grant(self, queues: PipelineQueues, secrets: PipelineSecrets) -> None:
        for function in (self.producer, self.consumer, self.migrate):
            secrets.database.grant_read(function)
        if secrets.openai is not None:
            secrets.openai.grant_read(self.consumer)
        self._grant_bedrock()
        self._grant_textract()
        queues.queue.grant(self.producer, "sqs:GetQueueAttributes")  # queue-depth backpressure
        for queue in queues.work_queues:
            queue.grant_send_messages(self.producer)
            queue.grant_consume_messages(self.consumer)
            # A configuration error on the last receive, and a throttled job, are handed back as a fresh (delayed)
            # message on the queue it came from (consume.py), so neither reaches the DLQ for a wrong key or a busy
            # model.
            queue.grant_send_messages(self.consumer)
        # Completion events: PutEvents on the configured bus only (the outbox sweep runs in both functions).
        bus_arn = f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:event-bus/{self._config.event_bus_name}"
        for function in (self.producer, self.consumer):
            function.add_to_role_policy(iam.PolicyStatement(actions=["events:PutEvents"], resources=[bus_arn]))
        bucket_objects = [f"arn:{Aws.PARTITION}:s3:::{bucket}/*" for bucket in self._config.allowed_buckets]
        self.consumer.add_to_role_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=bucket_objects))
        for resource in bucket_objects:
            Validations.of(self.consumer.role).acknowledge(  # type: ignore[arg-type]
                Acknowledgment(
                    id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{_nag_form(resource)}]",
                    reason="The consumer reads invoice images under any key of an allow-listed bucket "
                    "(keys come from orders at run time); s3:GetObject only, on those buckets only.",
                )
            )

    def _grant_bedrock(self) -> None:
        """bedrock:InvokeModel (which Converse needs) on exactly the configured models.

        A foundation model id is granted in the stack's region. A cross-region inference profile (``us.``,
        ``eu.``, ``global.``...) is granted as the profile in this region and account, plus its foundation model
        in every region of ``bedrockProfileRegions``, where the profile may route a request. An ARN is granted as
        written.
        """
        resources: list[str] = []
        for model_id in self._config.bedrock_model_ids:
            if model_id.startswith("arn:"):
                resources.append(model_id)
            elif model_id.startswith(PROFILE_PREFIXES):
                resources.append(
                    f"arn:{Aws.PARTITION}:bedrock:{Aws.REGION}:{Aws.ACCOUNT_ID}:inference-profile/{model_id}"
                )
                resources += [
                    f"arn:{Aws.PARTITION}:bedrock:{region}::foundation-model/{base_model_id(model_id)}"
                    for region in self._config.bedrock_profile_regions
                ]
            else:
                resources.append(f"arn:{Aws.PARTITION}:bedrock:{Aws.REGION}::foundation-model/{model_id}")
        if resources:
            self.consumer.add_to_role_policy(iam.PolicyStatement(actions=["bedrock:InvokeModel"], resources=resources))

    def _grant_textract(self) -> None:
        if "textract" not in self._config.providers:
            return
        # Its own policy, so the acknowledgment below covers this statement only.
        policy = iam.Policy(
            self,
            "TextractPolicy",
            statements=[iam.PolicyStatement(actions=["textract:AnalyzeExpense"], resources=["*"])],
        )
        policy.attach_to_role(self.consumer.role)  # type: ignore[arg-type]
        Validations.of(policy).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                reason="textract:AnalyzeExpense has no resource type (Service Authorization Reference): '*' is the "
                "only resource it accepts. Granted only when textract/analyze-expense is in llmModels; the "
                "documents are sent as bytes, so no S3 access is involved.",
            )
        )

    def _function(
        self,
        name: str,
        *,
        handler: str,
        description: str,
        timeout_seconds: int,
        memory_mb: int,
        environment: dict[str, str],
        reserved_concurrency: int | None = None,
    ) -> lambda_.Function:
        log_group = logs.LogGroup(self, f"{name}Logs", retention=LOG_RETENTION[self._config.log_retention_days])
        # Its own role, without the AWS managed basic-execution policy: logs go to this log group only.
        role = iam.Role(
            self,
            f"{name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{self._config.stack_name} {name.lower()} function",
        )
        function = lambda_.Function(
            self,
            name,
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=self._code,
            handler=handler,
            layers=[self._layer],
            role=role,
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
            timeout=Duration.seconds(timeout_seconds),
            memory_size=memory_mb,
            reserved_concurrent_executions=reserved_concurrency,
            environment={
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "LOG_LEVEL": self._config.log_level,
                **self._database_environment,
                **environment,
            },
            vpc=self._network.vpc,
            vpc_subnets=self._network.subnets,
            security_groups=self._network.security_groups,
        )
        log_group.grant_write(role)
        wildcard_reason = (
            "Active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords do not support resource-level "
            "permissions."
        )
        if self._network.vpc is not None:
            # A role we create gets no VPC permissions from Function: without them Lambda cannot attach ENIs.
            role.add_to_policy(iam.PolicyStatement(actions=list(ENI_ACTIONS), resources=["*"]))
            wildcard_reason += (
                " VPC access: Lambda creates, describes and deletes the function's network interfaces with this "
                "role; the Describe actions support no resource-level permissions and the interfaces do not "
                "exist before Lambda creates them. EC2 network-interface actions only, no logs:* (logs go to the "
                "function's own log group)."
            )
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                reason=f"{wildcard_reason} Every other statement names its resource.",
            )
        )
        return function


class _Network:
    """The existing VPC, subnets and security group the functions join, or none (public database)."""

    def __init__(self, scope: Construct, config: PipelineConfig) -> None:
        settings = config.database.vpc
        self.vpc: ec2.IVpc | None = None
        self.subnets: ec2.SubnetSelection | None = None
        self.security_groups: list[ec2.ISecurityGroup] | None = None
        if settings is None:
            return
        # Attributes, not a lookup: synth needs no credentials and no network.
        self.vpc = ec2.Vpc.from_vpc_attributes(
            scope,
            "Vpc",
            vpc_id=settings.vpc_id,
            availability_zones=list(settings.availability_zones),
            private_subnet_ids=list(settings.subnet_ids),
        )
        self.subnets = ec2.SubnetSelection(subnets=self.vpc.private_subnets)
        self.security_groups = [
            ec2.SecurityGroup.from_security_group_id(scope, "SecurityGroup", settings.security_group_id, mutable=False)
        ]


def _optional(name: str, value: object | None) -> dict[str, str]:
    return {} if value is None else {name: str(value)}


def _nag_form(arn: str) -> str:
    """How cdk-nag prints a resource containing the partition token."""
    return arn.replace(Aws.PARTITION, "<AWS::Partition>")
