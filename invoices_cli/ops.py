"""Operating the pipeline: ``status``, ``redrive``, ``retry-failed``, ``report``, ``consume``.

They work against real AWS and the local stack alike: the database from DATABASE_URL or DB_SECRET_ARN,
the queue from QUEUE_URL (its DLQ from the queue's RedrivePolicy), AWS from the usual boto3 settings
(``--profile``/``--region``; AWS_ENDPOINT_URL for the local stack).

Exit codes: 0 done; 1 something failed or is left over (a redrive task failed or is already running, a
consume run stopped with messages left); 2 usage or configuration error (a missing variable, a bad option).
"""

from __future__ import annotations

import argparse
import csv
import importlib
import io
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from invoice_pipeline.flows.queue_depth import queue_depth
from invoice_pipeline.settings import ConfigError
from invoice_pipeline.tables.db import pool
from invoice_pipeline.tables.ledger_reads import failed_jobs, ledger_status, retry_failed_jobs
from invoices_cli.arguments import positive_int
from invoices_cli.cascades import stage_lines
from invoices_cli.comparison import compare_models
from invoices_cli.queues import (
    MoveTask,
    is_local_endpoint,
    source_and_dlq,
    start_redrive,
    wait_for_redrive,
)
from invoices_cli.settings import operator_settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _sqs() -> Any:
    import boto3

    return boto3.client("sqs")


def _require_queue_url() -> str:
    queue_url = operator_settings().queue_url
    if queue_url is None:
        raise ConfigError("QUEUE_URL is not set (the extraction queue; its DLQ is found from its RedrivePolicy)")
    return queue_url


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# -- status ---------------------------------------------------------------------------------------------------


def collect_status(*, sqs: Any = None) -> dict[str, Any]:
    settings = operator_settings()
    with pool.connection() as connection:
        ledger = ledger_status(
            connection,
            processing_lease_seconds=settings.processing_lease_seconds,
            requeue_lease_seconds=settings.requeue_lease_seconds,
        )
    status: dict[str, Any] = {
        "jobs": ledger.counts,
        "totals": ledger.totals(),
        "oldest_queued_seconds": ledger.oldest_queued_seconds,
        "oldest_processing_seconds": ledger.oldest_processing_seconds,
        "done_with_warnings": ledger.done_with_warnings,
        "activity": ledger.activity,
        "stale_processing": [asdict(job) for job in ledger.stale_processing],
        "stale_processing_total": ledger.stale_processing_total,
        "queue": None,
        "dlq": None,
    }
    queue_url = settings.queue_url
    for prefix, url in (("", queue_url), ("priority_", settings.priority_queue_url)):
        if url is not None:
            sqs = sqs or _sqs()
            source, dlq = source_and_dlq(sqs, url)
            status[f"{prefix}queue"] = {"url": source.url, **queue_depth(sqs, source.url).as_dict()}
            status[f"{prefix}dlq"] = {"url": dlq.url, **queue_depth(sqs, dlq.url).as_dict()}
    from invoices_cli.controls import control_state

    status["controls"] = control_state(queue_url, sqs=sqs)
    if settings.priority_queue_url is not None:
        status["priority_controls"] = control_state(settings.priority_queue_url, sqs=sqs)
    return status


