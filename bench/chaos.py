"""Chaos scenarios at a larger size: faults injected into the local pipeline, the promises checked, one table.

    .venv/bin/python bench/chaos.py                 # every scenario, 200 orders each
    .venv/bin/python bench/chaos.py --orders 50 --scenario pg-kill --scenario s3

Each scenario gets a fresh database and a clean moto server; the embedded Postgres server is shared (the
pg-restart scenario restarts it). Exit status 1 if any scenario broke a promise (its problems are printed).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "functions")]
# Before the handlers are imported: their logger reads the level once.
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

from local.aws import MotoServer  # noqa: E402
from local.chaos import SCENARIOS, fresh_database, run_scenario, table  # noqa: E402
from local.postgres import EmbeddedPostgres  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=200, help="eligible orders per scenario (default 200)")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="run only these (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.orders < 3:
        parser.error("--orders must be at least 3")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    names = args.scenario or list(SCENARIOS)
    results = []
    with EmbeddedPostgres() as server, MotoServer() as moto:
        for number, name in enumerate(names):
            print(f"{name}: {SCENARIOS[name][1]} ...", file=sys.stderr, flush=True)
            dsn = fresh_database(server, f"chaos_{number}")
            result = run_scenario(name, server, dsn, moto, orders=args.orders, seed=args.seed)
            moto.reset()
            results.append(result)
            print(
                f"  {'ok' if result.ok else 'PROBLEMS'} in {result.seconds:.1f} s, "
                f"{result.deliveries} deliveries, {result.model_requests} model requests",
                file=sys.stderr,
                flush=True,
            )
            for problem in result.problems[:20]:
                print(f"    {problem}", file=sys.stderr)
    print(table(results))
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    from local.logs import bench_logs

    with bench_logs("bench-chaos"):
        status = main()
    raise SystemExit(status)
