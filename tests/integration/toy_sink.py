"""Where the toy consumer's copies (one per emulated container) record what they saw: imported once, shared."""

from __future__ import annotations

BODIES: list[str] = []
COPIES: set[int] = set()
