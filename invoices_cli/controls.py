"""Live controls: ``pause``, ``resume``, ``concurrency N``, ``budget``, ``capacity`` (docs/architecture.md §13).

Against AWS, ``pause``/``resume`` switch the producer's EventBridge Scheduler schedule (SCHEDULE_NAME, the
stack's ``ScheduleName`` output; SCHEDULE_GROUP, default ``default``) and the consumer's SQS event source
mapping (found from QUEUE_URL's ARN) off and on; ``concurrency N`` sets the mapping's maximum concurrency, within
the consumer's reserved concurrency. Against the local stack (AWS_ENDPOINT_URL on this machine) the same
commands set the controls the local event-source emulator reads while it runs (:mod:`local.controls`).
``budget`` and ``capacity`` work on the database, wherever it is. Nothing needs a deploy.

Exit codes: 0 done; 1 AWS refused or nothing to control was found; 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from typing import Any

from invoice_pipeline.errors import PipelineError
from invoice_pipeline.model_names import ModelEntry
from invoice_pipeline.pacing.budget import (
    DEFAULT_MARGIN,
    DEFAULT_WINDOW_SECONDS,
    Budget,
    delete_budget,
    list_budgets,
    set_budget,
)
from invoice_pipeline.settings import ConfigError
from invoice_pipeline.tables.db import pool
from invoice_pipeline.tables.items import stage_invoices
from invoice_pipeline.tables.ledger_reads import ModelMeasurements, model_measurements
from invoices_cli.arguments import positive_int
from invoices_cli.cascades import cascade_entry, stage_reach
from invoices_cli.queues import is_local_endpoint
from invoices_cli.settings import operator_settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# What Lambda accepts for an SQS event source mapping's ScalingConfig.MaximumConcurrency.
MIN_MAPPING_CONCURRENCY, MAX_MAPPING_CONCURRENCY = 2, 1000


class ControlError(PipelineError):
    """A control could not be applied (no mapping for the queue, a value outside what AWS accepts)."""


def _client(name: str) -> Any:
    import boto3

    return boto3.client(name)


def _queue_url() -> str:
    queue_url = operator_settings().queue_url
    if queue_url is None:
        raise ConfigError("QUEUE_URL is not set (the extraction queue: its event source is what is controlled)")
    return queue_url


def _lane_queue_urls() -> list[str]:
    """The main queue, and the priority lane's when PRIORITY_QUEUE_URL is set: pause and resume cover both."""
    priority = operator_settings().priority_queue_url
    return [_queue_url(), *([priority] if priority else [])]


def _is_local() -> bool:
    return is_local_endpoint(operator_settings().aws_endpoint_url)


