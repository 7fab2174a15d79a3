"""Running the `invoices` command in-process, as the operator tests do."""

from __future__ import annotations

import pytest

from invoices_cli.main import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """``invoices ARGV...``: its exit code and what it printed."""
    code = main(list(argv))
    return code, capsys.readouterr().out