def format_status(status: dict[str, Any]) -> str:
    lines = ["jobs by model and status:"]
    statuses = ("queued", "processing", "done", "failed")
    lines.append(f"  {'model':<28}" + "".join(f"{name:>12}" for name in statuses))
    for llm, counts in sorted(status["jobs"].items()):
        lines.append(f"  {llm:<28}" + "".join(f"{counts.get(name, 0):>12}" for name in statuses))
    if not status["jobs"]:
        lines.append("  (no jobs yet)")
    warned = status.get("done_with_warnings") or {}
    if warned:
        counts = ", ".join(f"{llm} {jobs}" for llm, jobs in sorted(warned.items()))
        lines.append(f"done orders with validation warnings: {counts}")
    for llm, activity in sorted((status.get("activity") or {}).items()):
        lines.append(
            f"  {llm}: {activity['attempts']} model tries, {activity['throttles']} throttled,"
            f" {activity['budget_waits']} waits for the budget ({_age(activity['budget_wait_seconds'])}, not tries)"
        )
    lines.append(
        f"oldest queued: {_age(status['oldest_queued_seconds'])}   "
        f"oldest processing: {_age(status['oldest_processing_seconds'])}"
    )
    lines += _format_stale_processing(status)
    lanes = ("queue", "dlq", "priority_queue", "priority_dlq") if "priority_queue" in status else ("queue", "dlq")
    for name in lanes:
        depth = status[name]
        label = name.replace("_", " ")
        if depth is None:
            lines.append(f"{label}: QUEUE_URL not set")
        else:
            lines.append(
                f"{label}: {depth['visible']} visible, {depth['in_flight']} in flight, {depth['delayed']} delayed"
                f"  ({depth['url']})"
            )
    from invoices_cli.controls import format_control_state

    lines.append(format_control_state(status.get("controls") or {}))
    if "priority_controls" in status:
        lines.append("priority lane " + format_control_state(status["priority_controls"] or {}))
    return "\n".join(lines)


def _format_stale_processing(status: dict[str, Any]) -> list[str]:
    total = status["stale_processing_total"]
    if not total:
        return ["stale processing: none"]
    lines = [f"stale processing: {total} job(s) past their lease, no delivery is working on them (runbook: DLQ)"]
    for job in status["stale_processing"]:
        due = job["requeued_in_seconds"]
        when = "next producer run" if due <= 0 else f"in {_age(due)}"
        lines.append(
            f"  order {job['order_id']} {job['llm']}: started {_age(job['started_seconds_ago'])} ago, "
            f"attempts {job['attempts']}, re-enqueued {when}; last error: {job['last_error'] or '-'}"
        )
    if total > len(status["stale_processing"]):
        lines.append(f"  ... and {total - len(status['stale_processing'])} more")
    return lines


def cmd_status(args: argparse.Namespace) -> int:
    status = collect_status()
    print(json.dumps(status, indent=2, default=str) if args.json else format_status(status))
    return EXIT_OK


# -- redrive --------------------------------------------------------------------------------------------------


def cmd_redrive(args: argparse.Namespace, *, sqs: Any = None, sleep: Callable[[float], None] | None = None) -> int:
    if args.rate is not None and args.rate > 500:
        raise ConfigError(f"--rate must be between 1 and 500 messages per second, got {args.rate}")
    settings = operator_settings()
    sqs = sqs or _sqs()
    queue_urls = {"main": _require_queue_url(), "priority": settings.priority_queue_url}
    lane = getattr(args, "lane", "all")  # callers that build their own arguments may leave it out
    if lane == "priority" and settings.priority_queue_url is None:
        raise ConfigError("--lane priority: PRIORITY_QUEUE_URL is not set (the priority lane's queue)")
    lanes = ["main", "priority"] if lane == "all" else [lane]
    code = EXIT_OK
    for lane in lanes:
        url = queue_urls[lane]
        if url is not None:
            if len(lanes) > 1 and queue_urls["priority"] is not None:
                print(f"{lane} lane:")
            code = max(code, _redrive_queue(args, settings, sqs, url, sleep))
    return code


