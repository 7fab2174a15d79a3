"""``invoices enqueue`` (one producer run) and ``invoices index-orders`` (the producer's index on orders)."""

from __future__ import annotations

import argparse
import json

from invoices_cli.main import EXIT_OK


def cmd_enqueue(args: argparse.Namespace) -> int:
    from invoice_pipeline.enqueue import build_runtime, run_producer
    from invoice_pipeline.settings import producer_settings

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
    from invoice_pipeline.db import pool
    from invoice_pipeline.orders import CREATE_ORDERS_INDEX, ORDERS_INDEX_NAME, create_orders_index

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
        help="one producer run: claim eligible jobs and send them to QUEUE_URL (settings from the environment)",
    )
    enqueue.add_argument("--json", action="store_true", help="print the run summary as JSON")
    enqueue.set_defaults(run=cmd_enqueue)

    index = sub.add_parser(
        "index-orders",
        help="create the producer's index on orders (CREATE INDEX CONCURRENTLY IF NOT EXISTS; writers not blocked)",
    )
    index.add_argument("--print-sql", action="store_true", help="print the statement instead of running it")
    index.add_argument("--json", action="store_true", help="print the outcome as JSON")
    index.set_defaults(run=cmd_index_orders)
