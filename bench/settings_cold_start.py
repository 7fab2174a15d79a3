"""Cold import of the handlers in this tree against other revisions', side by side in one run.

Measures what a change to how settings are read (e.g. pydantic-settings instead of hand-written parsers) costs
at cold start: each other revision's ``functions/`` is extracted with ``git archive`` into a temporary
directory, and each handler is imported from every tree in fresh interpreters, interleaved with ``import
boto3`` so that load on the shared machine hits every figure alike. Best of N runs, as in ``bench/cold_start.py``.

    .venv/bin/python bench/settings_cold_start.py [--against main OTHER_REVISION ...] [--runs 9]
"""

from __future__ import annotations

import argparse
import subprocess
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

from cold_start import import_seconds  # this folder is on the path when a bench script runs

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = ("consumer", "producer")


def extract_functions(revision: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", revision, "functions"], cwd=ROOT, capture_output=True, check=True)
    into.mkdir(parents=True)
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into / "functions"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", nargs="+", default=["main"], help="git revisions to compare with (default: main)")
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters per figure (best is kept)")
    parser.add_argument(
        "--with", dest="modules", nargs="*", default=[], help="modules whose import on top of each handler is timed"
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        trees = {name: extract_functions(name, Path(scratch) / str(index)) for index, name in enumerate(args.against)}
        trees["this tree"] = ROOT / "functions"
        rows = [("boto3", "import boto3", trees["this tree"], "pass")]
        rows += [
            (f"{handler} @ {name}", f"import {handler}", tree, "pass")
            for handler in HANDLERS
            for name, tree in trees.items()
        ]
        rows += [
            (f"{module} after {handler}", f"import {module}", trees["this tree"], f"import {handler}")
            for handler in HANDLERS
            for module in args.modules
        ]
        best = {label: float("inf") for label, *_ in rows}
        for _ in range(args.runs):
            for label, statement, tree, after in rows:
                best[label] = min(best[label], import_seconds(statement, tree, after))

    boto3 = best["boto3"]
    print(f"cold import, best of {args.runs} fresh interpreters")
    for label, seconds in best.items():
        print(f"  import {label:<32} {seconds * 1000:7.1f} ms  {seconds / boto3:5.2f}x boto3")
    baseline = args.against[0]
    for handler in HANDLERS:
        before = best[f"{handler} @ {baseline}"]
        for name in trees:
            if name != baseline:
                seconds = best[f"{handler} @ {name}"]
                print(f"  {handler} @ {name}: {(seconds - before) * 1000:+.1f} ms, {seconds / before:.2f}x {baseline}")


if __name__ == "__main__":
    main()
