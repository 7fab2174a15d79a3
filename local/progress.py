"""A progress line for a long pass: how many of the total are finished, the rate, and the time left.

On a terminal it is one line redrawn in place; otherwise (a pipe, a CI log) a line when the count has moved, at
most one every ``every`` seconds, and one a minute while it has not, so a log shows the pass moving without a
line per event. ``count()`` is read on a background thread, about once a
second; it must be cheap and thread-safe (the demo reads the ledger's status counts).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO


def describe(label: str, finished: int, total: int, elapsed: float) -> str:
    """``pass 1: 7/17 orders finished, 0.12/s, about 1 min 23 s left`` (no rate or estimate before the first)."""
    line = f"{label}: {finished}/{total} finished"
    if finished and elapsed > 0:
        rate = finished / elapsed
        line += f", {rate:.2f}/s"
        left = max(total - finished, 0) / rate
        line += f", about {_duration(left)} left" if finished < total else ""
    return line + f", {_duration(elapsed)} so far"


def _duration(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60} s" if whole >= 60 else f"{whole} s"


class Progress:
    """``with Progress("pass 1", count=..., total=17): ...`` shows the line while the block runs."""

    def __init__(
        self,
        label: str,
        *,
        count: Callable[[], int],
        total: int,
        stream: TextIO | None = None,
        every: float = 10.0,
        tick: float = 1.0,
    ) -> None:
        self.label = label
        self.count = count
        self.total = total
        self.stream = stream or sys.stdout
        self.every = every
        self.tick = tick
        self.redraw = self.stream.isatty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"progress-{label}", daemon=True)
        self._started = 0.0
        self._width = 0
        self.misses = 0  # reads of count() that failed
        self.quiet = max(60.0, every)  # off a terminal, the longest silence while nothing moves
        self._printed_count = 0

    def __enter__(self) -> Progress:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        if self.redraw and self._width:
            self.stream.write("\r" + " " * self._width + "\r")  # the caller prints the pass's final line
            self.stream.flush()

    def _due(self, finished: int, since_last: float) -> bool:
        """Off a terminal: a line when the count moved (at most one per ``every`` seconds), else one a minute."""
        moved = finished != self._printed_count
        return (moved and since_last >= self.every) or since_last >= self.quiet

    def _run(self) -> None:
        last_printed = time.monotonic()
        finished = 0
        while not self._stop.wait(self.tick):
            try:
                finished = self.count()
            except Exception:  # a failed read shows the last count; the pass itself is not disturbed
                self.misses += 1
            line = describe(self.label, finished, self.total, time.monotonic() - self._started)
            if self.redraw:
                self.stream.write("\r" + line.ljust(self._width))
                self._width = max(self._width, len(line))
                self.stream.flush()
            elif self._due(finished, time.monotonic() - last_printed):
                self.stream.write(line + "\n")
                self.stream.flush()
                last_printed, self._printed_count = time.monotonic(), finished
