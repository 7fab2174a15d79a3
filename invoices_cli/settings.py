"""The operator's settings: what the ``invoices`` command and its workbench read from the environment.

They live with the operator package, outside the Lambda asset, and build on the domain's settings machinery
(:class:`invoice_pipeline.settings.EnvironmentSettings`: variables by alias, :class:`ConfigError` naming the
variable), so a variable means the same here as in the functions and fails with the same message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import AliasChoices, Field, field_validator

# comma_list is the domain's, so ALLOWED_BUCKETS splits here exactly as in the consumer.
from invoice_pipeline.settings import (
    DEFAULT_LLM_MODEL,
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_PROCESSING_LEASE_SECONDS,
    DEFAULT_REQUEUE_LEASE_SECONDS,
    EnvironmentSettings,
    LeaseSeconds,
    LlmModels,
    comma_list,
)


class OperatorSettings(EnvironmentSettings):
    """What the ``invoices`` command needs besides the database: the queue (its DLQ comes from its RedrivePolicy)."""

    queue_url: str | None = Field(None, alias="QUEUE_URL")
    # The priority lane's queue (stack output PriorityQueueUrl); unset: no lane. Its DLQ comes from its RedrivePolicy.
    priority_queue_url: str | None = Field(None, alias="PRIORITY_QUEUE_URL")
    llm_models: LlmModels = Field((DEFAULT_LLM_MODEL,), alias="LLM_MODELS")
    # set for the local stack (moto); the local redrive is chosen from it
    aws_endpoint_url: str | None = Field(
        None, validation_alias=AliasChoices("AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL")
    )
    # The functions' leases, so `status` can tell which `processing` jobs are stale and when they are re-sent.
    processing_lease_seconds: LeaseSeconds = Field(DEFAULT_PROCESSING_LEASE_SECONDS, alias="PROCESSING_LEASE_SECONDS")
    requeue_lease_seconds: LeaseSeconds = Field(DEFAULT_REQUEUE_LEASE_SECONDS, alias="REQUEUE_LEASE_SECONDS")
    # The producer's EventBridge Scheduler schedule (stack output ScheduleName), for `invoices doctor`.
    schedule_name: str | None = Field(None, alias="SCHEDULE_NAME")
    schedule_group: str = Field("default", alias="SCHEDULE_GROUP")


class WorkbenchSettings(EnvironmentSettings):
    """What ``invoices workbench`` needs besides the database: which invoice images it may show (as the consumer)."""

    allowed_buckets: frozenset[str] = Field(frozenset(), alias="ALLOWED_BUCKETS")  # empty: none
    max_image_bytes: int = Field(DEFAULT_MAX_IMAGE_BYTES, alias="MAX_IMAGE_BYTES", ge=1)

    @field_validator("allowed_buckets", mode="before")
    @classmethod
    def _allowed_buckets(cls, raw: Any) -> Any:
        return frozenset(comma_list(raw)) if isinstance(raw, str) else raw


def operator_settings_from(env: Mapping[str, str]) -> OperatorSettings:
    return OperatorSettings.from_env(env)


def workbench_settings_from(env: Mapping[str, str]) -> WorkbenchSettings:
    return WorkbenchSettings.from_env(env)


def workbench_settings() -> WorkbenchSettings:
    return workbench_settings_from(os.environ)


def operator_settings() -> OperatorSettings:
    """Not cached: the operator command runs once per process and tests change the environment."""
    return operator_settings_from(os.environ)
