"""Setup a test needs but the machine lacks: a skip on a developer's machine, a failure under CI.

``CI`` set (any non-empty value, as CI services set it) turns every such skip into a failure that names what is
missing, so a run that lost its browser, package index or OCR extra cannot pass with those tests silently skipped.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest


def under_ci() -> bool:
    return bool(os.environ.get("CI"))


def missing(reason: str) -> NoReturn:
    """Skip the test (module, when called at import) for ``reason``; under CI fail it with that reason instead."""
    if under_ci():
        pytest.fail(f"missing setup (CI is set, so this is not skipped): {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_module(name: str, reason: str) -> ModuleType:
    """``pytest.importorskip`` that fails under CI."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        missing(f"{reason} ({error})")
