"""The producer benchmark runs end to end at a small size (its figures are printed, never asserted on time)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "producer.py"


def load_bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_producer", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


@pytest.mark.slow
def test_producer_benchmark_runs_at_a_small_size(capsys):
    bench = load_bench()

    figures = bench.main(["--orders", "5000", "--enqueue", "120", "--page-size", "40"])

    out = capsys.readouterr().out
    assert "run: 120 messages (each exactly once in the queue)" in out
    assert set(figures) >= {"last_over_first", "rss_growth_mb", "old_over_keyset_last", "old_over_keyset_deep"}
    assert figures["rss_growth_mb"] < 50
    assert figures["entries_read_per_page"] == 40  # every entry of the index matches


@pytest.mark.slow
def test_producer_benchmark_with_a_restaurant_list_reports_the_entries_a_page_filters_out(capsys):
    bench = load_bench()
    every_fourth = ",".join(str(restaurant) for restaurant in range(0, 400, 4))

    figures = bench.main(
        ["--orders", "5000", "--enqueue", "120", "--page-size", "40", "--restaurant-ids", every_fourth]
    )

    assert "run: 120 messages (each exactly once in the queue)" in capsys.readouterr().out
    # A fifth of the restaurants: a page reads the other restaurants' entries between its 40 matches.
    assert 100 < figures["entries_read_per_page"] < 400
