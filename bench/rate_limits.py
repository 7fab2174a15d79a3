"""Rate limits: a backlog several windows deep against the model's budget, with and without the shared budgets.

    .venv/bin/python bench/rate_limits.py                    # both scenarios (about 4 minutes)
    .venv/bin/python bench/rate_limits.py --scenario small --orders 60 --window 2
    .venv/bin/python bench/rate_limits.py --scenario paper   # 80 orders, 117 A4 invoices, 10 s windows

Time is scaled down: a "minute" of the budget is ``--window`` seconds, and the model emulator enforces its token
and request limits over the same window, answering 429 with OpenAI's headers beyond them. Rows:

- paced: the pipeline's budget set to the provider's limits (``invoices budget``); the targets are 0 orders
  failed or in the DLQ, tokens served / budget >= 0.9 and a 429 share <= 0.05;
- unpaced: the same backlog without a budget, consumers finding the limit through 429s (what the pipeline did
  before), for comparison; throttled jobs are handed back, so nothing fails either;
- two models: separate budgets (one half the other) on the same backlog, each paced to its own;
- paper (``--scenario paper``): 80 orders, 117 A4 invoices (about 1,880 tokens a call), 6 consumers, 10 s windows
  of 30,088 tokens, paced: the budget at about 8% of demand.

Printed per window (served / budget, calls, 429s) and per run (deliveries per order, invocations, the attempts
histogram, jobs whose attempts differ from their model tries, budget waits). Targets of the paced runs: 0 failed or
in the DLQ, budget use >= 0.9 over the run and in every full window, 429 share <= 0.05, deliveries per order <= 3,
attempts = tries. Exit status 1 if a paced run misses one.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "functions")]
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

from local.aws import MotoServer  # noqa: E402
from local.chaos import fresh_database  # noqa: E402
from local.postgres import EmbeddedPostgres  # noqa: E402
from local.rate_limits import (  # noqa: E402
    MODELS,
    TOKENS_PER_ORDER,
    RateLimitResult,
    run_rate_limits,
    run_table,
    table,
    window_table,
)

TARGET_FAILED, TARGET_USED, TARGET_429, TARGET_DELIVERIES = 0, 0.9, 0.05, 3.0
# The paper scenario: the setting the pacing was measured in before (80 orders, 117 invoices, 6 consumers).
PAPER_ORDERS, PAPER_INVOICES, PAPER_WINDOW, PAPER_TOKENS, PAPER_CONCURRENCY = 80, 117, 10.0, 30_088, 6


def misses(result: RateLimitResult) -> list[str]:
    problems = []
    for model in result.models:
        if model.failed + model.dlq > TARGET_FAILED:
            problems.append(f"{result.name} {model.llm}: {model.failed + model.dlq} failed or in the DLQ")
        if model.used < TARGET_USED:
            problems.append(f"{result.name} {model.llm}: tokens served / budget {model.used:.2f} < {TARGET_USED}")
        if model.share_429 > TARGET_429:
            problems.append(f"{result.name} {model.llm}: 429 share {model.share_429:.3f} > {TARGET_429}")
        if model.min_window_used < TARGET_USED:
            problems.append(
                f"{result.name} {model.llm}: a full window served {model.min_window_used:.2f} of its budget"
            )
    if result.attempts_not_tries:
        problems.append(f"{result.name}: {result.attempts_not_tries} orders' attempts differ from their model tries")
    if result.deliveries_per_order > TARGET_DELIVERIES:
        problems.append(f"{result.name}: {result.deliveries_per_order:.2f} deliveries per order > {TARGET_DELIVERIES}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=60, help="orders in the backlog (default 60)")
    parser.add_argument("--window", type=float, default=6.0, help="seconds standing for a budget minute (default 6)")
    parser.add_argument("--backlog-windows", type=float, default=3.0, help="backlog in windows of budget (default 3)")
    parser.add_argument("--concurrency", type=int, default=8, help="consumers (default 8)")
    parser.add_argument("--skip-unpaced", action="store_true", help="only the paced runs")
    parser.add_argument("--scenario", choices=("small", "paper", "both"), default="both", help="default both")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    tokens = int(args.orders * TOKENS_PER_ORDER / args.backlog_windows)
    small = dict(orders=args.orders, window_seconds=args.window, concurrency=args.concurrency, paper_invoices=None)
    paper = dict(
        orders=PAPER_ORDERS, window_seconds=PAPER_WINDOW, concurrency=PAPER_CONCURRENCY, paper_invoices=PAPER_INVOICES
    )
    runs: list[tuple[str, tuple[str, ...], tuple[int, ...], bool, dict[str, Any]]] = []
    if args.scenario in ("small", "both"):
        runs.append(("one model", MODELS[:1], (tokens,), True, small))
        if not args.skip_unpaced:
            runs.append(("one model", MODELS[:1], (tokens,), False, small))
        runs.append(("two models", MODELS, (tokens, tokens // 2), True, small))
    if args.scenario in ("paper", "both"):
        runs.append(("paper", MODELS[:1], (PAPER_TOKENS,), True, paper))
    results = []
    with EmbeddedPostgres() as server, MotoServer() as moto:
        for number, (name, models, limits, paced, setting) in enumerate(runs):
            print(f"{name}, {'paced' if paced else 'unpaced'} ...", file=sys.stderr, flush=True)
            dsn = fresh_database(server, f"rate_limits_{number}")
            results.append(
                run_rate_limits(
                    server,
                    dsn,
                    moto,
                    name=name,
                    models=models,
                    tokens_per_window=limits,
                    paced=paced,
                    seed=number,
                    **setting,
                )
            )
            moto.reset()
    print(table(results))
    print()
    print(run_table(results))
    print()
    print(window_table(results))
    problems = [problem for result in results if result.paced for problem in misses(result)]
    for problem in problems:
        print(f"MISSED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    from local.logs import bench_logs

    with bench_logs("bench-rate-limits"):
        status = main()
    raise SystemExit(status)
