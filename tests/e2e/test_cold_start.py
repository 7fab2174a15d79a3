"""The consumer's cold import stays close to boto3's; ``bench/cold_start.py`` prints the real figures."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "cold_start.py"


def test_consumer_and_producer_cold_imports_stay_within_a_generous_bound_of_boto3():
    spec = importlib.util.spec_from_file_location("bench_cold_start", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    seconds = bench.measure(runs=5, names=["boto3", "consumer", "producer"])

    # The target is 1.5x (measured 0.9-1.2x). 2.5x leaves room for a noisy shared machine, so only a gross
    # regression fails here (the eager Tracer measured 2.0-2.7x); test_observability pins the X-Ray SDK exactly.
    assert seconds["consumer"] <= 2.5 * seconds["boto3"], seconds
    assert seconds["producer"] <= 2.5 * seconds["boto3"], seconds
