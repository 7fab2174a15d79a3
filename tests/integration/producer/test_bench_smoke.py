"""The producer benchmark runs end to end at a small size (its figures are printed, never asserted on time)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "producer.py"


@pytest.mark.slow
def test_producer_benchmark_runs_at_a_small_size(capsys):
    spec = importlib.util.spec_from_file_location("bench_producer", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    figures = bench.main(["--orders", "5000", "--enqueue", "120", "--page-size", "40"])

    out = capsys.readouterr().out
    assert "run: 120 messages (each exactly once in the queue)" in out
    assert set(figures) >= {"last_over_first", "rss_growth_mb", "old_over_keyset_last", "old_over_keyset_deep"}
    assert figures["rss_growth_mb"] < 50
