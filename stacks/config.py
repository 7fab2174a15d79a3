"""The stack's configuration: a typed, validated object built from CDK context (``cdk.json``, ``-c key=value``).

Every value the stack derives from (queue limits, timeouts, concurrency) lives here once, so two resources
can never disagree: the queue's maxReceiveCount and the consumer's ``MAX_RECEIVE_COUNT`` come from the same
field. Values from ``-c`` arrive as strings; lists accept JSON lists or comma-separated strings. A bad value
raises :class:`ContextError` naming the context key.

This module is the one parser of the deployment's numbers and imports no CDK: the local stack (``local/``) reads
the same ``cdk.json`` through :meth:`PipelineConfig.from_cdk_json` and only scales its times down.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from invoice_pipeline.model_names import (
    OFFLINE_READER_MODELS,
    ModelEntry,
    ModelNameError,
    model_names,
    parse_model_list,
    provider_name,
    stage_names,
)
from invoice_pipeline.providers.bedrock import PROFILE_PREFIXES
from invoice_pipeline.settings import (
    DEFAULT_MAX_HAND_BACKS_PER_JOB,
    DEFAULT_MAX_ITEMS_PER_INVOICE,
    DEFAULT_MAX_PROVIDER_WAIT_SECONDS,
    DEFAULT_MAX_THROTTLE_WAIT_SECONDS,
)

# The names the functions use (functions/invoice_pipeline/settings.py); a test keeps the two equal.
SERVICE_NAME = "invoice-pipeline"
METRICS_NAMESPACE = "InvoicePipeline"
DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024

MIN_MAX_RECEIVE_COUNT = 5
VISIBILITY_TIMEOUT_FACTOR = 6  # AWS guidance for SQS event sources: visibility >= 6x the function timeout
DLQ_RETENTION_DAYS = 14  # the SQS maximum; must exceed the main queue's (a moved message keeps its age)
LAMBDA_MAX_TIMEOUT_SECONDS = 900
SQS_MAX_VISIBILITY_SECONDS = 12 * 3600

LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
SSL_MODES = ("verify-full", "require", "disable")

# The consumer's time per record (functions/invoice_pipeline/flows/consume.py): records of a batch run one after
# another, each needs its images fetched and at least one model call of MODEL_TIMEOUT_SECONDS, and the invocation keeps
# a reserve for the last write. A record that cannot start in time is handed back untouched, so a batch that cannot
# fit would keep handing back its last records.
CONSUMER_SECONDS_FOR_IMAGES = 5  # consume.MIN_SECONDS_PER_IMAGE
CONSUMER_WRITE_RESERVE_SECONDS = 15  # consume.WRITE_RESERVE_SECONDS
DEFAULT_MODEL_TIMEOUT_SECONDS = 120  # the consumer's MODEL_TIMEOUT_SECONDS default
MIN_MODEL_TIMEOUT_SECONDS = 10  # openai_extractor.MIN_ATTEMPT_SECONDS: a shorter attempt is never made

_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$")
_COMPLETE_SECRET_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SCHEDULE = re.compile(r"^(rate|cron|at)\(.+\)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# The work queue is named after the stack (`<stackName>-work`) and SQS names are at most 80 characters.
_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,74}$")
WORK_QUEUE_SUFFIX = "-work"
PRIORITY_QUEUE_SUFFIX = "-priority"
_EVENT_BUS_NAME = re.compile(r"^[A-Za-z0-9._\-/]{1,256}$")
# A model name of llmModels (each stage of a cascade): what an IAM resource ARN and a CloudWatch dimension can hold.
_MODEL_NAME = re.compile(r"^[A-Za-z0-9._:/-]+$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


def is_complete_secret_arn(arn: str) -> bool:
    """A complete ARN ends with the 6-character suffix Secrets Manager appends to the secret's name."""
    return bool(_COMPLETE_SECRET_SUFFIX.search(arn))


class ContextError(ValueError):
    """A context value is missing or malformed; the message names the context key."""


# The CDK app's context file; `cdk synth` adds `-c` overrides and cdk.context.json, the local stack reads it alone.
CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"


