"""The reliability suite runs the chaos scenarios of :mod:`local.chaos` at a small size."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from invoice_pipeline.observability import logger


@pytest.fixture(autouse=True)
def quiet_handlers() -> Iterator[None]:
    """The handlers log every record as JSON on stdout; at this volume only warnings are worth keeping."""
    previous = logger.log_level
    logger.setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    yield
    logger.setLevel(previous)