def _redrive_queue(
    args: argparse.Namespace, settings: Any, sqs: Any, queue_url: str, sleep: Callable[[float], None] | None
) -> int:
    source, dlq = source_and_dlq(sqs, queue_url)
    if is_local_endpoint(settings.aws_endpoint_url):
        from local.dlq_mover import move_messages

        print(f"local endpoint {settings.aws_endpoint_url}: moving with the local mover (no StartMessageMoveTask)")
        moved = move_messages(sqs, dlq.url, source.url, rate=args.rate)
        print(f"moved {moved} message(s) from {dlq.url} to {source.url}")
        return EXIT_OK

    handle = start_redrive(sqs, dlq, source, rate=args.rate)
    print(f"started message move task {handle}: {dlq.arn} -> {source.arn}")
    if args.no_wait:
        return EXIT_OK

    def show(task: MoveTask) -> None:
        total = "?" if task.to_move is None else task.to_move
        print(f"  {task.status}: {task.moved}/{total} moved")

    final = wait_for_redrive(sqs, dlq.arn, poll_seconds=args.poll_seconds, on_progress=show, sleep=sleep or _sleep)
    if final.status != "COMPLETED":
        reason = f": {final.failure_reason}" if final.failure_reason else ""
        print(f"redrive ended {final.status}{reason}", file=sys.stderr)
        return EXIT_FAILED
    print(f"redrive completed: {final.moved} message(s) moved")
    return EXIT_OK


def _sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)


# -- retry-failed ---------------------------------------------------------------------------------------------


def cmd_retry_failed(args: argparse.Namespace) -> int:
    with pool.connection() as connection:
        if args.dry_run:
            jobs = failed_jobs(connection, order_id=args.order, llm=args.llm)
            for job in jobs:
                print(f"  order {job['order_id']} {job['llm']}: {job['last_error']}")
            print(f"{len(jobs)} failed job(s) would be reset")
            return EXIT_OK
        reset = retry_failed_jobs(connection, order_id=args.order, llm=args.llm)
    print(f"reset {reset} failed job(s); the producer's next run enqueues them again")
    return EXIT_OK


# -- report ---------------------------------------------------------------------------------------------------

REPORT_COLUMNS = (
    "llm",
    "orders_done",
    "orders_failed",
    "orders_pending",
    "orders_with_warnings",
    "invoices",
    "items",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cost_per_invoice_usd",
    "attempts",
    "throttles",
    "budget_waits",
    "accuracy_f1",
    "accuracy_precision",
    "accuracy_recall",
    "lines_fully_right",
    "top_failure_reasons",
)


def _usd(amount: str | None) -> str:
    """``$0.0150``, ``unknown`` (a model without a price: MODEL_PRICES), ``-`` (nothing done)."""
    return "-" if amount is None else amount if amount == "unknown" else f"${amount}"


def format_report(rows: list[dict[str, Any]], output_format: str) -> str:
    if output_format == "json":
        return json.dumps(rows, indent=2)
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=REPORT_COLUMNS, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            reasons = "; ".join(f"{entry['reason']} ({entry['jobs']})" for entry in row["top_failure_reasons"])
            writer.writerow({**row, "top_failure_reasons": reasons})
        return buffer.getvalue().rstrip("\n")
    if not rows:
        return "no jobs yet"
    lines = []
    for row in rows:
        accuracy = "n/a (no ground truth or accuracy module)"
        if row["accuracy_f1"] is not None:
            accuracy = (
                f"lines fully right {row['lines_fully_right']:.3f}; matching F1 {row['accuracy_f1']:.3f} "
                f"(precision {row['accuracy_precision']:.3f}, recall {row['accuracy_recall']:.3f})"
            )
        lines += [
            row["llm"],
            f"  orders: {row['orders_done']} done, {row['orders_failed']} failed, {row['orders_pending']} pending,"
            f" {row['orders_with_warnings']} done with validation warnings",
            f"  invoices: {row['invoices']}   items: {row['items']}",
            f"  tokens: {row['input_tokens']} in, {row['output_tokens']} out   cost: {_usd(row['cost_usd'])}"
            f"   per invoice: {_usd(row['cost_per_invoice_usd'])}",
            f"  model tries: {row['attempts']}   throttled: {row['throttles']}   waits for the budget:"
            f" {row['budget_waits']}",
            f"  accuracy: {accuracy}",
            *_trust_lines(row),
            *stage_lines(row),
        ]
        for entry in row["top_failure_reasons"]:
            lines.append(f"  failed x{entry['jobs']}: {entry['reason']}")
        more = row.get("more_failure_reasons") or {}
        if more.get("reasons"):
            lines.append(f"  failed x{more['jobs']}: {more['reasons']} more reason(s)")
    return "\n".join(lines)


