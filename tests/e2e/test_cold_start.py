"""``bench/cold_start.py`` measures the handlers' cold imports against boto3's (it prints the ratios; no speed is
asserted here: a loaded machine would fail any bound)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "cold_start.py"


def test_the_cold_start_benchmark_measures_each_handler_and_boto3():
    spec = importlib.util.spec_from_file_location("bench_cold_start", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    seconds = bench.measure(runs=1, names=["boto3", "consumer", "producer"])

    # Each import ran in a fresh interpreter and was timed; test_observability pins what the consumer imports.
    assert set(seconds) == {"boto3", "consumer", "producer"} and all(value > 0 for value in seconds.values()), seconds
