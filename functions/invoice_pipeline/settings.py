"""Configuration: the only module that reads the environment (docs/architecture.md §11).

Each handler loads only the settings it needs, once per container, when it builds its runtime; so the producer
never asks for an OpenAI key and the consumer never asks for a queue URL. Each model declares its variables
as field aliases and their constraints as pydantic fields; a missing or malformed variable raises
:class:`ConfigError` naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal, Self
from urllib.parse import unquote, urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from invoice_pipeline.model_names import (
    ModelEntry,
    ModelNameError,
    model_names,
    parse_model_list,
    provider_settings,
    stage_names,
)

DEFAULT_LLM_MODEL = "gpt-4o-2024-11-20"
DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_RECEIVE_COUNT = 5
DEFAULT_MAX_ITEMS_PER_INVOICE = 500
# Throttling never fails a job (docs/architecture.md §9) unless its waits for the provider add up to more than this.
DEFAULT_MAX_THROTTLE_WAIT_SECONDS = 6 * 3600
# ... nor unless it has been handed back more often than this (each hand-back re-reads the order).
DEFAULT_MAX_HAND_BACKS_PER_JOB = 50
# The longest wait a provider's answer may impose (Retry-After, x-ratelimit-reset-*): a longer one is taken as this.
DEFAULT_MAX_PROVIDER_WAIT_SECONDS = 3600
# SQS default retention (4 days): an older `queued` row cannot have a live message any more.
DEFAULT_REQUEUE_LEASE_SECONDS = 4 * 24 * 3600
DEFAULT_PROCESSING_LEASE_SECONDS = 1800
DEFAULT_CONFIG_ERROR_BACKOFF_SECONDS = 900
MAX_VISIBILITY_SECONDS = 12 * 3600  # the most ChangeMessageVisibility accepts
DEFAULT_OUTBOX_RETRY_SECONDS = 60
DEFAULT_PRIORITY_WINDOW_MINUTES = 60
SERVICE_NAME = "invoice-pipeline"
METRICS_NAMESPACE = "InvoicePipeline"

SslMode = Literal["verify-full", "require", "disable"]


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class EnvironmentSettings(BaseModel):
    """Settings read from environment variables: each field's alias is its variable.

    pydantic-settings reads variables the same way, but importing it adds about 0.4x ``import boto3`` to every
    cold start (bench/settings_cold_start.py), more than the few lines of :meth:`from_env` it would save.
    """

    # Defaults are validated too: the database's "URL or secret" rule runs when neither variable is set.
    model_config = ConfigDict(frozen=True, validate_default=True)

    @classmethod
    def from_env(cls, env: Mapping[str, str], **values: Any) -> Self:
        """The settings in ``env`` (never ``os.environ`` behind the caller's back); ``values`` (by field name) are
        computed elsewhere and win over the variables. Values are stripped; a blank one counts as unset."""
        variables = {name: value.strip() for name, value in env.items() if value and value.strip()}
        computed = {cls.model_fields[name].alias or name: value for name, value in values.items()}
        try:
            return cls.model_validate(variables | computed)
        except ValidationError as error:
            raise _config_error(error.errors()[0]) from None


def _config_error(error: Any) -> ConfigError:
    """The first validation error as a message naming the variable; never quotes a secret's value."""
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, ConfigError):  # raised by a validator below, already naming its variable
        return cause
    name, kind, raw, ctx = (
        error["loc"][0] if error["loc"] else "",
        error["type"],
        error.get("input"),
        error.get("ctx", {}),
    )
    if kind == "missing":
        return ConfigError(f"{name} is not set")
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return ConfigError(f"{name} must be an integer, got {raw!r}")
    if kind == "greater_than_equal":
        return ConfigError(f"{name} must be >= {ctx['ge']:g}, got {raw}")
    if kind == "literal_error":
        return ConfigError(f"{name} must be {ctx['expected'].replace(chr(39), '')}, got {raw!r}")
    return ConfigError(f"{name} is malformed ({kind})")


def _whole_number(value: Any) -> Any:
    """An integer variable read into a float field (a timeout): "1.5" stays an error, as for the other integers."""
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise PydanticCustomError("int_parsing", "not an integer") from None
    return value