def _trust_lines(row: dict[str, Any]) -> list[str]:
    """The model's share of lines per trust level and, with ground truth, how often each level is right."""
    trust = row.get("trust") or {}
    if not trust.get("lines"):
        return []
    shares = ", ".join(f"{level} {trust[level]:.3f}" for level in ("verified", "plausible", "doubtful", "unknown"))
    lines = [f"  trust ({trust['lines']} lines): {shares}"]
    reliability = row.get("trust_reliability")
    if reliability:
        right = ", ".join(
            f"{level} {entry['right']}/{entry['lines']}" for level, entry in reliability.items() if entry["lines"]
        )
        lines.append(f"  fully right per trust level (ground truth): {right}")
    found = row.get("invoice_evidence") or {}
    if found.get("invoices"):
        failed = ", ".join(f"{name} {count}" for name, count in sorted(found["checks_failed"].items()))
        lines.append(
            f"  invoices passing their own checks: {found['complete']} of {found['invoices']}"
            + (f" (failed: {failed})" if failed else "")
        )
    return lines


def cmd_report(args: argparse.Namespace) -> int:
    from invoices_cli.report_cmd import report_filter, write_html_report

    scope = report_filter(args)
    with pool.connection() as connection:
        rows = compare_models(connection, scope)
    if args.html:
        print(f"report written to {write_html_report(rows, scope, args.html)}")
        return EXIT_OK
    print(format_report(rows, args.format))
    return EXIT_OK


# -- consume --------------------------------------------------------------------------------------------------


def load_handler(spec: str) -> Callable[[], Callable[[dict[str, Any], Any], Any]]:
    """``module:function`` -> a factory giving each concurrent worker its own copy of the module (a container).

    The Lambda code directory (functions/) is importable, as in the Lambda runtime.
    """
    import invoice_pipeline
    from local.event_source import fresh_handler

    functions_dir = str(Path(invoice_pipeline.__file__).resolve().parent.parent)
    if functions_dir not in sys.path:
        sys.path.insert(0, functions_dir)
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"--handler must look like module:function, got {spec!r}")
    try:
        getattr(importlib.import_module(module_name), attribute)
        return fresh_handler(module_name, attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"--handler {spec}: {error}") from None


def cmd_consume(args: argparse.Namespace) -> int:
    from local.controls import read_controls
    from local.event_source import SqsEventSource

    queue_url = _require_queue_url()
    handler = load_handler(args.handler)
    sqs = _sqs()
    timeout = args.function_timeout
    if timeout is None:
        visibility = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"])
        timeout = float(visibility["Attributes"]["VisibilityTimeout"])
    source = SqsEventSource(
        queue_url,
        handler_factory=handler,
        batch_size=args.batch_size,
        max_concurrency=args.concurrency,
        function_timeout_seconds=timeout,
        sqs_client=sqs,
        controls=lambda: read_controls(queue_url),  # invoices pause / resume / concurrency, while it runs
    )
    print(
        f"consuming {queue_url}: batch size {args.batch_size}, concurrency {args.concurrency}, "
        f"{'until idle' if args.until_idle else 'until Ctrl-C'}",
        file=sys.stderr,
    )
    try:
        stats = source.drain(until_idle=args.until_idle, timeout_seconds=args.max_seconds)
    except KeyboardInterrupt:
        source.stop()
        stats = source.stats
    print(json.dumps(stats.as_dict()))
    return EXIT_FAILED if stats.timed_out else EXIT_OK