@dataclass(frozen=True)
class VpcConfig:
    """Where the functions run when the database is private: existing subnets and security group."""

    vpc_id: str
    subnet_ids: tuple[str, ...]
    availability_zones: tuple[str, ...]
    security_group_id: str


@dataclass(frozen=True)
class DatabaseConfig:
    secret_arn: str  # an existing Secrets Manager secret in RDS format
    sslmode: str
    ssl_root_cert: str | None  # path inside the function (e.g. a CA bundle shipped in functions/)
    vpc: VpcConfig | None  # None: the database is reachable without a VPC


@dataclass(frozen=True)
class PipelineConfig:
    stack_name: str
    account: str | None
    region: str | None
    # producer
    schedule_expression: str
    schedule_enabled: bool
    restaurant_ids: tuple[str, ...]  # ("*",) means every restaurant
    orders_since: str | None
    max_orders_per_run: int
    max_queue_depth: int | None
    producer_timeout_seconds: int
    producer_memory_mb: int
    # consumer
    llm_models: tuple[str, ...]  # the entries as the ledger stores them (a cascade as FIRST>SECOND)
    allowed_buckets: tuple[str, ...]
    max_image_bytes: int
    consumer_reserved_concurrency: int
    consumer_max_concurrency: int
    batch_size: int
    max_batching_window_seconds: int
    consumer_timeout_seconds: int
    consumer_memory_mb: int
    model_timeout_seconds: int  # the consumer's MODEL_TIMEOUT_SECONDS: one model request at most
    openai_secret_arn: str | None  # None: the stack creates the secret and the operator fills in the key
    openai_base_url: str | None
    # regions a cross-region Bedrock inference profile routes to (its foundation model is granted in each)
    bedrock_profile_regions: tuple[str, ...]
    # migrations
    migrate_timeout_seconds: int
    # queues
    max_receive_count: int
    queue_retention_days: int
    # operations
    database: DatabaseConfig
    alarm_email: str | None
    oldest_message_alarm_seconds: int
    log_retention_days: int
    log_level: str
    # --- the consumer's limits against runaway answers and hostile providers (docs/limits.md) ---
    max_items_per_invoice: int  # MAX_ITEMS_PER_INVOICE
    max_throttle_wait_seconds: int  # MAX_THROTTLE_WAIT_SECONDS
    max_hand_backs_per_job: int  # MAX_HAND_BACKS_PER_JOB
    max_provider_wait_seconds: int  # MAX_PROVIDER_WAIT_SECONDS
    # --- completion events and the priority lane (docs/events-and-lanes.md) ---
    event_bus_name: str  # where completion events go; the functions may put events on this bus only
    outbox_retry_seconds: int  # an unsent event is published by the next consumer invocation or producer run
    priority_max_concurrency: int | None  # the priority lane's event source; None: no lane
    priority_window_minutes: int  # an order created within this many minutes is urgent
    # --- pricing (modelPrices): the consumer's MODEL_PRICES, JSON; None: the built-in prices only -----------------
    model_prices: str | None = None

    @property
    def work_queue_name(self) -> str:
        return f"{self.stack_name}{WORK_QUEUE_SUFFIX}"

    @property
    def priority_queue_name(self) -> str:
        return f"{self.stack_name}{PRIORITY_QUEUE_SUFFIX}"

    @property
    def priority_lane(self) -> bool:
        return self.priority_max_concurrency is not None

    @property
    def model_entries(self) -> tuple[ModelEntry, ...]:
        """The entries of llmModels with their stages: a single model is an entry of one stage."""
        return parse_model_list(self.llm_models, "llmModels")

    @property
    def models_called(self) -> tuple[str, ...]:
        """Every model the consumer may call: each stage of each entry, once."""
        return stage_names(self.model_entries)

    @property
    def providers(self) -> frozenset[str]:
        """The extractor providers the configured models need (docs/architecture.md §10): what the stack grants."""
        return frozenset(provider_name(model) for model in self.models_called)

    @property
    def bedrock_model_ids(self) -> tuple[str, ...]:
        return _bedrock_model_ids(self.models_called)

    @property
    def visibility_timeout_seconds(self) -> int:
        return VISIBILITY_TIMEOUT_FACTOR * self.consumer_timeout_seconds

    @property
    def queue_retention_seconds(self) -> int:
        return self.queue_retention_days * 24 * 3600

    @property
    def requeue_lease_seconds(self) -> int:
        """A `queued` ledger row older than the queue's retention can no longer have a live message."""
        return self.queue_retention_seconds

    @property
    def processing_lease_seconds(self) -> int:
        """Longer than one invocation (no two owners), shorter than the visibility timeout (a redelivery
        after a crashed invocation can take the job over)."""
        return self.consumer_timeout_seconds + 60

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> PipelineConfig:
        """Build from a context getter such as ``app.node.try_get_context``."""
        ctx = _Context(get)
        consumer_timeout = ctx.integer("consumerTimeoutSeconds", default=300, minimum=30, maximum=900)
        if VISIBILITY_TIMEOUT_FACTOR * consumer_timeout > SQS_MAX_VISIBILITY_SECONDS:
            raise ContextError("consumerTimeoutSeconds: 6x it exceeds the SQS visibility timeout limit (12 h)")
        reserved = ctx.integer("consumerReservedConcurrency", default=10, minimum=2, maximum=1000)
        # The priority lane's maximum concurrency (an event source's minimum is 2); unset or 0: no lane.
        priority_max = ctx.optional_integer("priorityMaxConcurrency", minimum=0, maximum=1000) or None
        max_concurrency = ctx.integer(
            "consumerMaxConcurrency", default=max(2, reserved - (priority_max or 0)), minimum=2, maximum=1000
        )
        if max_concurrency > reserved:
            raise ContextError(
                f"consumerMaxConcurrency ({max_concurrency}) must be <= consumerReservedConcurrency ({reserved}):"
                " above it Lambda throttles the poller and healthy messages reach the dead-letter queue"
            )
        if priority_max is not None and priority_max < 2:
            raise ContextError(f"priorityMaxConcurrency must be 0 (no lane) or at least 2, got {priority_max}")
        if priority_max is not None and max_concurrency + priority_max > reserved:
            raise ContextError(
                f"consumerMaxConcurrency ({max_concurrency}) + priorityMaxConcurrency ({priority_max}) must be <= "
                f"consumerReservedConcurrency ({reserved}): both lanes' event sources invoke the same function, and "
                "above its reserved concurrency Lambda throttles the pollers"
            )
        batch_size = ctx.integer("batchSize", default=2, minimum=1, maximum=10)
        model_timeout = ctx.integer(
            "modelTimeoutSeconds", default=DEFAULT_MODEL_TIMEOUT_SECONDS, minimum=MIN_MODEL_TIMEOUT_SECONDS, maximum=900
        )
        check_batch_fits_consumer_timeout(batch_size, model_timeout, consumer_timeout)
        retention_days = ctx.integer("queueRetentionDays", default=4, minimum=1, maximum=DLQ_RETENTION_DAYS - 1)
        openai_secret_arn = ctx.optional_matching("openaiSecretArn", _SECRET_ARN)
        llm_models = _llm_models(ctx)
        models_called = stage_names(parse_model_list(llm_models))
        return cls(
            stack_name=ctx.matching("stackName", _STACK_NAME, default="InvoicePipeline"),
            account=ctx.optional_matching("account", re.compile(r"^\d{12}$")),
            region=ctx.optional_matching("region", re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")),
            schedule_expression=ctx.matching("scheduleExpression", _SCHEDULE),
            # Unset: paused while the stack holds a placeholder OpenAI key (it creates the secret when an OpenAI
            # model is configured and no secret is given), so no run can send the backlog to a model that refuses
            # the key; docs/deploy.md, "After the first deploy".
            schedule_enabled=ctx.boolean(
                "scheduleEnabled",
                default=openai_secret_arn is not None or all(provider_name(m) != "openai" for m in models_called),
            ),
            restaurant_ids=_restaurant_ids(ctx),
            orders_since=_orders_since(ctx),
            max_orders_per_run=ctx.integer("maxOrdersPerRun", default=1000, minimum=1),
            max_queue_depth=ctx.optional_integer("maxQueueDepth", minimum=1),
            producer_timeout_seconds=ctx.integer("producerTimeoutSeconds", default=120, minimum=10, maximum=900),
            producer_memory_mb=ctx.integer("producerMemoryMb", default=512, minimum=128, maximum=10240),
            llm_models=llm_models,
            allowed_buckets=ctx.string_list("allowedBuckets", pattern=_BUCKET),
            max_image_bytes=ctx.integer("maxImageBytes", default=DEFAULT_MAX_IMAGE_BYTES, minimum=1),
            consumer_reserved_concurrency=reserved,
            consumer_max_concurrency=max_concurrency,
            batch_size=batch_size,
            max_batching_window_seconds=ctx.integer("maxBatchingWindowSeconds", default=0, minimum=0, maximum=300),
            consumer_timeout_seconds=consumer_timeout,
            consumer_memory_mb=ctx.integer("consumerMemoryMb", default=1024, minimum=128, maximum=10240),
            model_timeout_seconds=model_timeout,
            openai_secret_arn=openai_secret_arn,
            openai_base_url=ctx.optional_matching("openaiBaseUrl", re.compile(r"^https://\S+$")),
            bedrock_profile_regions=_bedrock_profile_regions(ctx, models_called),
            migrate_timeout_seconds=ctx.integer("migrateTimeoutSeconds", default=120, minimum=10, maximum=900),
            max_receive_count=ctx.integer("maxReceiveCount", default=5, minimum=MIN_MAX_RECEIVE_COUNT, maximum=1000),
            queue_retention_days=retention_days,
            database=_database(ctx),
            alarm_email=ctx.optional_matching("alarmEmail", _EMAIL),
            oldest_message_alarm_seconds=ctx.integer("oldestMessageAlarmSeconds", default=3600, minimum=60),
            log_retention_days=ctx.choice("logRetentionDays", LOG_RETENTION_DAYS, default=30),
            log_level=ctx.choice("logLevel", LOG_LEVELS, default="INFO"),
            **_consumer_limits(ctx),
            model_prices=_model_prices(get),
            event_bus_name=ctx.matching("eventBusName", _EVENT_BUS_NAME, default="default"),
            outbox_retry_seconds=ctx.integer("outboxRetrySeconds", default=60, minimum=1, maximum=24 * 3600),
            priority_max_concurrency=priority_max,
            priority_window_minutes=ctx.integer("priorityWindowMinutes", default=60, minimum=0, maximum=7 * 24 * 60),
        )

    @classmethod
    def from_cdk_json(cls, path: Path = CDK_JSON) -> PipelineConfig:
        """Build from the ``context`` object of a ``cdk.json`` file (no ``-c`` overrides): the local stack's way in."""
        try:
            context = json.loads(path.read_text())["context"]
        except FileNotFoundError:
            raise ContextError(f"{path} not found") from None
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ContextError(f"{path} has no valid JSON 'context': {error!r}") from None
        if not isinstance(context, dict):
            raise ContextError(f"{path}: 'context' must be a JSON object, got {type(context).__name__}")
        return cls.from_mapping(context)

    @classmethod
    def from_mapping(cls, context: Mapping[str, Any]) -> PipelineConfig:
        return cls.from_context(context.get)


def check_batch_fits_consumer_timeout(
    batch_size: int, model_timeout_seconds: int, consumer_timeout_seconds: int
) -> None:
    """Refuse a batch whose records cannot all get their images and one model call before the function times out."""
    per_record = CONSUMER_SECONDS_FOR_IMAGES + model_timeout_seconds
    needed = batch_size * per_record + CONSUMER_WRITE_RESERVE_SECONDS
    if needed > consumer_timeout_seconds:
        fitting = max(0, (consumer_timeout_seconds - CONSUMER_WRITE_RESERVE_SECONDS) // per_record)
        raise ContextError(
            f"batchSize {batch_size} x ({model_timeout_seconds} s modelTimeoutSeconds + {CONSUMER_SECONDS_FOR_IMAGES} s"
            f" for images) + {CONSUMER_WRITE_RESERVE_SECONDS} s reserve = {needed} s does not fit"
            f" consumerTimeoutSeconds {consumer_timeout_seconds}: the batch's last records would never start."
            f" Lower batchSize (at most {fitting} fits) or modelTimeoutSeconds, or raise consumerTimeoutSeconds"
        )


def _consumer_limits(ctx: _Context) -> dict[str, int]:
    """The consumer's limits against runaway answers and hostile providers, with the functions' own defaults."""
    return {
        "max_items_per_invoice": ctx.integer(
            "maxItemsPerInvoice", default=DEFAULT_MAX_ITEMS_PER_INVOICE, minimum=1, maximum=100_000
        ),
        "max_throttle_wait_seconds": ctx.integer(
            "maxThrottleWaitSeconds", default=DEFAULT_MAX_THROTTLE_WAIT_SECONDS, minimum=1
        ),
        "max_hand_backs_per_job": ctx.integer(
            "maxHandBacksPerJob", default=DEFAULT_MAX_HAND_BACKS_PER_JOB, minimum=1, maximum=100_000
        ),
        # A wait is also how long a handed-back message is held: SQS holds one at most 12 h.
        "max_provider_wait_seconds": ctx.integer(
            "maxProviderWaitSeconds",
            default=DEFAULT_MAX_PROVIDER_WAIT_SECONDS,
            minimum=1,
            maximum=SQS_MAX_VISIBILITY_SECONDS,
        ),
    }


def _aws_id(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"^{prefix}-([0-9a-f]{{8}}|[0-9a-f]{{17}})$")


def _llm_models(ctx: _Context) -> tuple[str, ...]:
    """The entries of llmModels, parsed as the functions parse LLM_MODELS (the one parser: model_names)."""
    try:
        entries = parse_model_list(ctx.strings("llmModels"), "llmModels")
    except ModelNameError as error:
        raise ContextError(str(error)) from None
    if not entries:
        raise ContextError("llmModels is empty")
    for entry in entries:
        for stage in entry.stages:
            if not _MODEL_NAME.match(stage):
                raise ContextError(f"llmModels has a malformed entry: {entry.name!r} ({stage!r})")
            if provider_name(stage) == "ocr" and stage not in OFFLINE_READER_MODELS:
                raise ContextError(
                    f"llmModels: {entry.name!r} names the offline reader {stage!r}, which has no such model; "
                    f"available: {', '.join(sorted(OFFLINE_READER_MODELS))}"
                )
    return model_names(entries)


def _bedrock_model_ids(models: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(model.removeprefix("bedrock/") for model in models if provider_name(model) == "bedrock")


def _bedrock_profile_regions(ctx: _Context, models: tuple[str, ...]) -> tuple[str, ...]:
    regions = ctx.string_list("bedrockProfileRegions", pattern=_REGION) if ctx.present("bedrockProfileRegions") else ()
    ids = _bedrock_model_ids(models)
    profiles = [model_id for model_id in ids if model_id.startswith(PROFILE_PREFIXES)]
    if profiles and not regions:
        raise ContextError(
            f"bedrockProfileRegions is not set, but {', '.join(profiles)} is a cross-region inference profile: list "
            "the regions it routes to (the Bedrock console shows them), so its model is granted in each"
        )
    return regions


def _model_prices(get: Callable[[str], Any]) -> str | None:
    """``modelPrices``: model -> {"input", "output"} (USD per 1M tokens) or {"page"}, validated as the consumer
    validates MODEL_PRICES; passed on as JSON. Null or empty: the built-in prices only."""
    from invoice_pipeline.pricing import parse_model_prices

    raw = get("modelPrices")
    if raw is None or raw == {} or raw == "":
        return None
    try:
        prices = parse_model_prices(raw)
    except ValueError as error:
        raise ContextError(f"modelPrices: {error}".replace("MODEL_PRICES", "modelPrices")) from None
    return json.dumps(
        {name: {key: str(value) for key, value in vars(price).items() if value} for name, price in prices}
    )


def _restaurant_ids(ctx: _Context) -> tuple[str, ...]:
    ids = ctx.string_list("restaurantIds", pattern=re.compile(r"^(\*|\d+)$"))
    if "*" in ids and len(ids) > 1:
        raise ContextError("restaurantIds: '*' (every restaurant) cannot be combined with ids")
    return ids


def _orders_since(ctx: _Context) -> str | None:
    raw = ctx.optional_string("ordersSince")
    if raw is None:
        return None
    try:
        if len(raw) <= 10:
            date.fromisoformat(raw)
        else:
            datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ContextError(f"ordersSince must be an ISO 8601 date or date-time, got {raw!r}") from None
    return raw


def _database(ctx: _Context) -> DatabaseConfig:
    vpc_id = ctx.optional_matching("vpcId", _aws_id("vpc"))
    vpc = None
    if vpc_id is not None:
        subnets = ctx.string_list("subnetIds", pattern=_aws_id("subnet"))
        zones = ctx.string_list("availabilityZones", pattern=re.compile(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$"))
        if len(zones) != len(subnets):
            raise ContextError("availabilityZones must name one zone per entry of subnetIds, in the same order")
        vpc = VpcConfig(
            vpc_id=vpc_id,
            subnet_ids=subnets,
            availability_zones=zones,
            security_group_id=ctx.matching("securityGroupId", _aws_id("sg")),
        )
    else:
        for key in ("subnetIds", "securityGroupId"):
            if ctx.present(key):
                raise ContextError(f"{key} is set but vpcId is not: set vpcId too, or remove {key}")
    sslmode = ctx.choice("dbSslMode", SSL_MODES, default="verify-full")
    return DatabaseConfig(
        secret_arn=ctx.matching("dbSecretArn", _SECRET_ARN),
        sslmode=sslmode,
        ssl_root_cert=ctx.optional_string("dbSslRootCert"),
        vpc=vpc,
    )


class _Context:
    """Typed reads of context values; every error names the key."""

    def __init__(self, get: Callable[[str], Any]) -> None:
        self._get = get

    def present(self, key: str) -> bool:
        value = self._get(key)
        return value is not None and value != "" and value != []

    def optional_string(self, key: str) -> str | None:
        value = self._get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise ContextError(f"{key} must be a string, got {value!r}")
        return value.strip()

    def optional_matching(self, key: str, pattern: re.Pattern[str]) -> str | None:
        value = self.optional_string(key)
        if value is not None and not pattern.match(value):
            raise ContextError(f"{key} is malformed: {value!r}")
        return value

    def matching(self, key: str, pattern: re.Pattern[str], default: str | None = None) -> str:
        value = self.optional_matching(key, pattern)
        if value is None:
            if default is None:
                raise ContextError(f"{key} is not set (cdk.json context or -c {key}=...)")
            return default
        return value

    def optional_integer(self, key: str, minimum: int = 0, maximum: int | None = None) -> int | None:
        value = self._get(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ContextError(f"{key} must be an integer, got {value!r}")
        try:
            number = int(value)
        except ValueError:
            raise ContextError(f"{key} must be an integer, got {value!r}") from None
        if number < minimum or (maximum is not None and number > maximum):
            bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise ContextError(f"{key} must be {bounds}, got {number}")
        return number

    def integer(self, key: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        value = self.optional_integer(key, minimum, maximum)
        return default if value is None else value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ContextError(f"{key} must be true or false, got {value!r}")

    def strings(self, key: str) -> list[str]:
        """A JSON list's items, or a comma-separated string's (``-c key=a,b``) without its blanks; all stripped."""
        value = self._get(key)
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            return [str(part).strip() for part in value]
        if value is None:
            raise ContextError(f"{key} is not set (cdk.json context or -c {key}=a,b)")
        raise ContextError(f"{key} must be a list or a comma-separated string, got {value!r}")

    def string_list(self, key: str, pattern: re.Pattern[str]) -> tuple[str, ...]:
        items = self.strings(key)
        if not items:
            raise ContextError(f"{key} is empty")
        for item in items:
            if not pattern.match(item):
                raise ContextError(f"{key} has a malformed entry: {item!r}")
        return tuple(dict.fromkeys(items))

    def choice(self, key: str, allowed: tuple[Any, ...], default: Any) -> Any:
        value = self._get(key)
        if value is None or value == "":
            return default
        for option in allowed:
            if str(option) == str(value).strip():
                return option
        raise ContextError(f"{key} must be one of {', '.join(map(str, allowed))}, got {value!r}")