def comma_list(raw: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``: how every list variable is written (LLM_MODELS, ALLOWED_BUCKETS, ...)."""
    return [part.strip() for part in raw.split(",") if part.strip()]


@dataclass(frozen=True)
class ConnectionParams:
    host: str
    port: int
    user: str
    password: str
    database: str

    def describe(self) -> str:
        """Where we connect, for logs and errors: never the password."""
        return f"{self.user}@{self.host}:{self.port}/{self.database}"


# Never the URL itself in the message: it holds the password, and the parse error would quote part of it.
MALFORMED_DSN = (
    "DATABASE_URL is not a valid postgresql://USER:PASSWORD@HOST:PORT/DATABASE URL: percent-encode any of"
    " / ? # @ : [ ] in the user name or password (# as %23, / as %2F, @ as %40)"
)


def params_from_url(url: str) -> ConnectionParams:
    """The connection parameters of a DSN; a malformed one is a :class:`ConfigError` that never echoes it.

    Here rather than in :mod:`invoice_pipeline.tables.db` (which connects with them) because the settings check the DSN
    when they load, and the database module reads its settings from this one: one direction, no import cycle.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # e.g. "Port could not be cast to integer value as '<part of the password>'"
        raise ConfigError(MALFORMED_DSN) from None
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigError("DATABASE_URL must start with postgresql://")
    # An unencoded / ? or # in the password ends the host part early: the rest of the password and the real host
    # then sit in the path, query or fragment, and would be used as (and printed as) host, port and database.
    if parts.fragment or "@" in parts.path or "@" in parts.query:
        raise ConfigError(MALFORMED_DSN)
    return ConnectionParams(
        host=parts.hostname or "localhost",
        port=port or 5432,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
        database=unquote(parts.path.lstrip("/")) or "postgres",
    )


WholeNumber = Annotated[float, BeforeValidator(_whole_number)]
LeaseSeconds = Annotated[int, Field(ge=60)]


class DatabaseSettings(EnvironmentSettings):
    database_url: SecretStr | None = Field(None, alias="DATABASE_URL")
    db_secret_arn: str | None = Field(None, alias="DB_SECRET_ARN")
    sslmode: SslMode = Field("verify-full", alias="DB_SSLMODE")
    ssl_root_cert: str | None = Field(None, alias="DB_SSL_ROOT_CERT")
    connect_timeout_seconds: WholeNumber = Field(10.0, alias="DB_CONNECT_TIMEOUT", ge=1)

    @field_validator("database_url")
    @classmethod
    def _dsn_parses(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None:
            params_from_url(url.get_secret_value())  # a malformed DSN fails here, at load, never quoting it
        return url

    @field_validator("db_secret_arn")
    @classmethod
    def _url_or_secret(cls, secret_arn: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("database_url") is not None:
            return None  # the URL wins
        if secret_arn is None:
            raise ConfigError("DATABASE_URL or DB_SECRET_ARN must be set")
        return secret_arn


def _llm_models(value: Any) -> tuple[str, ...]:
    """The entries' names as the ledger stores them (a cascade without the spaces around ``>``)."""
    try:
        entries = parse_model_list(value, "LLM_MODELS")
    except ModelNameError as error:
        raise ConfigError(str(error)) from None
    if not entries:
        raise ConfigError("LLM_MODELS is empty")
    return model_names(entries)


LlmModels = Annotated[tuple[str, ...], BeforeValidator(_llm_models)]


def _model_prices(value: Any) -> Any:
    """MODEL_PRICES: a JSON object, model -> {input, output} (USD per 1M tokens) or {page} (:mod:`.pricing`)."""
    if isinstance(value, tuple):
        return value
    from invoice_pipeline.pricing import parse_model_prices  # loaded only when the variable is set

    try:
        return parse_model_prices(value)
    except ValueError as error:
        raise ConfigError(str(error)) from None


# (model name, pricing.Price) pairs: the prices set without a release, over the built-in ones.
ModelPrices = Annotated[tuple[tuple[str, Any], ...], BeforeValidator(_model_prices)]


class _Models(EnvironmentSettings):
    llm_models: LlmModels = Field((DEFAULT_LLM_MODEL,), alias="LLM_MODELS")


class EventSettings(EnvironmentSettings):
    """Completion events (docs/events-and-lanes.md): the bus, and how long an unsent outbox row waits before the
    next consumer invocation or producer run publishes it."""

    event_bus_name: str = Field("default", alias="EVENT_BUS_NAME")
    outbox_retry_seconds: int = Field(DEFAULT_OUTBOX_RETRY_SECONDS, alias="OUTBOX_RETRY_SECONDS", ge=1)


class ProducerSettings(EnvironmentSettings):
    database: DatabaseSettings
    events: EventSettings
    queue_url: str = Field(alias="QUEUE_URL")
    # The priority lane (docs/events-and-lanes.md): unset means no lane, every order goes to QUEUE_URL.
    priority_queue_url: str | None = Field(None, alias="PRIORITY_QUEUE_URL")
    # An order is urgent when it was created within this many minutes before the run (orders.URGENT_ORDER).
    priority_window_minutes: int = Field(DEFAULT_PRIORITY_WINDOW_MINUTES, alias="PRIORITY_WINDOW_MINUTES", ge=0)
    llm_models: LlmModels = Field((DEFAULT_LLM_MODEL,), alias="LLM_MODELS")
    # None means every restaurant (RESTAURANT_IDS=*)
    restaurant_ids: tuple[int, ...] | None = Field(alias="RESTAURANT_IDS")
    orders_since: datetime | None = Field(None, alias="ORDERS_SINCE")
    max_orders_per_run: int = Field(1000, alias="MAX_ORDERS_PER_RUN", ge=1)
    page_size: int = Field(500, alias="PRODUCER_PAGE_SIZE", ge=1)
    requeue_lease_seconds: LeaseSeconds = Field(DEFAULT_REQUEUE_LEASE_SECONDS, alias="REQUEUE_LEASE_SECONDS")
    max_queue_depth: int | None = Field(None, alias="MAX_QUEUE_DEPTH", ge=1)  # backpressure; None disables it
    # The consumer's claim lease: a `processing` job older than it plus the re-enqueue lease is sent again.
    processing_lease_seconds: LeaseSeconds = Field(DEFAULT_PROCESSING_LEASE_SECONDS, alias="PROCESSING_LEASE_SECONDS")
    # stop starting pages when the Lambda has less time left than this
    time_margin_seconds: int = Field(30, alias="PRODUCER_TIME_MARGIN_SECONDS", ge=0)

    @field_validator("restaurant_ids", mode="before")
    @classmethod
    def _restaurant_ids(cls, raw: Any) -> Any:
        if not isinstance(raw, str):
            return raw
        if raw == "*":
            return None
        ids: list[int] = []
        for part in comma_list(raw):
            try:
                ids.append(int(part))
            except ValueError:
                raise ConfigError(f"RESTAURANT_IDS must be '*' or a comma list of integers, got {part!r}") from None
        if not ids:
            raise ConfigError("RESTAURANT_IDS is empty: use '*' for every restaurant")
        return tuple(ids)

    @field_validator("orders_since", mode="before")
    @classmethod
    def _orders_since(cls, raw: Any) -> Any:
        if not isinstance(raw, str):
            return raw
        try:
            if "T" not in raw and " " not in raw and len(raw) <= 10:
                return datetime.combine(date.fromisoformat(raw), time.min, tzinfo=UTC)
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"ORDERS_SINCE must be an ISO 8601 date or date-time, got {raw!r}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class ConsumerSettings(EnvironmentSettings):
    database: DatabaseSettings
    events: EventSettings
    llm_models: LlmModels = Field((DEFAULT_LLM_MODEL,), alias="LLM_MODELS")
    allowed_buckets: frozenset[str] = Field(alias="ALLOWED_BUCKETS")
    max_image_bytes: int = Field(DEFAULT_MAX_IMAGE_BYTES, alias="MAX_IMAGE_BYTES", ge=1)
    max_receive_count: int = Field(DEFAULT_MAX_RECEIVE_COUNT, alias="MAX_RECEIVE_COUNT", ge=1)
    # (provider name, its settings) for each provider serving a model of LLM_MODELS (model_names.py)
    providers: tuple[tuple[str, Any], ...]
    processing_lease_seconds: LeaseSeconds = Field(DEFAULT_PROCESSING_LEASE_SECONDS, alias="PROCESSING_LEASE_SECONDS")
    # Visibility backoff of a transiently failed record: base x 2^(receive - 1), capped (visibility.py).
    retry_backoff_base_seconds: int = Field(30, alias="RETRY_BACKOFF_BASE_SECONDS", ge=1)
    # Upper bound of one model request; the invocation's remaining time may make it shorter.
    model_timeout_seconds: WholeNumber = Field(120.0, alias="MODEL_TIMEOUT_SECONDS", ge=1)
    # An invoice with more lines than this fails its order permanently (a runaway answer, not an invoice).
    max_items_per_invoice: int = Field(DEFAULT_MAX_ITEMS_PER_INVOICE, alias="MAX_ITEMS_PER_INVOICE", ge=1)
    # How long a record waits after a configuration error (key rejected, model not enabled): a human must act.
    config_error_backoff_seconds: int = Field(
        DEFAULT_CONFIG_ERROR_BACKOFF_SECONDS, alias="CONFIG_ERROR_BACKOFF_SECONDS", ge=1
    )
    # Total time a job may wait for rate limits before it fails with that reason.
    max_throttle_wait_seconds: int = Field(DEFAULT_MAX_THROTTLE_WAIT_SECONDS, alias="MAX_THROTTLE_WAIT_SECONDS", ge=1)
    # Hand-backs (throttled deliveries) a job may have before it fails with that reason.
    max_hand_backs_per_job: int = Field(DEFAULT_MAX_HAND_BACKS_PER_JOB, alias="MAX_HAND_BACKS_PER_JOB", ge=1)
    # A provider's named wait is clamped to [0, this]: a hostile or broken header cannot park a model for years.
    max_provider_wait_seconds: int = Field(DEFAULT_MAX_PROVIDER_WAIT_SECONDS, alias="MAX_PROVIDER_WAIT_SECONDS", ge=1)
    # Prices set without a release (pricing.py): over the built-in table; a model with neither costs "unknown".
    model_prices: ModelPrices = Field((), alias="MODEL_PRICES")

    @field_validator("allowed_buckets", mode="before")
    @classmethod
    def _allowed_buckets(cls, raw: Any) -> Any:
        if isinstance(raw, str) and not comma_list(raw):
            raise ConfigError("ALLOWED_BUCKETS is empty")
        return frozenset(comma_list(raw)) if isinstance(raw, str) else raw

    @field_validator("config_error_backoff_seconds")
    @classmethod
    def _fits_a_visibility_change(cls, seconds: int) -> int:
        if seconds > MAX_VISIBILITY_SECONDS:
            raise ConfigError(f"CONFIG_ERROR_BACKOFF_SECONDS must be <= {MAX_VISIBILITY_SECONDS} (12 h), got {seconds}")
        return seconds

    def provider(self, name: str) -> Hashable:
        """The settings of provider ``name``; only providers of configured models have any."""
        for provider, settings in self.providers:
            if provider == name:
                return settings  # type: ignore[no-any-return]
        raise ConfigError(f"no model of LLM_MODELS ({', '.join(self.llm_models)}) is served by {name}")

    @property
    def model_entries(self) -> tuple[ModelEntry, ...]:
        """The entries of LLM_MODELS with their stages: a single model is an entry of one stage."""
        return parse_model_list(self.llm_models)


def parse_llm_models(env: Mapping[str, str]) -> tuple[str, ...]:
    return _Models.from_env(env).llm_models


def parse_database(env: Mapping[str, str]) -> DatabaseSettings:
    return DatabaseSettings.from_env(env)


def producer_settings_from(env: Mapping[str, str]) -> ProducerSettings:
    return ProducerSettings.from_env(env, database=parse_database(env), events=EventSettings.from_env(env))


def consumer_settings_from(env: Mapping[str, str]) -> ConsumerSettings:
    models = parse_llm_models(env)  # the providers' settings depend on them: those of every stage of every entry
    providers = provider_settings(env, stage_names(parse_model_list(models)))
    return ConsumerSettings.from_env(
        env, database=parse_database(env), events=EventSettings.from_env(env), llm_models=models, providers=providers
    )


def database_settings() -> DatabaseSettings:
    """From the environment as it is now. Not cached: each handler validates its settings once, when it builds its
    runtime (``build_runtime``), and keeps them there; tools and tests read them when they need them."""
    return parse_database(os.environ)


def producer_settings() -> ProducerSettings:
    return producer_settings_from(os.environ)


def consumer_settings() -> ConsumerSettings:
    return consumer_settings_from(os.environ)
