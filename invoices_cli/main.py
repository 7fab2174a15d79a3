"""``invoices``: operate the pipeline from a terminal (settings from the environment, like the functions)."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence

from invoice_pipeline.errors import PipelineError
from invoice_pipeline.settings import ConfigError, database_settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

Command = Callable[[argparse.Namespace], int]


def cmd_migrate(args: argparse.Namespace) -> int:
    from invoice_pipeline.tables.schema import migrate_database

    result = migrate_database(database_settings())
    print(json.dumps(result) if args.json else f"applied {result['count']} migration(s): {result['applied']}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    migrate = sub.add_parser("migrate", help="apply pending schema migrations (DATABASE_URL or DB_SECRET_ARN)")
    migrate.add_argument("--json", action="store_true", help="print the result as JSON")
    migrate.set_defaults(run=cmd_migrate)


# Each module adds its subcommands with register(subparsers); one line per module here.
COMMAND_MODULES: tuple[str, ...] = (
    "invoices_cli.main",
    "invoices_cli.ops",
    "invoices_cli.producer_cmds",
    "invoices_cli.doctor",
    "invoices_cli.controls",
    "invoices_cli.ground_truth_cmd",
    "invoices_cli.workbench.server",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="invoices", description=__doc__)
    parser.add_argument("--profile", help="AWS profile (sets AWS_PROFILE)")
    parser.add_argument("--region", help="AWS region (sets AWS_REGION)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.profile:
        os.environ["AWS_PROFILE"] = args.profile
    if args.region:
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = args.region
    run: Command = args.run
    try:
        return run(args)
    except ConfigError as error:
        print(f"invoices: configuration error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except PipelineError as error:
        print(f"invoices: {error}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
