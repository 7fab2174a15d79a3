"""Live controls of the local stack: what ``invoices pause`` / ``resume`` / ``concurrency N`` set when the queue is
on a local endpoint, and what the SQS event-source emulator reads while it runs (the stand-in for the Lambda
event source mapping's ``Enabled`` and ``ScalingConfig.MaximumConcurrency``).

One small JSON file per queue URL under ``INVOICES_CONTROLS_DIR`` (default: the system's temporary directory),
written atomically (a rename), read by the emulator a few times a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class LocalControls:
    paused: bool = False
    max_concurrency: int | None = None  # None: what the emulator was started with

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def controls_path(queue_url: str) -> Path:
    folder = Path(os.environ.get("INVOICES_CONTROLS_DIR") or Path(tempfile.gettempdir()) / "invoices-controls")
    return folder / f"{hashlib.sha256(queue_url.encode()).hexdigest()[:16]}.json"


def read_controls(queue_url: str) -> LocalControls:
    """The controls of ``queue_url``; defaults when none were set (or the file is unreadable)."""
    try:
        data = json.loads(controls_path(queue_url).read_text(encoding="utf-8"))
        concurrency = data.get("max_concurrency")
        return LocalControls(
            paused=bool(data.get("paused", False)),
            max_concurrency=int(concurrency) if concurrency is not None else None,
        )
    except (OSError, ValueError, TypeError, AttributeError):
        return LocalControls()


def write_controls(queue_url: str, **changes: Any) -> LocalControls:
    """Change some controls of ``queue_url`` and return them all."""
    controls = replace(read_controls(queue_url), **changes)
    path = controls_path(queue_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp", encoding="utf-8") as file:
        json.dump({"queue_url": queue_url, **controls.as_dict()}, file)
    Path(file.name).replace(path)
    return controls