# -- registration ---------------------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    status = sub.add_parser(
        "status",
        help="ledger counts by model and status, oldest waiting job, queue and DLQ depth",
        description="Ledger counts by model and status, the age of the oldest queued and processing job, and "
        "the depth of the queue (QUEUE_URL) and its DLQ. Exit 0, or 2 on a configuration error.",
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(run=cmd_status)

    redrive = sub.add_parser(
        "redrive",
        help="move the DLQ's messages back to the queue (StartMessageMoveTask)",
        description="Move every message of the DLQ back to QUEUE_URL with StartMessageMoveTask and follow its "
        "progress; against a local endpoint (AWS_ENDPOINT_URL on this machine) a local mover does the same. "
        "Exit 0 when the task completed, 1 when it failed or another task is already running, 2 on bad usage.",
    )
    redrive.add_argument("--rate", type=positive_int, help="messages per second (1-500; default: SQS decides)")
    redrive.add_argument(
        "--lane",
        choices=("all", "main", "priority"),
        default="all",
        help="which lane's DLQ: QUEUE_URL's, PRIORITY_QUEUE_URL's, or both (default: all that are set)",
    )
    redrive.add_argument("--no-wait", action="store_true", help="start the task and return")
    redrive.add_argument("--poll-seconds", type=float, default=5.0, help="seconds between progress checks")
    redrive.set_defaults(run=cmd_redrive)

    retry = sub.add_parser(
        "retry-failed",
        help="reset failed jobs so the producer's next run enqueues them again",
        description="Delete the ledger rows of failed jobs (they have no items), so the producer's next run "
        "enqueues those orders again. Exit 0, or 2 on a configuration error.",
    )
    retry.add_argument("--order", type=positive_int, help="only this order id")
    retry.add_argument("--llm", help="only this model")
    retry.add_argument("--dry-run", action="store_true", help="list what would be reset")
    retry.set_defaults(run=cmd_retry_failed)

    report = sub.add_parser(
        "report",
        help="per model: orders, invoices, items, tokens, cost, failures, accuracy",
        description="Per model: orders done/failed/pending, invoices, items, tokens, cost and cost per invoice, "
        "the top failure reasons, and item accuracy against benchmarking.ground_truth_items where it exists.",
    )
    report.add_argument("--format", choices=("table", "csv", "json"), default="table")
    report.add_argument("--llm", action="append", help="only this model (repeat for several)")
    report.add_argument("--restaurant", action="append", type=positive_int, help="only this restaurant (repeatable)")
    report.add_argument("--since", help="only orders created on or after this date (YYYY-MM-DD)")
    report.add_argument("--until", help="only orders created on or before this date (YYYY-MM-DD)")
    report.add_argument("--html", metavar="FILE", help="write the comparison page as one self-contained HTML file")
    report.set_defaults(run=cmd_report)

    consume = sub.add_parser(
        "consume",
        help="run the consumer locally against QUEUE_URL (SQS event-source emulator)",
        description="Poll QUEUE_URL like Lambda's SQS event source and invoke the consumer handler with real "
        "SQS events (partial batch responses, bounded concurrency). Exit 0, or 1 when --max-seconds ran out "
        "with messages left.",
    )
    consume.add_argument("--concurrency", type=positive_int, default=2, help="concurrent invocations (default 2)")
    consume.add_argument("--batch-size", type=positive_int, default=5, help="records per invocation (default 5)")
    consume.add_argument("--until-idle", action="store_true", help="stop when the queue is empty and nothing runs")
    consume.add_argument("--max-seconds", type=float, help="stop after this long")
    consume.add_argument("--function-timeout", type=float, help="seconds (default: the queue's visibility timeout)")
    consume.add_argument("--handler", default="consumer:handler", help="module:function (default consumer:handler)")
    consume.set_defaults(run=cmd_consume)