def _queue_arn(sqs: Any, queue_url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    return str(attributes["QueueArn"])


def event_source_mappings(lambda_client: Any, queue_arn: str) -> list[dict[str, Any]]:
    mappings: list[dict[str, Any]] = []
    for page in lambda_client.get_paginator("list_event_source_mappings").paginate(EventSourceArn=queue_arn):
        mappings += page["EventSourceMappings"]
    return mappings


def _mappings(lambda_client: Any, sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    mappings = event_source_mappings(lambda_client, _queue_arn(sqs, queue_url))
    if not mappings:
        raise ControlError(f"no Lambda event source mapping reads {queue_url}")
    return mappings


# Fields of GetSchedule that UpdateSchedule takes back (UpdateSchedule replaces the whole schedule).
_SCHEDULE_FIELDS = (
    "ActionAfterCompletion",
    "Description",
    "EndDate",
    "FlexibleTimeWindow",
    "GroupName",
    "KmsKeyArn",
    "Name",
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "StartDate",
    "Target",
)


def set_schedule_state(scheduler: Any, name: str, group: str, *, enabled: bool) -> str:
    """Switch a schedule on or off, keeping everything else as it is; returns the new state."""
    schedule = scheduler.get_schedule(Name=name, GroupName=group)
    update = {field: schedule[field] for field in _SCHEDULE_FIELDS if schedule.get(field) is not None}
    state = "ENABLED" if enabled else "DISABLED"
    scheduler.update_schedule(**update, State=state)
    return state


def set_paused(
    paused: bool, *, sqs: Any = None, lambda_client: Any = None, scheduler: Any = None, local: bool | None = None
) -> list[str]:
    """Pause or resume the schedule and the consumer's event source; returns what was changed, one line each.

    ``local`` None: the local stack's controls when the endpoint is on this machine, else AWS."""
    queue_urls = _lane_queue_urls()
    if _is_local() if local is None else local:
        from local.controls import write_controls

        for queue_url in queue_urls:
            write_controls(queue_url, paused=paused)
        return [f"local event source of {url}: {'paused' if paused else 'running'}" for url in queue_urls]
    settings = operator_settings()
    done = []
    if settings.schedule_name is None:
        done.append("schedule: SCHEDULE_NAME not set, left as it is")
    else:
        state = set_schedule_state(
            scheduler or _client("scheduler"), settings.schedule_name, settings.schedule_group, enabled=not paused
        )
        done.append(f"schedule {settings.schedule_group}/{settings.schedule_name}: {state}")
    lambda_client = lambda_client or _client("lambda")
    mappings = [mapping for url in queue_urls for mapping in _mappings(lambda_client, sqs or _client("sqs"), url)]
    for mapping in mappings:
        lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=not paused)
        done.append(
            f"event source {mapping['UUID']} -> {mapping['FunctionArn']}: {'disabled' if paused else 'enabled'}"
        )
    return done


def set_concurrency(
    concurrency: int, *, sqs: Any = None, lambda_client: Any = None, local: bool | None = None
) -> list[str]:
    """The consumer event source's maximum concurrency, checked against the function's reserved concurrency."""
    queue_url = _queue_url()
    if _is_local() if local is None else local:
        from local.controls import write_controls

        write_controls(queue_url, max_concurrency=concurrency)
        return [f"local event source of {queue_url}: maximum concurrency {concurrency}"]
    if not MIN_MAPPING_CONCURRENCY <= concurrency <= MAX_MAPPING_CONCURRENCY:
        raise ConfigError(
            f"concurrency must be between {MIN_MAPPING_CONCURRENCY} and {MAX_MAPPING_CONCURRENCY} for an SQS event "
            f"source, got {concurrency}"
        )
    lambda_client = lambda_client or _client("lambda")
    done = []
    for mapping in _mappings(lambda_client, sqs or _client("sqs"), queue_url):
        reserved = lambda_client.get_function_concurrency(FunctionName=mapping["FunctionArn"]).get(
            "ReservedConcurrentExecutions"
        )
        if reserved is not None and concurrency > reserved:
            # Above the reserved concurrency the poller is throttled and healthy messages use up their receives.
            raise ControlError(
                f"concurrency {concurrency} is above the consumer's reserved concurrency ({reserved}): raise that "
                "first (cdk.json consumerReservedConcurrency) or choose a lower value"
            )
        lambda_client.update_event_source_mapping(
            UUID=mapping["UUID"], ScalingConfig={"MaximumConcurrency": concurrency}
        )
        done.append(f"event source {mapping['UUID']}: maximum concurrency {concurrency} (reserved {reserved})")
    return done


def control_state(
    queue_url: str | None, *, sqs: Any = None, lambda_client: Any = None, scheduler: Any = None
) -> dict[str, Any]:
    """What ``status`` shows: paused or running, and the maximum concurrency (best effort, never raises)."""
    if queue_url is None:
        return {}
    try:
        if _is_local():
            from local.controls import read_controls

            return {"local": read_controls(queue_url).as_dict()}
        settings = operator_settings()
        state: dict[str, Any] = {"schedule": None, "event_sources": []}
        if settings.schedule_name is not None:
            schedule = (scheduler or _client("scheduler")).get_schedule(
                Name=settings.schedule_name, GroupName=settings.schedule_group
            )
            state["schedule"] = schedule.get("State")
        mappings = event_source_mappings(
            lambda_client or _client("lambda"), _queue_arn(sqs or _client("sqs"), queue_url)
        )
        state["event_sources"] = [
            {
                "uuid": mapping["UUID"],
                "state": mapping.get("State"),
                "max_concurrency": (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency"),
            }
            for mapping in mappings
        ]
        return state
    except Exception as error:  # status must still show the ledger and queues
        return {"error": f"{type(error).__name__}: {error}"}


def format_control_state(state: dict[str, Any]) -> str:
    if not state:
        return "controls: QUEUE_URL not set"
    if "error" in state:
        return f"controls: unknown ({state['error']})"
    if "local" in state:
        local = state["local"]
        concurrency = local["max_concurrency"] or "as started"
        return f"controls: local event source {'PAUSED' if local['paused'] else 'running'}, concurrency {concurrency}"
    sources = ", ".join(
        f"{source['state']} (max concurrency {source['max_concurrency'] or '-'})" for source in state["event_sources"]
    )
    return f"controls: schedule {state['schedule'] or 'SCHEDULE_NAME not set'}; event source {sources or 'none found'}"


# -- capacity -------------------------------------------------------------------------------------------------


def capacity_plan(measured: ModelMeasurements, budget: Budget | None) -> dict[str, Any]:
    """From what one order costs (tokens, invoices = requests) and how long it holds a consumer, and the budget:
    the orders per hour the budget allows, the concurrency that uses it (Little's law), the time to drain."""
    plan: dict[str, Any] = {
        "llm": measured.llm,
        "orders_measured": measured.orders_measured,
        "tokens_per_order": None if measured.tokens_per_order is None else round(measured.tokens_per_order),
        "seconds_per_order": None if measured.seconds_per_order is None else round(measured.seconds_per_order, 2),
        "backlog": measured.backlog,
        "budget": None if budget is None else budget.as_dict(),
        "orders_per_hour": None,
        "concurrency": None,
        "drain_hours": None,
    }
    if budget is None or not measured.tokens_per_order or not measured.seconds_per_order:
        return plan
    per_window = budget.window_seconds / 60  # tpm and rpm are per window (a minute outside scaled-down runs)
    usable = 1 - budget.margin
    orders_per_minute = budget.tpm * usable / measured.tokens_per_order / per_window
    requests_per_order = measured.invoices_per_order or 1.0
    orders_per_minute = min(orders_per_minute, budget.rpm * usable / requests_per_order / per_window)
    plan["orders_per_hour"] = round(orders_per_minute * 60, 1)
    plan["concurrency"] = max(1, math.ceil(orders_per_minute / 60 * measured.seconds_per_order))
    plan["drain_hours"] = round(measured.backlog / (orders_per_minute * 60), 2) if orders_per_minute else None
    return plan


def format_capacity(plans: list[dict[str, Any]]) -> str:
    if not plans:
        return "no jobs yet: nothing measured"
    lines = []
    for plan in plans:
        lines.append(plan["llm"])
        if plan.get("stage_calls_per_invoice"):
            calls = ", ".join(f"{stage} {share:.2f}" for stage, share in plan["stage_calls_per_invoice"].items())
            paced_by = f"; paced by the budget of {plan['budget_stage']}" if plan.get("budget_stage") else ""
            lines.append(f"  expected calls per invoice: {calls}{paced_by}")
        if plan["tokens_per_order"] is None:
            lines.append(f"  no done orders to measure yet; backlog {plan['backlog']}")
            continue
        lines.append(
            f"  measured over {plan['orders_measured']} orders: {plan['tokens_per_order']} tokens and "
            f"{plan['seconds_per_order']} s per order"
        )
        budget = plan["budget"]
        if budget is None:
            per_container = 3600 / plan["seconds_per_order"] if plan["seconds_per_order"] else 0
            model = plan["llm"] if not plan.get("stage_calls_per_invoice") else "STAGE"
            lines.append(
                f"  no budget (unpaced): about {per_container:.0f} orders/hour per concurrent consumer; "
                f"backlog {plan['backlog']}. Set one: invoices budget {model} --tpm N --rpm N"
            )
            continue
        lines.append(
            f"  budget {budget['tpm']} tpm, {budget['rpm']} rpm, margin {budget['margin']:g}: "
            f"{plan['orders_per_hour']} orders/hour at concurrency {plan['concurrency']}"
        )
        lines.append(f"  backlog {plan['backlog']} jobs: drained in {plan['drain_hours']} h")
    total = sum(plan["concurrency"] or 0 for plan in plans)
    if total:
        lines.append(f"all paced models together: concurrency {total} (invoices concurrency {max(2, total)})")
    return "\n".join(lines)


# -- commands -------------------------------------------------------------------------------------------------


def cmd_pause(args: argparse.Namespace) -> int:
    for line in set_paused(True):
        print(line)
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    for line in set_paused(False):
        print(line)
    return EXIT_OK


def cmd_concurrency(args: argparse.Namespace) -> int:
    for line in set_concurrency(args.concurrency):
        print(line)
    return EXIT_OK


def cmd_budget(args: argparse.Namespace) -> int:
    with pool.connection() as connection:
        if args.llm is None:
            budgets = list_budgets(connection)
            if args.json:
                print(json.dumps([budget.as_dict() for budget in budgets], indent=2))
            for budget in [] if args.json else budgets:
                print(
                    f"{budget.llm}: {budget.tpm} tokens/min, {budget.rpm} requests/min, margin {budget.margin:g}"
                    + ("" if budget.window_seconds == 60 else f", window {budget.window_seconds:g} s")
                )
            if not budgets and not args.json:
                print("no budgets: every model is unpaced (its 429s are still waited out)")
            return EXIT_OK
        if args.remove:
            removed = delete_budget(connection, args.llm)
            print(f"{args.llm}: budget removed" if removed else f"{args.llm}: had no budget")
            return EXIT_OK
        if args.tpm is None or args.rpm is None:
            raise ConfigError("budget MODEL needs both --tpm and --rpm (or --remove)")
        budget = Budget(args.llm, args.tpm, args.rpm, args.margin, args.window_seconds)
        try:
            set_budget(connection, budget)
        except ValueError as error:
            raise ConfigError(str(error)) from None
    print(f"{args.llm}: {args.tpm} tokens/min, {args.rpm} requests/min, margin {args.margin:g} (in effect now)")
    if args.llm not in operator_settings().llm_models:
        print(f"note: {args.llm} is not in LLM_MODELS here")
    return EXIT_OK


def cascade_capacity_plan(
    measured: ModelMeasurements, entry: ModelEntry, reach: dict[str, float], budgets: dict[str, Budget]
) -> dict[str, Any]:
    """A cascade is paced by its stages' own budgets: each stage is expected to read ``reach[stage]`` of the invoices
    (:func:`invoices_cli.cascades.stage_reach`), so only those calls count against its requests per minute; the
    cascade's measured tokens per order are all counted against each paced stage. The slowest paced stage decides."""
    plans = []
    for stage in entry.stages:
        if stage in budgets and reach[stage] > 0:
            calls = dataclasses.replace(
                measured, invoices_per_order=(measured.invoices_per_order or 1.0) * reach[stage]
            )
            plans.append({**capacity_plan(calls, budgets[stage]), "budget_stage": stage})
    paced = [plan for plan in plans if plan["orders_per_hour"] is not None]
    plan = min(paced, key=lambda plan: plan["orders_per_hour"]) if paced else capacity_plan(measured, None)
    return {
        **plan,
        "llm": measured.llm,
        "stage_calls_per_invoice": {stage: round(share, 4) for stage, share in reach.items()},
    }


def cmd_capacity(args: argparse.Namespace) -> int:
    with pool.connection() as connection:
        budgets = {budget.llm: budget for budget in list_budgets(connection)}
        measurements = model_measurements(connection)
        answered = stage_invoices(connection, [measured.llm for measured in measurements])
    plans = []
    for measured in measurements:
        entry = cascade_entry(measured.llm)
        if entry is None:
            plans.append(capacity_plan(measured, budgets.get(measured.llm)))
        else:
            reach = stage_reach(entry, answered.get(measured.llm, {}))
            plans.append(cascade_capacity_plan(measured, entry, reach, budgets))
    print(json.dumps(plans, indent=2) if args.json else format_capacity(plans))
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    pause = sub.add_parser(
        "pause",
        help="stop new work: disable the producer's schedule and the consumer's event source",
        description="Disable the EventBridge Scheduler schedule (SCHEDULE_NAME) and the consumer's SQS event "
        "source mapping (found from QUEUE_URL); messages stay in the queue. Locally, pause the event-source "
        "emulator. Undo with resume.",
    )
    pause.set_defaults(run=cmd_pause)
    resume = sub.add_parser("resume", help="enable the schedule and the consumer's event source again")
    resume.set_defaults(run=cmd_resume)

    concurrency = sub.add_parser(
        "concurrency",
        help="set the consumer event source's maximum concurrency (within the reserved concurrency)",
        description="Set ScalingConfig.MaximumConcurrency of the consumer's SQS event source mapping (2-1000, at "
        "most the function's reserved concurrency). Locally, the emulator's number of concurrent invocations.",
    )
    concurrency.add_argument("concurrency", type=positive_int)
    concurrency.set_defaults(run=cmd_concurrency)

    budget = sub.add_parser(
        "budget",
        help="show or set a model's tokens and requests per minute (shared by every consumer, live)",
        description="Without MODEL: list the budgets. With MODEL --tpm N --rpm N: set that model's budget; every "
        "consumer paces its calls to it from the next call on (no deploy). A model without a budget is unpaced.",
    )
    budget.add_argument("llm", nargs="?", metavar="MODEL", help="model name as in LLM_MODELS")
    budget.add_argument("--tpm", type=positive_int, help="tokens per minute")
    budget.add_argument("--rpm", type=positive_int, help="requests per minute")
    budget.add_argument(
        "--margin", type=float, default=DEFAULT_MARGIN, help=f"share of each limit kept free (default {DEFAULT_MARGIN})"
    )
    budget.add_argument(
        "--window-seconds", type=float, default=DEFAULT_WINDOW_SECONDS, help=argparse.SUPPRESS
    )  # scaled-down benchmarks only
    budget.add_argument("--remove", action="store_true", help="remove the model's budget (unpaced)")
    budget.add_argument("--json", action="store_true", help="print JSON")
    budget.set_defaults(run=cmd_budget)

    capacity = sub.add_parser(
        "capacity",
        help="per model: orders/hour the budget allows, the concurrency that uses it, time to drain the backlog",
        description="From the ledger (tokens per order and time per order of the most recent done jobs, the "
        "backlog) and the budgets: the orders per hour each budget allows, the consumer concurrency that uses it, "
        "and the time to drain the current backlog.",
    )
    capacity.add_argument("--json", action="store_true", help="print JSON")
    capacity.set_defaults(run=cmd_capacity)
