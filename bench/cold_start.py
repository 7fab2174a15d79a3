"""Cold import of each Lambda handler module against ``import boto3`` alone, side by side in one run.

Each figure is the best of N fresh interpreters (the least disturbed run on a shared machine), timing only
the import statement, with ``functions/`` on the path as in the Lambda code asset. Target: consumer and
producer <= 1.5x boto3. The last lines show what loads later, on the first invocation, and are not held to the
target: the X-Ray SDK (what the eager Tracer used to load at import; now only the first traced invocation does),
and pg8000 and Pillow, which the first record needs for its connection and its images.

    .venv/bin/python bench/cold_start.py [--runs 7]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"
TARGET = 1.5

STATEMENTS = {
    "boto3": "import boto3",
    "consumer": "import consumer",
    "producer": "import producer",
    "migrate": "import migrate",
    "consumer + X-Ray SDK": "import consumer, aws_xray_sdk.core",
    # What the first record then loads (its connection, its images): the whole of a cold consumer's imports.
    "consumer + first record": "import consumer, pg8000.native, PIL.Image, invoice_pipeline.documents.images",
}


def import_seconds(statement: str, functions: Path = FUNCTIONS, after: str = "pass") -> float:
    """Seconds spent in ``statement`` (once ``after`` has run) in one fresh interpreter with ``functions`` on the
    path, as in the code asset."""
    code = f"{after}; import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    output = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=functions,
        env={"PYTHONPATH": str(functions), "PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin"},
    ).stdout
    return float(output.strip())


def measure(runs: int, names: list[str] | None = None) -> dict[str, float]:
    """Seconds per name; the runs of every statement interleave so that load on the machine hits all alike."""
    chosen = names or list(STATEMENTS)
    best = {name: float("inf") for name in chosen}
    for _ in range(runs):
        for name in chosen:
            best[name] = min(best[name], import_seconds(STATEMENTS[name]))
    return best


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters per statement (best is kept)")
    args = parser.parse_args(argv)

    seconds = measure(args.runs)
    boto3 = seconds["boto3"]
    print(f"cold import, best of {args.runs} fresh interpreters (target: handlers <= {TARGET}x boto3)")
    for name, value in seconds.items():
        ratio = value / boto3
        mark = "" if name == "boto3" or "+" in name else ("  ok" if ratio <= TARGET else "  OVER TARGET")
        print(f"  import {name:<24} {value * 1000:7.1f} ms  {ratio:5.2f}x boto3{mark}")
    return {name: value / boto3 for name, value in seconds.items()}


if __name__ == "__main__":
    ratios = main()
    raise SystemExit(0 if ratios["consumer"] <= TARGET and ratios["producer"] <= TARGET else 1)
