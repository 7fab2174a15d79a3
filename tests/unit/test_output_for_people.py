"""What the demo and the benchmarks show a person: a progress line, and the handlers' JSON logs in a file."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

from invoice_pipeline.observability import logger
from local.logs import handler_logs
from local.progress import Progress, describe


def test_the_progress_line_says_done_of_total_the_rate_and_the_time_left() -> None:
    assert describe("pass 1", 0, 17, 3.0) == "pass 1: 0/17 finished, 3 s so far"
    assert describe("pass 1", 5, 17, 50.0) == "pass 1: 5/17 finished, 0.10/s, about 2 min 0 s left, 50 s so far"
    assert describe("pass 1", 17, 17, 90.0) == "pass 1: 17/17 finished, 0.19/s, 1 min 30 s so far"


def test_off_a_terminal_the_progress_prints_whole_lines_now_and_then() -> None:
    stream = io.StringIO()  # not a TTY
    finished = iter(range(100))
    seen = threading.Event()

    def count() -> int:
        value = next(finished)
        if value >= 6:
            seen.set()
        return value

    with Progress("pass", count=count, total=100, stream=stream, every=0.05, tick=0.01):
        assert seen.wait(10)
    lines = stream.getvalue().splitlines()
    assert lines and all(line.startswith("pass: ") and "/100 finished" in line for line in lines)
    assert "\r" not in stream.getvalue()


def test_off_a_terminal_a_count_that_does_not_move_prints_nothing_until_the_quiet_minute() -> None:
    stream = io.StringIO()
    reads = threading.Event()
    calls = iter(range(10_000))

    def count() -> int:
        if next(calls) >= 20:
            reads.set()
        return 3  # stuck: one line at most, when it first moved from 0 to 3

    with Progress("pass", count=count, total=10, stream=stream, every=0.01, tick=0.005):
        assert reads.wait(10)
    assert len(stream.getvalue().splitlines()) == 1


def test_handler_logs_and_library_warnings_go_to_the_named_file_not_the_screen(tmp_path: Path, capfd) -> None:
    path = tmp_path / "handlers.log"
    screen = logger.registered_handler.stream  # type: ignore[attr-defined]
    with handler_logs(path):
        logger.info("order extracted", extra={"order_id": 7})
        warnings.warn("a library's warning", UserWarning, stacklevel=1)

    out = capfd.readouterr()
    assert "order extracted" not in out.out + out.err and "a library's warning" not in out.out + out.err
    assert logger.registered_handler.stream is screen  # type: ignore[attr-defined]  # on screen again after it
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["order_id"] == 7
    assert any("a library's warning" in line for line in lines[1:])


def test_an_invocation_without_metrics_warns_nobody() -> None:
    """Powertools warns on every flush of an empty metric set; the handlers' module silences that one warning."""
    script = "import invoice_pipeline.observability as o; o.metrics.flush_metrics(); print('flushed')"
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.stdout.strip() == "flushed"
    assert "No application metrics" not in done.stderr
