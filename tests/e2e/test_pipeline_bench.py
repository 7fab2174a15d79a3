"""The pipeline benchmark runs end to end at a small size (`make bench` prints its efficiency; no speed asserted)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "pipeline.py"


def test_pipeline_benchmark_runs_at_a_small_size_and_keeps_the_model_busy(capsys):
    spec = importlib.util.spec_from_file_location("bench_pipeline", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look their module up there
    spec.loader.exec_module(bench)

    figures = bench.main(["--orders", "16", "--latency", "0.3", "--concurrency", "2"])

    out = capsys.readouterr().out
    assert "event source at C=2 / old script (4 threads)" in out
    assert '"_aws"' not in out  # figures, not the handlers' EMF metrics payloads
    # Every order was done with exactly one model call (the bench checks it and raises otherwise); both shapes ran.
    assert set(figures) == {"efficiency_c2", "old_efficiency", "new_over_old"}
    assert figures["efficiency_c2"] > 0 and figures["old_efficiency"] > 0
