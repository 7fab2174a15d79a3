"""Where the handlers' JSON log lines go while a person watches: a file the run names, not the terminal.

In Lambda the Powertools logger (``invoice_pipeline.observability.logger``) writes one JSON line per event to
stdout, and CloudWatch keeps them. The demo and the benchmarks run the same handlers in this process, but print
a story or a table for people; ``handler_logs(path)`` sends those JSON lines, and any warning a library raises
meanwhile, to ``path`` instead, and puts everything back when the block ends. ``handler_logs(None)`` leaves the
lines on screen (``DEMO_VERBOSE=1``).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

VERBOSE_VARIABLE = "DEMO_VERBOSE"


def verbose(env: dict[str, str] | None = None) -> bool:
    """``DEMO_VERBOSE=1``: show the handlers' log lines on screen instead of writing them to a file."""
    return (env if env is not None else os.environ).get(VERBOSE_VARIABLE, "").strip() == "1"


def default_log_path(name: str) -> Path:
    """``<temp dir>/<name>.log``: one file per script, overwritten by its next run."""
    return Path(tempfile.gettempdir()) / f"{name}.log"


@contextmanager
def handler_logs(path: Path | None, *, level: str = "INFO") -> Iterator[Path | None]:
    """Within the block the handlers log to ``path`` at ``level`` (None: to the screen as before), and Python
    warnings (Powertools', botocore's, Pillow's...) go to the same file rather than to stderr."""
    from invoice_pipeline.observability import logger

    handler = logger.registered_handler
    previous_level = logger.log_level
    logger.setLevel(level.upper())
    if path is None:
        try:
            yield None
        finally:
            logger.setLevel(previous_level)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    warnings_logger = logging.getLogger("py.warnings")
    with path.open("w", encoding="utf-8", buffering=1) as file:
        previous_stream: IO[str] | None = None
        if isinstance(handler, logging.StreamHandler):
            previous_stream = handler.setStream(file)
        warnings_handler = logging.StreamHandler(file)
        warnings_logger.addHandler(warnings_handler)
        warnings_propagate = warnings_logger.propagate
        warnings_logger.propagate = False
        logging.captureWarnings(True)
        try:
            yield path
        finally:
            logging.captureWarnings(False)
            warnings_logger.removeHandler(warnings_handler)
            warnings_logger.propagate = warnings_propagate
            if isinstance(handler, logging.StreamHandler) and previous_stream is not None:
                handler.setStream(previous_stream)
            logger.setLevel(previous_level)


@contextmanager
def bench_logs(name: str) -> Iterator[Path | None]:
    """A benchmark's run: its handlers' logs in ``<temp dir>/<name>.log``, named on the first line it prints, so its
    table is the only thing on screen (``DEMO_VERBOSE=1``: the logs on screen too)."""
    path = None if verbose() else default_log_path(name)
    if path is not None:
        print(f"handler logs: {path} (DEMO_VERBOSE=1 shows them here)", flush=True)
    with handler_logs(path) as where:
        yield where
