"""Configuration: the only module that reads the environment (DESIGN §6).

Each handler loads only the settings it needs, once per cold start (``functools.cache``), so the producer
never asks for an OpenAI key and the consumer never asks for a queue URL. A missing or malformed
variable raises :class:`ConfigError` naming the variable.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Hashable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr

DEFAULT_LLM_MODEL = "gpt-4o-2024-11-20"
DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_RECEIVE_COUNT = 5
DEFAULT_MAX_ITEMS_PER_INVOICE = 500
# Throttling never fails a job (DESIGN §10) unless its waits for the provider add up to more than this.
DEFAULT_MAX_THROTTLE_WAIT_SECONDS = 6 * 3600
# SQS default retention (4 days): an older `queued` row cannot have a live message any more.
DEFAULT_REQUEUE_LEASE_SECONDS = 4 * 24 * 3600
DEFAULT_PROCESSING_LEASE_SECONDS = 1800
DEFAULT_CONFIG_ERROR_BACKOFF_SECONDS = 900
MAX_VISIBILITY_SECONDS = 12 * 3600  # the most ChangeMessageVisibility accepts
SERVICE_NAME = "invoice-pipeline"
METRICS_NAMESPACE = "InvoicePipeline"

SslMode = Literal["verify-full", "require", "disable"]


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class DatabaseSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    database_url: SecretStr | None = None
    db_secret_arn: str | None = None
    sslmode: SslMode = "verify-full"
    ssl_root_cert: str | None = None
    connect_timeout_seconds: float = 10.0


class ProducerSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    database: DatabaseSettings
    queue_url: str
    llm_models: tuple[str, ...]
    restaurant_ids: tuple[int, ...] | None  # None means every restaurant (RESTAURANT_IDS=*)
    orders_since: datetime | None
    max_orders_per_run: int
    page_size: int
    requeue_lease_seconds: int
    max_queue_depth: int | None  # backpressure threshold; None disables it
    # The consumer's claim lease: a `processing` job older than it plus the re-enqueue lease is sent again.
    processing_lease_seconds: int = DEFAULT_PROCESSING_LEASE_SECONDS
    time_margin_seconds: int = 30  # stop starting pages when the Lambda has less time left than this


class ConsumerSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    database: DatabaseSettings
    llm_models: tuple[str, ...]
    allowed_buckets: frozenset[str]
    max_image_bytes: int
    max_receive_count: int
    # (provider name, its settings) for each provider serving a model of LLM_MODELS (extraction/registry.py)
    providers: tuple[tuple[str, Any], ...]
    processing_lease_seconds: int
    # Visibility backoff of a transiently failed record: base x 2^(receive - 1), capped (visibility.py).
    retry_backoff_base_seconds: int = 30
    # Upper bound of one model request; the invocation's remaining time may make it shorter.
    model_timeout_seconds: float = 120.0
    # An invoice with more lines than this fails its order permanently (a runaway answer, not an invoice).
    max_items_per_invoice: int = DEFAULT_MAX_ITEMS_PER_INVOICE
    # How long a record waits after a configuration error (key rejected, model not enabled): a human must act.
    config_error_backoff_seconds: int = DEFAULT_CONFIG_ERROR_BACKOFF_SECONDS
    # Total time a job may wait for rate limits before it fails with that reason.
    max_throttle_wait_seconds: int = DEFAULT_MAX_THROTTLE_WAIT_SECONDS

    def provider(self, name: str) -> Hashable:
        """The settings of provider ``name``; only providers of configured models have any."""
        for provider, settings in self.providers:
            if provider == name:
                return settings  # type: ignore[no-any-return]
        raise ConfigError(f"no model of LLM_MODELS ({', '.join(self.llm_models)}) is served by {name}")


class OperatorSettings(BaseModel):
    """What the ``invoices`` command needs besides the database: the queue (its DLQ comes from its RedrivePolicy)."""

    model_config = ConfigDict(frozen=True)

    queue_url: str | None
    llm_models: tuple[str, ...]
    aws_endpoint_url: str | None  # set for the local stack (moto); the local redrive is chosen from it
    # The functions' leases, so `status` can tell which `processing` jobs are stale and when they are re-sent.
    processing_lease_seconds: int = DEFAULT_PROCESSING_LEASE_SECONDS
    requeue_lease_seconds: int = DEFAULT_REQUEUE_LEASE_SECONDS
    # The producer's EventBridge Scheduler schedule (stack output ScheduleName), for `invoices doctor`.
    schedule_name: str | None = None
    schedule_group: str = "default"


def env_value(env: Mapping[str, str], name: str) -> str | None:
    """A variable's value, stripped; None when unset or blank (providers read their settings with these)."""
    return _get(env, name)


