"""Cold import of the handlers with this tree's settings against another revision's, side by side in one run.

Measures what a change to how settings are read (pydantic-settings instead of hand-written parsers) costs at
cold start: the other revision's ``functions/`` is extracted with ``git archive`` into a temporary directory,
and each handler is imported from both trees in fresh interpreters, interleaved with ``import boto3`` so that
load on the shared machine hits every figure alike. Best of N runs, as in ``bench/cold_start.py``.

    .venv/bin/python bench/settings_cold_start.py [--against main] [--runs 9]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = ("consumer", "producer")


def import_seconds(statement: str, functions: Path) -> float:
    """Seconds spent in ``statement`` in one fresh interpreter with ``functions`` on the path (the code asset)."""
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    output = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=functions,
        env={"PYTHONPATH": str(functions), "PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin"},
    ).stdout
    return float(output.strip())


def extract_functions(revision: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", revision, "functions"], cwd=ROOT, capture_output=True, check=True)
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into / "functions"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", default="main", help="git revision to compare with (default: main)")
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters per figure (best is kept)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        trees = {args.against: extract_functions(args.against, Path(scratch)), "this tree": ROOT / "functions"}
        rows = [("boto3", "import boto3", trees["this tree"])]
        rows += [
            (f"{handler} @ {name}", f"import {handler}", tree) for handler in HANDLERS for name, tree in trees.items()
        ]
        best = {label: float("inf") for label, _, _ in rows}
        for _ in range(args.runs):
            for label, statement, tree in rows:
                best[label] = min(best[label], import_seconds(statement, tree))

    boto3 = best["boto3"]
    print(f"cold import, best of {args.runs} fresh interpreters, this tree against {args.against}")
    for label, seconds in best.items():
        print(f"  import {label:<24} {seconds * 1000:7.1f} ms  {seconds / boto3:5.2f}x boto3")
    for handler in HANDLERS:
        before, after = best[f"{handler} @ {args.against}"], best[f"{handler} @ this tree"]
        print(f"  {handler}: {(after - before) * 1000:+.1f} ms ({after / before:.2f}x {args.against})")


if __name__ == "__main__":
    main()
