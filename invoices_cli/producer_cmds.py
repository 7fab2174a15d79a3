"""``invoices enqueue`` (one producer run, or the named orders now) and ``invoices index-orders`` (the producer's
index on orders)."""

from __future__ import annotations

import argparse
import json
import sys

from invoices_cli.main import EXIT_OK, EXIT_USAGE


def order_id(text: str) -> int | str:
    """An ``--order`` value: an integer, or the text as given (refused, with every other id, before any claim)."""
    try:
        return int(text)
    except ValueError:
        return text


def cmd_enqueue_orders(args: argparse.Namespace) -> int:
    """``invoices enqueue --order ID ...``: per id, what happened; exit 2 (nothing claimed) for malformed input."""

    from invoice_pipeline.flows.enqueue import InvalidRequest, build_runtime, enqueue_requested
    from invoice_pipeline.settings import producer_settings

    try:
        result = enqueue_requested(
            build_runtime(producer_settings()), args.order, priority=args.priority, again=args.again
        )
    except InvalidRequest as error:
        print(f"invoices enqueue: {error}; nothing was claimed", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        for line in result.as_dict()["results"]:
            print(f"order {line['order_id']}: {line['result']}" + (" (priority lane)" if args.priority else ""))
    return EXIT_OK


def cmd_enqueue(args: argparse.Namespace) -> int:
    from invoice_pipeline.flows.enqueue import build_runtime, run_producer
    from invoice_pipeline.settings import producer_settings

    if args.order:
        return cmd_enqueue_orders(args)
    if args.priority or args.again:
        print("invoices enqueue: --priority and --again apply to --order only", file=sys.stderr)
        return EXIT_USAGE
    summary = run_producer(build_runtime(producer_settings())).as_dict()
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"enqueued {summary['enqueued']} message(s) from {summary['scanned']} order(s) scanned; "
            f"skipped {summary['skipped']}, send failures {summary['send_failures']}, "
            f"stopped: {summary['stopped_because']}, {summary['duration_ms']} ms"
        )
    return EXIT_OK


def cmd_index_orders(args: argparse.Namespace) -> int:
    from invoice_pipeline.tables.db import pool
    from invoice_pipeline.tables.orders import CREATE_ORDERS_INDEX, ORDERS_INDEX_NAME, create_orders_index

    if args.print_sql:
        print(CREATE_ORDERS_INDEX.strip() + ";")
        return EXIT_OK
    with pool.connection() as connection:
        outcome = create_orders_index(connection)
    print(
        json.dumps({"index": ORDERS_INDEX_NAME, "outcome": outcome}) if args.json else f"{ORDERS_INDEX_NAME}: {outcome}"
    )
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    enqueue = sub.add_parser(
        "enqueue",
        help="one producer run: claim eligible jobs and send them to QUEUE_URL (settings from the environment); "
        "with --order, those orders only, now",
    )
    enqueue.add_argument("--json", action="store_true", help="print the run summary (or the per-order results) as JSON")
    enqueue.add_argument(
        "--order",
        action="append",
        type=order_id,
        metavar="ID",
        help="claim and send this order now (repeatable, at most 1,000); the schedule's filters do not apply",
    )
    enqueue.add_argument(
        "--priority", action="store_true", help="with --order: send to the priority lane (PRIORITY_QUEUE_URL)"
    )
    enqueue.add_argument(
        "--again",
        action="store_true",
        help="with --order: extract a done order again (its items stay until the new ones are written)",
    )
    enqueue.set_defaults(run=cmd_enqueue)

    index = sub.add_parser(
        "index-orders",
        help="create the producer's index on orders (CREATE INDEX CONCURRENTLY IF NOT EXISTS; writers not blocked)",
    )
    index.add_argument("--print-sql", action="store_true", help="print the statement instead of running it")
    index.add_argument("--json", action="store_true", help="print the outcome as JSON")
    index.set_defaults(run=cmd_index_orders)