def env_required(env: Mapping[str, str], name: str) -> str:
    return _require(env, name)


def env_int(env: Mapping[str, str], name: str, default: int | None, minimum: int = 0) -> int:
    return _int(env, name, default, minimum)


class WorkbenchSettings(BaseModel):
    """What ``invoices workbench`` needs besides the database: which invoice images it may show (as the consumer)."""

    model_config = ConfigDict(frozen=True)

    allowed_buckets: frozenset[str]  # empty: no image is fetched
    max_image_bytes: int


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def _require(env: Mapping[str, str], name: str) -> str:
    value = _get(env, name)
    if value is None:
        raise ConfigError(f"{name} is not set")
    return value


def _int(env: Mapping[str, str], name: str, default: int | None, minimum: int = 0) -> int:
    raw = _get(env, name)
    if raw is None:
        if default is None:
            raise ConfigError(f"{name} is not set")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _csv(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def parse_llm_models(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = _get(env, "LLM_MODELS")
    models = tuple(dict.fromkeys(_csv(raw))) if raw else (DEFAULT_LLM_MODEL,)
    if not models:
        raise ConfigError("LLM_MODELS is empty")
    return models


def parse_restaurant_ids(env: Mapping[str, str]) -> tuple[int, ...] | None:
    raw = _require(env, "RESTAURANT_IDS")
    if raw == "*":
        return None
    ids: list[int] = []
    for part in _csv(raw):
        try:
            ids.append(int(part))
        except ValueError:
            raise ConfigError(f"RESTAURANT_IDS must be '*' or a comma list of integers, got {part!r}") from None
    if not ids:
        raise ConfigError("RESTAURANT_IDS is empty: use '*' for every restaurant")
    return tuple(ids)


def parse_orders_since(env: Mapping[str, str]) -> datetime | None:
    raw = _get(env, "ORDERS_SINCE")
    if raw is None:
        return None
    try:
        if "T" not in raw and " " not in raw and len(raw) <= 10:
            return datetime.combine(date.fromisoformat(raw), time.min, tzinfo=UTC)
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"ORDERS_SINCE must be an ISO 8601 date or date-time, got {raw!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_database(env: Mapping[str, str]) -> DatabaseSettings:
    url = _get(env, "DATABASE_URL")
    secret_arn = _get(env, "DB_SECRET_ARN")
    if url is None and secret_arn is None:
        raise ConfigError("DATABASE_URL or DB_SECRET_ARN must be set")
    if url is not None:
        from invoice_pipeline.db import params_from_url  # db imports this module

        params_from_url(url)  # a malformed DSN fails here, at load, with a message that never quotes it
    sslmode = _get(env, "DB_SSLMODE") or "verify-full"
    if sslmode not in ("verify-full", "require", "disable"):
        raise ConfigError(f"DB_SSLMODE must be verify-full, require or disable, got {sslmode!r}")
    return DatabaseSettings(
        database_url=SecretStr(url) if url else None,
        db_secret_arn=None if url else secret_arn,
        sslmode=sslmode,  # type: ignore[arg-type]
        ssl_root_cert=_get(env, "DB_SSL_ROOT_CERT"),
        connect_timeout_seconds=float(_int(env, "DB_CONNECT_TIMEOUT", 10, minimum=1)),
    )


def producer_settings_from(env: Mapping[str, str]) -> ProducerSettings:
    depth = _get(env, "MAX_QUEUE_DEPTH")
    return ProducerSettings(
        database=parse_database(env),
        queue_url=_require(env, "QUEUE_URL"),
        llm_models=parse_llm_models(env),
        restaurant_ids=parse_restaurant_ids(env),
        orders_since=parse_orders_since(env),
        max_orders_per_run=_int(env, "MAX_ORDERS_PER_RUN", 1000, minimum=1),
        page_size=_int(env, "PRODUCER_PAGE_SIZE", 500, minimum=1),
        requeue_lease_seconds=_int(env, "REQUEUE_LEASE_SECONDS", DEFAULT_REQUEUE_LEASE_SECONDS, minimum=60),
        max_queue_depth=None if depth is None else _int(env, "MAX_QUEUE_DEPTH", None, minimum=1),
        time_margin_seconds=_int(env, "PRODUCER_TIME_MARGIN_SECONDS", 30, minimum=0),
        processing_lease_seconds=_int(env, "PROCESSING_LEASE_SECONDS", DEFAULT_PROCESSING_LEASE_SECONDS, minimum=60),
    )


def consumer_settings_from(env: Mapping[str, str]) -> ConsumerSettings:
    buckets = frozenset(_csv(_require(env, "ALLOWED_BUCKETS")))
    if not buckets:
        raise ConfigError("ALLOWED_BUCKETS is empty")
    from invoice_pipeline.extraction.registry import provider_settings

    models = parse_llm_models(env)
    return ConsumerSettings(
        database=parse_database(env),
        llm_models=models,
        allowed_buckets=buckets,
        max_image_bytes=_int(env, "MAX_IMAGE_BYTES", DEFAULT_MAX_IMAGE_BYTES, minimum=1),
        max_receive_count=_int(env, "MAX_RECEIVE_COUNT", DEFAULT_MAX_RECEIVE_COUNT, minimum=1),
        providers=provider_settings(env, models),
        processing_lease_seconds=_int(env, "PROCESSING_LEASE_SECONDS", DEFAULT_PROCESSING_LEASE_SECONDS, minimum=60),
        retry_backoff_base_seconds=_int(env, "RETRY_BACKOFF_BASE_SECONDS", 30, minimum=1),
        model_timeout_seconds=float(_int(env, "MODEL_TIMEOUT_SECONDS", 120, minimum=1)),
        max_items_per_invoice=_int(env, "MAX_ITEMS_PER_INVOICE", DEFAULT_MAX_ITEMS_PER_INVOICE, minimum=1),
        config_error_backoff_seconds=_config_error_backoff(env),
        max_throttle_wait_seconds=_int(env, "MAX_THROTTLE_WAIT_SECONDS", DEFAULT_MAX_THROTTLE_WAIT_SECONDS, minimum=1),
    )


def _config_error_backoff(env: Mapping[str, str]) -> int:
    seconds = _int(env, "CONFIG_ERROR_BACKOFF_SECONDS", DEFAULT_CONFIG_ERROR_BACKOFF_SECONDS, minimum=1)
    if seconds > MAX_VISIBILITY_SECONDS:
        raise ConfigError(f"CONFIG_ERROR_BACKOFF_SECONDS must be <= {MAX_VISIBILITY_SECONDS} (12 h), got {seconds}")
    return seconds


def operator_settings_from(env: Mapping[str, str]) -> OperatorSettings:
    return OperatorSettings(
        queue_url=_get(env, "QUEUE_URL"),
        llm_models=parse_llm_models(env),
        aws_endpoint_url=_get(env, "AWS_ENDPOINT_URL_SQS") or _get(env, "AWS_ENDPOINT_URL"),
        processing_lease_seconds=_int(env, "PROCESSING_LEASE_SECONDS", DEFAULT_PROCESSING_LEASE_SECONDS, minimum=60),
        requeue_lease_seconds=_int(env, "REQUEUE_LEASE_SECONDS", DEFAULT_REQUEUE_LEASE_SECONDS, minimum=60),
        schedule_name=_get(env, "SCHEDULE_NAME"),
        schedule_group=_get(env, "SCHEDULE_GROUP") or "default",
    )


def workbench_settings_from(env: Mapping[str, str]) -> WorkbenchSettings:
    return WorkbenchSettings(
        allowed_buckets=frozenset(_csv(_get(env, "ALLOWED_BUCKETS") or "")),
        max_image_bytes=_int(env, "MAX_IMAGE_BYTES", DEFAULT_MAX_IMAGE_BYTES, minimum=1),
    )


def workbench_settings() -> WorkbenchSettings:
    return workbench_settings_from(os.environ)


def operator_settings() -> OperatorSettings:
    """Not cached: the operator command runs once per process and tests change the environment."""
    return operator_settings_from(os.environ)


@functools.cache
def database_settings() -> DatabaseSettings:
    return parse_database(os.environ)


@functools.cache
def producer_settings() -> ProducerSettings:
    return producer_settings_from(os.environ)


@functools.cache
def consumer_settings() -> ConsumerSettings:
    return consumer_settings_from(os.environ)


def clear_cache() -> None:
    """Forget loaded settings (tests and the local stack change the environment between runs)."""
    database_settings.cache_clear()
    producer_settings.cache_clear()
    consumer_settings.cache_clear()
