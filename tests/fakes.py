"""Fakes of the consumer's ports, shared by tests of its logic (fakes over mocks: they record what a test asserts)."""

from __future__ import annotations

from typing import Any


class RecordedVisibility:
    """The consumer's ``Visibility``: records each visibility timeout it is asked to set, in seconds."""

    def __init__(self) -> None:
        self.changes: list[int] = []

    def change(self, record: Any, seconds: int) -> None:
        self.changes.append(seconds)
