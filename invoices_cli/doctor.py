"""``invoices doctor``: is this deployment able to work? One line per check, exit 1 on any failure.

Checks, against AWS or the local stack alike (the same environment as the functions and the other commands):
the database is reachable and every migration file is applied; each model is reachable with this deployment's
credentials (OpenAI: ``models.retrieve``, which costs nothing and sends no image; Bedrock: a one-token Converse
call without an image; Textract and the offline ``ocr-*`` models have no key to check and are "n/a"); each
allowed bucket is readable (HeadBucket); the queue has its dead-letter queue wired (RedrivePolicy) with the
maxReceiveCount the consumer expects; the producer's schedule exists and its state (when SCHEDULE_NAME is set).

Each check is independent: a missing setting fails its own lines, naming the variable, and the others still run.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

from invoice_pipeline.errors import classify, describe
from invoice_pipeline.settings import ConsumerSettings, consumer_settings
from invoices_cli.settings import operator_settings

EXIT_OK, EXIT_FAILED = 0, 1
MODEL_CHECK_TIMEOUT_SECONDS = 15.0
# Providers with no key to check: the offline extractor runs on this machine; Textract has no free request, and
# its permission is the function role's (granted by the stack when a Textract model is configured).
KEYLESS_PROVIDERS = {"ocr": "offline extractor, no key", "textract": "the function role's permission, no key"}

Outcome = Literal["ok", "FAIL", "n/a"]


@dataclass(frozen=True)
class Check:
    outcome: Outcome
    name: str
    detail: str

    def line(self) -> str:
        return f"{self.outcome:<4} {self.name}: {self.detail}"


def check_database() -> Iterator[Check]:
    from invoice_pipeline.tables.db import pool
    from invoice_pipeline.tables.migrations import pending_migrations

    try:
        with pool.connection() as connection:
            server = connection.run("SHOW server_version")[0][0]
            pending = pending_migrations(connection)
    except Exception as error:
        yield Check("FAIL", "database", describe(error))
        return
    yield Check("ok", "database", f"reachable (PostgreSQL {server})")
    if pending:
        yield Check("FAIL", "migrations", f"{len(pending)} not applied: {', '.join(pending)} (run `invoices migrate`)")
    else:
        yield Check("ok", "migrations", "every migration file is applied")


def check_models(settings: ConsumerSettings) -> Iterator[Check]:
    from invoice_pipeline.model_names import provider_name, stage_names

    for model in stage_names(settings.model_entries):  # each stage of a cascade is called on its own
        name = f"model {model}"
        provider = provider_name(model)
        if provider in KEYLESS_PROVIDERS:
            yield Check("n/a", name, KEYLESS_PROVIDERS[provider])
            continue
        try:
            where = _check_bedrock(model) if provider == "bedrock" else _check_openai(model, settings)
        except Exception as error:
            reason = "key rejected or model not enabled" if classify(error) == "configuration" else "request failed"
            yield Check("FAIL", name, f"{reason}: {describe(error)}")
            continue
        yield Check("ok", name, f"accepted ({where})")


def check_prices(settings: ConsumerSettings) -> Iterator[Check]:
    """Every configured model has a price (built in, or MODEL_PRICES): without one its cost is recorded as unknown."""
    from invoice_pipeline.pricing import unpriced

    missing = unpriced(settings.llm_models, settings.model_prices)
    if missing:
        yield Check(
            "FAIL",
            "prices",
            f"no price for {', '.join(missing)}: their cost is recorded as unknown; set MODEL_PRICES "
            '(e.g. {"MODEL": {"input": USD per 1M tokens, "output": USD per 1M tokens}}) or modelPrices in cdk.json',
        )
    else:
        yield Check("ok", "prices", f"each of LLM_MODELS has a price ({', '.join(settings.llm_models)})")


def _check_openai(model: str, settings: ConsumerSettings) -> str:
    from invoice_pipeline.providers.openai_extractor import MODEL_PREFIX, api_key_from, translate

    openai_settings: Any = settings.provider("openai")
    client = _openai_client(openai_settings.base_url, api_key_from(openai_settings))
    try:
        client.models.retrieve(model.removeprefix(MODEL_PREFIX))
    except Exception as error:
        raise translate(error) from error
    return openai_settings.base_url or "api.openai.com"


def _check_bedrock(model: str) -> str:
    from invoice_pipeline.clients import AwsClients
    from invoice_pipeline.providers import aws_sdk, bedrock

    runtime = aws_sdk.client(AwsClients(), bedrock.SERVICE, timeout=MODEL_CHECK_TIMEOUT_SECONDS, retries=0)
    try:
        runtime.converse(
            modelId=model.removeprefix(bedrock.MODEL_PREFIX),
            messages=[{"role": "user", "content": [{"text": "Reply with OK."}]}],
            inferenceConfig={"maxTokens": 1},
        )
    except Exception as error:
        raise aws_sdk.translate(error, bedrock.ERRORS, service=bedrock.SERVICE) from error
    return f"Bedrock, {runtime.meta.region_name}"


def _openai_client(base_url: str | None, api_key: str) -> Any:
    import openai

    return openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=MODEL_CHECK_TIMEOUT_SECONDS)


def check_buckets(settings: ConsumerSettings, s3: Any) -> Iterator[Check]:
    for bucket in sorted(settings.allowed_buckets):
        try:
            s3.head_bucket(Bucket=bucket)
        except Exception as error:
            yield Check("FAIL", f"bucket {bucket}", describe(error))
            continue
        yield Check("ok", f"bucket {bucket}", "readable")


def check_queue(sqs: Any, max_receive_count: int | None) -> Iterator[Check]:
    from invoices_cli.queues import source_and_dlq

    queue_url = operator_settings().queue_url
    if queue_url is None:
        yield Check("FAIL", "queue", "QUEUE_URL is not set")
        return
    try:
        _, dlq = source_and_dlq(sqs, queue_url)
        policy = json.loads(
            sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])["Attributes"][
                "RedrivePolicy"
            ]
        )
    except Exception as error:
        yield Check("FAIL", "queue", describe(error))
        return
    receives = int(policy["maxReceiveCount"])
    detail = f"dead-letter queue {dlq.arn.rsplit(':', 1)[-1]} after {receives} receives"
    if max_receive_count is not None and receives != max_receive_count:
        yield Check("FAIL", "queue", f"{detail}, but MAX_RECEIVE_COUNT is {max_receive_count}: the consumer "
                    "would fail jobs on the wrong receive")  # fmt: skip
        return
    yield Check("ok", "queue", detail)


def check_schedule(scheduler: Callable[[], Any]) -> Iterator[Check]:
    settings = operator_settings()
    if settings.schedule_name is None:
        yield Check("n/a", "schedule", "SCHEDULE_NAME not set (the stack output ScheduleName)")
        return
    try:
        schedule = scheduler().get_schedule(Name=settings.schedule_name, GroupName=settings.schedule_group)
    except Exception as error:
        yield Check("FAIL", "schedule", f"{settings.schedule_name}: {describe(error)}")
        return
    state = schedule.get("State", "?")
    paused = " (paused: `aws scheduler update-schedule ... --state ENABLED` resumes it)" if state == "DISABLED" else ""
    yield Check("ok", "schedule", f"{settings.schedule_name} {state} {schedule.get('ScheduleExpression', '')}{paused}")


def run_checks(*, sqs: Any = None, s3: Any = None, scheduler: Any = None) -> list[Check]:
    import boto3

    checks = list(check_database())
    try:
        settings: ConsumerSettings | None = consumer_settings()
    except Exception as error:  # e.g. ALLOWED_BUCKETS unset: the model and bucket checks cannot run
        settings = None
        checks.append(Check("FAIL", "consumer settings", describe(error)))
    if settings is not None:
        checks += check_models(settings)
        checks += check_prices(settings)
        checks += check_buckets(settings, s3 or boto3.client("s3"))
    checks += check_queue(sqs or boto3.client("sqs"), settings.max_receive_count if settings else None)
    checks += check_schedule(lambda: scheduler or boto3.client("scheduler"))
    return checks


def cmd_doctor(args: argparse.Namespace) -> int:
    checks = run_checks()
    if args.json:
        print(json.dumps([asdict(check) for check in checks], indent=2))
    else:
        for check in checks:
            print(check.line())
    return EXIT_FAILED if any(check.outcome == "FAIL" for check in checks) else EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    doctor = sub.add_parser(
        "doctor",
        help="check the deployment: database and migrations, model keys, buckets, queue and DLQ, schedule",
        description="One line per check (ok, FAIL or n/a): database reachable and migrated, each model's key "
        "accepted (models.retrieve, no image), each allowed bucket readable, the queue's dead-letter queue wired, "
        "the schedule's state (SCHEDULE_NAME). Exit 0 when nothing failed, 1 otherwise.",
    )
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.set_defaults(run=cmd_doctor)
